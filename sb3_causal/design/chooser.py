"""Greedy expected-information-gain choice of the next intervention, from the exact posterior.

:func:`information_gain` scores each variable ``j`` by how much one more sample under ``do(x_j = v)`` is
expected to shrink the posterior's uncertainty about the edges: the sum over the ``d (d - 1)`` adjacency
entries of the binary entropy of ``P(u -> v | data)``, now minus its expectation after the new sample. The
expectation is a Monte Carlo average over ``n_outcomes`` hypothetical outcomes, each drawn from a DAG sampled
from the posterior (:meth:`EdgePosterior.sample_dags`) with linear-Gaussian mechanisms fitted by ridge least
squares on that node's non-intervened rows, with value ``v = +-value_scale`` (random sign).

:class:`InformationGainChooser` implements the ``InterventionChooser`` protocol of
``sb3_causal.discovery.choosers``: ``update`` recomputes the scores from the samples the chooser holds,
``choose`` keeps, in each candidate row, the candidate (unit, variable) pair whose variable has the largest
gain. The online learner keeps only summary statistics, so the chooser keeps its own samples: an env whose
every observation is one sample of the SCM under the previous action's intervention (``FactoredSCM-v0``)
feeds it through :class:`DesignDataCallback` (next to ``CausalGraphCallback`` or a causal agent's own), or
by hand through :meth:`InformationGainChooser.observe_transitions` / :meth:`InformationGainChooser.observe`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from sb3_causal.callbacks import raw_next_observations
from sb3_causal.design.posterior import EdgePosterior, ExactPosterior

__all__ = ["DesignDataCallback", "InformationGainChooser", "edge_entropy", "information_gain"]


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
    Until the first update with data, ``choose`` returns the candidates unchanged (uniform lifts: nothing is
    known yet).

    The chooser holds the samples it scores (:meth:`observe`): each row is one sample of the ``d`` variables
    with a flag per variable set by an intervention. With several units, each (sample, unit) is a row: the
    units are assumed to be independent copies of the type-level SCM (no effects across units).

    :param n_variables: variables ``d`` of the causal graph
    :param n_units: units sharing the type-level graph (candidates have ``n_units * n_variables`` columns,
        unit-major: column ``u * n_variables + i``)
    :param n_outcomes: hypothetical outcomes averaged per variable (:func:`information_gain`)
    :param value_scale: magnitude of the hypothetical intervention values (0 for ``do(x = 0)`` envs)
    :param max_indegree: in-degree cap of the posterior (``None``: ``d - 1``)
    :param score: the posterior's local score, ``"bge"`` or ``"bic"``
    :param max_rows: keep only the latest ``max_rows`` samples (``None``: all)
    :param seed: seed of the Monte Carlo draws
    """

    def __init__(
        self,
        n_variables: int,
        n_units: int = 1,
        n_outcomes: int = 4,
        value_scale: float = 2.0,
        max_indegree: int | None = None,
        score: str = "bge",
        max_rows: int | None = None,
        seed: int | None = None,
    ) -> None:
        if n_units < 1:
            raise ValueError(f"n_units must be >= 1, got {n_units}")
        if max_rows is not None and max_rows < 2:
            raise ValueError(f"max_rows must be >= 2 or None, got {max_rows}")
        self.posterior = ExactPosterior(n_variables, max_indegree=max_indegree, score=score)
        self.n_variables = int(n_variables)
        self.n_units = int(n_units)
        self.n_outcomes = int(n_outcomes)
        self.value_scale = float(value_scale)
        self.max_rows = max_rows
        self.gains: np.ndarray | None = None
        self._rng = np.random.default_rng(seed)
        self._values: list[np.ndarray] = []
        self._flags: list[np.ndarray] = []
        self._n_rows = 0
        self._n_scored = -1  # rows when the gains were last computed

    @property
    def n_rows(self) -> int:
        """Samples held."""
        return self._n_rows

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """The samples held, ``(rows, d)`` values and ``(rows, d)`` intervention flags."""
        d = self.n_variables
        if not self._values:
            return np.zeros((0, d)), np.zeros((0, d), dtype=bool)
        return np.concatenate(self._values), np.concatenate(self._flags)

    def observe(self, values: np.ndarray, intervened: np.ndarray) -> None:
        """Add ``(n, d)`` samples and their ``(n, d)`` bool intervention flags."""
        values = np.asarray(values, dtype=np.float64)
        intervened = np.asarray(intervened, dtype=bool)
        d = self.n_variables
        if values.ndim != 2 or values.shape[1] != d or intervened.shape != values.shape:
            raise ValueError(
                f"observe takes (n, {d}) values and (n, {d}) flags, got {values.shape} and {intervened.shape}"
            )
        if not np.all(np.isfinite(values)):
            raise ValueError("observe: the samples contain non-finite values (nan or inf)")
        self._values.append(values)
        self._flags.append(intervened)
        self._n_rows += len(values)
        if self.max_rows is not None and self._n_rows > self.max_rows:
            v, f = self.data()
            self._values, self._flags = [v[-self.max_rows :]], [f[-self.max_rows :]]
            self._n_rows = self.max_rows

    def observe_transitions(self, layout: Any, actions: np.ndarray, next_obs: np.ndarray) -> None:
        """Add the samples of transitions whose next observation is one SCM sample under the action.

        :param layout: the env's ``CausalVariables`` (maps observations to values and actions to targets)
        :param actions: ``(n,)`` discrete actions; ``next_obs``: ``(n, obs_dim)`` the observations they led to
        """
        if layout.n_variables != self.n_variables or layout.n_units != self.n_units:
            raise ValueError(
                f"the layout has {layout.n_units} units x {layout.n_variables} variables, the chooser "
                f"{self.n_units} x {self.n_variables}"
            )
        values = layout.values(np.asarray(next_obs))  # (n, units, d)
        unit, var = layout.targets(np.asarray(actions).reshape(-1))
        flags = np.zeros(values.shape, dtype=bool)
        hit = var >= 0
        flags[np.flatnonzero(hit), unit[hit], var[hit]] = True
        self.observe(values.reshape(-1, self.n_variables), flags.reshape(-1, self.n_variables))

    def update_data(self, data: np.ndarray, intervened: np.ndarray) -> np.ndarray:
        """Recompute the gains from ``(n, d)`` samples and their intervention flags; return them."""
        self.gains = information_gain(
            self.posterior, data, intervened, self._rng, n_outcomes=self.n_outcomes, value_scale=self.value_scale
        )
        return self.gains

    def update(self, learner: Any = None) -> None:
        """Recompute the gains from the samples held (the protocol's hook; the learner is not read).

        Raises when no sample was ever given: a chooser nobody feeds would silently stay uniform.
        """
        if self._n_rows == 0:
            raise RuntimeError(
                "InformationGainChooser holds no samples: feed it with DesignDataCallback(chooser) in learn(), "
                "or observe_transitions(layout, actions, next_obs) / observe(values, intervened)"
            )
        if self._n_rows != self._n_scored:
            self.update_data(*self.data())
            self._n_scored = self._n_rows

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


