"""Shared helpers of the benchmark scripts.

Not a benchmark itself: the leading underscore keeps it off `sb3-causal bench --list`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym


class TimedEnv(gym.Wrapper):
    """Accumulates the seconds spent inside the wrapped env's ``step`` and ``reset``, read from ``clock``
    (wall time by default; ``time.process_time`` for CPU time)."""

    def __init__(self, env: gym.Env, clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(env)
        self.seconds = 0.0
        self.clock = clock

    def step(self, action: Any) -> Any:
        start = self.clock()
        out = self.env.step(action)
        self.seconds += self.clock() - start
        return out

    def reset(self, **kwargs: Any) -> Any:
        start = self.clock()
        out = self.env.reset(**kwargs)
        self.seconds += self.clock() - start
        return out


def play_episodes(
    env: gym.Env, act: Callable[[gym.Env, Any], int], n_episodes: int, first_seed: int
) -> tuple[list[float], list[int]]:
    """Returns and lengths of ``n_episodes`` episodes of ``env``, reset with seeds ``first_seed + i``, acting
    ``act(env, obs)``."""
    returns, lengths = [], []
    for episode in range(n_episodes):
        obs, _ = env.reset(seed=first_seed + episode)
        total, done, n = 0.0, False, 0
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(env, obs))
            total, n, done = total + float(reward), n + 1, terminated or truncated
        returns.append(total)
        lengths.append(n)
    return returns, lengths
