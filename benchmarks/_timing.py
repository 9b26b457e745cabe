"""Shared helpers of the benchmark scripts.

Not a benchmark itself: the leading underscore keeps it off `sb3-causal bench --list`.
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym


class TimedEnv(gym.Wrapper):
    """Accumulates the seconds spent inside the wrapped env's ``step`` and ``reset``."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.seconds = 0.0

    def step(self, action: Any) -> Any:
        start = time.perf_counter()
        out = self.env.step(action)
        self.seconds += time.perf_counter() - start
        return out

    def reset(self, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = self.env.reset(**kwargs)
        self.seconds += time.perf_counter() - start
        return out
