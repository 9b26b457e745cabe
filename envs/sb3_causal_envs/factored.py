"""Generic factored SCM environments for structure learning: a random DAG, one variable per entry.

``FactoredSCMEnv`` draws a random DAG over ``n_variables`` variables and the parameters of a
structural causal model on it (both from ``model_seed``). Every step draws a fresh sample of the
SCM under the step's intervention and observes it whole (a flat ``Box(n)``); action ``i < n``
intervenes on variable ``i`` for that sample, action ``n`` does nothing. So an action's effect is
on the next observation, as in any gymnasium env, and the true graph (``causal_graph``) is the
one the samples come from.

Families (``family``):

* ``"gaussian0"``: linear-Gaussian with zero means, ``x_j = sum_p w_pj x_p + e_j``, ``e_j ~ N(0, 1)``.
  Setting a cause to 0 leaves its children's means at 0 and changes only their variance.
* ``"gaussian"``: the same with intercepts ``b_j ~ U(1, 3)`` (non-zero means).
* ``"poisson"``: counts, ``x_j ~ Poisson(b_j + sum_p w_pj x_p)``, ``b_j ~ U(0.5, 1.5)``.

Edge weights: ``|w| ~ U(0.5, 1.5)`` with a random sign (Gaussian), ``w ~ U(0.3, 0.8)`` (Poisson).

Interventions (``intervention``): ``"zero"`` (``do(x_i = 0)``), ``"random"`` (``do(x_i = r)``
with ``r ~ N(0, 3^2)``, or ``Poisson(5)`` for counts) and ``"shift"`` (``x_i`` + 2, or + 3 counts,
on top of its natural value; its descendants see the shifted value). Every action on a variable
intervenes, whatever its current value (the layout's ``intervenes_when_inactive``).

Reward: minus the mean squared value (Gaussian) or the mean count (Poisson), so an agent has a
reason to prefer some interventions. Episodes are ``max_steps`` steps long (truncated).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_causal.graph import CausalGraph
from sb3_causal.variables import CausalVariables

__all__ = ["FAMILIES", "INTERVENTIONS", "FactoredSCMEnv"]

FAMILIES = ("gaussian0", "gaussian", "poisson")
INTERVENTIONS = ("zero", "random", "shift")


class FactoredSCMEnv(gym.Env):
    """A random-DAG SCM observed whole each step; action i intervenes on variable i, action n on none.

    :param n_variables: number of variables (e.g. 8, 20, 50)
    :param family: ``"gaussian0"``, ``"gaussian"`` or ``"poisson"`` (module doc)
    :param intervention: ``"zero"``, ``"random"`` or ``"shift"`` (module doc)
    :param model_seed: seed of the graph and the SCM's parameters
    :param n_edges: edges of the random DAG (default: as many as variables)
    :param max_steps: episode length
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        n_variables: int = 8,
        family: str = "gaussian0",
        intervention: str = "zero",
        model_seed: int = 0,
        n_edges: int | None = None,
        max_steps: int = 50,
    ) -> None:
        super().__init__()
        if n_variables < 2:
            raise ValueError(f"n_variables must be >= 2, got {n_variables}")
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
        if intervention not in INTERVENTIONS:
            raise ValueError(f"intervention must be one of {INTERVENTIONS}, got {intervention!r}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.n_variables, self.family, self.intervention = int(n_variables), family, intervention
        self.model_seed, self.max_steps = int(model_seed), int(max_steps)
        names = [f"x{k}" for k in range(self.n_variables)]
        self._graph = CausalGraph.random(names, n_edges=n_edges, seed=model_seed)
        rng = np.random.default_rng([model_seed, 1])
        adj = self._graph.adjacency(dtype=np.float64)
        n = self.n_variables
        if family == "poisson":
            self.weights = adj * rng.uniform(0.3, 0.8, size=(n, n))
            self.intercepts = rng.uniform(0.5, 1.5, size=n)
        else:
            self.weights = adj * rng.uniform(0.5, 1.5, size=(n, n)) * rng.choice([-1.0, 1.0], size=(n, n))
            self.intercepts = np.zeros(n) if family == "gaussian0" else rng.uniform(1.0, 3.0, size=n)
        self._order = [self._graph.index(v) for v in self._graph.causal_order()]
        low = 0.0 if family == "poisson" else -np.inf
        self.observation_space = spaces.Box(low, np.inf, shape=(n,), dtype=np.float32)
        self.action_space = spaces.Discrete(n + 1)
        self._x = np.zeros(n)
        self._t = 0

    @property
    def causal_graph(self) -> CausalGraph:
        """The true graph (a copy)."""
        return self._graph.copy()

    @property
    def causal_variables(self) -> CausalVariables:
        """Entry k is variable k; action k intervenes on it (whatever its value), action n on none."""
        return CausalVariables.factored(self.n_variables, self._graph.variables, [*range(self.n_variables), -1])

    def _sample(self, target: int | None) -> np.ndarray:
        x = np.zeros(self.n_variables)
        rng = self.np_random
        for j in self._order:
            mean = self.intercepts[j] + x @ self.weights[:, j]
            if self.family == "poisson":
                x[j] = rng.poisson(max(mean, 0.0))
            else:
                x[j] = mean + rng.standard_normal()
            if j == target:
                x[j] = self._intervened_value(x[j])
        return x

    def _intervened_value(self, natural: float) -> float:
        poisson = self.family == "poisson"
        if self.intervention == "zero":
            return 0.0
        if self.intervention == "shift":
            return natural + (3.0 if poisson else 2.0)
        return float(self.np_random.poisson(5.0)) if poisson else 3.0 * float(self.np_random.standard_normal())

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._t = 0
        self._x = self._sample(None)
        return self._x.astype(np.float32), {}

    def step(self, action: int):
        a = int(action)
        if not 0 <= a <= self.n_variables:
            raise ValueError(f"action must be in [0, {self.n_variables}], got {action}")
        self._x = self._sample(a if a < self.n_variables else None)
        self._t += 1
        reward = -float(self._x.mean()) if self.family == "poisson" else -float(np.mean(self._x**2))
        return self._x.astype(np.float32), reward, False, self._t >= self.max_steps, {}
