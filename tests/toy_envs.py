"""Small factored environments with known causal graphs, for tests and examples."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_causal import CausalGraph
from sb3_causal.variables import CausalVariables


class LinearCascadeEnv(gym.Env):
    """State variables generated each step by a linear SCM in causal order; action k does ``do(x_k = 0)``.

    ``x_j = persistence * x_j(prev) + sum_p w[p, j] * x_p + 1 + noise`` for variables in index order
    (index order is a causal order). Action ``n`` (the last) intervenes on nothing. Reward: minus the
    sum of the state, so clearing upstream variables pays. 50-step episodes.
    """

    def __init__(self, graph: CausalGraph | None = None, weight: float = 0.8, noise: float = 0.1) -> None:
        super().__init__()
        self.graph = graph or CausalGraph(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("a", "d")])
        n = self.graph.n_variables
        self.weights = self.graph.adjacency(dtype=np.float64) * weight
        self.noise = noise
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(n,), dtype=np.float32)
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
        prev = self._x
        x = np.zeros_like(prev)
        for j in range(x.size):
            if j == do:
                continue
            x[j] = 0.3 * prev[j] + x @ self.weights[:, j] + 1.0 + self.noise * self.np_random.standard_normal()
        self._x = x

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
        return self._x.astype(np.float32), -float(self._x.sum()), False, self._t >= 50, {}


class PoissonCascadeEnv(gym.Env):
    """Count variables: ``x_j ~ Poisson(0.5 + sum_p w * x_p)`` in causal order; action k clears ``x_k``.

    Observations are counts (non-negative integers as floats), like alarm counts. Action k < n sets
    x_k to 0 for this step, so its descendants see no contribution from it; action n does nothing.
    30-step episodes.
    """

    def __init__(self, graph: CausalGraph | None = None, weight: float = 0.9) -> None:
        super().__init__()
        self.graph = graph or CausalGraph(["r", "s", "t", "u"], [("r", "s"), ("s", "t"), ("r", "u")])
        n = self.graph.n_variables
        self.weights = self.graph.adjacency(dtype=np.float64) * weight
        self.observation_space = spaces.Box(0, np.inf, shape=(n,), dtype=np.float32)
        self.action_space = spaces.Discrete(n + 1)
        self._x = np.zeros(n)
        self._t = 0

    @property
    def causal_graph(self) -> CausalGraph:
        return self.graph.copy()

    @property
    def causal_variables(self) -> CausalVariables:
        n = self.graph.n_variables
        return CausalVariables.factored(n, self.graph.variables, [*range(n), -1])

    def action_masks(self) -> np.ndarray:
        """Treating a variable needs a non-zero count; doing nothing is always allowed."""
        return np.append(self._x > 0, True)

    def _generate(self, do: int | None) -> None:
        x = np.zeros(self.graph.n_variables)
        for j in range(x.size):
            if j != do:
                x[j] = self.np_random.poisson(0.5 + x @ self.weights[:, j])
        self._x = x

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._generate(None)
        self._t = 0
        return self._x.astype(np.float32), {}

    def step(self, action):
        a = int(action)
        self._generate(a if a < self.graph.n_variables else None)
        self._t += 1
        return self._x.astype(np.float32), -float(self._x.sum()), False, self._t >= 30, {}
