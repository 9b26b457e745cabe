"""SB3 callbacks of sb3-causal.

``CausalGraphCallback`` adds online causal structure learning to any SB3 algorithm (PPO, A2C,
DQN, MaskablePPO, ...): it records the exact transitions the agent makes, feeds them to an
:class:`~sb3_causal.discovery.online.OnlineCausalLearner` on a schedule, and logs the graph. With a
``chooser`` it also sends an off-policy agent's random exploratory actions to the interventions the
chooser picks (:class:`ChooserActionSpace`).
"""

from __future__ import annotations

import copy
import inspect
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces
from sb3_contrib.common.maskable.utils import get_action_masks
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from sb3_causal.common.behaviour import behaviour_probabilities, check_behaviour_supported
from sb3_causal.common.maskable.utils import sample_valid_actions
from sb3_causal.discovery.choosers import InterventionChooser, chosen_actions
from sb3_causal.discovery.initial import INITIAL_METHODS, initial_graph_for_env
from sb3_causal.discovery.online import OnlineCausalLearner
from sb3_causal.graph import CausalGraph
from sb3_causal.variables import CausalVariables

__all__ = [
    "DEFAULT_UPDATE_FREQ",
    "CausalGraphCallback",
    "ChooserActionSpace",
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


class ChooserActionSpace(spaces.Discrete):
    """A ``Discrete`` action space whose random draws go through an intervention chooser.

    Installed on an off-policy model's ``action_space`` by ``CausalGraphCallback(chooser=...)`` while it
    trains (and restored at training end). SB3 draws its random exploratory actions from the model's action
    space: ``DQN.predict``'s epsilon-greedy branch and the ``learning_starts`` warm-up of
    ``OffPolicyAlgorithm._sample_action`` call :meth:`sample`, :class:`~sb3_causal.algos.MaskableDQN` calls
    :meth:`sample_valid_actions`. Here a draw is uniform among the valid actions whose (unit, variable)
    target the chooser picks (:func:`~sb3_causal.discovery.choosers.chosen_actions`); the generator is the
    original space's (seeded by SB3), so runs reproduce and the original continues the same stream.

    The rows :meth:`sample` draws for are the envs of the current step, in order (SB3 draws one action per
    env, env 0 first): :meth:`set_valid` gives their valid actions (the env's ``action_masks()``; ``None``:
    every action) and restarts at env 0. Pickling (a checkpoint saved mid-training, ``copy.deepcopy``)
    gives the original plain ``Discrete``, so a saved model never holds the chooser.

    :param space: the model's ``Discrete`` action space
    :param chooser: picks the (unit, variable) pairs the draws may target
    :param layout: maps actions onto pairs (``action_target``)
    """

    def __init__(self, space: spaces.Discrete, chooser: InterventionChooser, layout: CausalVariables) -> None:
        super().__init__(space.n, start=space.start, dtype=space.dtype)
        if int(space.start) != 0:
            raise ValueError(f"the chooser needs a Discrete action space starting at 0, got start={space.start}")
        self.original = space
        self._np_random = space.np_random  # the same generator: its stream continues after the restore
        self.chooser = chooser
        self.layout = layout
        self._valid: np.ndarray | None = None  # (n_envs, n) valid actions of the current step; None: all
        self._allowed: np.ndarray | None = None  # chosen actions of those rows (computed at the first draw)
        self._row = 0

    def set_valid(self, valid: np.ndarray | None) -> None:
        """The valid actions ``(n_envs, n)`` of the current step's envs (``None``: every action); the next
        :meth:`sample` draws for env 0."""
        self._valid = None if valid is None else np.asarray(valid, dtype=bool).reshape(-1, int(self.n))
        self._allowed = None
        self._row = 0

    def refresh(self) -> None:
        """The chooser changed (an update): choose again at the next draw."""
        self._allowed = None

    def allowed(self, valid: np.ndarray) -> np.ndarray:
        """``(batch, n)`` bool: the actions a draw may take given the valid ones (see ``chosen_actions``)."""
        return chosen_actions(self.chooser, self.layout, valid, self.np_random)

    def step_pool(self) -> np.ndarray:
        """``(rows, n)`` bool: the actions :meth:`sample` draws among this step (one row per env, or one row
        for every env when the env has no masks); chosen once per step and kept, so the probabilities a
        propensity-weighting learner records are those of the draws."""
        if self._allowed is None:
            valid = np.ones((1, int(self.n)), dtype=bool) if self._valid is None else self._valid
            self._allowed = self.allowed(valid)
        return self._allowed

    def sample(self, mask: np.ndarray | None = None, probability: np.ndarray | None = None) -> np.int64:
        """An action among the next env's chosen ones (with a ``mask`` or ``probability``: ``Discrete``'s draw)."""
        if mask is not None or probability is not None:
            return super().sample(mask=mask, probability=probability)
        pool = self.step_pool()
        row = pool[self._row % pool.shape[0]]
        self._row += 1
        return super().sample(mask=row.astype(np.int8))

    def sample_valid_actions(self, masks: np.ndarray) -> np.ndarray:
        """``(batch,)`` actions, one per row of ``masks`` (the acting masks), among the chosen valid ones."""
        return sample_valid_actions(self.allowed(masks), self.np_random)

    def __reduce_ex__(self, protocol: Any) -> Any:
        # unpickled (or deep-copied) as a copy of the plain space: no reference to this class in the stream
        return copy.copy, (self.original,)

    def __repr__(self) -> str:
        return f"ChooserActionSpace({self.n}, chooser={type(self.chooser).__name__})"


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
    :param chooser: balance the agent's random exploration with an intervention chooser, e.g.
        :class:`~sb3_causal.discovery.choosers.LeastEvidenceChooser` (the variables with the least evidence
        first). Off-policy algorithms with a ``Discrete`` action space only (DQN, QR-DQN, MaskableDQN, ...):
        while they train, their random exploratory actions (the epsilon-greedy draws and the
        ``learning_starts`` warm-up) are drawn uniformly among the actions whose (unit, variable) target the
        chooser picks, through a :class:`ChooserActionSpace` on ``model.action_space`` (the plain space is put
        back at training end; a model saved meanwhile holds the plain space). Actions without a target (a
        no-op: the control rows) stay in the draw. When the env has ``action_masks()`` the
        draws are among its valid actions (without a chooser plain DQN draws among all actions); the greedy
        actions are untouched. Q-learning stays valid: it is off-policy, its one-step targets do not depend on
        how the behaviour actions were drawn. ``chooser.update(learner)`` is called after each graph update. The
        draws use the model's action-space generator (seeded by the model's ``seed``). On-policy algorithms
        (PPO, A2C) are refused: their exploration is their policy's own distribution, and drawing the actions
        elsewhere would bias the policy gradient (``CausalMaskablePPO(chooser=...)`` changes the mask instead).
        ``None`` (default): the algorithm's exploration, unchanged
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
        chooser: InterventionChooser | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        check_update_freq(update_freq)
        if chooser is not None and not isinstance(chooser, InterventionChooser):
            raise ValueError(
                "chooser must implement the InterventionChooser interface: choose(candidates, rng) and "
                f"update(learner); got {type(chooser).__name__}"
            )
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
        self.chooser = chooser
        self._space: ChooserActionSpace | None = None  # installed on the model while it trains
        self._env_has_masks = False
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
        if self.chooser is not None:
            self.chooser.update(self.learner)
            if self._space is not None:
                self._space.refresh()
        seconds = time.perf_counter() - start
        self._log(graph, seconds)
        for listener in self.on_update:
            listener(graph)
        return graph

    # ------------------------------------------------------------------ SB3 hooks
    def _init_callback(self) -> None:
        if self.chooser is not None:
            self._check_chooser_model()
        learner = self.setup(self.training_env)
        self._vec_normalize = self.model.get_vec_normalize_env()
        self._with_probs = learner.propensity_weighting
        if self._with_probs:
            check_behaviour_supported(self.model)

    def _check_chooser_model(self) -> None:
        """A chooser needs an off-policy algorithm with a ``Discrete`` action space (see ``chooser``)."""
        name = type(self.model).__name__
        if not isinstance(self.model, OffPolicyAlgorithm):
            raise ValueError(
                f"CausalGraphCallback(chooser=...) needs an off-policy algorithm (DQN, QR-DQN, MaskableDQN); "
                f"{name} is on-policy: its exploration is its policy's own distribution, and drawing its actions "
                "elsewhere would bias the policy gradient (CausalMaskablePPO(chooser=...) balances through its mask)"
            )
        space = self.model.action_space
        if not isinstance(space, spaces.Discrete) or int(space.start) != 0:
            raise ValueError(
                f"CausalGraphCallback(chooser=...) needs a Discrete action space starting at 0 (action k is the "
                f"layout's action k); {name} has {space}"
            )

    def _on_training_start(self) -> None:
        if self._vec_normalize is not None:
            self._prev_obs = np.array(self._vec_normalize.get_original_obs(), copy=True)
        else:
            self._prev_obs = np.array(self.model._last_obs, copy=True)
        self._prev_all_finite = bool(np.isfinite(self._prev_obs).all())
        if self.chooser is not None:
            self._install_space()

    def _on_training_end(self) -> None:
        self._restore_space()

    def _install_space(self) -> None:
        """Put a :class:`ChooserActionSpace` on the model (over the plain space; one left by an interrupted run
        is replaced)."""
        assert self.chooser is not None and self.learner is not None
        space = self.model.action_space
        if isinstance(space, ChooserActionSpace):
            space = space.original
        self._space = ChooserActionSpace(space, self.chooser, self.learner.layout)
        self.model.action_space = self._space
        self._env_has_masks = self.training_env.has_attr("action_masks")
        self._set_valid_actions()

    def _restore_space(self) -> None:
        if self._space is not None:
            if self.model.action_space is self._space:
                self.model.action_space = self._space.original
            self._space = None
        self._env_has_masks = False

    def _set_valid_actions(self) -> None:
        """The valid actions of the envs' current states for the next exploratory draws."""
        if self._space is not None:
            self._space.set_valid(get_action_masks(self.training_env) if self._env_has_masks else None)

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
        if self._env_has_masks:
            self._set_valid_actions()
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
        # (the probabilities' width is the action count: fixed, like the actions')
        if buffer is None or buffer[0].shape[1:] != obs.shape[1:] or buffer[0].shape[0] < n + k:
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
