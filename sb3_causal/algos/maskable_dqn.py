"""MaskableDQN: SB3's DQN with invalid-action masking, double-Q and dueling options.

A masked DQN masks three places: the random (warm-up and epsilon) actions, the greedy argmax, and
the max (or the double-Q argmax) over next-state actions in the TD target. The next-state masks
therefore go into the replay buffer (:class:`MaskableReplayBuffer`).

Where masks come from: one overridable hook, :meth:`MaskableDQN._get_action_masks`, which maps a
batch of raw observations and the env's own validity masks to the masks the agent uses. It is
called once per env step for the new current observations (those masks are used to act at the next
step *and* stored as the next-state masks of the transition that led there) and once for each
truncated episode's terminal observation. With no masks anywhere it behaves exactly like DQN.

Terminal observations: after a VecEnv auto-reset the env's ``action_masks()`` describes the new
episode's first state. A *terminated* transition is not bootstrapped, so its stored next mask is
all-ones (valid, never used). A *truncated* transition bootstraps from its terminal observation, so
its mask must be read before the reset: :class:`RecordTerminalActionMask` puts it in
``info["terminal_action_mask"]`` (MaskableDQN adds this wrapper itself when it builds the VecEnv
from a gym env or an id; pass ``wrapper_class=RecordTerminalActionMask`` to ``make_vec_env`` for your
own VecEnvs). When no mask was recorded the hook receives ``None`` as env mask; if it returns
``None`` too, the bootstrap maxes over all actions (an optimistic target) and a warning says so once.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, NamedTuple, TypeVar

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
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from torch.nn import functional as F

from sb3_causal.algos.dqn_policies import (
    DuelingDQNPolicy,
    MaskableDQNPolicy,
    MaskableQNetwork,
    check_action_masks,
    mask_q_values,
)

__all__ = [
    "TERMINAL_ACTION_MASK_KEY",
    "MaskableDQN",
    "MaskableReplayBuffer",
    "MaskableReplayBufferSamples",
    "RecordTerminalActionMask",
]

SelfMaskableDQN = TypeVar("SelfMaskableDQN", bound="MaskableDQN")

#: ``info`` key holding the action mask of an episode's last observation (set by :class:`RecordTerminalActionMask`).
TERMINAL_ACTION_MASK_KEY = "terminal_action_mask"


class RecordTerminalActionMask(gym.Wrapper):
    """Store the env's ``action_masks()`` of the last observation of an episode in ``info["terminal_action_mask"]``.

    A VecEnv resets an env as soon as its episode ends, so afterwards ``action_masks()`` describes the
    next episode; this wrapper reads it first (only on the final step, so it costs nothing per step).

    :param env: an env with an ``action_masks()`` method
    """

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info = {
                **info,
                TERMINAL_ACTION_MASK_KEY: np.asarray(self.env.get_wrapper_attr("action_masks")(), dtype=bool),
            }
        return obs, reward, terminated, truncated, info


class MaskableReplayBufferSamples(NamedTuple):
    """:class:`~stable_baselines3.common.type_aliases.ReplayBufferSamples` plus the next-state action masks."""

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None = None
    #: ``(batch, n_actions)`` bool, ``True`` = valid; ``None`` when no mask was ever stored
    next_action_masks: th.Tensor | None = None


class MaskableReplayBuffer(ReplayBuffer):
    """Replay buffer that also stores the action mask of each transition's next observation.

    Masks are bit-packed (``n_actions / 8`` bytes per transition) and allocated on the first masked
    ``add``; a buffer that never received a mask samples ``next_action_masks=None``, like a plain
    ``ReplayBuffer``. ``optimize_memory_usage=True`` is not supported.

    :param buffer_size: Max number of element in the buffer
    :param observation_space: Observation space
    :param action_space: Action space (``Discrete``)
    :param device: PyTorch device
    :param n_envs: Number of parallel environments
    :param optimize_memory_usage: must be False
    :param handle_timeout_termination: Handle timeout termination (due to timelimit)
        separately and treat the task as infinite horizon task.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
    ) -> None:
        if optimize_memory_usage:
            raise ValueError(
                "MaskableReplayBuffer does not support optimize_memory_usage=True (it would need the next "
                "observation's mask to live in the next slot too); use optimize_memory_usage=False"
            )
        if not isinstance(action_space, spaces.Discrete):
            raise TypeError(f"MaskableReplayBuffer needs a Discrete action space, got {action_space}")
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=False,
            handle_timeout_termination=handle_timeout_termination,
        )
        self.n_actions = int(action_space.n)
        # (buffer_size, n_envs, ceil(n_actions / 8)) uint8, allocated on the first masked add
        self.packed_next_action_masks: np.ndarray | None = None

    def add(  # type: ignore[override]
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
        next_action_masks: np.ndarray | None = None,
    ) -> None:
        """
        Add a transition for each env; see ``ReplayBuffer.add``.

        :param next_action_masks: ``(n_envs, n_actions)`` masks of ``next_obs`` (None: all actions valid)
        """
        super().add(obs, next_obs, action, reward, done, infos)
        self.set_last_next_action_masks(next_action_masks)

    def set_last_next_action_masks(self, next_action_masks: np.ndarray | None) -> None:
        """
        Set the next-state masks of the transitions added last (one per env).

        :param next_action_masks: ``(n_envs, n_actions)`` bool (None: all actions valid)
        :raises ValueError: on a wrong shape or an all-invalid row
        """
        if next_action_masks is None and self.packed_next_action_masks is None:
            return  # nothing masked so far: keep behaving like a plain ReplayBuffer
        if self.packed_next_action_masks is None:
            n_bytes = (self.n_actions + 7) // 8
            self.packed_next_action_masks = np.full((self.buffer_size, self.n_envs, n_bytes), 255, dtype=np.uint8)
        pos = (self.pos - 1) % self.buffer_size
        if next_action_masks is None:
            self.packed_next_action_masks[pos] = 255
        else:
            masks = check_action_masks(next_action_masks, self.n_envs, self.n_actions)
            self.packed_next_action_masks[pos] = np.packbits(masks, axis=-1)

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> MaskableReplayBufferSamples:  # type: ignore[override]
        if self.packed_next_action_masks is None:
            return MaskableReplayBufferSamples(*super()._get_samples(batch_inds, env))
        # Same random draw as ReplayBuffer._get_samples, so masked and unmasked runs sample alike.
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))  # noqa: NPY002 (SB3 seeds it)
        masks = np.unpackbits(
            self.packed_next_action_masks[batch_inds, env_indices], axis=-1, count=self.n_actions
        ).astype(bool)
        data = (
            self._normalize_obs(self.observations[batch_inds, env_indices, :], env),
            self.actions[batch_inds, env_indices, :],
            self._normalize_obs(self.next_observations[batch_inds, env_indices, :], env),
            # Only use dones that are not due to timeouts
            (self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])).reshape(-1, 1),
            self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env),
        )
        return MaskableReplayBufferSamples(
            *map(self.to_torch, data), next_action_masks=th.as_tensor(masks, device=self.device)
        )


