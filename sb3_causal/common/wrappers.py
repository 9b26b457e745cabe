"""Gym wrappers of the masked algorithms."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["TERMINAL_ACTION_MASK_KEY", "RecordTerminalActionMask"]

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
