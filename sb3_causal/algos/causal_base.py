"""What every causal agent shares: its graph learner, its mask provider, and saving both.

:class:`CausalAlgorithmMixin` is the one home of the causal pieces used by
:class:`~sb3_causal.algos.CausalMaskablePPO` and :class:`~sb3_causal.algos.CausalDQN`:

* a :class:`~sb3_causal.callbacks.CausalGraphCallback` the agent adds to every ``learn`` call itself
  (exact raw transitions -> :class:`~sb3_causal.discovery.online.OnlineCausalLearner` every
  ``graph_update_freq`` env steps -> ``causal/*`` in the SB3 logger);
* a :class:`~sb3_causal.masks.MaskProvider` (by default a :class:`~sb3_causal.masks.CausalMask` on the
  learner's graph) that receives every new graph;
* ``model.causal_graph`` and ``model.causal_learner``;
* save/load: the zip SB3 writes gets two more entries, ``causal_graph.json`` (the current graph, as
  :meth:`CausalGraph.to_json`, never pickled) and ``causal_learner.npz`` (the learner's streaming
  statistics and the variable layout, plain arrays loaded with ``allow_pickle=False``). ``load`` reads
  them back and raises :class:`CausalModelFileError` naming the entry when one is missing or corrupt.

Extra state is created in ``__init__`` (SB3's ``load`` rebuilds the model with ``_init_setup_model=False``,
restores ``__dict__`` and calls ``_setup_model``); the learner itself is built lazily, when training
starts or ``causal_graph`` is first asked for, because an initial graph such as THP needs the env.

:class:`CausalMaskVecEnv` is how an algorithm that reads masks through ``env_method("action_masks")``
(sb3-contrib's MaskablePPO) acts with the provider's masks without a copy of its rollout loop.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.save_util import open_path
from stable_baselines3.common.type_aliases import MaybeCallback
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, unwrap_vec_normalize
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from sb3_causal.callbacks import CausalGraphCallback
from sb3_causal.discovery.online import OnlineCausalLearner
from sb3_causal.graph import CausalGraph
from sb3_causal.masks import CausalMask, MaskProvider
from sb3_causal.variables import CausalVariables

__all__ = ["GRAPH_ENTRY", "LEARNER_ENTRY", "CausalAlgorithmMixin", "CausalMaskVecEnv", "CausalModelFileError"]

#: zip entry of the saved graph (CausalGraph JSON)
GRAPH_ENTRY = "causal_graph.json"
#: zip entry of the saved learner statistics and variable layout (numpy npz, no pickled objects)
LEARNER_ENTRY = "causal_learner.npz"

MasksFn = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]


class CausalModelFileError(ValueError):
    """A saved causal model's graph or learner entry is missing or corrupt."""


class CausalMaskVecEnv(VecEnvWrapper):
    """Answers ``env_method("action_masks")`` with the agent's masks for the observations it last returned.

    sb3-contrib's MaskablePPO reads its masks once per step with ``get_action_masks(env)`` (that is,
    ``env_method("action_masks")``), acts with them and stores them in its rollout buffer. Wrapping its
    VecEnv in this class makes the mask it acts with, and stores, ``masks_fn(raw_obs, env_masks)``: the
    provider's mask of the current observations AND the env's own ``action_masks()`` when it has one.
    The masks are computed once per observation (the first time they are asked for after a ``reset`` or
    ``step``) and cached, so every caller of that step sees the same array.

    :param venv: the VecEnv to wrap (may contain a ``VecNormalize``: masks see its original observations)
    :param masks_fn: ``(raw observations (n_envs, *obs_shape), env masks or None) -> (n_envs, n_actions) bool``
    """

    def __init__(self, venv: VecEnv, masks_fn: MasksFn) -> None:
        super().__init__(venv)
        self.masks_fn = masks_fn
        self._obs: Any = None
        self._masks: np.ndarray | None = None
        self._env_has_masks = venv.has_attr("action_masks")

    def reset(self) -> Any:
        self._obs, self._masks = self.venv.reset(), None
        return self._obs

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        self._obs, self._masks = obs, None
        return obs, rewards, dones, infos

    def current_masks(self) -> np.ndarray:
        """The masks of the current observations of all envs, ``(n_envs, n_actions)`` bool."""
        if self._masks is None:
            if self._obs is None:
                raise RuntimeError("CausalMaskVecEnv: reset() the env before asking for action masks")
            vec_normalize = unwrap_vec_normalize(self.venv)
            raw = vec_normalize.get_original_obs() if vec_normalize is not None else self._obs
            env_masks = np.stack(self.venv.env_method("action_masks")).astype(bool) if self._env_has_masks else None
            self._masks = self.masks_fn(np.asarray(raw), env_masks)
        return self._masks

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        if method_name == "action_masks" and not method_args and not method_kwargs:
            masks = self.current_masks()
            return [masks[i] for i in self._get_indices(indices)]
        return self.venv.env_method(method_name, *method_args, indices=indices, **method_kwargs)

    def has_attr(self, attr_name: str) -> bool:
        return attr_name == "action_masks" or self.venv.has_attr(attr_name)


