"""Greedy expected-information-gain choice of the next intervention, from the exact posterior.

:func:`information_gain` scores each variable ``j`` by how much one more sample under ``do(x_j = v)`` is
expected to shrink the posterior's uncertainty about the edges: the sum over the ``d (d - 1)`` adjacency
entries of the binary entropy of ``P(u -> v | data)``, now minus its expectation after the new sample. The
expectation is a Monte Carlo average over ``n_outcomes`` hypothetical outcomes, each drawn from a DAG sampled
from the posterior (:meth:`EdgePosterior.sample_dags`) with linear-Gaussian mechanisms fitted by ridge least
squares on that node's non-intervened rows, with value ``v = +-value_scale`` (random sign).

:class:`InformationGainChooser` implements the ``InterventionChooser`` protocol of
``sb3_causal.discovery.choosers``: ``update`` recomputes the scores from the evidence, ``choose`` keeps, in
each candidate row, the candidate (unit, variable) pair whose variable has the largest gain.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sb3_causal.design.posterior import EdgePosterior, ExactPosterior

__all__ = ["InformationGainChooser", "edge_entropy", "information_gain"]


def edge_entropy(edge_marginals: np.ndarray) -> float:
    """Sum of the binary entropies (nats) of the off-diagonal edge marginals."""
    p = np.clip(np.asarray(edge_marginals, dtype=np.float64), 1e-12, 1 - 1e-12)
    h = -(p * np.log(p) + (1 - p) * np.log1p(-p))
    np.fill_diagonal(h, 0.0)
    return float(h.sum())


def _fit_mechanisms(
    data: np.ndarray, intervened: np.ndarray, adjacency: np.ndarray, ridge: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge least-squares weights ``(d, d)``, intercepts and residual std of each node given its parents."""
    d = data.shape[1]
    weights, bias, std = np.zeros((d, d)), np.zeros(d), np.ones(d)
    for v in range(d):
        rows = data[~intervened[:, v]]
        parents = np.nonzero(adjacency[:, v])[0]
        if len(rows) < 2:
            continue
        x = np.column_stack([np.ones(len(rows)), rows[:, parents]])
        coef = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ rows[:, v])
        resid = rows[:, v] - x @ coef
        bias[v], weights[parents, v] = coef[0], coef[1:]
        std[v] = max(float(np.sqrt(np.mean(resid**2))), 1e-3)
    return weights, bias, std


def information_gain(
    posterior: ExactPosterior,
    data: np.ndarray,
    intervened: np.ndarray,
    rng: np.random.Generator,
    n_outcomes: int = 4,
    value_scale: float = 2.0,
    ridge: float = 1e-3,
    current: EdgePosterior | None = None,
) -> np.ndarray:
    """Expected decrease of the edge entropy from one more sample under ``do(x_j = +-value_scale)``, per ``j``.

    :param posterior: the exact posterior to score with
    :param data: ``(n, d)`` samples so far; ``intervened``: their ``(n, d)`` intervention flags
    :param rng: draws the DAGs, the values' signs and the noises
    :param n_outcomes: hypothetical outcomes averaged per variable
    :param current: the posterior of ``data`` if already computed
    :return: ``(d,)`` gains in nats
    """
    if n_outcomes < 1:
        raise ValueError(f"n_outcomes must be >= 1, got {n_outcomes}")
    current = posterior(data, intervened) if current is None else current
    h0 = edge_entropy(current.edge_marginals)
    d = data.shape[1]
    dags, orders = current.sample_dags(n_outcomes, rng)
    mechanisms = [_fit_mechanisms(data, intervened, dags[m], ridge) for m in range(n_outcomes)]
    gains = np.zeros(d)
    for j in range(d):
        target = np.zeros(d, dtype=bool)
        target[j] = True
        for m in range(n_outcomes):
            weights, bias, std = mechanisms[m]
            x = np.zeros(d)
            value = value_scale * rng.choice((-1.0, 1.0))
            for v in orders[m]:
                x[v] = value if v == j else bias[v] + x @ weights[:, v] + std[v] * rng.normal()
            after = posterior(np.vstack([data, x]), np.vstack([intervened, target]))
            gains[j] += (h0 - edge_entropy(after.edge_marginals)) / n_outcomes
    return gains


class InformationGainChooser:
    """``InterventionChooser`` that lets a lifted row intervene on the candidate with the largest expected gain.

    The gains are per variable (type level): every unit's copy of a variable shares its variable's gain.
    Until the first update, ``choose`` returns the candidates unchanged (uniform lifts: nothing is known yet).

    :param n_variables: variables ``d`` of the causal graph
    :param n_units: units sharing the type-level graph (candidates have ``n_units * n_variables`` columns,
        unit-major: column ``u * n_variables + i``)
    :param n_outcomes: hypothetical outcomes averaged per variable (:func:`information_gain`)
    :param value_scale: magnitude of the hypothetical intervention values
    :param max_indegree: in-degree cap of the posterior (``None``: ``d - 1``)
    :param seed: seed of the Monte Carlo draws
    """

    def __init__(
        self,
        n_variables: int,
        n_units: int = 1,
        n_outcomes: int = 4,
        value_scale: float = 2.0,
        max_indegree: int | None = None,
        seed: int | None = None,
    ) -> None:
        if n_units < 1:
            raise ValueError(f"n_units must be >= 1, got {n_units}")
        self.posterior = ExactPosterior(n_variables, max_indegree=max_indegree)
        self.n_variables = int(n_variables)
        self.n_units = int(n_units)
        self.n_outcomes = int(n_outcomes)
        self.value_scale = float(value_scale)
        self.gains: np.ndarray | None = None
        self._rng = np.random.default_rng(seed)

    def update_data(self, data: np.ndarray, intervened: np.ndarray) -> np.ndarray:
        """Recompute the gains from ``(n, d)`` samples and their intervention flags; return them."""
        self.gains = information_gain(
            self.posterior, data, intervened, self._rng, n_outcomes=self.n_outcomes, value_scale=self.value_scale
        )
        return self.gains

    def update(self, learner: Any) -> None:
        """Recompute the gains from a learner's evidence: ``learner.design_data() -> (values, intervened)``."""
        source = getattr(learner, "design_data", None)
        if not callable(source):
            raise TypeError(
                f"InformationGainChooser needs the learner's samples: {type(learner).__name__} has no "
                "design_data() -> (values (n, d), intervened (n, d)); call update_data(values, intervened) instead"
            )
        self.update_data(*source())

    def choose(self, candidates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Keep, per row, one candidate pair of largest gain (ties broken by ``rng``); empty rows stay empty."""
        cand = np.asarray(candidates, dtype=bool)
        width = self.n_units * self.n_variables
        if cand.ndim != 2 or cand.shape[1] != width:
            raise ValueError(f"candidates must have shape (batch, {width}), got {cand.shape}")
        if self.gains is None:
            return cand.copy()
        score = np.tile(self.gains, self.n_units)[None, :] + 1e-9 * rng.random(cand.shape)  # random tie-break
        score = np.where(cand, score, -np.inf)
        out = np.zeros_like(cand)
        rows = np.nonzero(cand.any(axis=1))[0]
        out[rows, np.argmax(score[rows], axis=1)] = True
        return out