class MaskableDQN(DQN):
    """
    DQN with invalid-action masking (exploration, greedy action, TD target), optional double-Q and dueling.

    Same parameters as :class:`stable_baselines3.DQN`, plus ``double_q``. Masks come from the env's
    ``action_masks()`` (as in sb3-contrib's MaskablePPO) through :meth:`_get_action_masks`; an env
    without one trains exactly like DQN. Policies: ``"MlpPolicy"`` and ``"DuelingMlpPolicy"``
    (``double_q=True`` with ``"DuelingMlpPolicy"`` is D3QN).

    :param policy: The policy model to use (``"MlpPolicy"``, ``"DuelingMlpPolicy"`` or a class)
    :param env: The environment to learn from (if registered in Gym, can be str); its action space must be Discrete
    :param learning_rate: The learning rate, it can be a function of the current progress remaining (from 1 to 0)
    :param buffer_size: size of the replay buffer
    :param learning_starts: how many steps of the model to collect transitions for before learning starts
    :param batch_size: Minibatch size for each gradient update
    :param tau: the soft update coefficient ("Polyak update", between 0 and 1) default 1 for hard update
    :param gamma: the discount factor
    :param train_freq: Update the model every ``train_freq`` steps, or a tuple like ``(5, "step")``/``(2, "episode")``
    :param gradient_steps: How many gradient steps to do after each rollout (-1: as many as env steps)
    :param replay_buffer_class: a :class:`MaskableReplayBuffer` subclass (default: ``MaskableReplayBuffer``)
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
        "DuelingMlpPolicy": DuelingDQNPolicy,
    }
    policy: MaskableDQNPolicy
    q_net: MaskableQNetwork
    q_net_target: MaskableQNetwork
    replay_buffer: MaskableReplayBuffer

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
        replay_buffer_class: type[MaskableReplayBuffer] | None = None,
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
        if optimize_memory_usage:
            raise ValueError("MaskableDQN does not support optimize_memory_usage=True; use the default False")
        if n_steps != 1:
            raise ValueError(f"MaskableDQN does not support n-step returns yet: got n_steps={n_steps}, use 1")
        if replay_buffer_class is None:
            replay_buffer_class = MaskableReplayBuffer
        elif not (isinstance(replay_buffer_class, type) and issubclass(replay_buffer_class, MaskableReplayBuffer)):
            raise TypeError(
                "MaskableDQN needs a MaskableReplayBuffer subclass (it stores next-state action masks), "
                f"got {replay_buffer_class}"
            )
        if env is not None:
            env = maybe_make_env(env, verbose)
            self._check_spaces(env.action_space, env.observation_space)
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
        # Masks of the current observation self._last_obs (which they belong to is kept by identity):
        # computed once per step, used to act and stored as the previous transition's next-state masks.
        self._action_masks: np.ndarray | None = None
        self._action_masks_obs: Any = None
        # Whether self.env has action_masks(), cached per env object.
        self._masks_env: VecEnv | None = None
        self._env_has_masks = False
        self._warned_unrecorded_terminal_mask = False
        if _init_setup_model:
            self._setup_model()

    @staticmethod
    def _check_spaces(action_space: spaces.Space, observation_space: spaces.Space) -> None:
        if not isinstance(action_space, spaces.Discrete):
            raise TypeError(
                f"MaskableDQN needs a Discrete action space (one Q-value per action), got {action_space}. "
                "For MultiDiscrete actions flatten them into one Discrete space, or use MaskablePPO."
            )
        if isinstance(observation_space, spaces.Dict):
            raise TypeError("MaskableDQN does not support Dict observation spaces yet; flatten the observation")

    @staticmethod
    def _wrap_env(env: GymEnv, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        """DQN's wrapping, plus :class:`RecordTerminalActionMask` around a (non-vector) env with action masks."""
        if (
            isinstance(env, gym.Env) and is_masking_supported(env) and not is_wrapped(env, RecordTerminalActionMask)  # type: ignore[arg-type]
        ):
            env = RecordTerminalActionMask(env)
        return DQN._wrap_env(env, verbose, monitor_wrapper)

    # ------------------------------------------------------------------ masks
    def _get_action_masks(self, observations: np.ndarray, env_action_masks: np.ndarray | None) -> np.ndarray | None:
        """
        The action masks the agent acts and bootstraps with: the one hook every mask flows through.

        Called once per env step for the current observations of all envs (those masks choose the next
        actions and are stored as next-state masks of the transitions that led there), and once for the
        terminal observation of each truncated episode (its bootstrap mask). The default returns the
        env's masks; a subclass overrides it to combine them with its own (e.g. AND a causal mask).

        :param observations: raw (un-normalised) observations, ``(batch, *obs_shape)``; under ``VecNormalize``
            a terminal observation is un-normalised from the normalised one, as SB3 stores it (float round-off;
            wrong where VecNormalize clipped it, see ``clip_obs``)
        :param env_action_masks: the env's ``action_masks()`` for them, ``(batch, n_actions)`` bool; ``None``
            if the env has no masks (or, for a terminal observation, none was recorded)
        :return: ``(batch, n_actions)`` masks (``True`` = valid, no all-``False`` row), or ``None``: all valid
        """
        return env_action_masks

    def _env_action_masks(self) -> np.ndarray | None:
        """The training env's ``action_masks()`` for its current state, or None if it has none."""
        if self._masks_env is not self.env:
            self._masks_env = self.env
            self._env_has_masks = self.env is not None and is_masking_supported(self.env)
        if not self._env_has_masks:
            return None
        return np.asarray(get_action_masks(self.env), dtype=bool)

    def _current_action_masks(self) -> np.ndarray | None:
        """Masks of ``self._last_obs`` from :meth:`_get_action_masks`, computed once per observation."""
        if self._action_masks_obs is not self._last_obs:
            raw_obs = self._last_original_obs if self._vec_normalize_env is not None else self._last_obs
            masks = self._get_action_masks(raw_obs, self._env_action_masks())  # type: ignore[arg-type]
            if masks is not None:
                masks = check_action_masks(masks, self.n_envs, int(self.action_space.n))  # type: ignore[attr-defined]
            self._action_masks, self._action_masks_obs = masks, self._last_obs
        return self._action_masks

    def _terminal_action_mask(self, info: dict[str, Any], env_index: int) -> np.ndarray | None:
        """Mask of a truncated episode's terminal observation (None: all valid)."""
        terminal_obs = np.asarray(info["terminal_observation"])
        if self._vec_normalize_env is not None:
            terminal_obs = self._vec_normalize_env.unnormalize_obs(terminal_obs)
        env_mask = info.get(TERMINAL_ACTION_MASK_KEY)
        if env_mask is not None:
            env_mask = np.asarray(env_mask, dtype=bool)[None]
        masks = self._get_action_masks(terminal_obs[None], env_mask)
        if masks is None:
            if self._env_has_masks and not self._warned_unrecorded_terminal_mask:
                self._warned_unrecorded_terminal_mask = True
                warnings.warn(
                    f"env index {env_index}: a truncated episode has no recorded terminal action mask, so its "
                    "bootstrap maxes over all actions (optimistic). Wrap each env with RecordTerminalActionMask, "
                    "e.g. make_vec_env(..., wrapper_class=RecordTerminalActionMask).",
                    stacklevel=2,
                )
            return None
        return check_action_masks(masks, 1, int(self.action_space.n), env_indices=[env_index])[0]  # type: ignore[attr-defined]

    def _sample_valid_actions(self, action_masks: np.ndarray) -> np.ndarray:
        """One action per row, uniform among that row's valid actions (from the action space's RNG)."""
        picks = self.action_space.np_random.integers(0, action_masks.sum(axis=1))
        # index of the (pick + 1)-th valid action of each row
        return (np.cumsum(action_masks, axis=1) > picks[:, None]).argmax(axis=1)

    # ------------------------------------------------------------------ acting
    def _sample_action(
        self, learning_starts: int, action_noise: Any = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        masks = self._current_action_masks()
        if masks is None:
            return super()._sample_action(learning_starts, action_noise, n_envs)
        if self.num_timesteps < learning_starts:
            action = self._sample_valid_actions(masks)
        else:
            action, _ = self.predict(self._last_obs, deterministic=False, action_masks=masks)  # type: ignore[arg-type]
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
        if action_masks is None:
            return super().predict(observation, state, episode_start, deterministic)
        # The global RNG, seeded by set_random_seed, like DQN.predict's epsilon draw.
        if not deterministic and np.random.rand() < self.exploration_rate:  # noqa: NPY002
            vectorized = self.policy.is_vectorized_observation(observation)
            obs0 = next(iter(observation.values())) if isinstance(observation, dict) else observation
            n_batch = len(obs0) if vectorized else 1
            masks = check_action_masks(action_masks, n_batch, int(self.action_space.n))  # type: ignore[attr-defined]
            action = self._sample_valid_actions(masks)
            return (action if vectorized else action.reshape(())), state
        return self.policy.predict(observation, state, episode_start, deterministic, action_masks=action_masks)

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
        masks = self._current_action_masks()  # masks of new_obs: used to act next, stored as next-state masks
        next_masks = masks
        for i in np.flatnonzero(dones):
            # After the auto-reset masks[i] describes the new episode. Terminated: not bootstrapped, any
            # valid mask will do (all-ones). Truncated: bootstrapped from the terminal observation.
            row = self._terminal_action_mask(infos[i], int(i)) if infos[i].get("TimeLimit.truncated", False) else None
            if next_masks is None and row is None:
                continue
            if next_masks is masks:  # never modify the masks the next action is chosen with
                next_masks = (
                    np.ones((self.n_envs, int(self.action_space.n)), dtype=bool) if masks is None else masks.copy()
                )
            next_masks[i] = True if row is None else row
        assert isinstance(replay_buffer, MaskableReplayBuffer)
        replay_buffer.set_last_next_action_masks(next_masks)

    def _on_step(self) -> None:
        super()._on_step()
        if self._action_masks is not None:
            self.logger.record(
                "rollout/valid_action_fraction", np.count_nonzero(self._action_masks) / self._action_masks.size
            )

    # ------------------------------------------------------------------ training
    def _target_q_values(self, replay_data: MaskableReplayBufferSamples) -> th.Tensor:
        """
        One-step TD targets ``r + (1 - done) * gamma * Q_target(s', a*)``; ``a*`` maximises over the valid next actions.

        :param replay_data: a sampled batch
        :return: ``(batch, 1)`` targets
        """
        discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
        next_masks = replay_data.next_action_masks
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
            target_q_values = self._target_q_values(replay_data)  # type: ignore[arg-type]
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
        return [*super()._excluded_save_params(), "_action_masks", "_action_masks_obs", "_masks_env"]