class DesignDataCallback(BaseCallback):
    """Feeds an :class:`InformationGainChooser` the samples of each env step of any SB3 algorithm.

    Each step's new observation (the terminal one at an episode end; through ``VecNormalize`` when used) is one
    sample of the SCM under the step's action (``FactoredSCM-v0``'s contract). Pass it to ``learn`` next to
    the graph callback, e.g. ``CausalDQN(..., chooser=chooser).learn(n, callback=DesignDataCallback(chooser))``.

    :param chooser: the chooser to feed
    :param layout: the env's ``CausalVariables`` (default: read from the training env)
    :param refresh_every: also recompute the chooser's gains every this many new samples (``None``: only at
        the graph updates, when the agent calls ``chooser.update``). Between two computations every lifted
        row goes to the same variable, so a long graph-update period concentrates the lifts.
    """

    def __init__(
        self, chooser: InformationGainChooser, layout: Any = None, refresh_every: int | None = None, verbose: int = 0
    ) -> None:
        super().__init__(verbose)
        if refresh_every is not None and refresh_every < 1:
            raise ValueError(f"refresh_every must be >= 1 or None, got {refresh_every}")
        self.chooser = chooser
        self.layout = layout
        self.refresh_every = refresh_every
        self._last_refresh = 0

    def _init_callback(self) -> None:
        if self.layout is None:
            from sb3_causal.variables import CausalVariables

            self.layout = CausalVariables.from_env(self.training_env)

    def _on_step(self) -> bool:
        vec_normalize = self.model.get_vec_normalize_env()
        new_obs = vec_normalize.get_original_obs() if vec_normalize is not None else self.locals["new_obs"]
        dones = np.asarray(self.locals["dones"], dtype=bool)
        next_obs, valid = raw_next_observations(np.asarray(new_obs), dones, self.locals["infos"], vec_normalize)
        next_obs = np.asarray(next_obs, dtype=np.float64)
        actions = np.asarray(self.locals["actions"]).reshape(-1)
        if valid.any():
            self.chooser.observe_transitions(self.layout, actions[valid], next_obs[valid])
        if self.refresh_every is not None and self.chooser.n_rows - self._last_refresh >= self.refresh_every:
            self.chooser.update()
            self._last_refresh = self.chooser.n_rows
        return True
