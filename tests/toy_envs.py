"""Small factored environments with known causal graphs, for tests and examples."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_causal import CausalGraph
from sb3_causal.variables import CausalVariables


class _CascadeEnv(gym.Env):
    """Shared frame: variables regenerated each step in causal (index) order by ``_generate``.

    Action ``k < n`` does ``do(x_k = 0)`` for this step, so descendants see no contribution from
    ``x_k``; action ``n`` does nothing. Reward: minus the sum of the state.
    """

    def __init__(self, graph: CausalGraph, weight: float, low: float, max_steps: int) -> None:
        super().__init__()
        self.graph = graph
        n = graph.n_variables
        self.weights = graph.adjacency(dtype=np.float64) * weight
        self.max_steps = max_steps
        self.observation_space = spaces.Box(low, np.inf, shape=(n,), dtype=np.float32)
        self.action_space = spaces.Discrete(n + 1)
        self._x = np.zeros(n)
        self._t = 0

    @property
    def causal_graph(self) -> CausalGraph:
        return self.graph.copy()

    @property
    def causal_variables(self) -> CausalVariables:
        """Entry k is variable k; action k intervenes on it, the last action on nothing."""
        n = self.graph.n_variables
        return CausalVariables.factored(n, self.graph.variables, [*range(n), -1])

    def _generate(self, do: int | None) -> None:
        raise NotImplementedError

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._x = np.zeros(self.graph.n_variables)
        self._generate(None)
        self._t = 0
        return self._x.astype(np.float32), {}

    def step(self, action):
        a = int(action)
        self._generate(a if a < self.graph.n_variables else None)
        self._t += 1
        return self._x.astype(np.float32), -float(self._x.sum()), False, self._t >= self.max_steps, {}


class LinearCascadeEnv(_CascadeEnv):
    """``x_j = 0.3 * x_j(prev) + sum_p w[p, j] * x_p + 1 + noise``; 50-step episodes."""

    def __init__(self, graph: CausalGraph | None = None, weight: float = 0.8, noise: float = 0.1) -> None:
        graph = graph or CausalGraph(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("a", "d")])
        super().__init__(graph, weight, low=-np.inf, max_steps=50)
        self.noise = noise

    def _generate(self, do: int | None) -> None:
        prev = self._x
        x = np.zeros_like(prev)
        for j in range(x.size):
            if j != do:
                x[j] = 0.3 * prev[j] + x @ self.weights[:, j] + 1.0 + self.noise * self.np_random.standard_normal()
        self._x = x


class PoissonCascadeEnv(_CascadeEnv):
    """Count variables, like alarm counts: ``x_j ~ Poisson(0.5 + sum_p w * x_p)``; 30-step episodes."""

    def __init__(self, graph: CausalGraph | None = None, weight: float = 0.9) -> None:
        graph = graph or CausalGraph(["r", "s", "t", "u"], [("r", "s"), ("s", "t"), ("r", "u")])
        super().__init__(graph, weight, low=0.0, max_steps=30)

    def action_masks(self) -> np.ndarray:
        """Treating a variable needs a non-zero count; doing nothing is always allowed."""
        return np.append(self._x > 0, True)

    def _generate(self, do: int | None) -> None:
        x = np.zeros(self.graph.n_variables)
        for j in range(x.size):
            if j != do:
                x[j] = self.np_random.poisson(0.5 + x @ self.weights[:, j])
        self._x = x
