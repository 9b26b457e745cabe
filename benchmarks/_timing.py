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
