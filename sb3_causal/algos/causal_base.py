"""What every causal agent shares: its graph learner, its mask provider, and saving both.

:class:`CausalAlgorithmMixin` is the one home of the causal pieces used by
:class:`~sb3_causal.algos.CausalMaskablePPO` and :class:`~sb3_causal.algos.CausalDQN`:

* a :class:`~sb3_causal.callbacks.CausalGraphCallback` the agent adds to every ``learn`` call itself
  (exact raw transitions -> :class:`~sb3_causal.discovery.online.OnlineCausalLearner` every
  ``graph_update_freq`` env steps -> ``causal/*`` in the SB3 logger);
* a :class:`~sb3_causal.masks.MaskProvider` (by default a :class:`~sb3_causal.masks.CausalMask` on the
  learner's graph) that receives every new graph; a provider with ``uses_graph = False`` gets no layout,
  no learner and no graph (it then works on image or Dict observations);
* ``model.causal_graph`` and ``model.causal_learner``;
* save/load through :mod:`sb3_causal.common.save_util` (graph JSON, learner npz, the mask's generator;
  an ``nn.Module`` provider's weights as SB3 saves the policy).

Extra state is created in ``__init__`` (SB3's ``load`` rebuilds the model with ``_init_setup_model=False``,
restores ``__dict__`` and calls ``_setup_model``); the learner itself is built lazily, when training
starts or ``causal_graph`` is first asked for, because an initial graph such as THP needs the env.

Raw observations: the masks always see the env's raw observations. Under ``VecNormalize``, ``predict``
receives normalised ones; it takes the raw ones from the ``VecNormalize`` that returned them
(``get_original_obs``; the model's own env, the eval envs of callbacks passed to ``learn``, and envs
given to :meth:`CausalAlgorithmMixin.add_eval_env`), never by un-normalising (clipped values cannot be
recovered and round-off turns zeros into non-zeros).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback, EvalCallback
from stable_baselines3.common.type_aliases import MaybeCallback
from stable_baselines3.common.vec_env import VecEnv, VecNormalize, unwrap_vec_normalize

from sb3_causal.callbacks import DEFAULT_UPDATE_FREQ, CausalGraphCallback, check_initial_graph, check_update_freq
from sb3_causal.common.save_util import (
    GRAPH_ENTRY,
    LEARNER_ENTRY,
    MASK_ENTRY,
    CausalModelFileError,
    class_path,
    import_class,
    learner_from_npz,
    learner_to_npz,
    read_zip,
    read_zip_entries,
    write_zip,
)
from sb3_causal.discovery.choosers import InterventionChooser
from sb3_causal.discovery.online import OnlineCausalLearner
from sb3_causal.graph import CausalGraph
from sb3_causal.masks import CausalMask, MaskProvider
from sb3_causal.masks.base import check_action_masks, uses_graph
from sb3_causal.masks.causal import check_mask_parameters
from sb3_causal.variables import CausalVariables

__all__ = ["DEFAULT_UPDATE_FREQ", "GRAPH_ENTRY", "LEARNER_ENTRY", "CausalAlgorithmMixin", "CausalModelFileError"]

#: SB3's name (``_get_torch_save_params``) of an ``nn.Module`` provider's weights in the zip
PROVIDER_PARAMS = "mask_provider"


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
    _vec_normalize_env: VecNormalize | None
    logger: Any
    policy: Any
    action_space: Any

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
        chooser: InterventionChooser | None = None,
        check_env: bool = True,
    ) -> None:
        """Validate the causal arguments and create the graph callback (the learner is built lazily).

        :param check_env: map the env onto causal variables now (a clear error in the constructor); False
            on SB3's load path, where the saved layout is checked instead
        """
        check_mask_parameters(k, eta, activity_threshold)
        check_update_freq(graph_update_freq, "graph_update_freq")
        if mask_provider is not None and not isinstance(mask_provider, MaskProvider):
            raise TypeError(
                "mask_provider must implement the MaskProvider interface: "
                "__call__(observations, env_masks, *, explore) and update_graph(graph, n_hops=None); "
                f"got {type(mask_provider).__name__}"
            )
        self.k = int(k)
        self.eta = float(eta)
        self.activity_threshold = float(activity_threshold)
        if chooser is not None and not isinstance(chooser, InterventionChooser):
            raise TypeError(
                "chooser must implement the InterventionChooser interface: choose(candidates, rng) and "
                f"update(learner); got {type(chooser).__name__}"
            )
        self.chooser = chooser
        self.graph_update_freq = int(graph_update_freq)
        self.learner_kwargs = dict(learner_kwargs or {})
        self.mask_provider: MaskProvider | None = mask_provider
        self._mask_provider_spec: dict[str, Any] | None = None
        self._eval_vec_normalize: list[VecNormalize] = []
        self.graph_callback: CausalGraphCallback | None = None
        self._uses_graph = uses_graph(mask_provider)
        if not self._uses_graph:
            return  # no layout, no learner, no graph
        if self.env is not None and check_env:
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
        if self.env is not None and check_env:
            check_initial_graph(initial_graph, dict(initial_kwargs or {}), self.env)
        self.graph_callback.on_update.append(self._on_graph_update)

    # ------------------------------------------------------------------ public
    @property
    def causal_learner(self) -> OnlineCausalLearner:
        """The online structure learner (built from the initial graph on first use)."""
        callback = self._require_graph_callback()
        self._setup_causal()
        assert callback.learner is not None
        return callback.learner

    @property
    def causal_graph(self) -> CausalGraph:
        """The current causal graph (the initial graph until the first update)."""
        return self.causal_learner.graph

    def add_eval_env(self, env: VecEnv) -> None:
        """Let ``predict`` take raw observations from ``env``'s ``VecNormalize`` (see the module doc).

        The model's own env and the eval envs of ``EvalCallback`` s passed to ``learn`` are added automatically.
        """
        vec_normalize = unwrap_vec_normalize(env)
        if vec_normalize is not None and all(vec_normalize is not v for v in self._eval_vec_normalize):
            self._eval_vec_normalize.append(vec_normalize)

    # ------------------------------------------------------------------ setup
    def _require_graph_callback(self) -> CausalGraphCallback:
        if self.graph_callback is None:
            raise RuntimeError(
                f"the mask provider {type(self.mask_provider).__name__} uses no causal graph (uses_graph=False): "
                "this model has no causal learner and no causal graph"
            )
        return self.graph_callback

    def _setup_causal(self) -> None:
        """Build the learner (initial graph) and the default mask provider if not done yet."""
        callback = self.graph_callback
        if callback is None:
            return
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
                chooser=self.chooser,
            )

    def _setup_model(self) -> None:
        # SB3's load restores __dict__ and then calls _setup_model, before loading the saved weights
        # (set_parameters): an nn.Module provider must exist by then.
        if self.mask_provider is None and self._mask_provider_spec is not None:
            spec = self._mask_provider_spec
            self.mask_provider = import_class(spec["class"]).from_config(spec["config"])  # type: ignore[attr-defined]
        super()._setup_model()  # type: ignore[misc]

    def _on_graph_update(self, graph: CausalGraph) -> None:
        if self.mask_provider is None:
            return
        learner = self.causal_learner
        # the hop reach in use: declared by the layout, or chosen from data by the learner
        self.mask_provider.update_graph(graph, n_hops=learner.n_hops)
        chooser = getattr(self.mask_provider, "chooser", None)
        if chooser is not None:
            chooser.update(learner)
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
        """SB3 hook of ``learn``: the graph callback runs first, then the user's (a list, one, or a function)."""
        self._setup_causal()
        if callback is None:
            user: list[BaseCallback] = []
        elif isinstance(callback, list):
            user = list(callback)
        elif isinstance(callback, BaseCallback):
            user = [callback]
        else:
            user = [ConvertCallback(callback)]  # a bare callable, as SB3 accepts
        for eval_env in _eval_envs(user):
            self.add_eval_env(eval_env)
        callbacks = user if self.graph_callback is None else [self.graph_callback, *user]
        return super()._init_callback(callbacks, progress_bar)  # type: ignore[misc]

    # ------------------------------------------------------------------ masks
    def _causal_masks(self, observations: Any, env_masks: np.ndarray | None, explore: bool) -> np.ndarray:
        """The provider's masks (AND the env's) for raw observations ``(batch, *obs_shape)``."""
        if self.mask_provider is None:
            self._setup_causal()
        if self.mask_provider is None:
            raise RuntimeError(
                "this model's mask provider was not saved with it (only nn.Module providers are): pass it again "
                "with load(..., mask_provider=...)"
            )
        return self.mask_provider(observations, env_masks, explore=explore)

    def _predict_masks(self, observation: Any, action_masks: np.ndarray | None) -> np.ndarray:
        """Masks ``predict`` applies, ``(batch, n_actions)``: the provider's (no exploration) AND ``action_masks``."""
        vectorized = self.policy.is_vectorized_observation(observation)
        raw = self._raw_observations(observation)
        batch = raw if vectorized else _add_batch_axis(raw)
        n_batch = len(next(iter(batch.values()))) if isinstance(batch, dict) else len(batch)
        n_actions = int(self.action_space.n)
        env_masks = None if action_masks is None else check_action_masks(action_masks, n_batch, n_actions)
        return self._causal_masks(batch, env_masks, explore=False)

    def _raw_observations(self, observation: Any) -> Any:
        """``observation`` as the env returned it before ``VecNormalize`` (see the module doc)."""
        sources = [v for v in (self._vec_normalize_env, *self._eval_vec_normalize) if v is not None]
        if not sources or not any(v.norm_obs for v in sources):
            return observation
        for vec_normalize in sources:
            raw = vec_normalize.get_original_obs()
            if raw is None:
                continue
            normalized = vec_normalize.normalize_obs(raw)
            if _same_obs(normalized, observation):
                return raw
            for i in range(vec_normalize.num_envs):  # a single observation of one of its envs
                if _same_obs(_row(normalized, i), observation):
                    return _row(raw, i)
        if self._vec_normalize_env is None:
            return observation  # the model acts on raw observations; only an eval env normalises its own
        raise ValueError(
            "under VecNormalize the causal mask needs the raw observations, and these were not returned by a "
            "VecNormalize this model knows (its env, the eval envs of callbacks passed to learn). Pass the "
            "observations the env returned last, or call model.add_eval_env(env) for another env"
        )

    # ------------------------------------------------------------------ save / load
    def _excluded_save_params(self) -> list[str]:
        # the graph and learner go to their own zip entries; a provider is saved by the entries below
        return [*super()._excluded_save_params(), "graph_callback", "mask_provider", "_eval_vec_normalize"]  # type: ignore[misc]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()  # type: ignore[misc]
        # a provider without weights (empty state dict) is rebuilt from its config alone
        if isinstance(self.mask_provider, th.nn.Module) and self.mask_provider.state_dict():
            state_dicts = [*state_dicts, PROVIDER_PARAMS]
        return state_dicts, variables

    def save(
        self,
        path: str | Path | io.BufferedIOBase,
        exclude: Any = None,
        include: Any = None,
    ) -> None:
        """Save like SB3, plus the causal entries of :mod:`sb3_causal.common.save_util`."""
        entries: dict[str, str | bytes] = {}
        if self.graph_callback is not None:
            learner = self.causal_learner
            entries[GRAPH_ENTRY] = learner.graph.to_json()
            entries[LEARNER_ENTRY] = learner_to_npz(learner)
        provider = self.mask_provider
        if isinstance(provider, CausalMask):
            entries[MASK_ENTRY] = json.dumps(provider.state_dict())
        self._mask_provider_spec = None
        if isinstance(provider, th.nn.Module):
            self._mask_provider_spec = {"class": class_path(provider), "config": provider.get_config()}  # type: ignore[attr-defined]
        buffer = io.BytesIO()
        super().save(buffer, exclude=exclude, include=include)  # type: ignore[misc]
        with zipfile.ZipFile(buffer, mode="a") as archive:
            for name, content in entries.items():
                archive.writestr(name, content)
        write_zip(path, buffer.getvalue())

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
        """Load like SB3, then restore the graph, learner and mask state from their zip entries.

        A user-defined mask provider that is not an ``nn.Module`` is not saved: pass it again as
        ``load(..., mask_provider=...)``.

        :raises CausalModelFileError: when a causal entry is missing or corrupt, or the zip is another
            algorithm's
        """
        raw = read_zip(path)
        entries = read_zip_entries(raw, path, required=("data",), optional=(GRAPH_ENTRY, LEARNER_ENTRY, MASK_ENTRY))
        saved = _check_saved_by(cls, entries["data"], path)
        if saved.get("_uses_graph", True):
            missing = [n for n in (GRAPH_ENTRY, LEARNER_ENTRY) if n not in entries]
            if missing:
                raise CausalModelFileError(
                    f"{path}: no {' / '.join(missing)} in the zip: it was not saved by a causal sb3-causal "
                    "algorithm (or the entry was removed)"
                )
        model = super().load(  # type: ignore[misc]
            io.BytesIO(raw),
            env=env,
            device=device,
            custom_objects=custom_objects,
            print_system_info=print_system_info,
            force_reset=force_reset,
            **kwargs,
        )
        model._restore_causal(entries, str(path))
        return model

    def _restore_causal(self, entries: dict[str, bytes], source: str) -> None:
        if not self._uses_graph:
            self.graph_callback = None
        else:
            graph_text = _text(entries, GRAPH_ENTRY, source)
            try:
                graph = CausalGraph.from_json(graph_text)
            except (ValueError, KeyError, TypeError) as exc:
                raise CausalModelFileError(
                    f"{source}: the saved causal graph ({GRAPH_ENTRY}) is corrupt: {exc}"
                ) from exc
            learner = learner_from_npz(entries[LEARNER_ENTRY], graph_text, self.learner_kwargs, source)
            layout = learner.layout
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
                self.mask_provider.update_graph(graph, n_hops=learner.n_hops)
        if MASK_ENTRY in entries and isinstance(self.mask_provider, CausalMask):
            try:
                self.mask_provider.load_state_dict(json.loads(_text(entries, MASK_ENTRY, source)))
            except (ValueError, KeyError, TypeError) as exc:
                raise CausalModelFileError(f"{source}: the saved causal mask state ({MASK_ENTRY}) is corrupt") from exc


