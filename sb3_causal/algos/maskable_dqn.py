"""MaskableDQN: SB3's DQN with invalid-action masking, double-Q and dueling options.

A masked DQN masks three places: the random (warm-up and epsilon) actions, the greedy argmax, and the
max (or the double-Q argmax) over next-state actions in the TD target.

Where masks come from: one overridable hook, :meth:`MaskableDQN._get_action_masks`, which maps a batch
of raw observations and the env's own validity masks to the masks the agent uses. It is called with
``explore=True`` once per env step for the new current observations (the masks the next action is
chosen with), and with ``explore=False`` at each gradient step for the sampled next observations (the
masks of the TD target). The replay buffer stores only the env's masks of each next observation
(:mod:`sb3_causal.common.maskable.buffers`), so the target maxes over the actions the agent would
choose among *now*. With no masks anywhere it behaves exactly like DQN.

Acting reads like CleanRL's ``dqn.py``: one masked epsilon-greedy step,
:meth:`MaskableDQN._masked_epsilon_greedy`, which both ``_sample_action`` (training) and ``predict`` call.

Terminal observations: after a VecEnv auto-reset the env's ``action_masks()`` describes the new
episode's first state. A *terminated* transition is not bootstrapped, so its stored next mask is
all-ones (valid, never used). A *truncated* transition bootstraps from its terminal observation, so
its env mask must be read before the reset: :class:`~sb3_causal.common.wrappers.RecordTerminalActionMask`
puts it in ``info["terminal_action_mask"]`` (MaskableDQN adds this wrapper itself when it builds the
VecEnv from a gym env or an id; pass ``wrapper_class=RecordTerminalActionMask`` to ``make_vec_env`` for
your own VecEnvs). When none was recorded, all actions count as valid for that bootstrap (an optimistic
target) and a warning says so once.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported
from stable_baselines3 import DQN
from stable_baselines3.common.base_class import maybe_make_env
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.vec_env import VecEnv
from torch.nn import functional as F

from sb3_causal.algos.dqn_policies import (
    DuelingDQNPolicy,
    MaskableCnnPolicy,
    MaskableDQNPolicy,
    MaskableMultiInputPolicy,
    MaskableQNetwork,
)
from sb3_causal.common.maskable.buffers import (
    MaskableDictReplayBuffer,
    MaskableDictReplayBufferSamples,
    MaskableReplayBuffer,
    MaskableReplayBufferSamples,
)
from sb3_causal.common.maskable.utils import check_action_masks, mask_q_values, sample_valid_actions
from sb3_causal.common.wrappers import TERMINAL_ACTION_MASK_KEY, RecordTerminalActionMask

__all__ = [
    "TERMINAL_ACTION_MASK_KEY",
    "MaskableDQN",
    "MaskableDictReplayBuffer",
    "MaskableReplayBuffer",
    "MaskableReplayBufferSamples",
    "RecordTerminalActionMask",
]

SelfMaskableDQN = TypeVar("SelfMaskableDQN", bound="MaskableDQN")
_MASKABLE_BUFFERS = (MaskableReplayBuffer, MaskableDictReplayBuffer)


class MaskableDQN(DQN):
    """
    DQN with invalid-action masking (exploration, greedy action, TD target), optional double-Q and dueling.

    Same parameters as :class:`stable_baselines3.DQN`, plus ``double_q``. Masks come from the env's
    ``action_masks()`` (as in sb3-contrib's MaskablePPO) through :meth:`_get_action_masks`; an env
    without one trains exactly like DQN. Policies: ``"MlpPolicy"``, ``"CnnPolicy"``, ``"MultiInputPolicy"``
    (as DQN) and ``"DuelingMlpPolicy"`` (``double_q=True`` with ``"DuelingMlpPolicy"`` is D3QN).

    :param policy: The policy model to use (``"MlpPolicy"``, ``"CnnPolicy"``, ``"MultiInputPolicy"``,
        ``"DuelingMlpPolicy"`` or a class)
    :param env: The environment to learn from (if registered in Gym, can be str); its action space must be Discrete
    :param learning_rate: The learning rate, it can be a function of the current progress remaining (from 1 to 0)
    :param buffer_size: size of the replay buffer
    :param learning_starts: how many steps of the model to collect transitions for before learning starts
    :param batch_size: Minibatch size for each gradient update
    :param tau: the soft update coefficient ("Polyak update", between 0 and 1) default 1 for hard update
    :param gamma: the discount factor
    :param train_freq: Update the model every ``train_freq`` steps, or a tuple like ``(5, "step")``/``(2, "episode")``
    :param gradient_steps: How many gradient steps to do after each rollout (-1: as many as env steps)
    :param replay_buffer_class: a :class:`MaskableReplayBuffer` or :class:`MaskableDictReplayBuffer` subclass
        (default: the one that fits the observation space)
    :param replay_buffer_kwargs: Keyword arguments to pass to the replay buffer on creation.
    :param optimize_memory_usage: must be False (not supported with masks)
    :param n_steps: must be 1 (n-step returns are not supported yet)
    :param target_update_interval: update the target network every ``target_update_interval`` environment steps.
    :param exploration_fraction: fraction of entire training period over which the exploration rate is reduced
    :param exploration_initial_eps: initial value of random action probability
    :param exploration_final_eps: final value of random action probability
    :param max_grad_norm: The maximum value for the gradient clipping
    :param double_q: double DQN target: the online net picks the best *valid* next action, the target net values it
    :param stats_window_size: Window size for the rollout logging
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: additional arguments to be passed to the policy on creation
    :param verbose: Verbosity level: 0 for no output, 1 for info messages, 2 for debug messages
    :param seed: Seed for the pseudo random generators
    :param device: Device (cpu, cuda, ...) on which the code should be run.
    :param _init_setup_model: Whether or not to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MaskableDQNPolicy,
        "CnnPolicy": MaskableCnnPolicy,
        "MultiInputPolicy": MaskableMultiInputPolicy,
        "DuelingMlpPolicy": DuelingDQNPolicy,
    }
    policy: MaskableDQNPolicy
    q_net: MaskableQNetwork
    q_net_target: MaskableQNetwork
    replay_buffer: MaskableReplayBuffer | MaskableDictReplayBuffer

    def __init__(
        self,
        policy: str | type[MaskableDQNPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 32,
        tau: float = 1.0,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 4,
        gradient_steps: int = 1,
        replay_buffer_class: type[MaskableReplayBuffer | MaskableDictReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        target_update_interval: int = 10000,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        max_grad_norm: float = 10,
        double_q: bool = False,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        name = type(self).__name__
        if optimize_memory_usage:
            raise ValueError(f"{name} does not support optimize_memory_usage=True; use the default False")
        if n_steps != 1:
            raise ValueError(f"{name} does not support n-step returns yet: got n_steps={n_steps}, use 1")
        if replay_buffer_class is not None and not (
            isinstance(replay_buffer_class, type) and issubclass(replay_buffer_class, _MASKABLE_BUFFERS)
        ):
            raise TypeError(
                f"{name} needs a MaskableReplayBuffer or MaskableDictReplayBuffer subclass (it stores next-state "
                f"action masks), got {replay_buffer_class}"
            )
        if env is not None:  # SB3's constructor checks the action space (Discrete, as DQN)
            env = maybe_make_env(env, verbose)
            if replay_buffer_class is None:
                replay_buffer_class = _buffer_class_for(env.observation_space)
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
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=False,
            n_steps=1,
            target_update_interval=target_update_interval,
            exploration_fraction=exploration_fraction,
            exploration_initial_eps=exploration_initial_eps,
            exploration_final_eps=exploration_final_eps,
            max_grad_norm=max_grad_norm,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        self.double_q = double_q
        # Masks of the current observation self._last_obs (which they belong to is kept by identity): computed
        # once per step; the env's are stored as the previous transition's next-state masks, the others act.
        self._env_masks: np.ndarray | None = None
        self._action_masks: np.ndarray | None = None
        self._masks_obs: Any = None
        # Whether self.env has action_masks(), cached per env object.
        self._masks_env: VecEnv | None = None
        self._env_has_masks = False
        self._warned_unrecorded_terminal_mask = False
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        if self.replay_buffer_class is None:
            self.replay_buffer_class = _buffer_class_for(self.observation_space)
        super()._setup_model()

    @staticmethod
    def _wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        """DQN's wrapping, plus :class:`RecordTerminalActionMask` around a (non-vector) env with action masks."""
        if (
            isinstance(env, gym.Env) and is_masking_supported(env) and not is_wrapped(env, RecordTerminalActionMask)  # type: ignore[arg-type]
        ):
            env = RecordTerminalActionMask(env)
        return DQN._wrap_env(env, verbose, monitor_wrapper)

    # ------------------------------------------------------------------ masks
    def _get_action_masks(
        self, observations: np.ndarray | dict[str, np.ndarray], env_action_masks: np.ndarray | None, explore: bool
    ) -> np.ndarray | None:
        """
        The action masks the agent acts and bootstraps with: the one hook every mask flows through.

        Called with ``explore=True`` once per env step for the current observations of all envs (the masks
        the next actions are chosen with), and with ``explore=False`` for each sampled batch of next
        observations (the masks of the TD target). The default returns the env's masks; a subclass
        overrides it to combine them with its own (e.g. AND a causal mask).

        :param observations: raw (not normalised) observations, ``(batch, *obs_shape)``; a truncated
            episode's terminal observation is, under ``VecNormalize``, un-normalised by SB3 when it is
            stored (float round-off; wrong where VecNormalize clipped it, see ``clip_obs``)
        :param env_action_masks: the env's ``action_masks()`` for them, ``(batch, n_actions)`` bool; ``None``
            if the env has no masks
        :param explore: True while collecting experience (a subclass may add exploration), False for the target
        :return: ``(batch, n_actions)`` masks (``True`` = valid, no all-``False`` row), or ``None``: all valid
        """
        return env_action_masks

    def _predict_masks(self, observation: Any, action_masks: np.ndarray | None) -> np.ndarray | None:
        """The masks ``predict`` acts with, ``(batch, n_actions)`` bool: the caller's ``action_masks`` (None: none)."""
        if action_masks is None:
            return None
        return check_action_masks(action_masks, _n_batch(self.policy, observation), int(self.action_space.n))  # type: ignore[attr-defined]

    def _env_action_masks(self) -> np.ndarray | None:
        """The training env's ``action_masks()`` for its current state, or None if it has none."""
        if self._masks_env is not self.env:
            self._masks_env = self.env
            self._env_has_masks = self.env is not None and is_masking_supported(self.env)
        if not self._env_has_masks:
            return None
        return np.asarray(get_action_masks(self.env), dtype=bool)

    def _current_masks(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The env's masks and the acting masks (hook, ``explore=True``) of ``self._last_obs``, computed once."""
        if self._masks_obs is not self._last_obs:
            env_masks = self._env_action_masks()
            raw_obs = self._last_original_obs if self._vec_normalize_env is not None else self._last_obs
            masks = self._get_action_masks(raw_obs, env_masks, explore=True)  # type: ignore[arg-type]
            if masks is not None:
                masks = check_action_masks(masks, self.n_envs, int(self.action_space.n))  # type: ignore[attr-defined]
            self._env_masks, self._action_masks, self._masks_obs = env_masks, masks, self._last_obs
        return self._env_masks, self._action_masks

    def _next_action_masks(
        self, replay_data: MaskableReplayBufferSamples | MaskableDictReplayBufferSamples
    ) -> th.Tensor | None:
        """Masks of a sampled batch's next observations for the TD target.

        The hook with ``explore=False`` (the masks greedy acting would use now) given the stored env masks.
        """
        env_masks = replay_data.next_action_masks
        env_masks_np = None if env_masks is None else env_masks.cpu().numpy()
        masks = self._get_action_masks(replay_data.raw_next_observations, env_masks_np, explore=False)  # type: ignore[arg-type]
        if masks is None or masks is env_masks_np:
            return env_masks
        return th.as_tensor(np.asarray(masks, dtype=bool), device=self.device)

    # ------------------------------------------------------------------ acting
    def _masked_epsilon_greedy(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        masks: np.ndarray,
        deterministic: bool,
        warm_up: bool = False,
    ) -> np.ndarray:
        """
        Epsilon-greedy among the valid actions: CleanRL's ``dqn.py`` step, with masks.

        With probability ``exploration_rate`` (always during the warm-up) a uniform valid action per row,
        else the greedy valid action. One epsilon draw for the whole batch from the global RNG (seeded by
        SB3), as ``DQN.predict`` does; random actions come from the action space's RNG.

        :param observation: the observations (single or vectorized), as the policy takes them
        :param masks: ``(batch, n_actions)`` bool, at least one valid action per row
        :param deterministic: never explore (the greedy action)
        :param warm_up: a random valid action (before ``learning_starts``)
        :return: ``(batch,)`` actions
        """
        if warm_up or (not deterministic and np.random.rand() < self.exploration_rate):  # noqa: NPY002
            # a ChooserActionSpace (CausalGraphCallback(chooser=...)) draws among the valid actions it chooses
            draw = getattr(self.action_space, "sample_valid_actions", None)
            return draw(masks) if draw is not None else sample_valid_actions(masks, self.action_space.np_random)
        actions, _ = self.policy.predict(observation, deterministic=deterministic, action_masks=masks)
        return np.asarray(actions).reshape(-1)

    def _sample_action(
        self, learning_starts: int, action_noise: Any = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        _, masks = self._current_masks()
        if masks is None:
            return super()._sample_action(learning_starts, action_noise, n_envs)
        warm_up = self.num_timesteps < learning_starts
        action = self._masked_epsilon_greedy(self._last_obs, masks, deterministic=False, warm_up=warm_up)  # type: ignore[arg-type]
        return action, action

    def predict(  # type: ignore[override]
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """
        Epsilon-greedy action (greedy if ``deterministic``) among the valid actions.

        :param observation: the input observation (single or vectorized)
        :param state: unused (recurrent policies only)
        :param episode_start: unused (recurrent policies only)
        :param deterministic: Whether or not to return deterministic (greedy) actions
        :param action_masks: ``(n_batch, n_actions)`` bool, ``True`` = valid (or ``(n_actions,)`` for a single
            observation); ``None``: every action is valid, exactly DQN's ``predict``
        :return: the model's action and the (unchanged) state
        """
        masks = self._predict_masks(observation, action_masks)
        if masks is None:
            return super().predict(observation, state, episode_start, deterministic)
        actions = self._masked_epsilon_greedy(observation, masks, deterministic)
        return (actions if self.policy.is_vectorized_observation(observation) else actions.reshape(())), state

    def _store_transition(
        self,
        replay_buffer: ReplayBuffer,
        buffer_action: np.ndarray,
        new_obs: np.ndarray | dict[str, np.ndarray],
        reward: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        # DQN's storage (terminal observations, VecNormalize) first; it makes new_obs self._last_obs.
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)
        env_masks, _ = self._current_masks()  # masks of new_obs: the env's are stored, the others act next
        next_env_masks = env_masks
        for i in np.flatnonzero(dones) if env_masks is not None else ():
            # After the auto-reset env_masks[i] describes the new episode. Terminated: not bootstrapped, any
            # valid mask will do (all-ones). Truncated: bootstrapped from the terminal observation.
            row = None
            if infos[i].get("TimeLimit.truncated", False):
                row = infos[i].get(TERMINAL_ACTION_MASK_KEY)
                if row is None:
                    self._warn_unrecorded_terminal_mask(int(i))
            if next_env_masks is env_masks:  # never modify the cached masks of the current observation
                next_env_masks = env_masks.copy()
            next_env_masks[i] = True if row is None else check_action_masks(row, 1, env_masks.shape[1], [int(i)])[0]
        assert isinstance(replay_buffer, _MASKABLE_BUFFERS)
        replay_buffer.set_last_next_action_masks(next_env_masks)

    def _warn_unrecorded_terminal_mask(self, env_index: int) -> None:
        if not self._warned_unrecorded_terminal_mask:
            self._warned_unrecorded_terminal_mask = True
            warnings.warn(
                f"env index {env_index}: a truncated episode has no recorded terminal action mask, so its "
                "bootstrap counts every action as valid for the env (optimistic). Wrap each env with "
                "RecordTerminalActionMask, e.g. make_vec_env(..., wrapper_class=RecordTerminalActionMask).",
                stacklevel=3,
            )

    def _on_step(self) -> None:
        super()._on_step()
        if self._action_masks is not None:
            self.logger.record(
                "rollout/valid_action_fraction", np.count_nonzero(self._action_masks) / self._action_masks.size
            )

    # ------------------------------------------------------------------ training
    def _target_q_values(
        self, replay_data: MaskableReplayBufferSamples | MaskableDictReplayBufferSamples, next_masks: th.Tensor | None
    ) -> th.Tensor:
        """
        One-step TD targets ``r + (1 - done) * gamma * Q_target(s', a*)``; ``a*`` maximises over the valid next actions.

        :param replay_data: a sampled batch
        :param next_masks: ``(batch, n_actions)`` masks of its next observations (None: all valid)
        :return: ``(batch, 1)`` targets
        """
        discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
        with th.no_grad():
            next_q_values = self.q_net_target(replay_data.next_observations)
            if self.double_q:
                online_q_values = mask_q_values(self.q_net(replay_data.next_observations), next_masks)
                next_actions = online_q_values.argmax(dim=1, keepdim=True)
                next_q_values = th.gather(next_q_values, dim=1, index=next_actions)
            else:
                next_q_values, _ = mask_q_values(next_q_values, next_masks).max(dim=1)
                next_q_values = next_q_values.reshape(-1, 1)
            return replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)

        losses = []
        for _ in range(gradient_steps):
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            target_q_values = self._target_q_values(replay_data, self._next_action_masks(replay_data))  # type: ignore[arg-type]
            current_q_values = th.gather(self.q_net(replay_data.observations), dim=1, index=replay_data.actions.long())
            loss = F.smooth_l1_loss(current_q_values, target_q_values)
            losses.append(loss.item())

            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))

    def learn(
        self: SelfMaskableDQN,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "MaskableDQN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfMaskableDQN:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_env_masks", "_action_masks", "_masks_obs", "_masks_env"]


def _buffer_class_for(observation_space: spaces.Space) -> type[MaskableReplayBuffer | MaskableDictReplayBuffer]:
    return MaskableDictReplayBuffer if isinstance(observation_space, spaces.Dict) else MaskableReplayBuffer


def _n_batch(policy: BasePolicy, observation: Any) -> int:
    """Number of observations in ``observation`` (1 for a single, non-vectorized one)."""
    if not policy.is_vectorized_observation(observation):
        return 1
    first = next(iter(observation.values())) if isinstance(observation, dict) else observation
    return len(first)
