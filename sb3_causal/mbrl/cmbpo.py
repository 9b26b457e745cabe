"""C-MBPO: causal model-based policy optimisation (SB3 SAC on real data and data of a structural causal model).

The loop (Caron et al., "Towards Causal Model-Based Policy Optimization", on top of MBPO, Janner et al.
2019, "When to trust your model"), run inside SAC's ``train()`` so SB3's collection loop, callbacks,
logger and progress bar are unchanged:

1. SAC collects real transitions (uniformly random actions for the first ``learning_starts`` steps).
2. Every ``structure_update_freq`` env steps the local causal graph of a transition is re-learned on the
   real buffer: the parents among ``(s, a)`` of each next-state entry and of the reward, by causal-learn's
   PC with Fisher-z-type tests (by default on a quadratic basis of the inputs, as the mechanisms are not
   linear) and tiers ``(s, a)`` before ``(s', r)`` (see ``sb3_causal.mbrl.structure``).
   ``model.causal_graph`` is that graph (a ``CausalGraph`` over ``s..., a..., s'..., r``).
3. Every ``model_train_freq`` env steps the world model is refitted: one probabilistic ensemble per target,
   fed only that target's parents (``sb3_causal.mbrl.dynamics``); then ``rollout_batch_size`` states are
   drawn from the real buffer and rolled out under the current policy in the model for ``k`` steps
   (``k`` grows from ``rollout_schedule``'s first to last length), into a model buffer.
4. Each env step SAC takes ``gradient_steps`` updates on batches that are ``real_ratio`` real and the rest
   model data.

``MBPO`` is the same trainer with the complete graph and one ensemble on all of ``(s, a)`` predicting every
target; SB3's ``SAC`` is the model-free baseline.

What the policy sees (``policy_inputs``), and what each choice does under a shift of a spurious variable:

- ``"reward_ancestors"`` (C-MBPO's default): observation entries that are not causal ancestors of the reward
  under the learned graph (``structure.reward_ancestor_states``) are zeroed before the actor and critics
  (``ObservationMaskExtractor``; the mask follows each new graph). On ``SpuriousCorrelation-v0`` that leaves
  ``X`` only: the policy cannot lean on ``Z``, so cutting (``near``) or flipping (``far``) the ``X -> Z``
  mechanism at test time does not change what it does. The risk is the other way round: a true ancestor
  that PC misses is invisible to the policy (when the reward has no state ancestor at all, nothing is
  masked and a warning is logged).
- ``"all"``: the policy sees every entry. The causal world model still keeps ``Z`` out of the reward and of
  ``X'``, but ``Z'`` truly follows ``X``, so imagined states keep ``Z`` a copy of ``X`` and nothing stops the
  policy from reading ``Z``: it is as exposed to the shift as MBPO's or SAC's, to the degree it uses ``Z``.

Model rollouts do not terminate unless ``termination_fn(obs, actions, next_obs) -> bool array`` is given
(MBPO's hand-written termination functions play that role for MuJoCo envs).

Save/load: the graph is stored as JSON (the ``causal_graph_json`` attribute, inside the zip's data), the
world model's weights, normalisers and elites as a torch state dict next to the policy's; the model buffer
is not saved (like SB3's replay buffer) and is refilled on the next ``train()``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.base_class import maybe_make_env
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, ReplayBufferSamples, Schedule
from stable_baselines3.common.vec_env import VecNormalize
from stable_baselines3.sac.policies import MlpPolicy, SACPolicy

from sb3_causal.graph import CausalGraph
from sb3_causal.mbrl.dynamics import FactorisedDynamics, FactorSpec
from sb3_causal.mbrl.structure import (
    REWARD_NAME,
    TESTS,
    complete_local_graph,
    learn_local_graph,
    local_variable_names,
    next_state_name,
    reward_ancestor_states,
)

__all__ = ["CMBPO", "MBPO", "ObservationMaskExtractor", "UnsupportedSpaceError"]

SelfCMBPO = TypeVar("SelfCMBPO", bound="CMBPO")
POLICY_INPUTS = ("reward_ancestors", "all")
# below this many real transitions neither the graph nor the world model is (re)learned
MIN_REAL_TRANSITIONS = 50


class UnsupportedSpaceError(ValueError):
    """The env's observation or action space is outside what C-MBPO supports."""