# ---------------------------------------------------------------------- helpers
def _eval_envs(callbacks: list[BaseCallback]) -> list[VecEnv]:
    """The eval envs of the EvalCallbacks among ``callbacks`` (looking into CallbackLists)."""
    found: list[VecEnv] = []
    for callback in callbacks:
        if isinstance(callback, CallbackList):
            found += _eval_envs(callback.callbacks)
        elif isinstance(callback, EvalCallback):
            found.append(callback.eval_env)  # type: ignore[arg-type]
    return found


def _same_obs(a: Any, b: Any) -> bool:
    if isinstance(a, dict) or isinstance(b, dict):
        return (
            isinstance(a, dict)
            and isinstance(b, dict)
            and a.keys() == b.keys()
            and all(_same_obs(a[k], b[k]) for k in a)
        )
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.array_equal(a, b)


def _row(obs: Any, i: int) -> Any:
    return {k: v[i] for k, v in obs.items()} if isinstance(obs, dict) else obs[i]


def _add_batch_axis(obs: Any) -> Any:
    return {k: np.asarray(v)[None] for k, v in obs.items()} if isinstance(obs, dict) else np.asarray(obs)[None]


def _text(entries: dict[str, bytes], name: str, source: str) -> str:
    try:
        return entries[name].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CausalModelFileError(f"{source}: the saved {name} is not UTF-8 text") from exc


def _check_saved_by(cls: type, data: bytes, source: Any) -> dict[str, Any]:
    """The saved data; a clear error when the zip was saved by another algorithm (not causal, or another's policy)."""
    try:
        saved = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}  # SB3's load reports an unreadable data entry itself
    if not isinstance(saved, dict):
        return {}
    if "graph_update_freq" not in saved:
        raise CausalModelFileError(
            f"{source}: this zip was not saved by a causal sb3-causal algorithm (no causal parameters in its data); "
            f"load it with the class that saved it, not {cls.__name__}"
        )
    policy_class = saved.get("policy_class")
    module = policy_class.get("__module__", "") if isinstance(policy_class, dict) else ""
    accepted = {p.__module__ for p in getattr(cls, "policy_aliases", {}).values()}
    library = module.split(".")[0] in ("stable_baselines3", "sb3_contrib", "sb3_causal")
    if library and accepted and module not in accepted:
        raise CausalModelFileError(
            f"{source}: this zip holds a policy from {module!r}, not one of {cls.__name__}'s "
            f"({', '.join(sorted(accepted))}): it was saved by another algorithm; load it with that class"
        )
    return saved
