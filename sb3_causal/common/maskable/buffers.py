"""Replay buffers that also store each transition's next-state *env* action masks (masked DQN).

What is stored is the env's validity mask of the next observation (``action_masks()``; for a truncated
episode, the one :class:`~sb3_causal.common.wrappers.RecordTerminalActionMask` recorded before the
reset). A masked DQN combines it at sample time with whatever else masks its actions (e.g. the causal
mask of the *current* graph, without exploration lifts), so the TD target maxes over the same actions
the greedy policy would choose among now, not over a mask frozen at collection time.

Masks are bit-packed (``n_actions / 8`` bytes per transition) and allocated on the first masked ``add``;
a buffer that never received a mask samples ``next_action_masks=None``, like a plain buffer.
``optimize_memory_usage=True`` is not supported. Samples also carry ``raw_next_observations``: the
stored next observations before ``VecNormalize`` normalisation (what a mask needs), as numpy arrays.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import TensorDict
from stable_baselines3.common.vec_env import VecNormalize

from sb3_causal.common.maskable.utils import check_action_masks

__all__ = [
    "MaskableDictReplayBuffer",
    "MaskableDictReplayBufferSamples",
    "MaskableReplayBuffer",
    "MaskableReplayBufferSamples",
]


class MaskableReplayBufferSamples(NamedTuple):
    """:class:`~stable_baselines3.common.type_aliases.ReplayBufferSamples` plus next-state env masks and raw obs."""

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None = None
    #: ``(batch, n_actions)`` bool env masks, ``True`` = valid; ``None`` when no mask was ever stored
    next_action_masks: th.Tensor | None = None
    #: the next observations as stored (not normalised), numpy
    raw_next_observations: np.ndarray | None = None


class MaskableDictReplayBufferSamples(NamedTuple):
    """:class:`~stable_baselines3.common.type_aliases.DictReplayBufferSamples` plus next-state env masks and raw obs."""

    observations: TensorDict
    actions: th.Tensor
    next_observations: TensorDict
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None = None
    next_action_masks: th.Tensor | None = None
    raw_next_observations: dict[str, np.ndarray] | None = None


class _NextActionMasks:
    """Bit-packed storage of the next-state env masks, shared by the two buffers (mixin)."""

    buffer_size: int
    n_envs: int
    pos: int
    device: th.device

    def _init_next_action_masks(self, action_space: spaces.Space, optimize_memory_usage: bool) -> None:
        if optimize_memory_usage:
            raise ValueError(
                f"{type(self).__name__} does not support optimize_memory_usage=True (it would need the next "
                "observation's mask to live in the next slot too); use optimize_memory_usage=False"
            )
        if not isinstance(action_space, spaces.Discrete):
            raise TypeError(f"{type(self).__name__} needs a Discrete action space, got {action_space}")
        self.n_actions = int(action_space.n)
        # (buffer_size, n_envs, ceil(n_actions / 8)) uint8, allocated on the first masked add
        self.packed_next_action_masks: np.ndarray | None = None

    def set_last_next_action_masks(self, next_action_masks: np.ndarray | None) -> None:
        """
        Set the next-state env masks of the transitions added last (one per env).

        :param next_action_masks: ``(n_envs, n_actions)`` bool (None: all actions valid)
        :raises ValueError: on a wrong shape or an all-invalid row
        """
        if next_action_masks is None and self.packed_next_action_masks is None:
            return  # nothing masked so far: keep behaving like a plain replay buffer
        if self.packed_next_action_masks is None:
            n_bytes = (self.n_actions + 7) // 8
            self.packed_next_action_masks = np.full((self.buffer_size, self.n_envs, n_bytes), 255, dtype=np.uint8)
        pos = (self.pos - 1) % self.buffer_size
        if next_action_masks is None:
            self.packed_next_action_masks[pos] = 255
        else:
            masks = check_action_masks(next_action_masks, self.n_envs, self.n_actions)
            self.packed_next_action_masks[pos] = np.packbits(masks, axis=-1)

    def _sampled_next_action_masks(self, batch_inds: np.ndarray, env_indices: np.ndarray) -> th.Tensor | None:
        if self.packed_next_action_masks is None:
            return None
        packed = self.packed_next_action_masks[batch_inds, env_indices]
        return th.as_tensor(np.unpackbits(packed, axis=-1, count=self.n_actions).astype(bool), device=self.device)


class MaskableReplayBuffer(_NextActionMasks, ReplayBuffer):
    """Replay buffer that also stores the env action mask of each transition's next observation (module doc).

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
        self._init_next_action_masks(action_space, optimize_memory_usage)
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=False,
            handle_timeout_termination=handle_timeout_termination,
        )

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

        :param next_action_masks: ``(n_envs, n_actions)`` env masks of ``next_obs`` (None: all actions valid)
        """
        super().add(obs, next_obs, action, reward, done, infos)
        self.set_last_next_action_masks(next_action_masks)

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> MaskableReplayBufferSamples:  # type: ignore[override]
        # The same random draw as ReplayBuffer._get_samples, so masked and unmasked runs sample alike.
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))  # noqa: NPY002 (SB3 seeds it)
        raw_next = self.next_observations[batch_inds, env_indices, :]
        data = (
            self._normalize_obs(self.observations[batch_inds, env_indices, :], env),
            self.actions[batch_inds, env_indices, :],
            self._normalize_obs(raw_next, env),
            # Only use dones that are not due to timeouts
            (self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])).reshape(-1, 1),
            self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env),
        )
        return MaskableReplayBufferSamples(
            *map(self.to_torch, data),
            next_action_masks=self._sampled_next_action_masks(batch_inds, env_indices),
            raw_next_observations=raw_next,
        )


class MaskableDictReplayBuffer(_NextActionMasks, DictReplayBuffer):
    """Dict-observation replay buffer that also stores the env action mask of each next observation.

    Same parameters as :class:`MaskableReplayBuffer` (``observation_space`` a ``Dict``).
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Dict,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
    ) -> None:
        self._init_next_action_masks(action_space, optimize_memory_usage)
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=False,
            handle_timeout_termination=handle_timeout_termination,
        )

    def add(  # type: ignore[override]
        self,
        obs: dict[str, np.ndarray],
        next_obs: dict[str, np.ndarray],
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
        next_action_masks: np.ndarray | None = None,
    ) -> None:
        """Add a transition for each env; see ``DictReplayBuffer.add`` and :meth:`MaskableReplayBuffer.add`."""
        super().add(obs, next_obs, action, reward, done, infos)
        self.set_last_next_action_masks(next_action_masks)

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> MaskableDictReplayBufferSamples:  # type: ignore[override]
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))  # noqa: NPY002 (SB3 seeds it)
        raw_obs = {key: obs[batch_inds, env_indices, :] for key, obs in self.observations.items()}
        raw_next = {key: obs[batch_inds, env_indices, :] for key, obs in self.next_observations.items()}
        obs_, next_obs_ = self._normalize_obs(raw_obs, env), self._normalize_obs(raw_next, env)
        assert isinstance(obs_, dict) and isinstance(next_obs_, dict)
        dones = self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])
        return MaskableDictReplayBufferSamples(
            observations={key: self.to_torch(obs) for key, obs in obs_.items()},
            actions=self.to_torch(self.actions[batch_inds, env_indices]),
            next_observations={key: self.to_torch(obs) for key, obs in next_obs_.items()},
            dones=self.to_torch(dones).reshape(-1, 1),
            rewards=self.to_torch(self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env)),
            next_action_masks=self._sampled_next_action_masks(batch_inds, env_indices),
            raw_next_observations=raw_next,
        )