class ObservationMaskExtractor(BaseFeaturesExtractor):
    """Flat observation times a 0/1 mask (a buffer, saved with the policy), so the networks ignore the
    masked entries while the mask can change without rebuilding them."""

    def __init__(self, observation_space: spaces.Box) -> None:
        super().__init__(observation_space, int(np.prod(observation_space.shape)))
        self.register_buffer("mask", th.ones(self.features_dim))

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return th.flatten(observations, start_dim=1) * self.mask


class ModelBuffer:
    """Ring buffer of imagined transitions (torch tensors, raw observation units).

    :param capacity: number of transitions kept (the oldest are overwritten)
    :param obs_dim: observation size
    :param action_dim: action size
    :param device: torch device
    """

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, device: th.device | str = "cpu") -> None:
        self.capacity = int(capacity)
        self.obs = th.zeros(capacity, obs_dim, device=device)
        self.actions = th.zeros(capacity, action_dim, device=device)
        self.next_obs = th.zeros(capacity, obs_dim, device=device)
        self.rewards = th.zeros(capacity, 1, device=device)
        self.dones = th.zeros(capacity, 1, device=device)
        self.pos, self.size = 0, 0

    def add(
        self, obs: th.Tensor, actions: th.Tensor, next_obs: th.Tensor, rewards: th.Tensor, dones: th.Tensor
    ) -> None:
        n = obs.shape[0]
        if n > self.capacity:  # keep the last ones
            obs, actions, next_obs, rewards, dones = (
                t[-self.capacity :] for t in (obs, actions, next_obs, rewards, dones)
            )
            n = self.capacity
        idx = (self.pos + th.arange(n, device=obs.device)) % self.capacity
        self.obs[idx], self.actions[idx], self.next_obs[idx] = obs, actions, next_obs
        self.rewards[idx], self.dones[idx] = rewards.reshape(-1, 1), dones.reshape(-1, 1).float()
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        idx = th.randint(self.size, (batch_size,), device=self.obs.device)
        obs, next_obs, rewards = self.obs[idx], self.next_obs[idx], self.rewards[idx]
        if env is not None:
            obs, next_obs = (th.as_tensor(env.normalize_obs(t.cpu().numpy()), device=t.device) for t in (obs, next_obs))
            rewards = th.as_tensor(env.normalize_reward(rewards.cpu().numpy()), device=rewards.device)
        return ReplayBufferSamples(obs.float(), self.actions[idx], next_obs.float(), self.dones[idx], rewards.float())


class _MixedSampler:
    """What SAC's ``train()`` samples from while C-MBPO trains: ``real_ratio`` of each batch from the real
    replay buffer, the rest from the model buffer."""

    def __init__(self, real: ReplayBuffer, model: ModelBuffer, real_ratio: float) -> None:
        self.real, self.model, self.real_ratio = real, model, real_ratio

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        n_real = batch_size if self.model.size == 0 else round(batch_size * self.real_ratio)
        if n_real >= batch_size:
            return self.real.sample(batch_size, env=env)
        model = self.model.sample(batch_size - n_real, env=env)
        if n_real == 0:
            return model
        real = self.real.sample(n_real, env=env)
        return ReplayBufferSamples(*(th.cat([r, m.to(r.dtype)]) for r, m in zip(real[:5], model[:5])))


