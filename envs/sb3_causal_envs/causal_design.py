"""``CausalDesign-v0``: choose interventions that reveal a causal graph (the design env of CAASL, seed 003).

Each episode draws one linear additive-noise SCM from a prior: a random DAG over ``d`` variables (Erdos-Renyi
or scale-free, then a random relabelling of the nodes), weights ``w ~ N(weight_mean, 1 / indegree)``, noise
variances ``sigma^2 ~ InvGamma(10, 1)`` (Gaussian or mean-zero Gumbel noise of that variance), zero bias.
``reset`` draws ``n_observational`` samples; each of the ``n_steps`` steps adds one sample under the
intervention the action asks for.

Action ``Box(-1, 1, (2d,))``: entry ``i < d`` above 0 intervenes on variable ``i`` (several at once allowed;
none is an observational sample); entry ``d + i`` times ``value_scale`` is its value (hard ``do``, or an
additive shift of its mechanism with ``intervention="shift"``).

Observation: the whole history as a fixed-shape ``(n_observational + n_steps, d, 2)`` float32 tensor,
channel 0 the value and channel 1 the flag (1: set by an intervention, 0: not); rows not yet collected
are padding, marked by value 0 and flag -1.

Reward: the increase of the expected number of correctly classified off-diagonal adjacency entries under
the exact posterior over DAGs given the data so far (``sb3_causal.design.posterior``: BGe or BIC score,
Koivisto-Sood order DP, Eaton-Murphy handling of interventions), so the return telescopes to final minus
initial score. ``info`` carries the score (``expected_correct``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_causal.design.posterior import EdgePosterior, ExactPosterior, expected_correct_entries

__all__ = ["GRAPH_PRIORS", "INTERVENTIONS", "NOISES", "CausalDesignEnv", "sample_dag"]

GRAPH_PRIORS = ("er", "sf")
NOISES = ("gaussian", "gumbel")
INTERVENTIONS = ("hard", "shift")
PAD_FLAG = -1.0


def sample_dag(d: int, prior: str, expected_degree: float, rng: np.random.Generator) -> np.ndarray:
    """A random DAG as a ``(d, d)`` bool adjacency (``A[u, v]``: ``u -> v``), nodes randomly relabelled.

    ``"er"``: each of the ``d (d - 1) / 2`` pairs of a random order is an edge with probability
    ``min(2 * expected_degree / (d - 1), 0.99)`` (``expected_degree`` edges per node on average: the
    authors' "degree 3" at ``d = 10`` is about 30 of 45 pairs). ``"sf"``: preferential attachment, each
    new node takes ``round(expected_degree)`` parents (fewer while there are fewer earlier nodes) among
    the earlier ones with probability proportional to their degree + 1.
    """
    if prior not in GRAPH_PRIORS:
        raise ValueError(f"unknown graph prior {prior!r}; choose one of {list(GRAPH_PRIORS)}")
    adj = np.zeros((d, d), dtype=bool)
    if prior == "er":
        p = min(2.0 * expected_degree / (d - 1), 0.99)
        adj = np.triu(rng.random((d, d)) < p, k=1)
    else:
        m = max(1, round(expected_degree))
        degree = np.zeros(d)
        for v in range(1, d):
            k = min(m, v)
            weights = degree[:v] + 1.0
            parents = rng.choice(v, size=k, replace=False, p=weights / weights.sum())
            adj[parents, v] = True
            degree[parents] += 1
            degree[v] += k
    perm = rng.permutation(d)
    return adj[np.ix_(perm, perm)]


class CausalDesignEnv(gym.Env):
    """Active causal structure learning on random linear SCMs (see the module docstring).

    :param n_variables: number of variables ``d``
    :param n_observational: observational samples drawn at reset (``n0``, >= 1)
    :param n_steps: interventional samples, one per step (``T``, >= 1)
    :param graph_prior: ``"er"`` (Erdos-Renyi) or ``"sf"`` (scale-free)
    :param expected_degree: expected edges per node
    :param weight_mean: mean of the edge weights (the authors' shifted prior uses 0.1)
    :param noise: ``"gaussian"`` or ``"gumbel"``
    :param intervention: ``"hard"`` (``do``) or ``"shift"`` (adds the value to the mechanism)
    :param value_scale: intervention values are ``value_scale`` times the action's value entries
    :param max_indegree: in-degree cap of the posterior (``None``: ``d - 1``, exact over all DAGs)
    :param score: the posterior's local score, ``"bge"`` or ``"bic"`` (:class:`ExactPosterior`)
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        n_variables: int = 10,
        n_observational: int = 50,
        n_steps: int = 10,
        graph_prior: str = "er",
        expected_degree: float = 3.0,
        weight_mean: float = 0.0,
        noise: str = "gaussian",
        intervention: str = "hard",
        value_scale: float = 2.0,
        max_indegree: int | None = None,
        score: str = "bge",
    ) -> None:
        super().__init__()
        if graph_prior not in GRAPH_PRIORS:
            raise ValueError(f"unknown graph prior {graph_prior!r}; choose one of {list(GRAPH_PRIORS)}")
        if noise not in NOISES:
            raise ValueError(f"unknown noise {noise!r}; choose one of {list(NOISES)}")
        if intervention not in INTERVENTIONS:
            raise ValueError(f"unknown intervention {intervention!r}; choose one of {list(INTERVENTIONS)}")
        if n_observational < 1 or n_steps < 1:
            raise ValueError(f"n_observational and n_steps must be >= 1, got {n_observational}, {n_steps}")
        if expected_degree <= 0:
            raise ValueError(f"expected_degree must be > 0, got {expected_degree}")
        self.n_variables = int(n_variables)
        self.n_observational = int(n_observational)
        self.n_steps = int(n_steps)
        self.graph_prior = graph_prior
        self.expected_degree = float(expected_degree)
        self.weight_mean = float(weight_mean)
        self.noise = noise
        self.intervention = intervention
        self.value_scale = float(value_scale)
        self.posterior = ExactPosterior(self.n_variables, max_indegree=max_indegree, score=score)  # checks d, the cap
        d, n = self.n_variables, self.n_observational + self.n_steps
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(n, d, 2), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2 * d,), dtype=np.float32)
        self.true_adjacency = np.zeros((d, d), dtype=bool)
        self.weights = np.zeros((d, d))
        self.noise_std = np.ones(d)
        self.last_posterior: EdgePosterior | None = None
        self._order = np.arange(d)
        self._data = np.zeros((n, d))
        self._intervened = np.zeros((n, d), dtype=bool)
        self._n_rows = 0
        self._score = 0.0
        self._t = 0
        self._started = False

    # ----------------------------------------------------------------------------------------- SCM
    def _draw_scm(self) -> None:
        rng, d = self.np_random, self.n_variables
        self.true_adjacency = sample_dag(d, self.graph_prior, self.expected_degree, rng)
        indegree = self.true_adjacency.sum(axis=0)
        scale = 1.0 / np.sqrt(np.maximum(indegree, 1))
        self.weights = np.where(self.true_adjacency, rng.normal(self.weight_mean, 1.0, (d, d)) * scale[None, :], 0.0)
        self.noise_std = np.sqrt(1.0 / rng.gamma(10.0, 1.0, size=d))  # sigma^2 ~ InvGamma(10, 1)
        self._order = _topological_order(self.true_adjacency)

    def _noise(self, n: int) -> np.ndarray:
        rng = self.np_random
        if self.noise == "gaussian":
            return rng.normal(size=(n, self.n_variables)) * self.noise_std
        beta = self.noise_std * np.sqrt(6.0) / np.pi  # Gumbel(0, beta) has variance pi^2 beta^2 / 6
        return (rng.gumbel(size=(n, self.n_variables)) - np.euler_gamma) * beta

    def sample(self, n: int, targets: np.ndarray | None = None, values: np.ndarray | None = None) -> np.ndarray:
        """``n`` samples of the current SCM, under an intervention on ``targets`` (bool ``(d,)``) if given."""
        eps = self._noise(n)
        x = np.zeros((n, self.n_variables))
        for v in self._order:
            x[:, v] = x @ self.weights[:, v] + eps[:, v]
            if targets is not None and targets[v]:
                x[:, v] = values[v] if self.intervention == "hard" else x[:, v] + values[v]
        return x

    # ------------------------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._draw_scm()
        self._data[:] = 0.0
        self._intervened[:] = False
        self._data[: self.n_observational] = self.sample(self.n_observational)
        self._n_rows = self.n_observational
        self._t = 0
        self._started = True
        self._score = self._posterior_score()
        return self._observation(), {"expected_correct": self._score}

    def step(self, action):
        if not self._started:
            raise gym.error.ResetNeeded("call reset() before step() in CausalDesign-v0")
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        d = self.n_variables
        if a.shape != (2 * d,) or not np.all(np.isfinite(a)):
            raise ValueError(f"action must be {2 * d} finite numbers, got shape {a.shape}")
        a = np.clip(a, -1.0, 1.0)
        targets = a[:d] > 0
        values = self.value_scale * a[d:]
        row = self._n_rows
        self._data[row] = self.sample(1, targets, values)[0]
        self._intervened[row] = targets
        self._n_rows += 1
        self._t += 1
        score = self._posterior_score()
        reward = score - self._score
        self._score = score
        terminated = self._t >= self.n_steps
        return self._observation(), float(reward), terminated, False, {"expected_correct": score}

    # ------------------------------------------------------------------------------------ helpers
    @property
    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """The samples collected so far and their intervention flags, ``(rows, d)`` each."""
        return self._data[: self._n_rows].copy(), self._intervened[: self._n_rows].copy()

    def _posterior_score(self) -> float:
        self.last_posterior = self.posterior(*self.data)
        return expected_correct_entries(self.last_posterior.edge_marginals, self.true_adjacency)

    def _observation(self) -> np.ndarray:
        obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        obs[: self._n_rows, :, 0] = self._data[: self._n_rows]
        obs[: self._n_rows, :, 1] = self._intervened[: self._n_rows]
        obs[self._n_rows :, :, 1] = PAD_FLAG
        return obs


def _topological_order(adj: np.ndarray) -> np.ndarray:
    indegree = adj.sum(axis=0).astype(int)
    order, ready = [], [v for v in range(adj.shape[0]) if indegree[v] == 0]
    while ready:
        v = ready.pop()
        order.append(v)
        for c in np.nonzero(adj[v])[0]:
            indegree[c] -= 1
            if indegree[c] == 0:
                ready.append(int(c))
    return np.array(order)
