"""Topological Hawkes Process (THP): the alarm-type causal graph from an event log on a device network.

The model (Cai et al., "THP: Topological Hawkes Processes for Learning Granger Causality on Event
Sequences", 2021). An event is ``(time t, device n, type w)``. The intensity of type ``w`` on device
``n`` is linear in the past events of its parent types, reached through the device topology::

    lambda_w(n, t) = mu_w + sum_{v in Pa(w)} sum_{h < max_hop} alpha[h, v, w] * phi_{h, v}(n, t)
    phi_{h, v}(n, t) = sum_{events j of type v, t_j < t} W_h[n, n_j] * kappa(t - t_j)

``W_0`` is the identity (same device), ``W_h`` for ``h >= 1`` the normalised adjacency of devices
exactly ``h`` hops apart (``D^-1/2 A_h D^-1/2``, the paper's formula, or ``D^-1 A_h D^-1``), and
``kappa(s) = exp(-decay * s)`` (``decay=0`` is a flat kernel: a parent excites its children for as
long as the log runs, which matches alarms that persist until treated).

Fitting, in three pieces:

1. **Excitation features, once.** ``phi[i, h, v]`` for every event ``i`` and the compensator
   integrals ``I[h, v, w] = sum_n int phi_{h, v}(n, t) dt`` (over the time pair ``(n, w)`` is at risk)
   do not depend on the parameters. They are
   computed exactly in blocks of events: within a block by a pairwise kernel matrix, across blocks by
   the exponential kernel's memoryless state (per device and type), so the cost is linear in the
   number of events.
2. **EM per family.** The log-likelihood splits into one term per child type ``w``::

       L_w = sum_{i: w_i = w} log lambda_w(n_i, t_i) - mu_w * E_w - sum_{h, v} alpha[h, v, w] * I[h, v, w]

   with ``E_w`` the at-risk device time (``n_devices * T`` without saturation).

   For a fixed parent set it is maximised by EM on the branching structure (each event is credited
   to the background or to a parent (type, hop) in proportion to its share of the intensity; the
   M-step is closed form). EM runs vectorised over a whole batch of candidate parent sets at once.
3. **Greedy search on the BIC-penalised likelihood.** A family's parameters are *units*
   ``(parent type v, hop h)``, one ``alpha`` each; the type edge ``v -> w`` is present when family
   ``w`` holds a unit of ``v`` at any hop. ``score = sum_w L_w - penalty * n_units`` with
   ``penalty = log(n_events) / 2`` (BIC). Penalising units rather than whole edges lets an edge that
   acts at one hop only (as in FaultAlarmRL) pay for one parameter. Hill climbing from the empty
   graph over unit additions, unit deletions and type-edge reversals, keeping the type graph
   acyclic; a move changes one or two families, so only their candidate moves are refitted. It
   stops when no move raises the score.

Two optional corrections for logs like FaultAlarmRL's: ``sequence_ids`` (independent episodes: no
excitation across them, each observed over its own span) and ``pair_cap`` (a (device, type) pair
holding that many alarms receives no more, so it stops being at risk at its ``pair_cap``-th event).

The result is a DAG by construction (additions and reversals that would close a cycle are never
taken). Only numpy and scipy are used; the true graph is never consulted.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sb3_causal.graph import CausalGraph
from sb3_causal.topology import HOP_NORMALIZATIONS, Topology

__all__ = ["THPResult", "TopologicalHawkes", "hop_weight_matrices"]


def hop_weight_matrices(topology: np.ndarray | None, n_devices: int, max_hop: int, normalization: str) -> np.ndarray:
    """Dense ``W[h, n, m]``: weight with which an event on device m excites device n at hop ``h < max_hop``,
    from :meth:`Topology.hop_weights <sb3_causal.topology.Topology.hop_weights>` (normalisations there).

    :param topology: symmetric 0/1 device adjacency (None: devices do not interact, only hop 0 has weight)
    :param n_devices: number of devices
    :param max_hop: number of hops (1: same device only; 2: adds direct neighbours; ...)
    :param normalization: one of :data:`~sb3_causal.topology.HOP_NORMALIZATIONS`
    """
    weights = Topology(topology, n_units=n_devices).hop_weights(max_hop, normalization)
    return np.stack([w.toarray() for w in weights])


@dataclass(frozen=True)
class THPResult:
    """What a THP fit found besides the graph.

    :param alpha: fitted ``alpha[h, parent, child]`` of the chosen graph
    :param mu: fitted background intensity per type
    :param log_likelihood: log-likelihood of the chosen graph
    :param score: penalised score (log-likelihood minus penalty times parameters)
    :param edge_gain: ``[v, w]`` score lost by deleting edge v -> w from the final graph (0 off the graph);
        a measure of edge strength
    :param n_moves: hill-climbing moves taken
    """

    alpha: np.ndarray
    mu: np.ndarray
    log_likelihood: float
    score: float
    edge_gain: np.ndarray
    n_moves: int


@dataclass
class _Family:
    """The fitted parameters of one child type for one parent set."""

    units: tuple[tuple[int, int], ...]  # (parent type, hop), sorted
    mu: float
    alpha: np.ndarray  # (len(units),)
    loglik: float

    @property
    def parents(self) -> list[int]:
        return sorted({v for v, _ in self.units})


class TopologicalHawkes:
    """Learn the type-level causal graph of an alarm log with a topological Hawkes process.

    :param max_hop: hops an event reaches: 1 = same device only, 2 = also direct neighbours (default)
    :param decay: rate of the exponential kernel ``exp(-decay * dt)``, in the log's time units; 0 is a flat
        kernel. The default 1e-3 (a memory of ~1000 time units, 20 FaultAlarmRL steps) suits alarms that persist
        until treated while forgetting older cascades; a log of several independent episodes is better given
        ``sequence_ids`` in ``fit`` with ``decay=0``
    :param pair_cap: if a (device, type) pair stops receiving events once it holds this many (FaultAlarmRL:
        ``model.pair_cap + 1``), its exposure ends at its ``pair_cap``-th event of a sequence; None: no saturation
    :param hop_normalization: topology weighting of hops >= 1, see :func:`hop_weight_matrices`
    :param penalty: ``"bic"`` (``log(n_events) / 2`` per parameter), ``"aic"`` (1 per parameter) or a number
    :param max_iter: maximum hill-climbing moves
    :param em_iter: EM iterations per candidate fit
    :param em_tol: EM stops early when no log-likelihood in the batch rises by more than this
    :param max_parents: optional cap on the parents of one type
    :param block_size: events per block when computing the excitation features
    """

    def __init__(
        self,
        max_hop: int = 2,
        decay: float = 1e-3,
        hop_normalization: str = "sym",
        penalty: str | float = "bic",
        max_iter: int = 500,
        em_iter: int = 200,
        em_tol: float = 1e-3,
        max_parents: int | None = None,
        block_size: int = 512,
        pair_cap: int | None = None,
    ) -> None:
        if max_hop < 1:
            raise ValueError(f"max_hop must be >= 1 (1 = same device only), got {max_hop}")
        if not decay >= 0:
            raise ValueError(f"decay must be >= 0, got {decay}")
        if hop_normalization not in HOP_NORMALIZATIONS:
            raise ValueError(f"hop_normalization must be one of {HOP_NORMALIZATIONS}, got {hop_normalization!r}")
        if isinstance(penalty, str):
            if penalty not in ("bic", "aic"):
                raise ValueError(f"penalty must be 'bic', 'aic' or a non-negative number, got {penalty!r}")
        elif not penalty >= 0:
            raise ValueError(f"a numeric penalty must be >= 0, got {penalty}")
        if max_iter < 0 or em_iter < 1 or block_size < 1:
            raise ValueError("max_iter must be >= 0, em_iter and block_size >= 1")
        if max_parents is not None and max_parents < 0:
            raise ValueError(f"max_parents must be >= 0 or None, got {max_parents}")
        self.max_hop = int(max_hop)
        self.decay = float(decay)
        self.hop_normalization = hop_normalization
        self.penalty = penalty
        self.max_iter = int(max_iter)
        self.em_iter = int(em_iter)
        self.em_tol = float(em_tol)
        self.max_parents = max_parents
        self.block_size = int(block_size)
        if pair_cap is not None and pair_cap < 1:
            raise ValueError(f"pair_cap must be >= 1 or None, got {pair_cap}")
        self.pair_cap = pair_cap
        self.result_: THPResult | None = None

    # ------------------------------------------------------------------ public API
    def fit(
        self, log: Any, type_names: Sequence[str] | None = None, sequence_ids: np.ndarray | None = None
    ) -> CausalGraph:
        """Learn the type graph of an alarm log.

        :param log: an ``AlarmLog`` (or any object with ``types``, ``times``, ``devices``, ``type_names``
            and ``topology`` attributes); events need not be sorted
        :param type_names: names of the types (default: ``log.type_names``); the graph's variables
        :param sequence_ids: optional ``(n_events,)`` label of the independent sequence (e.g. episode) of
            each event: events never excite events of another sequence, and each sequence is observed
            from its first to its last event. Default: the whole log is one sequence.
        :return: the learned DAG over the types; details in ``self.result_``
        """
        if type_names is None and not hasattr(log, "type_names"):
            raise TypeError(f"THP needs an alarm log (an AlarmLog with type_names, ...); got {type(log).__name__}")
        names = list(log.type_names if type_names is None else type_names)
        types, times, devices, topology, seq = _check_log(log, len(names), sequence_ids)
        n_types, n_devices = len(names), topology.shape[0]
        weights = hop_weight_matrices(topology, n_devices, self.max_hop, self.hop_normalization)
        phi = np.zeros((types.size, self.max_hop, n_types))
        integral = np.zeros((self.max_hop, n_types, n_types))
        exposure = np.zeros(n_types)
        for label in np.unique(seq):
            idx = np.flatnonzero(seq == label)
            t, d, v = times[idx], devices[idx], types[idx]
            phi[idx] = excitation_features(t, d, v, weights, n_types, self.decay, self.block_size)
            risk_end = saturation_times(t, d, v, n_devices, n_types, self.pair_cap)
            seq_integral, seq_exposure = compensator(t, d, v, weights, n_types, self.decay, risk_end, self.block_size)
            integral += seq_integral
            exposure += seq_exposure
        if not np.all(exposure > 0):
            raise ValueError("the alarm log spans zero time (its events are simultaneous); THP needs a time span")
        penalty = self._penalty_per_param(types.size)
        search = _HillClimb(
            phi=phi,
            integral=integral,
            types=types,
            n_types=n_types,
            exposure=exposure,
            param_cost=penalty,
            em_iter=self.em_iter,
            em_tol=self.em_tol,
            max_parents=self.max_parents,
        )
        n_moves = search.run(self.max_iter)
        alpha = np.zeros((self.max_hop, n_types, n_types))
        mu = np.zeros(n_types)
        for w, fam in enumerate(search.families):
            mu[w] = fam.mu
            for (v, h), a in zip(fam.units, fam.alpha):
                alpha[h, v, w] = a
        loglik = float(sum(f.loglik for f in search.families))
        adjacency = search.adjacency
        self.result_ = THPResult(
            alpha=alpha,
            mu=mu,
            log_likelihood=loglik,
            score=loglik - penalty * sum(len(f.units) for f in search.families),
            edge_gain=np.where(adjacency, -search.delete_gain, 0.0),
            n_moves=n_moves,
        )
        return CausalGraph.from_adjacency(names, adjacency)

    def _penalty_per_param(self, n_events: int) -> float:
        if self.penalty == "bic":
            return 0.5 * float(np.log(max(n_events, 2)))
        if self.penalty == "aic":
            return 1.0
        return float(self.penalty)


# ---------------------------------------------------------------------- features
def excitation_features(
    times: np.ndarray,
    devices: np.ndarray,
    types: np.ndarray,
    weights: np.ndarray,
    n_types: int,
    decay: float,
    block_size: int = 512,
) -> np.ndarray:
    """Excitation ``phi[i, h, v]`` of every event by earlier events of one sequence.

    Events must be sorted by time. Only strictly earlier events excite (simultaneous events do not).

    :param times: event times, non-decreasing
    :param devices: device of each event
    :param types: type of each event
    :param weights: hop weights ``W[h, n, m]`` (see :func:`hop_weight_matrices`)
    :param n_types: number of types
    :param decay: exponential kernel rate (0: flat kernel)
    :param block_size: events per exact pairwise block
    :return: ``phi`` of shape ``(n_events, n_hops, n_types)``
    """
    n_events, n_hops, n_devices = times.size, weights.shape[0], weights.shape[1]
    phi = np.zeros((n_events, n_hops, n_types))
    onehot = np.zeros((n_events, n_types))
    onehot[np.arange(n_events), types] = 1.0
    # Past events before the current block, summarised at time t_ref: state[m, v] = sum kappa(t_ref - t_j).
    state = np.zeros((n_devices, n_types))
    t_ref = float(times[0])
    start = 0
    while start < n_events:
        stop = min(start + block_size, n_events)
        while stop < n_events and times[stop] == times[stop - 1]:
            stop += 1  # keep simultaneous events in one block so that none excites another
        t, d = times[start:stop], devices[start:stop]
        if state.any():
            carried = np.exp(-decay * (t - t_ref))  # (B,)
            phi[start:stop] = np.einsum("hbm,mv->bhv", weights[:, d, :], state) * carried[:, None, None]
        dt = t[:, None] - t[None, :]
        kernel = np.where(dt > 0, np.exp(-decay * np.maximum(dt, 0.0)), 0.0)  # (B, B), strictly earlier only
        for h in range(n_hops):
            phi[start:stop, h, :] += (kernel * weights[h][d[:, None], d[None, :]]) @ onehot[start:stop]
        t_new = float(t[-1])
        state *= np.exp(-decay * (t_new - t_ref))
        np.add.at(state, (d, types[start:stop]), np.exp(-decay * (t_new - t)))
        t_ref = t_new
        start = stop
    return phi


def compensator(
    times: np.ndarray,
    devices: np.ndarray,
    types: np.ndarray,
    weights: np.ndarray,
    n_types: int,
    decay: float,
    risk_end: np.ndarray,
    block_size: int = 512,
) -> tuple[np.ndarray, np.ndarray]:
    """Compensator integrals of one sequence: ``I[h, v, w]`` per unit and child type, and exposure per child type.

    ``I[h, v, w] = sum_n int_{t_0}^{risk_end[n, w]} phi_{h, v}(n, t) dt``: the expected number of type-``w``
    events that the type-``v`` events trigger through hop ``h`` per unit of ``alpha``, counted while the
    child pair ``(n, w)`` is at risk (until the end of the sequence, or earlier when it saturates).

    :param times: event times of the sequence, non-decreasing
    :param devices: device of each event
    :param types: type of each event
    :param weights: hop weights ``W[h, n, m]``
    :param n_types: number of types
    :param decay: exponential kernel rate (0: flat kernel)
    :param risk_end: ``(n_devices, n_types)`` time at which each pair stops being at risk
    :param block_size: events per vectorised chunk
    :return: ``I`` of shape ``(n_hops, n_types, n_types)`` and exposure ``(n_types,)`` (at-risk device time)
    """
    n_hops = weights.shape[0]
    integral = np.zeros((n_hops, n_types, n_types))
    for start in range(0, times.size, block_size):
        t, d, v = (
            times[start : start + block_size],
            devices[start : start + block_size],
            types[start : start + block_size],
        )
        span = np.maximum(risk_end[None, :, :] - t[:, None, None], 0.0)  # (B, N, W)
        mass = span if decay == 0 else -np.expm1(-decay * span) / decay  # int_{t_j}^{end} kappa
        onehot = np.zeros((t.size, n_types))
        onehot[np.arange(t.size), v] = 1.0
        for h in range(n_hops):
            per_event = np.einsum("bn,bnw->bw", weights[h][:, d].T, mass)  # (B, W)
            integral[h] += onehot.T @ per_event
    exposure = np.maximum(risk_end - times[0], 0.0).sum(axis=0)
    return integral, exposure


def saturation_times(
    times: np.ndarray, devices: np.ndarray, types: np.ndarray, n_devices: int, n_types: int, cap: int | None
) -> np.ndarray:
    """``(n_devices, n_types)`` time of each pair's ``cap``-th event in a sequence, or the sequence's last time."""
    end = np.full((n_devices, n_types), float(times[-1]))
    if cap is None:
        return end
    pair = devices * n_types + types
    order = np.lexsort((times, pair))
    sorted_pair = pair[order]
    first = np.searchsorted(sorted_pair, sorted_pair, side="left")
    rank = np.arange(pair.size) - first  # 0-based rank of the event within its pair
    hit = rank == cap - 1
    end.reshape(-1)[sorted_pair[hit]] = times[order][hit]
    return end


# ---------------------------------------------------------------------- EM
def fit_families(
    x: np.ndarray,
    cost: np.ndarray,
    exposure: float,
    mu0: np.ndarray,
    alpha0: np.ndarray,
    n_iter: int,
    tol: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """EM for a batch of linear Hawkes families of one child type.

    :param x: ``(C, n, K)`` excitation of the child's ``n`` events by the ``K`` parameters of each candidate
    :param cost: ``(C, K)`` compensator integral of each parameter (0 for padding, whose ``x`` is 0 too)
    :param exposure: integral of the background rate (``n_devices * T``)
    :param mu0: ``(C,)`` initial background rates (positive)
    :param alpha0: ``(C, K)`` initial excitations (non-negative)
    :param n_iter: maximum EM iterations
    :param tol: stop when no candidate's log-likelihood improves by more than this
    :return: ``mu (C,)``, ``alpha (C, K)``, ``log-likelihood (C,)``
    """
    mu, alpha = mu0.copy(), alpha0.copy()
    safe_cost = np.where(cost > 0, cost, 1.0)
    prev = np.full(mu.shape, -np.inf)
    for _ in range(n_iter):
        lam = mu[:, None] + np.einsum("cnk,ck->cn", x, alpha)  # (C, n)
        loglik = np.log(lam).sum(axis=1) - mu * exposure - (alpha * cost).sum(axis=1)
        if np.all(loglik - prev <= tol):
            break
        prev = loglik
        inv = 1.0 / lam
        mu = mu * inv.sum(axis=1) / exposure
        alpha = np.where(cost > 0, alpha * np.einsum("cnk,cn->ck", x, inv) / safe_cost, 0.0)
    lam = mu[:, None] + np.einsum("cnk,ck->cn", x, alpha)
    loglik = np.log(lam).sum(axis=1) - mu * exposure - (alpha * cost).sum(axis=1)
    return mu, alpha, loglik


class _HillClimb:
    """Greedy search over acyclic type graphs; the score decomposes into one family per child type.

    A family's parameters are *units* ``(parent type, hop)``; the type edge ``v -> w`` is present when
    family ``w`` holds a unit of ``v`` at any hop. Moves: add a unit, delete a unit, reverse a type
    edge (delete all units of ``v`` from ``w``, add the best unit of ``w`` to ``v``).
    """

    def __init__(
        self,
        phi: np.ndarray,
        integral: np.ndarray,
        types: np.ndarray,
        n_types: int,
        exposure: np.ndarray,
        param_cost: float,
        em_iter: int,
        em_tol: float,
        max_parents: int | None,
    ) -> None:
        self.n_types = n_types
        self.n_hops = phi.shape[1]
        self.param_cost = param_cost
        self.em_iter = em_iter
        self.em_tol = em_tol
        self.max_parents = n_types - 1 if max_parents is None else max_parents
        self.integral = integral  # (H, V, W): compensator of unit (v, h) in family w
        self.exposure = exposure  # (W,): background exposure of each family
        self.child_phi = [phi[types == w] for w in range(n_types)]  # (n_w, H, V) per child type
        self.adjacency = np.zeros((n_types, n_types), dtype=bool)
        v, h = n_types, self.n_hops
        self.add_gain = np.full((v, h, v), -np.inf)  # [parent, hop, child]
        self.delete_unit_gain = np.full((v, h, v), -np.inf)
        self.delete_gain = np.full((v, v), -np.inf)  # delete every unit of the type edge
        self.fits: dict[tuple[str, int, int, int], _Family] = {}
        self.families = [self._fit(w, [()], None)[0] for w in range(n_types)]
        for w in range(n_types):
            self._refresh(w)

    # ------------------------------------------------------------------ family fits
    def _fit(self, w: int, unit_sets: list[tuple[tuple[int, int], ...]], warm: _Family | None) -> list[_Family]:
        """Fit family ``w`` for each unit set (all of one size), warm-started from ``warm`` where they overlap."""
        xs = self.child_phi[w]
        n_w, k, c = xs.shape[0], len(unit_sets[0]), len(unit_sets)
        hops = np.array([[u[1] for u in units] for units in unit_sets], dtype=np.int64).reshape(c, k)
        pars = np.array([[u[0] for u in units] for units in unit_sets], dtype=np.int64).reshape(c, k)
        x = xs[:, hops, pars].transpose(1, 0, 2)  # (C, n_w, K)
        cost = self.integral[hops, pars, w]  # (C, K)
        exposure = float(self.exposure[w])
        # EM updates are multiplicative, so warm starts are floored away from 0 (a zero never recovers).
        base_rate = max(n_w, 1) / exposure
        mu0 = np.full(c, base_rate if warm is None else max(warm.mu, 1e-3 * base_rate))
        share = 0.5 * max(n_w, 1) / np.maximum(cost, 1e-12) / max(k, 1)  # a new unit explains a share of events
        alpha0 = share.copy()
        if warm is not None:
            known = dict(zip(warm.units, warm.alpha))
            for i, units in enumerate(unit_sets):
                for j, u in enumerate(units):
                    if u in known:
                        alpha0[i, j] = max(known[u], 1e-3 * share[i, j])
        mu, alpha, loglik = fit_families(x, cost, exposure, mu0, alpha0, self.em_iter, self.em_tol)
        return [
            _Family(units=units, mu=float(mu[i]), alpha=alpha[i], loglik=float(loglik[i]))
            for i, units in enumerate(unit_sets)
        ]

    def _refresh(self, w: int) -> None:
        """Recompute the add/delete candidates of family ``w`` after it changed."""
        fam = self.families[w]
        parents = fam.parents
        self.add_gain[:, :, w] = -np.inf
        self.delete_unit_gain[:, :, w] = -np.inf
        self.delete_gain[:, w] = -np.inf
        new = [
            (v, h)
            for v in range(self.n_types)
            for h in range(self.n_hops)
            if v != w and (v, h) not in fam.units and (v in parents or len(parents) < self.max_parents)
        ]
        if new:
            sets = [tuple(sorted((*fam.units, u))) for u in new]
            for (v, h), f in zip(new, self._fit(w, sets, fam)):
                self.add_gain[v, h, w] = f.loglik - fam.loglik - self.param_cost
                self.fits["add", v, h, w] = f
        if fam.units:
            sets = [tuple(u for u in fam.units if u != dropped) for dropped in fam.units]
            for (v, h), f in zip(fam.units, self._fit(w, sets, fam)):
                self.delete_unit_gain[v, h, w] = f.loglik - fam.loglik + self.param_cost
                self.fits["delete", v, h, w] = f
        by_size: dict[int, list[int]] = {}
        for v in parents:
            by_size.setdefault(sum(u[0] == v for u in fam.units), []).append(v)
        for n_units, vs in by_size.items():
            sets = [tuple(u for u in fam.units if u[0] != v) for v in vs]
            for v, f in zip(vs, self._fit(w, sets, fam)):
                self.delete_gain[v, w] = f.loglik - fam.loglik + n_units * self.param_cost
                self.fits["delete", v, -1, w] = f

    # ------------------------------------------------------------------ search
    def run(self, max_iter: int) -> int:
        moves = 0
        eye = np.eye(self.n_types, dtype=bool)
        while moves < max_iter:
            reach = CausalGraph.reachability(self.adjacency)
            valid = (self.adjacency | ~reach.T) & ~eye  # [v, w]: adding a unit of v to w keeps the graph acyclic
            add = np.where(valid[:, None, :], self.add_gain, -np.inf)
            best_add = np.unravel_index(np.argmax(add), add.shape)
            best_del = np.unravel_index(np.argmax(self.delete_unit_gain), self.delete_unit_gain.shape)
            rev_gain, rev = self._best_reversal()
            gains = (add[best_add], self.delete_unit_gain[best_del], rev_gain)
            k = int(np.argmax(gains))
            if not gains[k] > 1e-9:
                break
            if k == 0:
                v, h, w = (int(i) for i in best_add)
                self._set_family(w, self.fits["add", v, h, w])
            elif k == 1:
                v, h, w = (int(i) for i in best_del)
                self._set_family(w, self.fits["delete", v, h, w])
            else:
                v, w, h = rev
                self._set_family(w, self.fits["delete", v, -1, w])
                self._set_family(v, self.fits["add", w, h, v])
            moves += 1
        return moves

    def _best_reversal(self) -> tuple[float, tuple[int, int, int]]:
        """The best reversal of a type edge ``v -> w`` into ``w -> v`` that keeps the graph acyclic."""
        best_hop = np.argmax(self.add_gain, axis=1)  # [w, v]: best hop of w as a parent of v
        gain = np.where(self.adjacency, self.delete_gain + self.add_gain.max(axis=1).T, -np.inf)
        for flat in np.argsort(gain, axis=None)[::-1]:
            v, w = divmod(int(flat), self.n_types)
            if not gain[v, w] > 1e-9:
                break
            adj = self.adjacency.copy()
            adj[v, w] = False
            if not CausalGraph.reachability(adj)[v, w]:  # no other path v ~> w, so w -> v closes no cycle
                return float(gain[v, w]), (v, w, int(best_hop[w, v]))
        return -np.inf, (-1, -1, -1)

    def _set_family(self, w: int, fam: _Family) -> None:
        self.families[w] = fam
        self.adjacency[:, w] = False
        self.adjacency[list(fam.parents), w] = True
        self._refresh(w)


def _check_log(
    log: Any, n_types: int, sequence_ids: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate an alarm log and return it sorted by time: types, times, devices, topology, sequence ids."""
    for attr in ("types", "times", "devices", "topology"):
        if not hasattr(log, attr):
            raise TypeError(f"THP needs an alarm log with attribute {attr!r} (an AlarmLog); got {type(log).__name__}")
    types = np.asarray(log.types)
    times = np.asarray(log.times, dtype=np.float64)
    devices = np.asarray(log.devices)
    topology = np.asarray(log.topology)
    if types.size == 0:
        raise ValueError("the alarm log is empty: THP needs events")
    if not (types.shape == times.shape == devices.shape and types.ndim == 1):
        raise ValueError(
            f"alarm log arrays must be 1-D and equally long; got types {types.shape}, times {times.shape}, "
            f"devices {devices.shape}"
        )
    if not np.all(np.isfinite(times)):
        raise ValueError("alarm log times must be finite")
    if topology.ndim != 2 or topology.shape[0] != topology.shape[1]:
        raise ValueError(f"alarm log topology must be a square device adjacency matrix, got shape {topology.shape}")
    if not (np.issubdtype(types.dtype, np.integer) and np.issubdtype(devices.dtype, np.integer)):
        raise ValueError("alarm log types and devices must be integer indices")
    if types.min() < 0 or types.max() >= n_types:
        raise ValueError(f"alarm log types must be in [0, {n_types}) for {n_types} type names")
    if devices.min() < 0 or devices.max() >= topology.shape[0]:
        raise ValueError(f"alarm log devices must be in [0, {topology.shape[0]}) for the topology given")
    if sequence_ids is None:
        seq = np.zeros(types.size, dtype=np.int64)
    else:
        seq = np.asarray(sequence_ids)
        if seq.shape != types.shape:
            raise ValueError(f"sequence_ids must have one label per event ({types.size}), got shape {seq.shape}")
    by_sequence = np.argsort(seq, kind="stable")
    t, s = times[by_sequence], seq[by_sequence]
    back = np.flatnonzero((np.diff(t) < 0) & (s[1:] == s[:-1]))
    if back.size:  # a log is a set of timestamped events: sorting is right, unless clocks restarted
        k = int(by_sequence[back[0] + 1])
        warnings.warn(
            f"alarm log times go backwards ({back.size} times; first at event {k}, time {times[k]:g}, after "
            f"time {t[back[0]]:g}): THP sorts the events by time. If the log concatenates recordings whose "
            "clocks restart (e.g. episodes from time 0), label them with sequence_ids, or they interleave.",
            stacklevel=3,
        )
    order = np.argsort(times, kind="stable")
    return types[order].astype(np.int64), times[order], devices[order].astype(np.int64), topology, seq[order]