class CMBPO(SAC):
    """Causal model-based policy optimisation: SAC trained on real data and rollouts of a factorised SCM.

    All of SAC's parameters keep their meaning (``gradient_steps`` is G, the SAC updates per env step with
    ``train_freq=1``); the extra ones:

    :param structure: ``"pc"`` (learn the local graph with PC), ``"complete"`` (every input is a parent of
        every target), or a fixed ``CausalGraph`` over ``s..., a..., s'..., r`` (see ``variable_names``)
    :param structure_alpha: significance level of PC's Fisher-z tests
    :param structure_update_freq: env steps between two structure searches (the first is at ``learning_starts``)
    :param structure_max_samples: PC uses at most this many of the most recent real transitions
    :param structure_test: PC's independence test, ``"quadratic_fisherz"`` (partial correlations on a
        quadratic basis of the inputs) or ``"fisherz"`` (linear); see ``sb3_causal.mbrl.structure``
    :param policy_inputs: ``"reward_ancestors"`` (mask observation entries that are not causal ancestors of
        the reward) or ``"all"``; see the module docstring for what each does under a shift
    :param factorise: one ensemble per target on its parents (True) or one ensemble predicting all targets
        from the union of all parents (False, MBPO)
    :param state_names: names of the observation entries (default: the env's ``state_names`` attribute, or
        ``s0, s1, ...``)
    :param action_names: names of the action entries (default: the env's ``action_names``, or ``a0, ...``)
    :param ensemble_size: members per ensemble
    :param n_elites: elite members per ensemble (sampled in rollouts)
    :param model_hidden: hidden layer sizes of each member
    :param model_learning_rate: Adam learning rate of the world model
    :param model_batch_size: minibatch size of world-model training
    :param model_train_freq: env steps between two world-model fits (each followed by a batch of rollouts)
    :param model_max_epochs: at most this many epochs per fit (early stopping on held-out MSE before that)
    :param model_max_samples: fit on at most this many of the most recent real transitions
    :param rollout_batch_size: model rollouts started from real states at each fit
    :param rollout_schedule: ``(start_step, end_step, min_length, max_length)``: rollout length grows
        linearly from ``min_length`` at env step ``start_step`` to ``max_length`` at ``end_step``
    :param model_retain: the model buffer holds ``model_retain`` batches of maximal-length rollouts
    :param real_ratio: fraction of real transitions in each SAC batch
    :param termination_fn: ``f(obs, actions, next_obs) -> bool array`` ending model rollouts (numpy, raw
        units); None: model rollouts never terminate
    """

    policy_aliases: ClassVar[dict[str, type[SACPolicy]]] = {"MlpPolicy": MlpPolicy}
    _log_name: ClassVar[str] = "CMBPO"

    def __init__(
        self,
        policy: str | type[SACPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 1000,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 10,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        ent_coef: str | float = "auto",
        target_update_interval: int = 1,
        target_entropy: str | float = "auto",
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        use_sde_at_warmup: bool = False,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        structure: str | CausalGraph = "pc",
        structure_alpha: float = 0.05,
        structure_update_freq: int = 5000,
        structure_max_samples: int = 10_000,
        structure_test: str = "quadratic_fisherz",
        policy_inputs: str = "reward_ancestors",
        factorise: bool = True,
        state_names: Sequence[str] | None = None,
        action_names: Sequence[str] | None = None,
        ensemble_size: int = 7,
        n_elites: int = 5,
        model_hidden: Sequence[int] = (64, 64),
        model_learning_rate: float = 1e-3,
        model_batch_size: int = 256,
        model_train_freq: int = 250,
        model_max_epochs: int = 50,
        model_max_samples: int = 50_000,
        rollout_batch_size: int = 5000,
        rollout_schedule: tuple[int, int, int, int] = (0, 20_000, 1, 5),
        model_retain: int = 4,
        real_ratio: float = 0.05,
        termination_fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        if env is not None:
            env = maybe_make_env(env, verbose)
            _check_spaces(env.observation_space, env.action_space)
        if isinstance(structure, str) and structure not in ("pc", "complete"):
            raise ValueError(f"structure must be 'pc', 'complete' or a CausalGraph, got {structure!r}")
        if structure_test not in TESTS:
            raise ValueError(f"structure_test must be one of {TESTS}, got {structure_test!r}")
        if policy_inputs not in POLICY_INPUTS:
            raise ValueError(f"policy_inputs must be one of {POLICY_INPUTS}, got {policy_inputs!r}")
        if not 0.0 <= real_ratio <= 1.0:
            raise ValueError(f"real_ratio must be in [0, 1], got {real_ratio}")
        start_step, end_step, min_len, max_len = (int(v) for v in rollout_schedule)
        if not 1 <= min_len <= max_len or end_step < start_step:
            raise ValueError(
                f"rollout_schedule must be (start, end >= start, 1 <= min_len <= max_len), got {rollout_schedule}"
            )
        policy_kwargs = dict(policy_kwargs or {})
        if policy_inputs == "reward_ancestors":
            extractor = policy_kwargs.setdefault("features_extractor_class", ObservationMaskExtractor)
            if not (isinstance(extractor, type) and issubclass(extractor, ObservationMaskExtractor)):
                raise ValueError(
                    "policy_inputs='reward_ancestors' masks observations with ObservationMaskExtractor; "
                    f"it cannot be combined with features_extractor_class={extractor!r} (use policy_inputs='all')"
                )
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            action_noise=action_noise,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            ent_coef=ent_coef,
            target_update_interval=target_update_interval,
            target_entropy=target_entropy,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            use_sde_at_warmup=use_sde_at_warmup,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        self.structure_mode = "fixed" if isinstance(structure, CausalGraph) else structure
        self.structure_alpha = structure_alpha
        self.structure_update_freq = structure_update_freq
        self.structure_max_samples = structure_max_samples
        self.structure_test = structure_test
        self.policy_inputs = policy_inputs
        self.factorise = factorise
        self.ensemble_size, self.n_elites = ensemble_size, n_elites
        self.model_hidden = tuple(model_hidden)
        self.model_learning_rate = model_learning_rate
        self.model_batch_size = model_batch_size
        self.model_train_freq = model_train_freq
        self.model_max_epochs = model_max_epochs
        self.model_max_samples = model_max_samples
        self.rollout_batch_size = rollout_batch_size
        self.rollout_schedule = (start_step, end_step, min_len, max_len)
        self.model_retain = model_retain
        self.real_ratio = real_ratio
        self.termination_fn = termination_fn
        self.state_names: tuple[str, ...] = ()
        self.action_names: tuple[str, ...] = ()
        self.causal_graph_json = ""
        self.structure_history: list[dict[str, Any]] = []
        self._next_structure_update = 0
        self._next_model_fit = 0
        if env is not None:  # load() builds the object without an env, then restores these attributes
            self.state_names, self.action_names = self._resolve_names(state_names, action_names)
            if isinstance(structure, CausalGraph):
                graph = _validated_graph(structure, self.state_names, self.action_names)
            else:
                graph = complete_local_graph(self.state_names, self.action_names)
            self.causal_graph_json = graph.to_json()
        self.model_buffer: ModelBuffer | None = None
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------ SB3 hooks
    def _setup_model(self) -> None:
        if self.n_steps > 1 or self.optimize_memory_usage:
            raise ValueError(
                "CMBPO needs a plain replay buffer: n_steps > 1 and optimize_memory_usage are not supported"
            )
        super()._setup_model()
        # The architecture follows the graph (restored into __dict__ before this runs on load());
        # set_parameters() then loads the trained weights into it.
        self.world_model = FactorisedDynamics(
            len(self.state_names),
            len(self.action_names),
            self._factor_specs(self.causal_graph),
            n_members=self.ensemble_size,
            n_elites=self.n_elites,
            hidden=self.model_hidden,
            learning_rate=self.model_learning_rate,
        ).to(self.device)
        self.model_buffer = None
        self._apply_policy_mask(self.causal_graph)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "model_buffer"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return [*state_dicts, "world_model"], variables

    def learn(
        self: SelfCMBPO,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfCMBPO:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name or self._log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        """Update the graph and the world model when due, then run SAC's updates on mixed real/model batches."""
        self._update_world_model()
        real = self.replay_buffer
        assert real is not None and self.model_buffer is not None
        # SAC's update loop is reused as is; only the buffer it samples from is swapped for its duration.
        self.replay_buffer = _MixedSampler(real, self.model_buffer, self.real_ratio)  # type: ignore[assignment]
        try:
            super().train(gradient_steps, batch_size)
        finally:
            self.replay_buffer = real

    # ------------------------------------------------------------------ public
    @property
    def causal_graph(self) -> CausalGraph:
        """The current local graph over ``s..., a..., s'..., r`` (a fresh copy)."""
        return CausalGraph.from_json(self.causal_graph_json)

    @property
    def reward_parents(self) -> list[str]:
        return self.causal_graph.parents(REWARD_NAME)

    @property
    def variable_names(self) -> list[str]:
        """Variables of the local graph, in index order: states, actions, next states, reward."""
        return local_variable_names(self.state_names, self.action_names)

    @property
    def policy_mask(self) -> np.ndarray:
        """The 0/1 mask applied to observations before the policy's networks (all ones for ``"all"``)."""
        for module in self.policy.modules():
            if isinstance(module, ObservationMaskExtractor):
                return module.mask.detach().cpu().numpy().copy()
        return np.ones(len(self.state_names), dtype=np.float32)

    def rollout_length(self) -> int:
        """Model rollout length at the current env step (the schedule)."""
        start, end, lo, hi = self.rollout_schedule
        frac = 1.0 if end <= start else min(max((self.num_timesteps - start) / (end - start), 0.0), 1.0)
        return int(lo + frac * (hi - lo))

    # ------------------------------------------------------------------ internals
    def _resolve_names(
        self, state_names: Sequence[str] | None, action_names: Sequence[str] | None
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        n_s, n_a = int(self.observation_space.shape[0]), int(np.prod(self.action_space.shape))
        resolved = []
        for given, attr, n, prefix in (
            (state_names, "state_names", n_s, "s"),
            (action_names, "action_names", n_a, "a"),
        ):
            names = given
            if names is None and self.env is not None and self.env.has_attr(attr):  # never get_attr a missing one
                names = self.env.get_attr(attr, indices=[0])[0]
            names = tuple(str(v) for v in names) if names is not None else tuple(f"{prefix}{i}" for i in range(n))
            if len(names) != n:
                raise ValueError(f"{attr} has {len(names)} names for {n} entries: {names}")
            resolved.append(names)
        local_variable_names(*resolved)  # uniqueness
        return resolved[0], resolved[1]

    def _factor_specs(self, graph: CausalGraph) -> list[FactorSpec]:
        n_s = len(self.state_names)
        inputs = [*self.state_names, *self.action_names]
        targets = [*(next_state_name(s) for s in self.state_names), REWARD_NAME]
        parents = [tuple(inputs.index(p) for p in graph.parents(t)) for t in targets]
        if self.factorise:
            return [FactorSpec((j,), pa) for j, pa in enumerate(parents)]
        union = tuple(sorted({i for pa in parents for i in pa}))
        return [FactorSpec(tuple(range(n_s + 1)), union)]

    def _real_transitions(self, max_samples: int) -> tuple[np.ndarray, ...]:
        """The last ``max_samples`` real transitions, oldest first: obs, actions, next_obs, rewards (raw)."""
        rb = self.replay_buffer
        assert rb is not None
        n = rb.buffer_size if rb.full else rb.pos
        rows = (np.arange(n) + rb.pos) % rb.buffer_size if rb.full else np.arange(n)
        rows = rows[-max(1, -(-max_samples // rb.n_envs)) :]
        n_s, n_a = len(self.state_names), len(self.action_names)
        return (
            rb.observations[rows].reshape(-1, n_s),
            rb.actions[rows].reshape(-1, n_a),
            rb.next_observations[rows].reshape(-1, n_s),
            rb.rewards[rows].reshape(-1),
        )

    def _update_world_model(self) -> None:
        if self.model_buffer is None:
            n_s, n_a = len(self.state_names), len(self.action_names)
            capacity = self.rollout_batch_size * self.rollout_schedule[3] * self.model_retain
            self.model_buffer = ModelBuffer(capacity, n_s, n_a, self.device)
            self._next_model_fit = min(self._next_model_fit, self.num_timesteps)  # refill after load()
        if self.replay_buffer is None or self.replay_buffer.size() * self.replay_buffer.n_envs < MIN_REAL_TRANSITIONS:
            return  # e.g. right after load() without a replay buffer: SAC trains on what there is
        if self.structure_mode == "pc" and self.num_timesteps >= self._next_structure_update:
            self._learn_structure()
            self._next_structure_update = self.num_timesteps + self.structure_update_freq
        if self.num_timesteps >= self._next_model_fit:
            self._fit_model()
            self._model_rollouts()
            self._next_model_fit = self.num_timesteps + self.model_train_freq

    def _learn_structure(self) -> None:
        obs, actions, next_obs, rewards = self._real_transitions(self.structure_max_samples)
        result = learn_local_graph(
            obs,
            actions,
            next_obs,
            rewards,
            self.state_names,
            self.action_names,
            alpha=self.structure_alpha,
            max_samples=self.structure_max_samples,
            test=self.structure_test,
        )
        if result.fallback is not None:
            warnings.warn(f"CMBPO structure search: {result.fallback}", stacklevel=2)
            self.logger.record("structure/fallback", result.fallback, exclude="tensorboard")
        if result.constant:
            self.logger.record("structure/constant", ", ".join(result.constant), exclude="tensorboard")
        graph = result.graph
        self.causal_graph_json = graph.to_json()
        rebuilt = self.world_model.set_factors(self._factor_specs(graph))
        self.world_model.to(self.device)
        if any(rebuilt):
            self._next_model_fit = self.num_timesteps  # a new factor is untrained: fit it now
        seen = self._apply_policy_mask(graph)
        parents = graph.parents(REWARD_NAME)
        self.structure_history.append(
            {"step": int(self.num_timesteps), "edges": graph.edges, "fallback": result.fallback}
        )
        self.logger.record("structure/n_edges", graph.n_edges)
        self.logger.record("structure/reward_parents", ",".join(parents) or "-", exclude="tensorboard")
        self.logger.record("structure/seconds", result.seconds)
        self.logger.record("structure/policy_inputs", ",".join(seen), exclude="tensorboard")
        if self.verbose >= 1:
            print(f"{self._log_name} step {self.num_timesteps}: reward parents {parents}, {graph.n_edges} edges")

    def _apply_policy_mask(self, graph: CausalGraph) -> list[str]:
        """Mask the observation entries that are not reward ancestors; returns the entries the policy sees."""
        if self.policy_inputs != "reward_ancestors":
            return list(self.state_names)
        keep = set(reward_ancestor_states(graph, self.state_names))
        if not keep:
            warnings.warn(
                "CMBPO: the reward has no state ancestor in the learned graph; the policy sees every entry",
                stacklevel=2,
            )
            keep = set(self.state_names)
        mask = th.tensor([1.0 if s in keep else 0.0 for s in self.state_names], device=self.device)
        for module in self.policy.modules():
            if isinstance(module, ObservationMaskExtractor):
                module.mask.copy_(mask)
        return [s for s in self.state_names if s in keep]

    def _fit_model(self) -> None:
        start = time.perf_counter()
        obs, actions, next_obs, rewards = (
            th.as_tensor(a, dtype=th.float32, device=self.device)
            for a in self._real_transitions(self.model_max_samples)
        )
        metrics = self.world_model.fit(
            obs, actions, next_obs, rewards, batch_size=self.model_batch_size, max_epochs=self.model_max_epochs
        )
        targets = [*(next_state_name(s) for s in self.state_names), REWARD_NAME]
        for spec, m in zip(self.world_model.specs, metrics):
            label = "+".join(targets[t] for t in spec.targets) if len(spec.targets) <= 3 else "all"
            self.logger.record(f"model/holdout_mse/{label}", m["holdout_mse"])
        self.logger.record("model/epochs", float(np.mean([m["epochs"] for m in metrics])))
        self.logger.record("model/fit_seconds", time.perf_counter() - start)

    @th.no_grad()
    def _model_rollouts(self) -> None:
        assert self.replay_buffer is not None and self.model_buffer is not None
        length = self.rollout_length()
        obs = self.replay_buffer.sample(self.rollout_batch_size, env=None).observations.float()
        low = th.as_tensor(self.observation_space.low, dtype=th.float32, device=self.device)
        high = th.as_tensor(self.observation_space.high, dtype=th.float32, device=self.device)
        self.policy.set_training_mode(False)
        n_added = 0
        for _ in range(length):
            policy_obs = obs
            if self._vec_normalize_env is not None:
                policy_obs = th.as_tensor(self._vec_normalize_env.normalize_obs(obs.cpu().numpy()), device=self.device)
            actions, _ = self.actor.action_log_prob(policy_obs.float())
            next_obs, rewards = self.world_model.step(obs, actions)
            next_obs = th.maximum(th.minimum(next_obs, high), low)
            if self.termination_fn is not None:
                done_np = self.termination_fn(obs.cpu().numpy(), actions.cpu().numpy(), next_obs.cpu().numpy())
                dones = th.as_tensor(np.asarray(done_np, dtype=bool).reshape(-1), device=self.device)
            else:
                dones = th.zeros(obs.shape[0], dtype=th.bool, device=self.device)
            self.model_buffer.add(obs, actions, next_obs, rewards, dones)
            n_added += obs.shape[0]
            obs = next_obs[~dones]
            if obs.shape[0] == 0:
                break
        self.logger.record("model/rollout_length", length)
        self.logger.record("model/rollout_transitions", n_added)
        self.logger.record("model/buffer_size", self.model_buffer.size)


class MBPO(CMBPO):
    """MBPO: ``CMBPO`` with the complete graph, one ensemble on all of ``(s, a)`` for every target, and a
    policy that sees every observation entry. Takes ``CMBPO``'s parameters except ``structure``,
    ``policy_inputs`` and ``factorise``.
    """

    _log_name: ClassVar[str] = "MBPO"

    def __init__(self, policy: str | type[SACPolicy], env: GymEnv | str, **kwargs: Any) -> None:
        for fixed in ("structure", "policy_inputs", "factorise"):
            if fixed in kwargs:
                raise TypeError(f"MBPO fixes {fixed!r}; use CMBPO to choose it")
        super().__init__(policy, env, structure="complete", policy_inputs="all", factorise=False, **kwargs)


def _check_spaces(observation_space: gym.Space, action_space: gym.Space) -> None:
    if not isinstance(action_space, spaces.Box):
        raise UnsupportedSpaceError(
            f"C-MBPO needs a continuous Box action space, got {action_space}. Discrete actions are not supported "
            "(the world model and SAC are for continuous control); for discrete actions see "
            "sb3_causal's CausalDQN or CausalMaskablePPO."
        )
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
        raise UnsupportedSpaceError(
            f"C-MBPO needs a flat Box observation (one entry per state variable), got {observation_space}. "
            "Image, dict and multi-dimensional observations are not supported: flatten the state or wrap the env."
        )


def _validated_graph(graph: CausalGraph, state_names: Sequence[str], action_names: Sequence[str]) -> CausalGraph:
    expected = local_variable_names(state_names, action_names)
    if list(graph.variables) != expected:
        raise ValueError(f"a fixed structure must be a CausalGraph over {expected}, got {list(graph.variables)}")
    inputs = set(expected[: len(state_names) + len(action_names)])
    bad = [e for e in graph.edges if e[0] not in inputs or e[1] in inputs]
    if bad:
        raise ValueError(f"a local graph only has (s, a) -> (s', r) edges; these are not: {bad}")
    return graph