class CausalAlgorithmMixin:
    """Graph learner, mask provider, ``causal_graph`` and save/load shared by the causal algorithms.

    Put it first in the bases (``class CausalX(CausalAlgorithmMixin, SomeSB3Algorithm)``), call
    :meth:`_init_causal` in ``__init__`` after the SB3 constructor (with ``_init_setup_model=False``) and
    before ``_setup_model``, and route the masks the algorithm acts with through :meth:`_causal_masks`.
    """

    # set by the SB3 base class
    env: VecEnv | None
    seed: int | None
    verbose: int
    _vec_normalize_env: Any
    logger: Any

    def _init_causal(
        self,
        *,
        k: int,
        eta: float,
        layout: CausalVariables | None,
        initial_graph: str | CausalGraph,
        initial_kwargs: dict[str, Any] | None,
        learner_kwargs: dict[str, Any] | None,
        graph_update_freq: int,
        mask_provider: MaskProvider | None,
        activity_threshold: float,
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(
                f"k (the number of top causal candidates the mask keeps) must be an integer >= 1, got {k!r}"
            )
        if not 0.0 <= float(eta) <= 1.0:
            raise ValueError(f"eta (the probability of lifting the causal mask) must be in [0, 1], got {eta!r}")
        if mask_provider is not None and not isinstance(mask_provider, MaskProvider):
            raise TypeError(
                "mask_provider must implement the MaskProvider interface: "
                "__call__(observations, env_masks, *, explore) and update_graph(graph); "
                f"got {type(mask_provider).__name__}"
            )
        self.k = int(k)
        self.eta = float(eta)
        self.activity_threshold = float(activity_threshold)
        self.graph_update_freq = int(graph_update_freq)
        self.learner_kwargs = dict(learner_kwargs or {})
        self.mask_provider: MaskProvider | None = mask_provider
        if self.env is not None:
            if layout is None:
                layout = CausalVariables.from_env(self.env)  # clear VariableLayoutError when it cannot map
            else:
                layout.check_env(self.env.observation_space, self.env.action_space)
        self.graph_callback = CausalGraphCallback(
            layout=layout,
            initial_graph=initial_graph,
            initial_kwargs=initial_kwargs,
            learner_kwargs=self.learner_kwargs,
            update_freq=self.graph_update_freq,
            seed=self.seed,
            verbose=self.verbose,
        )
        self.graph_callback.on_update.append(self._on_graph_update)

    # ------------------------------------------------------------------ public
    @property
    def causal_learner(self) -> OnlineCausalLearner:
        """The online structure learner (built from the initial graph on first use)."""
        self._setup_causal()
        assert self.graph_callback.learner is not None
        return self.graph_callback.learner

    @property
    def causal_graph(self) -> CausalGraph:
        """The current causal graph (the initial graph until the first update)."""
        return self.causal_learner.graph

    # ------------------------------------------------------------------ setup
    def _setup_causal(self) -> None:
        """Build the learner (initial graph) and the default mask provider if not done yet."""
        callback = self.graph_callback
        if callback.learner is None:
            if self.env is None:
                raise RuntimeError(
                    "the causal learner is built from the env (layout, initial graph): give the model an env "
                    "(set_env) or load a saved model"
                )
            callback.setup(self.env)
        assert callback.learner is not None
        if self.mask_provider is None:
            self.mask_provider = CausalMask(
                callback.learner.layout,
                callback.learner.graph,
                k=self.k,
                eta=self.eta,
                seed=self.seed,
                activity_threshold=self.activity_threshold,
            )

    def _on_graph_update(self, graph: CausalGraph) -> None:
        if self.mask_provider is None:
            return
        self.mask_provider.update_graph(graph)
        if isinstance(self.mask_provider, CausalMask):
            m = self.mask_provider
            if m.n_rows:
                self.logger.record("causal/mask_lifted_fraction", m.n_lifted / m.n_rows)
                self.logger.record("causal/mask_fallback_fraction", m.n_fallback / m.n_rows)
                kept = m.n_rows - m.n_lifted
                if kept:
                    self.logger.record("causal/mask_mean_actions", m.n_allowed / kept)
            m.reset_stats()

    def _init_callback(self, callback: MaybeCallback, progress_bar: bool = False) -> Any:
        """SB3 hook of ``learn``: the graph callback runs first, then the user's callbacks."""
        self._setup_causal()
        if callback is None:
            callbacks: list[Any] = [self.graph_callback]
        elif isinstance(callback, list):
            callbacks = [self.graph_callback, *callback]
        else:
            callbacks = [self.graph_callback, callback]
        return super()._init_callback(callbacks, progress_bar)  # type: ignore[misc]

    # ------------------------------------------------------------------ masks
    def _causal_masks(self, observations: np.ndarray, env_masks: np.ndarray | None, explore: bool) -> np.ndarray:
        """The provider's masks (AND the env's) for raw observations ``(batch, *obs_shape)``."""
        if self.mask_provider is None:
            self._setup_causal()
        assert self.mask_provider is not None
        return self.mask_provider(observations, env_masks, explore=explore)

    def _predict_masks(self, observation: Any, action_masks: np.ndarray | None) -> np.ndarray:
        """Masks ``predict`` applies: the causal mask without ``eta`` lifts, AND the caller's ``action_masks``."""
        if isinstance(observation, dict):
            raise TypeError("causal masks need a flat Box observation, not a Dict observation")
        obs = np.asarray(observation)
        vectorized = self.policy.is_vectorized_observation(obs)  # type: ignore[attr-defined]
        batch = obs if vectorized else obs[None]
        if self._vec_normalize_env is not None:
            batch = self._vec_normalize_env.unnormalize_obs(batch)
        n_actions = int(self.action_space.n)  # type: ignore[attr-defined]
        env_masks = None
        if action_masks is not None:
            env_masks = np.asarray(action_masks, dtype=bool).reshape(len(batch), n_actions)
        return self._causal_masks(batch, env_masks, explore=False)

    # ------------------------------------------------------------------ save / load
    def _excluded_save_params(self) -> list[str]:
        # the graph and learner go to their own zip entries; a default CausalMask is rebuilt on load
        return [*super()._excluded_save_params(), "graph_callback", "mask_provider"]  # type: ignore[misc]

    def save(
        self,
        path: str | Path | io.BufferedIOBase,
        exclude: Sequence[str] | None = None,
        include: Sequence[str] | None = None,
    ) -> None:
        """Save like SB3, plus the graph (``causal_graph.json``) and the learner (``causal_learner.npz``) in the zip."""
        learner = self.causal_learner
        buffer = io.BytesIO()
        super().save(buffer, exclude=exclude, include=include)  # type: ignore[misc]
        with zipfile.ZipFile(buffer, mode="a") as archive:
            archive.writestr(GRAPH_ENTRY, learner.graph.to_json())
            archive.writestr(LEARNER_ENTRY, _learner_to_npz(learner))
        if isinstance(path, io.BufferedIOBase):  # a caller's file object stays open, as with SB3's save
            path.write(buffer.getvalue())
        else:
            with open_path(path, "w", verbose=0, suffix="zip") as file:
                file.write(buffer.getvalue())

    @classmethod
    def load(  # type: ignore[override]
        cls,
        path: str | Path | io.BufferedIOBase,
        env: Any = None,
        device: Any = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Load like SB3, then restore the graph and learner from their zip entries.

        A user-defined ``mask_provider`` is not saved: pass it again as ``load(..., mask_provider=...)``.

        :raises CausalModelFileError: when the graph or learner entry is missing or corrupt
        """
        if isinstance(path, io.BufferedIOBase):
            raw = path.read()
        else:
            with open_path(path, "r", verbose=0, suffix="zip") as file:
                raw = file.read()
        graph_text, learner_bytes = _read_causal_entries(raw, path)
        model = super().load(  # type: ignore[misc]
            io.BytesIO(raw),
            env=env,
            device=device,
            custom_objects=custom_objects,
            print_system_info=print_system_info,
            force_reset=force_reset,
            **kwargs,
        )
        model._restore_causal(graph_text, learner_bytes, str(path))
        return model

    def _restore_causal(self, graph_text: str, learner_bytes: bytes, source: str) -> None:
        try:
            graph = CausalGraph.from_json(graph_text)
        except (ValueError, KeyError, TypeError) as exc:
            raise CausalModelFileError(f"{source}: the saved causal graph ({GRAPH_ENTRY}) is corrupt: {exc}") from exc
        try:
            layout, state = _learner_from_npz(learner_bytes)
            learner = OnlineCausalLearner(layout, CausalGraph.from_json(state["initial_graph"]), **self.learner_kwargs)
            state["graph"] = graph_text
            learner.load_state_dict(state)
        except (ValueError, KeyError, TypeError, OSError, zipfile.BadZipFile) as exc:
            raise CausalModelFileError(f"{source}: the saved causal learner ({LEARNER_ENTRY}) is corrupt: {exc}") from (
                exc
            )
        if tuple(graph.variables) != tuple(layout.names):
            raise CausalModelFileError(
                f"{source}: the saved graph's variables {list(graph.variables)} differ from the saved layout's "
                f"{list(layout.names)}"
            )
        if self.env is not None:
            layout.check_env(self.env.observation_space, self.env.action_space)
        self.graph_callback = CausalGraphCallback(
            learner=learner, update_freq=self.graph_update_freq, seed=self.seed, verbose=self.verbose
        )
        self.graph_callback.on_update.append(self._on_graph_update)
        if self.mask_provider is None:  # a user's provider passed to load() is kept
            self._setup_causal()
        else:
            self.mask_provider.update_graph(graph)


# ---------------------------------------------------------------------- zip entries
def _read_causal_entries(raw: bytes, source: Any) -> tuple[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            names = set(archive.namelist())
            missing = [n for n in (GRAPH_ENTRY, LEARNER_ENTRY) if n not in names]
            if missing:
                raise CausalModelFileError(
                    f"{source}: no {' / '.join(missing)} in the zip: it was not saved by a causal sb3-causal "
                    "algorithm (or the entry was removed)"
                )
            graph_bytes = archive.read(GRAPH_ENTRY)
            learner_bytes = archive.read(LEARNER_ENTRY)
    except zipfile.BadZipFile as exc:
        raise CausalModelFileError(f"{source}: not a readable zip file: {exc}") from exc
    try:
        return graph_bytes.decode("utf-8"), learner_bytes
    except UnicodeDecodeError as exc:
        raise CausalModelFileError(f"{source}: the saved causal graph ({GRAPH_ENTRY}) is not UTF-8 text") from exc


def _learner_to_npz(learner: OnlineCausalLearner) -> bytes:
    """The learner's npz bytes (its own format: :meth:`OnlineCausalLearner.to_npz`)."""
    return learner.to_npz()


def _learner_from_npz(data: bytes) -> tuple[CausalVariables, dict[str, Any]]:
    learner = OnlineCausalLearner.from_npz(data)
    return learner.layout, learner.state_dict()
