"""The causal entries of a saved model's zip: the graph, the learner and the causal mask's generator.

SB3 writes its usual zip (``data``, ``policy.pth``, ... and, for a mask provider that is a
``torch.nn.Module``, ``mask_provider.pth`` through ``_get_torch_save_params``); the causal algorithms add:

* ``causal_graph.json``: the current graph (:meth:`CausalGraph.to_json`, never pickled);
* ``causal_learner.npz``: the learner's streaming statistics and variable layout, plain arrays loaded with
  ``allow_pickle=False`` (absent when the provider uses no graph);
* ``causal_mask.json``: the state of the default :class:`~sb3_causal.masks.CausalMask` (its generator),
  so that a loaded model draws the same ``eta`` lifts as the one that was saved (optional).

Reading raises :class:`CausalModelFileError` naming the entry when one is missing or corrupt.
"""

from __future__ import annotations

import importlib
import io
import zipfile
from pathlib import Path
from typing import Any

from stable_baselines3.common.save_util import open_path

from sb3_causal.discovery.online import OnlineCausalLearner

__all__ = [
    "GRAPH_ENTRY",
    "LEARNER_ENTRY",
    "MASK_ENTRY",
    "CausalModelFileError",
    "class_path",
    "import_class",
    "learner_from_npz",
    "learner_to_npz",
    "read_zip",
    "read_zip_entries",
    "write_zip",
]

#: zip entry of the saved graph (CausalGraph JSON)
GRAPH_ENTRY = "causal_graph.json"
#: zip entry of the saved learner statistics and variable layout (numpy npz, no pickled objects)
LEARNER_ENTRY = "causal_learner.npz"
#: zip entry of the default causal mask's state (JSON)
MASK_ENTRY = "causal_mask.json"


class CausalModelFileError(ValueError):
    """A saved causal model's graph, learner or mask entry is missing or corrupt."""


def read_zip(path: str | Path | io.BufferedIOBase) -> bytes:
    """The whole zip file as bytes; a file object is read from its start (as SB3's load does), wherever it stands."""
    if isinstance(path, io.IOBase):
        if path.seekable():
            path.seek(0)
        return path.read()
    with open_path(path, "r", verbose=0, suffix="zip") as file:
        return file.read()


def write_zip(path: str | Path | io.BufferedIOBase, data: bytes) -> None:
    """Write the zip bytes to ``path``; a caller's file object stays open, as with SB3's save."""
    if isinstance(path, io.IOBase):
        path.write(data)
        return
    with open_path(path, "w", verbose=0, suffix="zip") as file:
        file.write(data)


def read_zip_entries(raw: bytes, source: Any, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    """The ``required`` (and present ``optional``) entries of a zip, as bytes.

    :raises CausalModelFileError: when the zip is unreadable or a required entry is missing
    """
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            names = set(archive.namelist())
            missing = [n for n in required if n not in names]
            if missing:
                raise CausalModelFileError(
                    f"{source}: no {' / '.join(missing)} in the zip: it was not saved by a causal sb3-causal "
                    "algorithm (or the entry was removed)"
                )
            return {n: archive.read(n) for n in (*required, *optional) if n in names}
    except zipfile.BadZipFile as exc:
        raise CausalModelFileError(f"{source}: not a readable zip file: {exc}") from exc


def class_path(obj: Any) -> str:
    """``"module:QualName"`` of an object's class (how a provider's class is stored, never pickled)."""
    return f"{type(obj).__module__}:{type(obj).__qualname__}"


def import_class(path: str) -> type:
    """The class at ``"module:QualName"``.

    :raises CausalModelFileError: when it cannot be imported
    """
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise CausalModelFileError(
            f"the saved mask provider's class {path!r} cannot be imported ({exc}); import its module first, or "
            "pass mask_provider=... to load()"
        ) from exc
    if not isinstance(obj, type):
        raise CausalModelFileError(f"the saved mask provider's class {path!r} is not a class")
    return obj


# ---------------------------------------------------------------------- learner
def learner_to_npz(learner: OnlineCausalLearner) -> bytes:
    """The learner's entry of the zip: :meth:`OnlineCausalLearner.to_npz` (plain arrays, never pickled)."""
    return learner.to_npz()


def learner_from_npz(data: bytes, graph_text: str, learner_kwargs: dict[str, Any], source: Any) -> OnlineCausalLearner:
    """Rebuild a learner from :func:`learner_to_npz` bytes and the saved graph.

    :raises CausalModelFileError: when the entry is corrupt (it is never unpickled)
    """
    try:
        learner = OnlineCausalLearner.from_npz(data, **learner_kwargs)
        learner.load_state_dict({**learner.state_dict(), "graph": graph_text})
    except (ValueError, KeyError, TypeError, OSError, zipfile.BadZipFile) as exc:
        reason = str(exc)
        if "pickle" in reason.lower():  # numpy's message would suggest allow_pickle=True: never for a model file
            reason = "it holds pickled Python objects, which are never loaded (a learner entry is plain arrays)"
        raise CausalModelFileError(
            f"{source}: the saved causal learner ({LEARNER_ENTRY}) is corrupt or not an sb3-causal learner "
            f"file: {reason}"
        ) from exc
    return learner
