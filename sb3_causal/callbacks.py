"""SB3 callbacks of sb3-causal.

``CausalGraphCallback`` adds online causal structure learning to any SB3 algorithm (PPO, A2C,
DQN, MaskablePPO, ...): it records the exact transitions the agent makes, feeds them to an
:class:`~sb3_causal.discovery.online.OnlineCausalLearner` on a schedule, and logs the graph.
"""

from __future__ import annotations

import inspect
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from sb3_causal.common.behaviour import behaviour_probabilities, check_behaviour_supported
from sb3_causal.discovery.initial import INITIAL_METHODS, initial_graph_for_env
from sb3_causal.discovery.online import OnlineCausalLearner
from sb3_causal.graph import CausalGraph
from sb3_causal.variables import CausalVariables

__all__ = [
    "DEFAULT_UPDATE_FREQ",
    "CausalGraphCallback",
    "check_initial_graph",
    "check_update_freq",
    "raw_next_observations",
]

#: env steps (summed over envs) between two graph updates: the one default of the callback and the algorithms
DEFAULT_UPDATE_FREQ = 1000
_STATE_METHODS = ("pc", "ges", "pcmci")


def check_update_freq(value: Any, name: str = "update_freq") -> None:
    """The one check of a graph update period: an integer >= 1, named as the caller's argument is."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} (env steps between graph updates) must be an integer >= 1, got {value!r}")


def check_initial_graph(initial: Any, initial_kwargs: dict[str, Any], env: VecEnv | None = None) -> None:
    """Errors an initial graph would raise only when training starts, raised now.

    :param initial: a :class:`CausalGraph` or a method name of :data:`INITIAL_METHODS`
    :param initial_kwargs: its data and options
    :param env: the env, when known (``"thp"`` then needs its ``record_alarm_log`` or an ``alarm_log``)
    :raises ValueError: on an unknown method, a state method without ``states``, ``"thp"`` without a log
    """
    if isinstance(initial, CausalGraph):
        return
    if not isinstance(initial, str) or initial.lower() not in INITIAL_METHODS:
        raise ValueError(f"unknown initial_graph {initial!r}: choose one of {INITIAL_METHODS} or pass a CausalGraph")
    method = initial.lower()
    if method in _STATE_METHODS and initial_kwargs.get("states") is None:
        raise ValueError(
            f"initial_graph={initial!r} learns from recorded state data: pass initial_kwargs={{'states': "
            "(T, obs_dim) array, 'episode_starts': (T,) bool}"
        )
    if (
        method == "thp"
        and "alarm_log" not in initial_kwargs
        and env is not None
        and not env.has_attr("record_alarm_log")
    ):
        raise ValueError(
            "initial_graph='thp' needs an alarm event log: the env has no record_alarm_log(n_events, seed); "
            "pass initial_kwargs={'alarm_log': ...}"
        )


def check_learner_kwargs(learner_kwargs: dict[str, Any]) -> None:
    """Unknown :class:`OnlineCausalLearner` keyword arguments are an error naming them and the valid ones."""
    accepted = [
        name
        for name, p in inspect.signature(OnlineCausalLearner.__init__).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    unknown = sorted(set(learner_kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"unknown learner_kwargs {unknown}: OnlineCausalLearner accepts {accepted}")


def learner_memory_bytes(layout: CausalVariables) -> int:
    """Estimated size of the online learner's statistics for ``layout``.

    Its largest block is one streaming Gram matrix of the pruning model per intervened variable:
    ``n_variables x f x f`` float64 with ``f = 1 + 2 * n_hops * n_variables`` features, so the memory
    grows with the cube of the variable count. (Mirrors ``OnlineCausalLearner.reset_statistics``; an
    undeclared hop reach counts as the largest of the learner's default ``hop_candidates``.)
    """
    v = layout.n_variables
    n_hops = layout.n_hops or max(inspect.signature(OnlineCausalLearner).parameters["hop_candidates"].default)
    f = 1 + 2 * n_hops * v
    return 8 * (v + 1) * f * f


def check_learner_memory(layout: CausalVariables, available: int | None = None) -> None:
    """Refuse, before allocating, a layout whose learner would not fit in memory.

    :param layout: the variable layout
    :param available: bytes the learner may use (default: the machine's physical memory)
    :raises MemoryError: naming the size, the variable count, and what to do
    """
    if available is None:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    need = learner_memory_bytes(layout)
    if need > available:
        raise MemoryError(
            f"the online causal learner would need {need / 2**30:,.1f} GiB for {layout.n_variables} causal "
            f"variables (its statistics grow with the cube of the variable count), more than the "
            f"{available / 2**30:,.1f} GiB of memory here. Declare fewer variables (e.g. units x types in "
            "CausalVariables rather than one variable per observation entry), or use a mask provider with "
            "uses_graph = False"
        )


class CausalGraphCallback(BaseCallback):
    """Learn a causal graph online from the transitions of any SB3 algorithm.

    Transitions are exact: raw observations (through ``VecNormalize`` when it is used), the
    terminal observation at an episode end, never a pair across two episodes. Every
    ``update_freq`` env steps (summed over envs) the new transitions go to the learner and the
    graph is re-estimated; ``causal/*`` values go to the SB3 logger (TensorBoard), with
    F1/precision/recall/SHD when the env exposes its true graph as ``causal_graph``.

    :param layout: how the env's observations and actions map onto variables (default: the env's
        ``causal_variables`` or the factored default; a clear error when neither fits)
    :param initial_graph: a :class:`CausalGraph` or a method name of
        :data:`~sb3_causal.discovery.initial.INITIAL_METHODS` (``"thp"`` records an alarm log from the env)
    :param initial_kwargs: data and options for the initial method (e.g. ``states=...`` for ``"pc"``)
    :param learner: a ready learner (e.g. ``OnlineCausalLearner(layout, initial_graph("thp", ...))``); without
        one, the callback builds it when training starts from ``layout``, ``initial_graph`` (through
        :func:`~sb3_causal.discovery.initial.initial_graph_for_env`) and ``learner_kwargs`` (a convenience)
    :param learner_kwargs: keyword arguments of :class:`OnlineCausalLearner`
    :param update_freq: env steps between graph updates (pending transitions wait for the next update, also
        across ``learn`` calls, so ``learn(a); learn(b, reset_num_timesteps=False)`` learns the graph of
        ``learn(a + b)``; :meth:`flush` updates now)
    :param seed: seed of a random initial graph and of the alarm log recording
    :param verbose: 1 prints a line per update

    With a learner that weights control rows by their odds of treatment
    (``learner_kwargs={"propensity_weighting": True}``), each step's transitions go to the learner with the
    acting policy's probability of every action (:func:`~sb3_causal.common.behaviour.behaviour_probabilities`:
    on-policy categorical policies and epsilon-greedy DQNs; other algorithms are refused when training
    starts). That costs one extra forward pass of the policy per step.
    """

    def __init__(
        self,
        layout: CausalVariables | None = None,
        initial_graph: str | CausalGraph = "empty",
        initial_kwargs: dict[str, Any] | None = None,
        learner: OnlineCausalLearner | None = None,
        learner_kwargs: dict[str, Any] | None = None,
        update_freq: int = DEFAULT_UPDATE_FREQ,
        seed: int | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        check_update_freq(update_freq)
        if learner is not None:
            if layout is not None or learner_kwargs:
                raise ValueError("pass either a ready learner or layout/learner_kwargs to build one, not both")
        else:
            check_initial_graph(initial_graph, dict(initial_kwargs or {}))
            check_learner_kwargs(dict(learner_kwargs or {}))
            if layout is not None:
                check_learner_memory(layout)
        self.layout = layout
        self.initial_graph = initial_graph
        self.initial_kwargs = dict(initial_kwargs or {})
        self.learner = learner
        self.learner_kwargs = dict(learner_kwargs or {})
        self.update_freq = update_freq
        self.seed = seed
        self.true_graph: CausalGraph | None = None
        self.on_update: list[Callable[[CausalGraph], None]] = []  # called with each new graph
        self.n_skipped = 0
        # Pending transitions, written in place into preallocated arrays (obs, actions, next obs and, under
        # propensity weighting, the action probabilities): no per-step allocation; they grow only when a
        # step brings more rows than they hold.
        self._buffer: tuple[np.ndarray, ...] | None = None
        self._with_probs = False  # the learner weights by propensity: record the policy's action probabilities
        self._n_buffered = 0
        self._prev_obs: np.ndarray | None = None
        self._prev_all_finite = True  # _prev_obs holds no NaN/inf
        self._vec_normalize: VecNormalize | None = None

    # ------------------------------------------------------------------ public
    @property
    def graph(self) -> CausalGraph:
        """The current learned graph."""
        if self.learner is None:
            raise RuntimeError("the callback has no learner yet: it is created when training starts")
        return self.learner.graph

    @property
    def n_pending(self) -> int:
        """Transitions recorded but not yet given to the learner (they go with the next update)."""
        return self._n_buffered

    def setup(self, env: VecEnv) -> OnlineCausalLearner:
        """Create the layout and learner for ``env`` (called when training starts; idempotent)."""
        if self.learner is None:
            if self.layout is None:
                self.layout = CausalVariables.from_env(env)
                check_learner_memory(self.layout)
            else:
                self.layout.check_env(env.observation_space, env.action_space)
            init = initial_graph_for_env(self.initial_graph, env, self.layout, seed=self.seed, **self.initial_kwargs)
            self.learner = OnlineCausalLearner(self.layout, init, **self.learner_kwargs)
        else:
            self.layout = self.learner.layout
            self.layout.check_env(env.observation_space, env.action_space)
        if self.true_graph is None:
            self.true_graph = _true_graph(env, self.learner.layout.names)
        return self.learner

    def flush(self) -> CausalGraph:
        """Feed buffered transitions to the learner, re-estimate the graph and log it."""
        assert self.learner is not None
        start = time.perf_counter()
        if self._n_buffered and self._buffer is not None:
            n = self._n_buffered
            self._n_buffered = 0
            self.learner.observe(*(array[:n] for array in self._buffer))
        graph = self.learner.update()
        seconds = time.perf_counter() - start
        self._log(graph, seconds)
        for listener in self.on_update:
            listener(graph)
        return graph

    # ------------------------------------------------------------------ SB3 hooks
    def _init_callback(self) -> None:
        learner = self.setup(self.training_env)
        self._vec_normalize = self.model.get_vec_normalize_env()
        self._with_probs = learner.propensity_weighting
        if self._with_probs:
            check_behaviour_supported(self.model)

    def _on_training_start(self) -> None:
        if self._vec_normalize is not None:
            self._prev_obs = np.array(self._vec_normalize.get_original_obs(), copy=True)
        else:
            self._prev_obs = np.array(self.model._last_obs, copy=True)
        self._prev_all_finite = bool(np.isfinite(self._prev_obs).all())

    def _on_step(self) -> bool:
        dones = np.asarray(self.locals["dones"], dtype=bool)
        raw_new = self._vec_normalize.get_original_obs() if self._vec_normalize is not None else self.locals["new_obs"]
        raw_new = np.asarray(raw_new)
        all_finite = bool(np.isfinite(raw_new).all())
        prev = self._prev_obs
        if prev is not None and prev.shape == raw_new.shape:
            actions = np.asarray(self.locals["actions"]).reshape(-1)
            probs = behaviour_probabilities(self.model, self.locals) if self._with_probs else None
            if self._prev_all_finite and all_finite and not dones.any():
                self._record(prev, actions, raw_new, None, probs)  # the common step: every env's transition as it is
            else:
                self._record(prev, actions, *self._checked_transitions(prev, raw_new, dones), probs)
            np.copyto(prev, raw_new)
        else:  # no previous observation of this shape: nothing to pair with
            self._prev_obs = raw_new.copy()
        self._prev_all_finite = all_finite
        if self._n_buffered >= self.update_freq:
            self.flush()
        return True

    def _checked_transitions(
        self, prev: np.ndarray, raw_new: np.ndarray, dones: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(next_obs, valid)`` of a step with an episode end or a non-finite value: the terminal observation
        is the next one at an episode end (none: the row is left out), and rows with NaN/inf are skipped."""
        next_obs, valid = raw_next_observations(raw_new, dones, self.locals["infos"], self._vec_normalize)
        finite = _finite_rows(prev) & _finite_rows(next_obs)
        if not finite.all():
            if not self.n_skipped:
                warnings.warn(
                    "CausalGraphCallback: skipping transitions with NaN/inf observations "
                    "(counted in causal/skipped_transitions)",
                    stacklevel=4,
                )
            self.n_skipped += int((~finite & valid).sum())
        return next_obs, valid & finite

    def _record(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        next_obs: np.ndarray,
        valid: np.ndarray | None,
        probs: np.ndarray | None = None,
    ) -> None:
        """Append the ``valid`` rows (None: all) of one step to the pending transitions (copied into the buffer);
        ``probs``: the acting policy's action probabilities of the step (propensity weighting only)."""
        n, k = self._n_buffered, obs.shape[0] if valid is None else int(np.count_nonzero(valid))
        if k == 0:
            return
        step = (obs, actions, next_obs) if probs is None else (obs, actions, next_obs, probs)
        buffer = self._buffer
        if (
            buffer is None
            or len(buffer) != len(step)
            or any(b.shape[1:] != a.shape[1:] for b, a in zip(buffer, step))
            or buffer[0].shape[0] < n + k
        ):
            capacity = max(self.update_freq + obs.shape[0], 2 * (n + k))
            grown = tuple(np.empty((capacity, *a.shape[1:]), dtype=a.dtype) for a in step)
            if buffer is not None and n:
                for new, old in zip(grown, buffer):
                    new[:n] = old[:n]
            buffer = self._buffer = grown
        if valid is None or k == valid.size:
            for b, a in zip(buffer, step):
                b[n : n + k] = a
        else:
            for b, a in zip(buffer, step):
                b[n : n + k] = a[valid]
        self._n_buffered = n + k

    # ------------------------------------------------------------------ logging
    def _log(self, graph: CausalGraph, seconds: float) -> None:
        assert self.learner is not None
        record = self.logger.record
        record("causal/edges", graph.n_edges)
        record("causal/updates", self.learner.n_updates)
        record("causal/transitions", self.learner.n_transitions)
        record("causal/update_seconds", seconds)
        if self.n_skipped:
            record("causal/skipped_transitions", self.n_skipped)
        line = f"causal graph update {self.learner.n_updates}: {graph.n_edges} edges"
        if self.true_graph is not None:
            m = graph.compare(self.true_graph)
            for key in ("f1", "precision", "recall", "shd"):
                record(f"causal/{key}", getattr(m, key))
            line += f", F1 {m.f1:.3f} (precision {m.precision:.3f}, recall {m.recall:.3f}, SHD {m.shd})"
        if self.verbose >= 1:
            print(f"{line} after {self.learner.n_transitions} transitions ({seconds:.2f}s)")


def raw_next_observations(
    new_obs: np.ndarray, dones: np.ndarray, infos: list[dict[str, Any]], vec_normalize: VecNormalize | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(next_obs, valid)``: the raw observation each env's action led to, for callbacks that record transitions.

    ``new_obs`` (raw: ``VecNormalize.get_original_obs()`` when normalising) is the next observation except at
    an episode end, where it is the next episode's start: there the ``terminal_observation`` of ``infos``
    (unnormalised) takes its place, and a row with none is not ``valid`` (never pair with the next start).
    ``new_obs`` itself is not modified.
    """
    valid = np.ones(dones.size, dtype=bool)
    if not dones.any():
        return new_obs, valid
    next_obs = new_obs.copy()
    for i in np.flatnonzero(dones):
        terminal = infos[i].get("terminal_observation")
        if terminal is None:
            valid[i] = False
            continue
        next_obs[i] = vec_normalize.unnormalize_obs(terminal) if vec_normalize is not None else terminal
    return next_obs, valid


def _finite_rows(obs: np.ndarray) -> np.ndarray:
    """``(n_envs,)`` bool: which observations hold only finite values."""
    return np.isfinite(obs.reshape(obs.shape[0], -1)).all(axis=1)


def _true_graph(env: VecEnv, names: tuple[str, ...]) -> CausalGraph | None:
    """The env's true graph over ``names`` when it exposes one as ``causal_graph``."""
    if not env.has_attr("causal_graph"):  # get_attr of a missing attribute kills a SubprocVecEnv worker
        return None
    graph = env.get_attr("causal_graph", indices=[0])[0]
    if isinstance(graph, CausalGraph) and tuple(graph.variables) == tuple(names):
        return graph
    return None
