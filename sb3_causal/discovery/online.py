"""Online interventional structure learning: ATT orientation, then l0/BIC pruning.

The seed paper's loop (Algorithm 1, Eq. 5-6): the agent's actions are interventions; the average
treatment effect on the treated (ATT) of intervening on variable i tells whether i is an ancestor
of j (Theorem 1); an l0-penalised likelihood then removes the indirect ancestors (Theorem 2).

How it is estimated here, from transitions ``(s_t, a_t, s_t+1)`` mapped through a
:class:`~sb3_causal.variables.CausalVariables` layout onto values ``x[unit, variable]``:

* **Rows.** Every (transition, unit) is a row. The outcome of row (t, n) for variable j is the
  sum of j over the units within ``effect_hops`` of n, before (``y0``) and after (``y1``).
* **Hop reach.** ``n_hops`` (the topology hops a cause reaches) is declared by the layout or the
  learner; when it is not (``None``), the first ``hop_selection_rows`` rows are buffered, the reach
  with the lowest BIC of the full linear model (every variable a parent, at hops ``0..H-1``) among
  ``hop_candidates`` is chosen (with ``hop_normalization=None`` also the weighting of the hop features),
  and the buffer is replayed. ``learner.n_hops`` is the reach in use.
* **Treated rows.** The row of the intervened unit, for every action that intervenes. Whether an
  action on an inactive (zero) variable intervenes is the layout's ``intervenes_when_inactive``
  (FaultAlarmRL: treating an empty pair does nothing; a set-to-value action: it does).
* **Control rows for i.** Rows that no intervention can have reached (for
  units: farther than ``2 * effect_hops`` from the treated unit). With a single unit, the control
  for (i, j) pools transitions that intervened on nothing, or on a variable that is neither i, j,
  nor an ancestor of j (found by a first pass; where that leaves too few rows, the first-pass
  pool). When the env has a no-op action and it was taken often enough, the control is the
  no-op transitions alone: the cleanest comparison. Where treating an inactive i is no
  intervention, control rows must also hold an active i: matching on "i active" is what makes the
  control comparable to the treated (both hold the alarm the policy chose to treat).
* **Effects on the mean and on the spread.** Two outcome statistics per j: its value and its
  square (the second moment). Setting a zero-mean linear-Gaussian cause to 0 leaves its children's
  mean at 0 and shrinks their variance: only the second moment shows it. For each statistic, on
  control rows ``y1 ~ a + b * y0`` is fitted per (i, j); the effect is the mean treated residual.
  Everything comes from streaming sums (count, sum x, sum y, sum x^2, sum xy, sum y^2), so an
  update costs O(new transitions), never a re-scan of history.
* **Conditional effects (single unit).** A weak cause of a variable with several causes changes a
  small share of its total variance. So each pair is also tested given j's ancestors found so far
  (``conditional_test``): the residual of j's regression on them, treated rows of i against control
  rows, on its mean and its second moment. Valid because a non-ancestor of j is no ancestor of j's
  ancestors; computed from the pruning stage's Gram matrices (see ``_conditional_tstats``).
* **Standard errors.** Rows of nearby transitions are correlated (overlapping outcome windows,
  persistent state), so the variance of each mean (treated residuals, control fit) is the larger
  of the i.i.d. one and the cluster-robust one over blocks of ``cluster_size`` transitions, kept
  from per-cluster sums. This does not remove a bias: where the policy's choice of treatment
  depends on the state (FaultAlarmRL's random-over-active treats a pair less often when many
  alarms are on), non-ancestor pairs show non-zero effects (measured in the README).
* **Propensity weighting** (opt-in, ``propensity_weighting``). In RL the treatment's propensity is
  known: the behaviour policy's probability of its action, passed as ``observe(..., action_probs)``.
  For the ATT, the control must look like the treated rows' states, so control row r counts for i
  with the odds ``p_i(s) / p_control(s)``: the probability that the policy intervenes on i there
  (on the row's unit, multi-unit) over the probability that r is a control row at all (no
  intervention within reach of the unit; single unit: the probability of the row's stratum, i.e.
  of the variable its transition intervened on, or of no intervention). Treated rows weigh 1; the
  weighted means normalise the weights per i. Weights are capped at ``propensity_clip``. The fit
  on control rows becomes weighted least squares, its i.i.d. variance counts the effective rows
  ``(sum w)^2 / sum w^2``, and the cluster-robust variance is that of the weighted mean (the
  per-cluster sums are weighted). The single-unit conditional channels come from the pruning
  stage's Gram matrices and are not weighted.
* **Orientation.** ``i`` is taken as an ancestor of ``j`` when the larger |t| of the two statistics
  passes the multiple-testing rule over all V x V pairs (``alpha``; Bonferroni by default, or
  Benjamini-Hochberg), with at least ``min_treated`` treated rows. A relation of the prior graph (e.g. from THP) stands
  until the interventions refute it (``confirm_treated`` treatments of its cause with |t| < 2, or
  four times as many without significance).
  Contradicting pairs keep the stronger direction.
* **Pruning (Eq. 6).** For each j, a linear model of ``x_t+1[n, j]`` on its candidate parents'
  values at t and t+1, on the unit and at each topology hop (weighted by ``hop_normalization``),
  with j's own lagged value always in. The conditional mean of an alarm count under a Hawkes
  process is linear in its parents' counts, which is why a linear model suits count data; its
  Gaussian BIC ``n log(RSS / n) + penalty * k log n`` is computed from one streaming Gram matrix.
  Count data are heteroscedastic (a count's variance grows with the activity around it, as for a
  Poisson), so rows are weighted by ``1 / (1 + activity)``, activity being the sum of the values on
  the unit and its topology neighbours (``count_weighting``). On FaultAlarmRL with the true
  ancestor sets, this weighted least squares keeps 89 edges, all true (F1 0.973), where ordinary
  least squares keeps 106 with 89 true (F1 0.890).
  Greedy backward elimination removes the parent whose removal lowers the BIC most, until none
  does. An indirect ancestor adds nothing once the direct parents are in, so it goes. The prior's
  own edges are held fixed until ``prior_prune_after`` transitions, since a likelihood on thin data
  would strip true prior edges; after that the data may remove them too.
* **Adjacency orientation (single unit, ``orient_adjacent``).** A weak edge i -> j needs many
  treatments of i before its t passes the multiple-testing rule over all V x V pairs, but every row
  shows the two variables' dependence. So before the pruning, j is regressed on every other variable
  (the pruning model's columns and rows) and i likewise: where each pays for its columns in the other's
  regression, by BIC, the pair is adjacent (an edge, or two causes of a common child). An adjacent pair that neither
  direction's test related is oriented by its treatments: i -> j when ``|t_ij| >= orient_threshold``
  and ``|t_ij| >= |t_ji| + orient_margin`` (treating a cause moves its child, treating the child does
  not move the cause). The pruning then keeps it only if j's regression on its candidate parents
  needs it, which drops two causes of a common child (independent given j's parents). No pair
  without a dependence in the data gains an edge, so a null SCM learns none.
* **Acyclicity.** Surviving edges are inserted strongest ATT first (oriented adjacencies after every
  significant one), skipping any that would close a cycle.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.stats import norm
from threadpoolctl import ThreadpoolController

from sb3_causal.graph import CausalGraph
from sb3_causal.topology import HOP_NORMALIZATIONS
from sb3_causal.variables import CausalVariables

__all__ = ["OnlineCausalLearner"]

_SWAMP_RATIO = 1e8  # see OnlineCausalLearner._warn_if_swamped

_DENSE_UNITS = 256  # up to this many units, topology operators are applied as dense matrices
_CHUNK_VALUES = 2**20  # state values per internal batch of observe() (1024 FaultAlarmRL transitions)
_GATHER_TILE = 1024  # rows per tile of _gather_rows
_CHANNELS = ("mean", "second moment")  # outcome statistics compared between treated and control rows
_CONDITIONAL_PASSES = 3  # rounds of conditional tests, each conditioning on the ancestors found so far
_SUMS = ("sx", "sy", "sxx", "sxy", "syy")
_CLUSTER_SUMS = ("cxx", "cyy", "cxy", "cnx", "cny")  # over clusters c: sx_c^2, sy_c^2, sx_c sy_c, n_c sx_c, n_c sy_c


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """Made once, at the first limited call (it inspects the loaded libraries)."""
    return ThreadpoolController()


def _blas_threads(limit: int | None) -> contextlib.AbstractContextManager:
    """A context in which numpy's BLAS uses at most ``limit`` threads (None: the process's setting)."""
    if limit is None:
        return contextlib.nullcontext()
    return _blas_controller().limit(limits=limit, user_api="blas")


def _limits_blas(method: Callable) -> Callable:
    """Run a learner method under the learner's ``blas_threads`` limit (see ``OnlineCausalLearner``)."""

    @functools.wraps(method)
    def wrapper(self: OnlineCausalLearner, *args: Any, **kwargs: Any) -> Any:
        with _blas_threads(self.blas_threads):
            return method(self, *args, **kwargs)

    return wrapper


class _Scratch:
    """Work arrays of ``observe``, kept by name between calls.

    A chunk of 1,000 FaultAlarmRL transitions needs some 100 MB of temporaries. Allocated afresh
    each time, they come back from the OS as new zeroed pages (numpy returns large arrays to it when
    they are freed): page faults cost about a fifth of ``observe`` (measured). An array handed out
    stays valid until its name is asked for again. The arrays are a cache: copies and pickles of a
    learner leave them out.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
        size = int(np.prod(shape))
        buffer = self._buffers.get(name)
        if buffer is None or buffer.dtype != dtype or buffer.size < size:
            # a quarter of headroom: chunks vary a little in their row counts
            buffer = self._buffers[name] = np.empty(size + size // 4, dtype=dtype)
        return buffer[:size].reshape(shape)

    def release(self, *names: str) -> None:
        """Free the arrays of ``names`` (those no later call asks for again)."""
        for name in names:
            self._buffers.pop(name, None)

    def __reduce__(self) -> tuple[type, tuple]:
        return _Scratch, ()  # copied or pickled empty


@dataclass
class _PairMoments:
    """Streaming sums of outcome pairs (x = before, y = after) over the rows selected per variable i.

    Outcomes have ``n_outputs`` columns (the channels of every variable j). Arrays have shape
    ``(n_strata, V)`` for row counts and ``(n_strata, V, n_outputs)`` for sums. Besides the plain
    sums, rows are grouped into clusters (blocks of consecutive transitions, labelled by the caller)
    and the sums of squared and crossed per-cluster totals are kept: the cluster-robust variance of
    a mean needs nothing else. The latest cluster stays open across calls, so the sums do not depend
    on how the transitions were batched.

    Rows may carry weights (``weights`` of :meth:`add`, the propensity weights of control rows): then
    ``n`` and every sum are weighted, and ``sww`` (the sum of squared weights) gives the effective
    number of rows ``n^2 / sww``. Unweighted, ``sww`` equals ``n``.
    """

    n_variables: int
    n_outputs: int
    n_strata: int = 1
    n: np.ndarray = field(init=False)
    sww: np.ndarray = field(init=False)
    n_clusters: np.ndarray = field(init=False)
    cnn: np.ndarray = field(init=False)
    open_label: np.ndarray = field(init=False)
    open_n: np.ndarray = field(init=False)
    open_sx: np.ndarray = field(init=False)
    open_sy: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        k, v, o = self.n_strata, self.n_variables, self.n_outputs
        self.n, self.sww, self.n_clusters, self.cnn, self.open_n = (np.zeros((k, v)) for _ in range(5))
        self.open_label = np.full(k, -1.0)
        self.open_sx, self.open_sy = np.zeros((k, v, o)), np.zeros((k, v, o))
        for name in (*_SUMS, *_CLUSTER_SUMS):
            setattr(self, name, np.zeros((k, v, o)))

    def add(
        self,
        mask: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        clusters: np.ndarray,
        stratum: int = 0,
        scratch: _Scratch | None = None,
        weights: np.ndarray | None = None,
    ) -> None:
        """``mask`` (rows, V): which rows count for variable i; ``x``, ``y`` (rows, V): outcomes of every
        variable j (expanded here into the channels); ``clusters`` (rows,): non-decreasing cluster
        label of each row (labels never decrease across calls); ``scratch``: where to keep work arrays;
        ``weights`` (rows, V): the weight of row r for variable i (None: 1)."""
        rows = mask.any(axis=1)
        if not rows.any():
            return
        if not rows.all():  # (the multi-unit layout passes only rows that count: no copies then)
            mask, x, y, clusters = mask[rows], x[rows], y[rows], clusters[rows]
            weights = None if weights is None else weights[rows]
        o, k = self.n_outputs, stratum
        # features [x, y, x^2, x*y, y^2] of the channels, written in place: a concatenation of temporaries
        # cost a third of add() (measured, FaultAlarmRL)
        shape = (x.shape[0], 5 * o)
        features = np.empty(shape) if scratch is None else scratch.get("features", shape)
        block = [features[:, idx * o : (idx + 1) * o] for idx in range(len(_SUMS))]
        _with_squares(x, out=block[0])
        _with_squares(y, out=block[1])
        np.multiply(block[0], block[0], out=block[2])
        np.multiply(block[0], block[1], out=block[3])
        np.multiply(block[1], block[1], out=block[4])
        starts = np.concatenate([[0], np.flatnonzero(np.diff(clusters)) + 1, [clusters.size]])
        for lo, hi in pairwise(starts):
            m = mask[lo:hi].T.astype(np.float64)
            if weights is None:
                n_c = m.sum(axis=1)
                self.sww[k] += n_c
            else:
                m *= weights[lo:hi].T
                n_c = m.sum(axis=1)
                self.sww[k] += np.einsum("ir,ir->i", m, m)
            sums = m @ features[lo:hi]
            self.n[k] += n_c
            for idx, name in enumerate(_SUMS):
                getattr(self, name)[k] += sums[:, idx * o : (idx + 1) * o]
            if clusters[lo] != self.open_label[k]:
                self._close(k)
                self.open_label[k] = clusters[lo]
            self.open_n[k] += n_c
            self.open_sx[k] += sums[:, :o]
            self.open_sy[k] += sums[:, o : 2 * o]

    def _close(self, k: int) -> None:
        """Move the open cluster of stratum k into the cluster sums."""
        for name, value in self._cluster_terms(k).items():
            getattr(self, name)[k] += value
        self.open_n[k] = 0.0
        self.open_sx[k] = 0.0
        self.open_sy[k] = 0.0

    def _cluster_terms(self, k: int) -> dict[str, np.ndarray]:
        n_c, sx_c, sy_c = self.open_n[k], self.open_sx[k], self.open_sy[k]
        return {
            "n_clusters": (n_c > 0).astype(np.float64),
            "cnn": n_c * n_c,
            "cxx": sx_c * sx_c,
            "cyy": sy_c * sy_c,
            "cxy": sx_c * sy_c,
            "cnx": n_c[:, None] * sx_c,
            "cny": n_c[:, None] * sy_c,
        }

    def pooled(self, use: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Sums over strata (the open clusters counted as closed); ``use[k, i, j]`` selects the strata
        pooled for each (i, output j).

        Pooled cluster sums treat the strata of one cluster as independent (an approximation: the
        strata are the single-unit controls split by the variable a transition intervened on)."""
        w = np.ones((self.n_strata, self.n_variables, self.n_outputs)) if use is None else use.astype(np.float64)
        terms = [self._cluster_terms(k) for k in range(self.n_strata)]
        out = {}
        for name in (*_SUMS, *_CLUSTER_SUMS, "n", "sww", "n_clusters", "cnn"):
            value = getattr(self, name)
            if name in terms[0]:
                value = value + np.stack([t[name] for t in terms])
            if value.ndim == 2:
                value = value[:, :, None]
            out[name] = (w * value).sum(axis=0)
        return out

    def state(self) -> dict[str, np.ndarray]:
        names = ("n", "sww", "n_clusters", "cnn", *_SUMS, *_CLUSTER_SUMS, "open_label", "open_n", "open_sx", "open_sy")
        return {k: getattr(self, k).copy() for k in names}

    def load(self, state: dict[str, np.ndarray]) -> None:
        for k, value in state.items():
            value = np.asarray(value, dtype=np.float64)
            if value.shape != getattr(self, k).shape:
                raise ValueError(f"learner state {k!r} has shape {value.shape}, expected {getattr(self, k).shape}")
            setattr(self, k, value.copy())
        if "sww" not in state:  # saved before row weights existed: every row weighed 1
            self.sww = self.n.copy()


class _Rows(NamedTuple):
    """What one batch of transitions adds to the statistics (see ``observe_values``).

    :param treated: ``(mask, y0, y1, clusters)``: mask ``(rows, V)`` marks the variable each treated
        row intervened on
    :param control: ``(stratum, mask, y0, y1, clusters, weights)`` per control stratum; mask ``[r, i]``: a
        control row for i; weights ``[r, i]`` its propensity weight for i (None: unweighted)
    :param gram: ``(target, z, weights, n_empty)`` per Gram matrix: target -1 is the main one, ``i``
        the rows whose action intervened on i; ``n_empty`` all-zero rows add to the intercept only
    """

    treated: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    control: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]]
    gram: list[tuple[int, np.ndarray, np.ndarray, int]]


class _Propensity(NamedTuple):
    """Treatment probabilities of a batch under the behaviour policy (see ``_propensities``)."""

    on: np.ndarray  # (units, B, V): probability of intervening on (unit, variable)
    none: np.ndarray  # (B,): probability of intervening on nothing


class OnlineCausalLearner:
    """Learn a causal graph over a layout's variables from the agent's own interventions.

    Assumptions are arguments, with the defaults documented here; none is read from an env's
    simulator. Which actions intervene (also on an inactive variable) is the layout's
    ``intervenes_when_inactive``.

    :param layout: how observations and actions map onto variables
    :param initial_graph: prior graph (e.g. from THP); kept for variables not yet treated enough
    :param alpha: error rate of one orientation pass over all ``V * (V - 1)`` ordered pairs. A pair's
        p-value is the two-sided normal one of its larger |t| over the two outcome statistics (mean,
        second moment), doubled (Bonferroni over the two). ``multiple_testing="bonferroni"``:
        family-wise rate ``alpha`` (|t| >= 3.94 for 18 variables); ``"bh"``: the Benjamini-Hochberg
        procedure at false-discovery rate ``alpha`` (more power; on FaultAlarmRL's tuning networks
        it let state-selection bias through, so it is not the default)
    :param multiple_testing: ``"bonferroni"`` (default) or ``"bh"``, see ``alpha``
    :param z_threshold: a fixed |t| threshold instead of a multiple-testing rule
    :param min_treated: treated (and control) rows needed before an effect is estimated at all
    :param confirm_treated: treatments of i after which a prior relation i -> j with no hint of an
        effect (|t| < 2) is dropped; after ``4 * confirm_treated`` treatments any insignificant one is
    :param prior_prune_after: transitions before the pruning may remove the prior's own edges
    :param n_hops: topology hops a cause reaches (1: the same unit only). ``"layout"`` (default): the
        layout's ``n_hops``; ``None``: chosen from data (see ``hop_candidates``); an int: declared here
    :param hop_candidates: hop reaches compared when the reach is chosen from data: after
        ``hop_selection_rows`` (unit, transition) rows the one with the lowest BIC of the full linear
        model (every variable a parent, at every hop) wins; the buffered rows are then replayed
    :param hop_normalization: weight of a unit h >= 1 hops away in the pruning model's hop features,
        one of ``sb3_causal.topology.HOP_NORMALIZATIONS``: ``"rw"`` (default) ``D^-1 A_h D^-1``,
        ``"sym"`` ``D^-1/2 A_h D^-1/2``, ``"none"`` ``A_h``; ``None``: chosen from data with the hop
        reach (the lowest BIC of the full linear model over every normalization and candidate reach;
        the buffered rows' Gram matrix is then built once per normalization). The default was chosen
        on FaultAlarmRL's tuning networks (model seeds 0, 1, 7-9), where the full-model BIC also
        prefers it; learners saved before this argument existed load with ``"sym"``, what they used
    :param hop_selection_rows: rows buffered before the hop reach is chosen (multi-unit layouts)
    :param effect_hops: topology hops summed into an outcome (default: ``2 * (n_hops - 1)``,
        since removing a cause can clear descendants that travelled two propagation hops)
    :param prune: apply the BIC pruning stage
    :param bic_penalty: multiplier of the BIC penalty (1: plain BIC)
    :param min_rows: rows needed before pruning runs
    :param count_weighting: weight pruning rows by ``1 / (1 + activity)`` (quasi-Poisson variance of
        non-negative count data). ``None`` (default): on when the first observed batch holds only
        non-negative integers, off otherwise (continuous, homoscedastic state variables)
    :param noop_control: single unit: once every variable has ``10 * min_treated`` no-op control rows,
        compare with those alone (the cleanest control); False keeps the larger pooled control
        (transitions that intervened on neither i, j nor a first-pass ancestor of j): more power
    :param cluster_size: transitions per cluster of the cluster-robust standard errors (rows of
        nearby transitions are correlated: overlapping outcome windows, persistent state)
    :param conditional_test: single-unit layouts: also test each pair conditionally on j's ancestors
        found so far (two more channels, conditional mean and conditional second moment; the
        multiple-testing rule then counts four). A zero-mean cause set to 0 changes its child's
        spread by a small fraction of the child's total variance but a large fraction of its
        residual variance given its other causes. Count-weighted rows are included (weighted
        least squares, weighted residual means and squares). Multi-unit layouts keep the two
        marginal channels (their Gram matrices are pooled over actions)
    :param propensity_weighting: weight control rows by the odds of being treated (see "Propensity
        weighting" in the module docstring). Off by default; when on, every ``observe`` call needs the
        behaviour policy's ``action_probs``
    :param propensity_clip: largest weight a control row gets under ``propensity_weighting`` (a row
        whose treatment was almost certain would otherwise stand for many treated rows alone)
    :param orient_adjacent: single-unit layouts: also take as candidate parents of j the variables that
        are adjacent to j in the data's linear model (each pays for its columns in the other's regression on
        all variables, by BIC) and whose treatments moved j clearly more than j's treatments moved them
        (``|t_ij| >= orient_threshold`` and ``|t_ij| >= |t_ji| + orient_margin``), where neither direction
        passed the multiple-testing rule. The pruning then decides as for any candidate. A weak edge needs
        many treatments to pass the rule over all pairs (README: the power bound), but every row shows the
        adjacency, and its direction only needs the two treatments compared. See "Adjacency orientation" in
        the module docstring. Defaults chosen on tuning model seeds 0-1 of the factored SCMs (README)
    :param orient_threshold: the least |t| of an adjacency's stronger direction under ``orient_adjacent``
    :param orient_margin: how much larger than the other direction's |t| it must be
    :param blas_threads: threads numpy's BLAS may use inside ``observe``, ``att`` and ``update`` (None: the
        process's setting, by default every core). The learner's matrix products have at most a few hundred
        columns, where more threads gain little, and on a busy machine BLAS threads spin while they wait for
        a core: on 2 shared cores under load, 4,000 FaultAlarmRL transitions with the hop reach chosen from
        data took 5.2-5.5 s of CPU (7.8-8.1 s wall) with OpenBLAS's default two threads, 0.35-0.38 s (0.52-0.55 s)
        with one; on the same machine idle, two threads took 0.25-0.37 s of wall time against 0.30-0.31 s, for
        0.47-0.67 s of CPU against 0.40-0.41 s
    """

    def __init__(
        self,
        layout: CausalVariables,
        initial_graph: CausalGraph | None = None,
        *,
        alpha: float = 0.05,
        multiple_testing: str = "bonferroni",
        z_threshold: float | None = None,
        min_treated: int = 10,
        confirm_treated: int = 50,
        prior_prune_after: int = 5000,
        n_hops: int | str | None = "layout",
        hop_candidates: Sequence[int] = (1, 2, 3),
        hop_normalization: str | None = "rw",
        hop_selection_rows: int = 100_000,
        effect_hops: int | None = None,
        prune: bool = True,
        bic_penalty: float = 1.0,
        min_rows: int = 200,
        count_weighting: bool | None = None,
        cluster_size: int = 50,
        noop_control: bool = True,
        conditional_test: bool = True,
        propensity_weighting: bool = False,
        propensity_clip: float = 20.0,
        orient_adjacent: bool = True,
        orient_threshold: float = 1.64,
        orient_margin: float = 0.5,
        blas_threads: int | None = 1,
    ) -> None:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha (the family-wise error rate) must be in (0, 1), got {alpha}")
        if multiple_testing not in ("bh", "bonferroni"):
            raise ValueError(f"multiple_testing must be 'bh' or 'bonferroni', got {multiple_testing!r}")
        if z_threshold is not None and z_threshold <= 0:
            raise ValueError(f"z_threshold must be positive, got {z_threshold}")
        if min_treated < 2:
            raise ValueError(f"min_treated must be >= 2, got {min_treated}")
        if bic_penalty < 0:
            raise ValueError(f"bic_penalty must be non-negative, got {bic_penalty}")
        if cluster_size < 1:
            raise ValueError(f"cluster_size must be >= 1, got {cluster_size}")
        if blas_threads is not None and (isinstance(blas_threads, bool) or int(blas_threads) < 1):
            raise ValueError(f"blas_threads must be None or an int >= 1, got {blas_threads!r}")
        if not propensity_clip > 0:
            raise ValueError(f"propensity_clip (the largest control weight) must be positive, got {propensity_clip}")
        if isinstance(n_hops, str) and n_hops != "layout":
            raise ValueError(f"n_hops must be 'layout', None or an int >= 1, got {n_hops!r}")
        declared = layout.n_hops if n_hops == "layout" else n_hops
        if declared is not None and (isinstance(declared, bool) or int(declared) < 1):
            raise ValueError(f"n_hops must be >= 1 (1: the same unit only), got {declared!r}")
        hop_candidates = tuple(sorted({int(h) for h in hop_candidates}))
        if not hop_candidates or hop_candidates[0] < 1:
            raise ValueError(f"hop_candidates must be hop reaches >= 1, got {hop_candidates}")
        if hop_normalization is not None and hop_normalization not in HOP_NORMALIZATIONS:
            raise ValueError(
                f"hop_normalization must be one of {HOP_NORMALIZATIONS} or None, got {hop_normalization!r}"
            )
        if effect_hops is not None and effect_hops < 0:
            raise ValueError(f"effect_hops must be >= 0, got {effect_hops}")
        self.layout = layout
        names = layout.names
        if initial_graph is None:
            initial_graph = CausalGraph.empty(names)
        if tuple(initial_graph.variables) != tuple(names):
            raise ValueError(
                f"initial graph variables {list(initial_graph.variables)} do not match the layout's {list(names)}"
            )
        self.initial_graph = initial_graph.copy()
        v = layout.n_variables
        self.alpha = float(alpha)
        self.multiple_testing = multiple_testing
        self.fixed_z_threshold = z_threshold
        self.conditional_test = bool(conditional_test)
        self._single_unit = layout.n_units == 1
        self.count_weighting = count_weighting
        self._design_effect = np.ones((v, len(_CHANNELS) * v))
        self.z_threshold = self._threshold(np.zeros((v, v)))  # |t| in use, as of the last att()
        self.min_treated = int(min_treated)
        self.confirm_treated = int(confirm_treated)
        self.prior_prune_after = int(prior_prune_after)
        self.hop_candidates = hop_candidates
        self.declared_hop_normalization = hop_normalization
        self.declared_n_hops = declared
        self.hop_selection_rows = int(hop_selection_rows)
        self.declared_effect_hops = effect_hops
        self.prune = prune
        self.bic_penalty = float(bic_penalty)
        self.min_rows = int(min_rows)
        self.cluster_size = int(cluster_size)
        self.noop_control = bool(noop_control)
        self.propensity_weighting = bool(propensity_weighting)
        self.propensity_clip = float(propensity_clip)
        self.blas_threads = None if blas_threads is None else int(blas_threads)
        self.orient_adjacent = bool(orient_adjacent)
        self.orient_threshold = float(orient_threshold)
        self.orient_margin = float(orient_margin)
        self._hop_probs: list[np.ndarray] = []  # action probabilities of the transitions buffered for the hop choice
        n_pairs, target = layout.n_units * layout.n_variables, layout.action_target
        # action k targets pair k for k < n_pairs (the layouts' convention: FaultAlarmRL, factored envs): the pair
        # probabilities of _propensities are then a view of the action probabilities
        self._pairs_first = bool(np.array_equal(target[:n_pairs], np.arange(n_pairs)))
        self._warned_scale = False
        if self._single_unit and not (layout.action_target < 0).any():
            warnings.warn(
                "the layout has no no-op action (an action that intervenes on nothing): with a single unit, every "
                "control row is then a transition that intervened on another variable, and on small graphs an "
                "edge can be oriented backwards. Give the env a do-nothing action (Discrete(n + 1), the last "
                "action intervening on nothing) for clean controls.",
                stacklevel=2,
            )
        self._chunk = max(1, min(1024, _CHUNK_VALUES // (layout.n_units * v)))
        self._scratch = _Scratch()
        self._graph = self.initial_graph.copy()
        self.hop_scores: dict[tuple[int, str], float] = {}  # BIC per (reach, normalization), when chosen from data
        self.channel_tstats = np.zeros((len(_CHANNELS), v, v))  # t of each outcome statistic, as of att()
        if self._single_unit:  # no topology to reach over: reach 1 unless declared, no hop features to normalise
            self._configure(1 if declared is None else declared, hop_normalization or "rw")
        elif declared is None or hop_normalization is None:
            self._configure(None, None)  # chosen from the first hop_selection_rows rows
        else:
            self._configure(declared, hop_normalization)

    def _configure(self, n_hops: int | None, normalization: str | None) -> None:
        """Set the hop reach and normalization (None: not chosen yet, transitions are buffered) and
        reset the statistics."""
        self.n_hops = None if n_hops is None else int(n_hops)
        self.hop_normalization = normalization
        self._buffer: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        if self.n_hops is None:
            self.effect_hops = self.declared_effect_hops
            self.reset_statistics()
            return
        self.effect_hops = (
            2 * (self.n_hops - 1) if self.declared_effect_hops is None else int(self.declared_effect_hops)
        )
        topo = self.layout.unit_topology
        self._outcome_reach = _operator(topo.within(self.effect_hops).astype(np.float64))
        self._near = topo.within(2 * self.effect_hops)  # [n, m]: a treatment at m can reach n's outcome
        self._hop_ops = [_operator(topo.hop_weight(h, self.hop_normalization)) for h in range(1, self.n_hops)]
        # Feature blocks of the pruning model: [1 | x_t at hops 0..H-1 | x_t+1 at hops 0..H-1].
        self._n_blocks = 2 * self.n_hops
        self._n_features = 1 + self._n_blocks * self.layout.n_variables
        self.reset_statistics()

    # ------------------------------------------------------------------ statistics
    def reset_statistics(self) -> None:
        v = self.layout.n_variables
        f = self._n_features if self.n_hops is not None else 1
        n_outputs = len(_CHANNELS) * v
        self._treated = _PairMoments(v, n_outputs)
        # Single unit: control rows are stratified by the variable the transition intervened on
        # (last stratum: none), so each ATT can pool only the strata that leave its outcome alone.
        self._control = _PairMoments(v, n_outputs, n_strata=v + 1 if self._single_unit else 1)
        self._gram = np.zeros((f, f))
        self._gram_intervened = np.zeros((v, f, f))  # single unit: rows whose action intervened on i
        self._n_rows = 0.0
        self._n_rows_intervened = np.zeros(v)
        self._weight_squares = np.zeros(v + 1)  # sums of squared row weights: [i] rows that set i, [-1] all
        self.n_transitions = 0
        self.n_updates = 0

    @_limits_blas
    def observe(
        self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray, action_probs: np.ndarray | None = None
    ) -> None:
        """Add a batch of transitions: flat observations ``(B, obs_dim)`` and actions ``(B,)``;
        ``action_probs`` ``(B, n_actions)``: the behaviour policy's probability of every action in each
        state (needed, and only accepted, with ``propensity_weighting``).

        Large batches go in chunks of ``_CHUNK_VALUES`` state values; the work arrays of a chunk (about
        70 MB for 1,000 FaultAlarmRL transitions) are kept for the next call (see ``_Scratch``)."""
        obs, next_obs = np.asarray(obs), np.asarray(next_obs)
        if obs.ndim == 1:
            obs, next_obs, actions = obs[None], next_obs[None], np.atleast_1d(actions)
            action_probs = None if action_probs is None else np.asarray(action_probs)[None]
        if obs.shape != next_obs.shape or obs.shape[0] != np.shape(actions)[0]:
            raise ValueError(
                f"observe() needs matching batches: obs {obs.shape}, next_obs {next_obs.shape}, "
                f"actions {np.shape(actions)}"
            )
        actions = np.asarray(actions)
        for start in range(0, obs.shape[0], self._chunk):  # bounded working set: large batches stay fast
            part = slice(start, start + self._chunk)
            # (B, units, V) views of unit-major float64 copies: observe_values works unit-major, without another copy
            x0 = self._unit_major("x0", self.layout.values(obs[part], copy=False))
            x1 = self._unit_major("x1", self.layout.values(next_obs[part], copy=False))
            self.observe_values(x0, actions[part], x1, None if action_probs is None else action_probs[part])

    def _unit_major(self, name: str, values: np.ndarray) -> np.ndarray:
        """A ``(B, units, V)`` view of a unit-major float64 copy of ``values``, kept in the scratch arrays."""
        b, n_units, v = values.shape
        out = self._scratch.get(name, (n_units, b, v))
        np.copyto(out, values.transpose(1, 0, 2), casting="unsafe")  # as astype(np.float64) converts
        return out.transpose(1, 0, 2)

    def _warn_if_swamped(self, values: np.ndarray) -> None:
        """Warn once when a few huge values would swamp the moment statistics of ordinary ones.

        The statistics are float64 sums of values and their squares (16 significant digits): once
        ``max |x|`` exceeds ``_SWAMP_RATIO`` times the median non-zero ``|x|``, a square of the largest
        value is more than ``1e16`` times an ordinary one, and the ordinary values stop counting.
        """
        values = values.ravel(order="K")  # in memory order (a view of observe's copy): a third faster than strided
        magnitude = np.abs(values[values != 0])
        if magnitude.size and magnitude.max() > _SWAMP_RATIO * np.median(magnitude):
            self._warned_scale = True
            warnings.warn(
                f"state values span {magnitude.max() / np.median(magnitude):.1e} times their median magnitude "
                f"(max |x| = {magnitude.max():.3g}): sums of squares in float64 lose the ordinary values, so "
                "effects become undetectable. Clip or rescale the observations (e.g. a log transform) before "
                "the causal learner sees them.",
                stacklevel=3,
            )

    @_limits_blas
    def observe_values(
        self, x0: np.ndarray, actions: np.ndarray, x1: np.ndarray, action_probs: np.ndarray | None = None
    ) -> None:
        """Add transitions given as values ``(B, n_units, n_variables)`` before and after (``action_probs``:
        see :meth:`observe`)."""
        if x0.size == 0:
            return
        action_probs = self._checked_probs(action_probs, np.asarray(actions).reshape(-1))
        if not (np.all(np.isfinite(x0)) and np.all(np.isfinite(x1))):
            raise ValueError("observations contain NaN or inf; the causal learner needs finite state values")
        if not self._warned_scale:
            self._warn_if_swamped(x0)
        actions = np.asarray(actions, dtype=np.int64).reshape(-1)
        if actions.min() < 0 or actions.max() >= self.layout.n_actions:
            raise ValueError(f"actions must be in [0, {self.layout.n_actions}), got {actions.min()}..{actions.max()}")
        if self.count_weighting is None:  # decided once, on the first batch
            self.count_weighting = bool(np.all(x0 >= 0) and np.all(x0 == np.round(x0)))
        if self.n_hops is None:
            if action_probs is not None:  # replayed with the buffered transitions once the reach is chosen
                self._hop_probs.append(action_probs)
            self._buffer_for_hop_choice(x0, actions, x1)
            return
        # Unit-major layout (n_units, B, V): every spread over the topology is one matrix product.
        u0 = np.ascontiguousarray(x0.transpose(1, 0, 2), dtype=np.float64)
        u1 = np.ascontiguousarray(x1.transpose(1, 0, 2), dtype=np.float64)
        unit, var = self.layout.targets(actions)
        rows = np.arange(actions.size)
        treated = var >= 0  # the transitions that intervened: on an inactive variable only if the layout says so
        if not self.layout.intervenes_when_inactive:
            treated[treated] = u0[unit[treated], rows[treated], var[treated]] != 0
        clusters = (self.n_transitions + rows) // self.cluster_size

        propensity = None if action_probs is None else self._propensities(u0, action_probs)
        build = self._single_unit_rows if self._single_unit else self._multi_unit_rows
        batch = build(u0, u1, unit, np.where(treated, var, -1), clusters, propensity)
        self._treated.add(*batch.treated, scratch=self._scratch)
        for stratum, mask, y0, y1, cl, weights in batch.control:
            self._control.add(mask, y0, y1, cl, stratum=stratum, scratch=self._scratch, weights=weights)
        for target, z, weights, n_empty in batch.gram:
            gram = self._gram if target < 0 else self._gram_intervened[target]
            gram[0, 0] += n_empty  # an all-zero row has weight 1 and adds to the intercept only
            _add_gram(gram, z, weights, self._scratch)
            self._weight_squares[target] += weights @ weights + n_empty  # target -1: the main Gram matrix
            if target < 0:
                self._n_rows += z.shape[0] + n_empty
            else:
                self._n_rows_intervened[target] += z.shape[0] + n_empty
        self.n_transitions += actions.size

    def _control_active(self, values: np.ndarray) -> np.ndarray:
        """Where a row may serve as control for i: i active there, when treating an inactive i is
        no intervention (so treated rows all hold an active i); everywhere otherwise."""
        if self.layout.intervenes_when_inactive:
            return np.ones(values.shape, dtype=bool)
        return values != 0

    def _single_unit_rows(
        self,
        u0: np.ndarray,
        u1: np.ndarray,
        unit: np.ndarray,
        var: np.ndarray,
        clusters: np.ndarray,
        propensity: _Propensity | None = None,
    ) -> _Rows:
        """One row per transition (``var``: the variable intervened on, -1 for none). Control rows are
        stratified by that variable (stratum V: none), and the Gram matrix of rows that intervened on
        i is also kept apart, so that j's pruning model can leave out the rows where j itself was set.

        ``propensity`` (see ``_propensities``): the control row of stratum k is weighted for i by
        ``P(intervene on i | s) / P(stratum k | s)``: each stratum then stands for the treated rows' states."""
        v = self.layout.n_variables
        x0, x1 = u0[0], u1[0]
        rows = np.arange(x0.shape[0])
        treated = var >= 0
        control = self._control_active(x0)  # ... and i not intervened on
        control[rows[treated], var[treated]] = False
        stratum = np.where(treated, var, v)
        y0, y1 = x0, x1
        z = np.concatenate([x0, x1], axis=1)
        weights = self._row_weights(x0)
        odds = None
        if propensity is not None:
            p = propensity.on[0]  # (B, V): probability of intervening on each variable
            p_stratum = np.concatenate([p, propensity.none[:, None]], axis=1)[rows, stratum]
            odds = self._odds(p, p_stratum)
        return _Rows(
            treated=(_one_hot(var[treated], v), y0[treated], y1[treated], clusters[treated]),
            control=[
                (int(k), control[in_k], y0[in_k], y1[in_k], clusters[in_k], None if odds is None else odds[in_k])
                for k in np.unique(stratum)
                for in_k in [stratum == k]
            ],
            gram=[(-1, z, weights, 0)] + [(int(i), z[var == i], weights[var == i], 0) for i in np.unique(var[treated])],
        )

    def _multi_unit_rows(
        self,
        u0: np.ndarray,
        u1: np.ndarray,
        unit: np.ndarray,
        var: np.ndarray,
        clusters: np.ndarray,
        propensity: _Propensity | None = None,
    ) -> _Rows:
        """One row per (unit, transition); outcomes sum over the units an effect can reach. Control
        and pruning rows are the (unit, transition) pairs out of reach of the transition's intervention.

        ``propensity`` (see ``_propensities``): control row (n, t) is weighted for i by the odds
        ``P(intervene on (n, i) | s_t) / P(no intervention within reach of n | s_t)``."""
        v = self.layout.n_variables
        n_units, b, _ = u0.shape
        treated = var >= 0
        # Spreads are taken over the distinct states (a next state is mostly the following transition's
        # state): transition t's state is column t of ``states``, its next state column ``nxt[t]``.
        states, nxt = _distinct_states(u0, u1, self._scratch)
        y = _spread(self._outcome_reach, states, self._scratch, "outcomes")
        tu, tb = unit[treated], np.flatnonzero(treated)
        far = np.ones((n_units, b), dtype=bool)
        far[:, treated] = ~self._near[tu].toarray().T  # symmetric: rows are columns
        active = self._control_active(u0)  # control rows for i: out of reach of any intervention, and i active
        # Pruning rows: those with a non-zero value within reach (the others add to the intercept only).
        nonzero = _any_last(y != 0)
        keep = far & (nonzero[:, :b] | nonzero[:, nxt])
        ku, kb = np.nonzero(keep)
        spreads = [_spread(op, states, self._scratch, f"hop {h}") for h, op in enumerate(self._hop_ops, 1)]
        # [x_t at hops 0..H-1 | x_t+1 at hops 0..H-1] of the kept rows
        blocks = [(u0, kb), *((s, kb) for s in spreads), (u1, kb), *((s, nxt[kb]) for s in spreads)]
        z = _gather_rows(blocks, ku, self._scratch)
        weights = self._row_weights(z[:, : v * self.n_hops])

        cb, cu = np.nonzero((far & _any_last(active)).T)  # control rows ordered by transition: clusters are contiguous
        odds = None
        if propensity is not None:
            reached = np.asarray(self._near.astype(np.float64) @ propensity.on.sum(axis=2))  # (units, B)
            odds = self._odds(propensity.on[cu, cb], 1.0 - reached[cu, cb])
        return _Rows(
            treated=(_one_hot(var[treated], v), y[tu, tb], y[tu, nxt[tb]], clusters[tb]),
            control=[(0, active[cu, cb], y[cu, cb], y[cu, nxt[cb]], clusters[cb], odds)],
            gram=[(-1, z, weights, int(np.count_nonzero(far)) - ku.size)],
        )

    def _checked_probs(self, action_probs: np.ndarray | None, actions: np.ndarray) -> np.ndarray | None:
        """The batch's action probabilities as float64 ``(B, n_actions)``, checked; None without
        ``propensity_weighting``. When the hop reach has just been chosen, the buffered transitions are
        replayed without probabilities: theirs come from ``_hop_probs``, in order."""
        if not self.propensity_weighting:
            if action_probs is not None:
                raise ValueError(
                    "action_probs given to a learner without propensity_weighting: build it with "
                    "propensity_weighting=True to weight control rows by them"
                )
            return None
        if action_probs is None:
            if self.n_hops is None or not self._hop_probs:
                raise ValueError(
                    "propensity_weighting needs the behaviour policy's action_probs (batch, n_actions) in observe()"
                )
            pending = np.concatenate(self._hop_probs)
            self._hop_probs = [pending[actions.size :]] if pending.shape[0] > actions.size else []
            return pending[: actions.size]
        probs = np.asarray(action_probs, dtype=np.float64)
        if probs.shape != (actions.size, self.layout.n_actions):
            raise ValueError(
                f"action_probs must have shape (batch, n_actions) = ({actions.size}, {self.layout.n_actions}), "
                f"got {probs.shape}"
            )
        if not np.all(np.isfinite(probs)) or probs.min() < 0:
            raise ValueError("action_probs must be finite and non-negative")
        total = probs.sum(axis=1)
        if np.abs(total - 1).max() > 1e-3:
            row = int(np.abs(total - 1).argmax())
            raise ValueError(f"action_probs rows must sum to 1; row {row} sums to {total[row]:.6g}")
        taken = probs[np.arange(actions.size), np.clip(actions, 0, self.layout.n_actions - 1)]
        if (taken <= 0).any():
            row = int(np.argmax(taken <= 0))
            raise ValueError(
                f"action_probs gives probability 0 to the action taken in row {row} (action {int(actions[row])}): "
                "they are not the probabilities of the policy that acted"
            )
        return probs

    def _propensities(self, u0: np.ndarray, probs: np.ndarray) -> _Propensity:
        """From action probabilities ``(B, n_actions)``: the probability of intervening on each (unit,
        variable) ``on (units, B, V)`` (an action on an inactive variable intervenes only if the layout
        says so), and that of intervening on nothing, ``none (B,)``."""
        n_units, b, v = u0.shape
        target = self.layout.action_target
        acts = np.flatnonzero(target >= 0)
        if self._pairs_first:
            on = probs[:, : n_units * v]  # a view: the other actions target nothing or repeat a pair
            if acts.size > n_units * v:
                on = on.copy()
                np.add.at(on.T, target[acts[n_units * v :]], probs[:, acts[n_units * v :]].T)
        else:
            on = np.zeros((b, n_units * v))
            np.add.at(on.T, target[acts], probs[:, acts].T)
        on = on.reshape(b, n_units, v).transpose(1, 0, 2)
        if not self.layout.intervenes_when_inactive:
            on = on * (u0 != 0)
        none = np.maximum(1.0 - on.sum(axis=(0, 2)), 0.0)
        return _Propensity(on, none)

    def _odds(self, p: np.ndarray, p_control: np.ndarray) -> np.ndarray:
        """Propensity weights ``p[r, i] / p_control[r]`` (treated-to-control odds of row r for i), at most
        ``propensity_clip``."""
        denominator = np.maximum(p_control[:, None], p / self.propensity_clip)
        return np.divide(p, denominator, out=np.zeros_like(p), where=p > 0)

    def _row_weights(self, activity_values: np.ndarray) -> np.ndarray:
        """Quasi-Poisson row weights ``1 / (1 + activity)`` (ones when ``count_weighting`` is off)."""
        if not self.count_weighting:
            return np.ones(activity_values.shape[0])
        return 1.0 / (1.0 + np.abs(activity_values).sum(axis=1))

    # ------------------------------------------------------------------ hop reach from data
    def _buffer_for_hop_choice(self, x0: np.ndarray, actions: np.ndarray, x1: np.ndarray) -> None:
        """Buffer transitions until ``hop_selection_rows`` rows are in, then choose the hop reach and
        replay them.

        The choice and the replay work in ``observe``'s scratch arrays, a chunk at a time (converted to
        unit-major float64 there), not in fresh arrays of their own: the replay and later calls reuse the
        memory the choice touched (its rows are wider, so the kept arrays are too: about 25 MB more on
        FaultAlarmRL). In fresh processes that made ``observe`` steadier and cheaper (README, "Scale and cost")."""
        self._buffer.append((x0.astype(np.float32), actions.copy(), x1.astype(np.float32)))
        self.n_transitions += actions.size
        n_rows = sum(a.size for _, a, _ in self._buffer) * self.layout.n_units
        if n_rows < self.hop_selection_rows:
            return
        x0_all = np.concatenate([b[0] for b in self._buffer])  # float32, as buffered
        actions_all = np.concatenate([b[1] for b in self._buffer])
        x1_all = np.concatenate([b[2] for b in self._buffer])
        reaches = self.hop_candidates if self.declared_n_hops is None else (int(self.declared_n_hops),)
        declared = self.declared_hop_normalization
        self.hop_scores = {
            (reach, norm): score
            for norm in (HOP_NORMALIZATIONS if declared is None else (declared,))
            for reach, score in self._hop_bics(x0_all, x1_all, norm, reaches).items()
        }
        n_updates = self.n_updates
        self._configure(*min(self.hop_scores, key=self.hop_scores.__getitem__))  # resets the statistics
        self.n_updates = n_updates
        # hop features beyond the chosen reach are the choice's alone
        self._scratch.release(*(f"hop {h}" for h in range(self.n_hops, max(reaches))))
        for start in range(0, actions_all.size, self._chunk):
            part = slice(start, start + self._chunk)
            x0 = self._unit_major("x0", x0_all[part])
            x1 = self._unit_major("x1", x1_all[part])
            self.observe_values(x0, actions_all[part], x1)

    def _hop_bics(self, x0: np.ndarray, x1: np.ndarray, normalization: str, reaches: Sequence[int]) -> dict[int, float]:
        """BIC per candidate hop reach H, summed over j, of the linear model of ``x_t+1[n, j]`` on every
        variable at hops ``0..H-1`` (values at t and t+1; j itself only as its own lag), over all rows,
        with hop features weighted by ``normalization``; ``x0``, ``x1``: values ``(B, n_units, V)``.

        One weighted Gram matrix at the largest reach serves every candidate: a smaller reach's
        features are a subset of its columns."""
        v, h_max = self.layout.n_variables, max(reaches)
        ops = [_operator(op) for op in self.layout.unit_topology.hop_weights(h_max, normalization)]
        gram = np.zeros((1 + 2 * h_max * v, 1 + 2 * h_max * v))
        scratch = self._scratch  # observe's (see _buffer_for_hop_choice); the arrays of one chunk at a time
        for start in range(0, x0.shape[0], self._chunk):
            u0 = self._unit_major("x0", x0[start : start + self._chunk]).transpose(1, 0, 2)  # contiguous
            u1 = self._unit_major("x1", x1[start : start + self._chunk]).transpose(1, 0, 2)
            # feature blocks (units, states, V) over the distinct states (see _multi_unit_rows); hop 0 is the
            # identity. Only the rows with a non-zero value are gathered (an all-zero row adds 1 to the
            # intercept only): no (units * B, 2 * h_max * V) copy
            states, nxt = _distinct_states(u0, u1, scratch)
            blocks = [states if h == 0 else _spread(op, states, scratch, f"hop {h}") for h, op in enumerate(ops)]
            any_state = np.logical_or.reduce([_any_last(block != 0) for block in blocks])
            nonzero = any_state[:, : u0.shape[1]] | any_state[:, nxt]
            ku, kb = np.nonzero(nonzero)  # unit-major, the order of the rows of a (units * B) reshape
            z = _gather_rows([(block, t) for t in (kb, nxt[kb]) for block in blocks], ku, scratch)
            gram[0, 0] += nonzero.size - ku.size
            _add_gram(gram, z, self._row_weights(z[:, :v]), scratch)
        n_rows = float(x0.shape[0] * x0.shape[1])
        scores = {}
        for n_hops in reaches:
            total = 0.0
            for j in range(v):
                lag = [1 + blk * v + var for blk in range(n_hops) for var in range(v) if blk > 0 or var != j]
                now = [1 + (h_max + blk) * v + var for blk in range(n_hops) for var in range(v) if var != j]
                total += _bic(gram, [0, 1 + j, *lag, *now], 1 + h_max * v + j, n_rows, self.bic_penalty)
            scores[n_hops] = total
        return scores

    # ------------------------------------------------------------------ estimates
    @_limits_blas
    def att(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Effect estimates, their t statistics, and treated-row counts: ``(effect[i, j], t[i, j], n_treated[i])``.

        ``effect`` is the ATT on j's mean; ``t`` is the t statistic of whichever outcome statistic
        (mean, second moment) has the larger |t|, so a change in j's spread alone also shows.

        With a single unit, the control is the transitions that intervened on nothing (a no-op
        action) once there are ``10 * min_treated`` of them for every variable. Otherwise control
        rows whose transition intervened on ``i``, on ``j`` or on a (first-pass) ancestor of ``j``
        are left out of the (i, j) comparison: they do not show ``j`` as it would be without
        treating ``i``.
        """
        v = self.layout.n_variables
        if self.n_hops is None:  # hop reach not chosen yet: no statistics
            return np.zeros((v, v)), np.zeros((v, v)), np.zeros(v)
        treated = self._treated.pooled()
        if not self._single_unit:
            return self._att_from(self._control.pooled(), treated)
        n_channels = len(_CHANNELS)
        no_op = np.zeros((v + 1, v, v * n_channels), dtype=bool)
        no_op[v] = True
        no_op_rows = self._effective_rows(self._control.n[v], self._control.sww[v])
        if self.noop_control and no_op_rows.min() >= 10 * self.min_treated:
            control = self._control.pooled(no_op)  # the clean control: no intervention
            return self._with_conditional(self._att_from(control, treated), control)
        use = np.ones((v + 1, v, v), dtype=bool)
        strata = np.arange(v)
        use[strata, strata, :] = False  # k == i
        use[strata, :, strata] = False  # k == j
        _, tstat, _ = self._att_from(self._control.pooled(np.tile(use, n_channels)), treated)
        refined = use.copy()
        refined[:v] &= ~(np.abs(tstat) >= self._threshold(tstat))[:, None, :]  # drop strata of j's ancestors
        # Where that leaves too few control rows, keep the first-pass pool.
        pooled = self._control.pooled(np.tile(refined, n_channels))
        too_few = self._effective_rows(pooled["n"], pooled["sww"])[:, :v] < self.min_treated
        refined[:, too_few] = use[:, too_few]
        control = self._control.pooled(np.tile(refined, n_channels))
        return self._with_conditional(self._att_from(control, treated), control)

    def _effective_rows(self, n: np.ndarray, sww: np.ndarray) -> np.ndarray:
        """Control rows from their weight sums ``n`` and squared-weight sums ``sww``: the effective number
        ``n^2 / sww`` under propensity weighting (0 where there are none), else the row counts ``n``."""
        if not self.propensity_weighting:
            return n
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(sww > 0, n * n / sww, 0.0)

    def _att_from(
        self, c: dict[str, np.ndarray], t: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Regression-adjusted effects from pooled control and treated sums (arrays over (i, output)).

        On control rows, ``y1 ~ a + b * y0`` per (i, output); the effect is the mean treated
        residual. Its variance adds the treated residuals' and the control fit's, each the larger of
        the i.i.d. and the cluster-robust estimate (clusters: blocks of ``cluster_size`` transitions).
        With propensity-weighted control rows, the fit is weighted least squares, and its i.i.d.
        variance counts the effective rows ``(sum w)^2 / sum w^2`` (the cluster-robust one is already
        that of a weighted mean).
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            nc = c["n"]
            ne = self._effective_rows(nc, c["sww"])
            mx, my = c["sx"] / nc, c["sy"] / nc
            vx = c["sxx"] / nc - mx**2
            cxy = c["sxy"] / nc - mx * my
            vy = c["syy"] / nc - my**2
            slope = np.where(vx > 1e-12, cxy / vx, 0.0)
            icpt = my - slope * mx
            s2_ctrl = np.maximum(vy - slope * cxy, 0.0) * ne / np.maximum(ne - 2, 1)
            nt = t["n"]
            sum_r = t["sy"] - icpt * nt - slope * t["sx"]
            sum_r2 = (
                t["syy"]
                + icpt**2 * nt
                + slope**2 * t["sxx"]
                - 2 * icpt * t["sy"]
                - 2 * slope * t["sxy"]
                + 2 * icpt * slope * t["sx"]
            )
            mean_r = sum_r / nt
            var_r = np.maximum(sum_r2 / nt - mean_r**2, 0.0) * nt / np.maximum(nt - 1, 1)
            var_treated = np.maximum(var_r / nt, _cluster_variance(t, icpt, slope, mean_r))
            mtx = t["sx"] / nt
            var_slope = s2_ctrl * np.where(vx > 1e-12, (mtx - mx) ** 2 / (ne * vx), 0.0)
            var_fit = np.maximum(s2_ctrl / ne, _cluster_variance(c, icpt, slope, 0.0)) + var_slope
            se = np.sqrt(var_treated + var_fit)
            iid = var_r / nt + s2_ctrl / ne + var_slope
            self._design_effect = np.where(iid > 0, np.nan_to_num((var_treated + var_fit) / iid, nan=1.0), 1.0)
            tstat = np.where(se > 0, mean_r / se, 0.0)
        ok = (nt >= self.min_treated) & (ne >= self.min_treated)
        effect = np.where(ok, np.nan_to_num(mean_r), 0.0)
        tstat = np.where(ok, np.nan_to_num(tstat), 0.0)
        v = self.layout.n_variables
        tstat = tstat.reshape(v, len(_CHANNELS), v)
        self.channel_tstats = tstat.transpose(1, 0, 2) * ~np.eye(v, dtype=bool)  # [channel, i, j], for calibration
        strongest = np.take_along_axis(tstat, np.abs(tstat).argmax(axis=1)[:, None, :], axis=1)[:, 0, :]
        effect = effect[:, :v].copy()  # the mean channel
        np.fill_diagonal(effect, 0.0)
        np.fill_diagonal(strongest, 0.0)
        return effect, strongest, nt[:, 0].copy()

    def _with_conditional(
        self, result: tuple[np.ndarray, np.ndarray, np.ndarray], control: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Add the conditional channels (see ``conditional_test``) to a single-unit ``att()`` result:
        ``channel_tstats`` gets their t statistics, and a pair's t is the largest |t| of all channels.

        The ancestors of j the marginal test found are the first covariates; each of up to
        ``_CONDITIONAL_PASSES`` rounds conditions on the ancestors found so far (an ancestor found
        by conditioning lowers j's residual variance further, so weaker causes show next round).
        ``control``: the marginal test's pooled control sums (for j's kurtosis)."""
        if not self._conditional_active():
            return result
        effect, strongest, n_treated = result
        v = self.layout.n_variables
        marginal = self.channel_tstats
        ancestors = np.abs(strongest) >= self._threshold(strongest)  # first pass: [i, j] i an ancestor of j
        combined = marginal
        idx = np.arange(v)
        for _ in range(_CONDITIONAL_PASSES):
            strata = np.ones((v + 1, v, v), dtype=bool)  # [k, i, j]: control rows that intervened on k
            strata[idx, idx, :] = False  # k == i
            strata[idx, :, idx] = False  # k == j
            strata[:v] &= ~ancestors[:, None, :]  # k an ancestor of j (or of a covariate: an ancestor of j)
            conditional = self._conditional_tstats(ancestors, strata, control)
            combined = np.concatenate([marginal, conditional])
            t = np.take_along_axis(combined, np.abs(combined).argmax(axis=0)[None], axis=0)[0]
            grown = ancestors | (np.abs(t) >= self._threshold(t))
            if (grown == ancestors).all():
                break
            ancestors = grown
        self.channel_tstats = combined
        strongest = np.take_along_axis(combined, np.abs(combined).argmax(axis=0)[None], axis=0)[0]
        return effect, strongest, n_treated

    def _conditional_active(self) -> bool:
        """The conditional channels need one unit (Gram matrices per intervened variable)."""
        return self.conditional_test and self._single_unit

    def _conditional_tstats(
        self, ancestors: np.ndarray, strata: np.ndarray, control: dict[str, np.ndarray]
    ) -> np.ndarray:
        """t statistics ``(2, V, V)`` of the conditional mean and second-moment effects of i on j.

        For each (i, j), covariates ``S``: the ``ancestors[:, j]`` other than i (values at t+1). On
        control rows (single-unit strata that intervened on nothing, or on a variable that is
        neither i, j nor an ancestor of j, ``strata[k, i, j]``), ``x_t+1[j]`` is fitted by least squares
        on an intercept, ``x_t[j]`` and S. Treated rows of i are compared with that fit: their mean
        residual (conditional mean channel), and their mean squared residual against the control's
        residual variance corrected for the fit's own error (conditional second moment).
        Why it is valid: if i is no ancestor of j, it is no ancestor of j's ancestors S either, so
        intervening on i leaves the joint law of (j, S) alone and both effects are 0. Why it has
        power: conditioning removes the variance that j's other causes contribute, so setting a
        zero-mean cause to 0 changes j's residual spread by a much larger fraction than its
        marginal spread. A mediator of i in S blocks that path: the conditional channels measure
        i's effect not through the ancestors already found (the marginal channels keep the total).
        Everything comes from the pruning stage's Gram matrices, so there is no per-transition
        cost. Standard errors are normal-theory, inflated by j's kurtosis relative to a normal
        variable's (from the control's fourth moments) and by the marginal test's design effect
        (cluster-robust over i.i.d. variance).
        """
        v = self.layout.n_variables
        out = np.zeros((2, v, v))
        stratum_grams = np.concatenate([self._gram_intervened, (self._gram - self._gram_intervened.sum(axis=0))[None]])
        stratum_rows = np.append(self._n_rows_intervened, self._n_rows - self._n_rows_intervened.sum())
        squares = self._weight_squares
        stratum_squares = np.append(squares[:v], squares[v] - squares[:v].sum())
        # Kurtosis inflation of x_t+1[j] from the control's sums: Var(y^2) against a normal's 4 m^2 s^2 + 2 s^4.
        with np.errstate(divide="ignore", invalid="ignore"):
            n = control["n"][:, :v]
            m1, m2, m4 = control["sy"][:, :v] / n, control["sy"][:, v:] / n, control["syy"][:, v:] / n
            var = m2 - m1**2
            kurtosis = np.nan_to_num((m4 - m2**2) / (4 * m1**2 * var + 2 * var**2), nan=1.0)
        kurtosis = np.clip(kurtosis, 1.0, None)
        deff = np.clip(self._design_effect.reshape(v, len(_CHANNELS), v), 1.0, None)  # [i, channel, j]
        for j in range(v):
            others = np.flatnonzero(ancestors[:, j] & (np.arange(v) != j))  # the covariates S (before leaving out i)
            cols = np.array([0, 1 + j, *(1 + v + others)])
            y = 1 + v + j
            sub = np.append(cols, y)
            grams = stratum_grams[:, sub[:, None], sub[None, :]]  # (strata, p + 1, p + 1)
            control_grams = (strata[:, :, j].T.astype(np.float64) @ grams.reshape(v + 1, -1)).reshape(
                v, *grams.shape[1:]
            )
            treated_grams = self._gram_intervened[:, sub[:, None], sub[None, :]]
            keep = np.ones((v, others.size + 2), dtype=bool)  # [i, column]: intercept, lag, then S
            keep[:, 2:] = others[None, :] != np.arange(v)[:, None]
            mask = keep[:, :, None] & keep[:, None, :]
            eye = np.eye(others.size + 2, dtype=bool)
            a = np.where(mask, control_grams[:, :-1, :-1], 0.0) + ~keep[:, :, None] * eye
            ridge = 1e-9 * np.maximum(np.trace(a, axis1=1, axis2=2) / (others.size + 2), 1.0)
            a_inv = np.linalg.inv(a + ridge[:, None, None] * eye)
            rhs = control_grams[:, :-1, -1] * keep
            beta = np.einsum("iab,ib->ia", a_inv, rhs)
            w_c, w_t = control_grams[:, 0, 0], treated_grams[:, 0, 0]  # sums of row weights (rows if unweighted)
            n_c, n_t = strata[:, :, j].T.astype(np.float64) @ stratum_rows, self._n_rows_intervened
            dof = n_c - keep.sum(axis=1)
            g_t = np.where(mask, treated_grams[:, :-1, :-1], 0.0)
            with np.errstate(divide="ignore", invalid="ignore"):  # (untreated i: w_t = 0, left out by `ok` below)
                # Variance factor of a weighted mean, n sum(w^2) / sum(w)^2 = 1 + CV(w)^2 (1 for unweighted rows):
                # it makes the weighted mean's variance hold whether or not the weights match the variance.
                spread_c = n_c * (strata[:, :, j].T.astype(np.float64) @ stratum_squares) / w_c**2
                spread_t = n_t * squares[:v] / w_t**2
                # Residual variance (weighted mean of squares; with weights w, w_c * dof / n_c stands for dof).
                s2 = np.maximum(control_grams[:, -1, -1] - np.einsum("ia,ia->i", beta, rhs), 0.0) / (w_c * dof / n_c)
                sum_r = treated_grams[:, 0, -1] - np.einsum("ia,ia->i", beta, g_t[:, 0])
                sum_r2 = (
                    treated_grams[:, -1, -1]
                    - 2 * np.einsum("ia,ia->i", beta, treated_grams[:, :-1, -1] * keep)
                    + np.einsum("ia,iab,ib->i", beta, g_t, beta)
                )
                mean_r, mean_r2 = sum_r / w_t, sum_r2 / w_t
                x_bar = g_t[:, 0] / w_t[:, None]
                leverage = np.einsum("ia,iab,ib->i", x_bar, a_inv, x_bar)  # variance of the fit at x_bar / s2
                # E[mean squared fit error] / s2
                fit_error = np.einsum("iab,iba->i", a_inv, g_t) / w_t * np.maximum(spread_c, 1.0) * w_c / n_c
                phi_t = np.maximum(sum_r2 - mean_r * sum_r, 0.0) / w_t  # weighted residual variance, treated
                var_mean = (
                    phi_t / n_t * np.maximum(spread_t, 1.0) + s2 * leverage * np.maximum(spread_c, 1.0) * w_c / n_c
                )
                t_mean = mean_r / np.sqrt(var_mean * deff[:, 0, j])
                var_second = 2 * s2**2 * (np.maximum(spread_t, 1.0) / n_t + np.maximum(spread_c, 1.0) / dof)
                var_second = var_second * kurtosis[:, j] * deff[:, 1, j]
                t_second = (mean_r2 - s2 * (1 + fit_error)) / np.sqrt(var_second)
            ok = (n_t >= self.min_treated) & (dof >= self.min_treated)
            out[0, :, j] = np.where(ok, np.nan_to_num(t_mean, posinf=0.0, neginf=0.0), 0.0)
            out[1, :, j] = np.where(ok, np.nan_to_num(t_second, posinf=0.0, neginf=0.0), 0.0)
        out[:, np.arange(v), np.arange(v)] = 0.0
        return out

    def _threshold(self, tstat: np.ndarray) -> float:
        """The |t| above which a pair's effect is significant, by the multiple-testing rule (see ``alpha``)."""
        if self.fixed_z_threshold is not None:
            return float(self.fixed_z_threshold)
        v = tstat.shape[0]
        n_pairs = max(v * (v - 1), 1)
        n_channels = len(_CHANNELS) * (2 if self._conditional_active() else 1)
        bonferroni = float(norm.isf(self.alpha / (2 * n_channels * n_pairs)))
        if self.multiple_testing == "bonferroni":
            return bonferroni
        off_diagonal = ~np.eye(v, dtype=bool)
        p = np.sort(np.minimum(1.0, 2 * n_channels * norm.sf(np.abs(tstat[off_diagonal]))))
        passed = np.flatnonzero(p <= self.alpha * np.arange(1, p.size + 1) / n_pairs)
        if passed.size == 0:
            return bonferroni
        return min(bonferroni, float(norm.isf(p[passed[-1]] / (2 * n_channels))))

    def ancestor_candidates(self) -> tuple[np.ndarray, np.ndarray]:
        """Orientation stage: ``(A, strength)``, A[i, j] True when i is taken as an ancestor of j.

        A significant ATT makes i an ancestor of j. A relation of the prior graph stands until the
        interventions refute it: i treated ``confirm_treated`` times with no hint of an effect on j
        (|t| < 2), or ``4 * confirm_treated`` times with no significant one, or j showing a
        significant effect on i. (A few insignificant treatments are no evidence of absence.)
        """
        _, tstat, n_treated = self.att()
        strength = np.abs(tstat)
        self.z_threshold = self._threshold(tstat)
        anc = strength >= self.z_threshold
        anc &= ~(anc.T & (strength < strength.T))  # contradicting pair: keep the stronger direction
        prior = self.initial_graph.ancestor_matrix()
        n_i = n_treated[:, None]
        refuted = ((n_i >= self.confirm_treated) & (strength < 2.0)) | (n_i >= 4 * self.confirm_treated)
        keep_prior = prior & ~refuted & ~anc.T & ~anc
        anc |= keep_prior
        strength[keep_prior] = 0.0
        np.fill_diagonal(anc, False)
        return anc, strength

    @_limits_blas
    def update(self) -> CausalGraph:
        """Recompute the graph from all statistics so far (orientation, pruning, acyclicity)."""
        anc, strength = self.ancestor_candidates()
        # Candidate parents: the ancestors an ATT showed, and the prior's own unrefuted edges (its
        # transitive relations are no candidate edges). Pruning decides which are direct; the prior's
        # edges are exempt until ``prior_prune_after`` transitions give the likelihood enough data.
        prior_edges = anc & (strength == 0) & self.initial_graph.adjacency()
        parents = (anc & (strength > 0)) | prior_edges
        if self.prune and self._n_rows >= self.min_rows:
            if self.orient_adjacent and self._single_unit:
                tstat = np.abs(self.channel_tstats).max(axis=0)  # att()'s |t| of every pair, prior aside
                oriented = self._oriented_adjacencies(anc, tstat)
                parents |= oriented
                strength = np.where(oriented, tstat, strength)  # below the threshold: ranked after every ATT edge
            exempt = prior_edges if self.n_transitions < self.prior_prune_after else np.zeros_like(prior_edges)
            for j in range(self.layout.n_variables):
                free = np.flatnonzero(parents[:, j] & ~exempt[:, j])
                keep = self._prune_parents(j, free, fixed=np.flatnonzero(exempt[:, j]))
                parents[:, j] = exempt[:, j]
                parents[keep, j] = True
        src, dst = np.nonzero(parents)
        order = np.lexsort((dst, src, -strength[src, dst]))  # strongest ATT first
        self._graph = CausalGraph.from_ranked_edges(self.layout.names, zip(src[order], dst[order]))
        self.n_updates += 1
        return self._graph

    @property
    def graph(self) -> CausalGraph:
        """The current graph (as of the last :meth:`update`)."""
        return self._graph

    @property
    def n_treated(self) -> np.ndarray:
        """``(V,)`` treated rows per variable so far: the evidence an intervention chooser balances."""
        return self._treated.n[0].copy()

    def _oriented_adjacencies(self, anc: np.ndarray, t: np.ndarray) -> np.ndarray:
        """``(V, V)`` bool: i -> j for the adjacent pairs no significant test oriented, by their two treatments
        (``t``: the pairs' |t|).

        Adjacent: in j's regression on every other variable (the pruning model's columns and rows), removing
        i raises the BIC, and removing j from i's does too (parents, children and co-parents of j pass). Oriented
        i -> j where ``|t_ij| >= orient_threshold`` and ``|t_ij| >= |t_ji| + orient_margin``. A pair either test
        already related (``anc`` either way) is left to them."""
        v = self.layout.n_variables
        kept = np.zeros((v, v), dtype=bool)  # [i, j]: i pays for its columns in j's regression on all variables
        for j in range(v):
            others = np.flatnonzero(np.arange(v) != j)
            problem = self._pruning_model(j, others)
            if problem is not None:
                kept[others, j] = _removal_bics(*problem, self.bic_penalty) >= 0
        adjacent = kept & kept.T
        oriented = adjacent & ~anc & ~anc.T & (t >= t.T + self.orient_margin) & (t >= self.orient_threshold)
        np.fill_diagonal(oriented, False)
        return oriented

    def _prune_parents(self, j: int, candidates: np.ndarray, fixed: np.ndarray | None = None) -> np.ndarray:
        """Greedy backward elimination of j's candidate parents on the BIC of a linear model.

        ``fixed`` parents stay in the model (and in the graph) and are never removed.
        """
        if candidates.size == 0:
            return candidates
        problem = self._pruning_model(j, candidates, fixed)
        if problem is None:
            return candidates
        return candidates[_backward_bic(*problem, self.bic_penalty)]

    def _pruning_model(
        self, j: int, candidates: np.ndarray, fixed: np.ndarray | None = None
    ) -> tuple[np.ndarray, list[int], list[list[int]], int, float] | None:
        """The pruning model of j as ``(gram, base columns, candidate column groups, y column, rows)``: the rows
        where j was not set, ``x_t+1[n, j]`` on its own lag, the ``fixed`` parents and each candidate's columns
        (every block); None with fewer than ``min_rows`` rows."""
        v = self.layout.n_variables
        gram = self._gram - self._gram_intervened[j] if self._single_unit else self._gram
        n_rows = self._n_rows - self._n_rows_intervened[j]
        if n_rows < self.min_rows:
            return None
        y_col = 1 + self.n_hops * v + j  # x_t+1 of j on its own unit
        fixed_vars = [] if fixed is None else [int(f) for f in fixed]
        base = [0, 1 + j] + [1 + blk * v + var for var in fixed_vars for blk in range(self._n_blocks)]
        groups = [[1 + blk * v + int(c) for blk in range(self._n_blocks)] for c in candidates]
        return gram, base, groups, y_col, n_rows

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Arrays and settings needed to resume learning (JSON/npz friendly; no pickled objects)."""
        return {
            "treated": self._treated.state(),
            "control": self._control.state(),
            "gram": self._gram.copy(),
            "gram_intervened": self._gram_intervened.copy(),
            "n_rows": self._n_rows,
            "n_rows_intervened": self._n_rows_intervened.copy(),
            "weight_squares": self._weight_squares.copy(),
            "n_transitions": self.n_transitions,
            "n_updates": self.n_updates,
            "n_hops": -1 if self.n_hops is None else self.n_hops,
            "hop_normalization": self.hop_normalization or "",
            "count_weighting": -1 if self.count_weighting is None else int(self.count_weighting),
            "hop_buffer": {
                "x0": _concat([b[0] for b in self._buffer]),
                "actions": _concat([b[1] for b in self._buffer]),
                "x1": _concat([b[2] for b in self._buffer]),
                "action_probs": _concat(self._hop_probs),
            },
            "initial_graph": self.initial_graph.to_json(),
            "graph": self._graph.to_json(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n_hops = int(state.get("n_hops", self.n_hops if self.n_hops is not None else -1))
        # States without the entry predate hop_normalization: their hop features were "sym"-weighted.
        normalization = str(state.get("hop_normalization", "sym")) if n_hops >= 0 else None
        if (n_hops, normalization) != (-1 if self.n_hops is None else self.n_hops, self.hop_normalization):
            self._configure(None if n_hops < 0 else n_hops, normalization)
        if "count_weighting" in state:
            weighting = int(state["count_weighting"])
            self.count_weighting = None if weighting < 0 else bool(weighting)
        gram = np.asarray(state["gram"], dtype=np.float64)
        if gram.shape != self._gram.shape:
            raise ValueError(f"learner state has a Gram matrix of shape {gram.shape}, expected {self._gram.shape}")
        self._treated.load(state["treated"])
        self._control.load(state["control"])
        self._gram = gram.copy()
        self._gram_intervened = np.asarray(state["gram_intervened"], dtype=np.float64).copy()
        self._n_rows = float(state["n_rows"])
        self._n_rows_intervened = np.asarray(state["n_rows_intervened"], dtype=np.float64).copy()
        # Older files: row counts bound the squared weights (weights are at most 1), a conservative stand-in.
        squares = state.get("weight_squares", np.append(self._n_rows_intervened, self._n_rows))
        self._weight_squares = np.asarray(squares, dtype=np.float64).copy()
        self.n_transitions = int(state["n_transitions"])
        self.n_updates = int(state["n_updates"])
        buffer = state.get("hop_buffer")
        self._buffer = []
        if buffer is not None and np.asarray(buffer["actions"]).size:
            self._buffer = [(np.asarray(buffer["x0"]), np.asarray(buffer["actions"]), np.asarray(buffer["x1"]))]
        probs = np.asarray(buffer.get("action_probs", np.zeros(0)) if buffer is not None else np.zeros(0))
        self._hop_probs = [probs.astype(np.float64).reshape(-1, self.layout.n_actions)] if probs.size else []
        self.initial_graph = CausalGraph.from_json(state["initial_graph"])
        self._graph = CausalGraph.from_json(state["graph"])

    def get_config(self) -> dict[str, Any]:
        """The constructor's keyword arguments (JSON-serialisable; the layout and graphs aside)."""
        return {
            "alpha": self.alpha,
            "multiple_testing": self.multiple_testing,
            "z_threshold": self.fixed_z_threshold,
            "min_treated": self.min_treated,
            "confirm_treated": self.confirm_treated,
            "prior_prune_after": self.prior_prune_after,
            "hop_candidates": list(self.hop_candidates),
            "hop_normalization": self.declared_hop_normalization,
            "hop_selection_rows": self.hop_selection_rows,
            "effect_hops": self.declared_effect_hops,
            "prune": self.prune,
            "bic_penalty": self.bic_penalty,
            "min_rows": self.min_rows,
            "cluster_size": self.cluster_size,
            "noop_control": self.noop_control,
            "conditional_test": self.conditional_test,
            "propensity_weighting": self.propensity_weighting,
            "propensity_clip": self.propensity_clip,
            "blas_threads": self.blas_threads,
            "orient_adjacent": self.orient_adjacent,
            "orient_threshold": self.orient_threshold,
            "orient_margin": self.orient_margin,
        }

    def to_npz(self) -> bytes:
        """The learner as npz bytes: state (nested keys joined by '/'), layout and settings.

        The format of ``algos/causal_base.py``'s learner entry, plus ``config`` (settings as JSON)
        and the layout's ``intervenes_when_inactive``; no pickled objects."""
        arrays: dict[str, np.ndarray] = {}

        def put(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for key, sub in value.items():
                    put(f"{prefix}/{key}", sub)
            else:
                arrays[prefix] = np.asarray(value)

        put("state", self.state_dict())
        layout = self.layout
        put(
            "layout",
            {
                "names": np.array(layout.names, dtype=str),
                "obs_index": layout.obs_index,
                "action_target": layout.action_target,
                "n_hops": -1 if layout.n_hops is None else layout.n_hops,
                "intervenes_when_inactive": layout.intervenes_when_inactive,
                "unit_names": np.array(layout.unit_names, dtype=str),
            },
        )
        if layout.topology is not None:
            arrays["layout/topology"] = layout.topology
        arrays["meta/format"] = np.array(json.dumps({"format": "sb3-causal/learner", "version": 1}))
        arrays["config"] = np.array(json.dumps(self.get_config()))
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, data: bytes, **kwargs: Any) -> OnlineCausalLearner:
        """Rebuild a learner saved by :meth:`to_npz`; ``kwargs`` override the saved settings.

        Also reads the entries of older files (no ``config``: the constructor's defaults; no
        ``intervenes_when_inactive``: False, the rule of the learner that wrote them; no ``orient_adjacent``
        or ``hop_normalization``: False and ``"sym"``, what they used)."""
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        state: dict[str, Any] = {}
        for key, value in arrays.items():
            section, _, rest = key.partition("/")
            if section != "state":
                continue
            node = state
            *parents, leaf = rest.split("/")
            for parent in parents:
                node = node.setdefault(parent, {})
            node[leaf] = str(value) if value.dtype.kind == "U" else value
        n_hops = int(arrays["layout/n_hops"])
        layout = CausalVariables(
            names=tuple(str(n) for n in arrays["layout/names"]),
            obs_index=arrays["layout/obs_index"],
            action_target=arrays["layout/action_target"],
            topology=arrays.get("layout/topology"),
            n_hops=None if n_hops < 0 else n_hops,
            intervenes_when_inactive=bool(arrays.get("layout/intervenes_when_inactive", False)),
            unit_names=tuple(str(n) for n in arrays["layout/unit_names"]),
        )
        config = json.loads(str(arrays["config"])) if "config" in arrays else {}
        config.setdefault("hop_normalization", "sym")  # older files: the learner that wrote them used "sym"
        config.setdefault("orient_adjacent", False)  # ... and did not orient adjacencies
        config.update(kwargs)
        learner = cls(layout, CausalGraph.from_json(state["initial_graph"]), **config)
        if "graph" not in state:  # older files keep the graph apart (causal_graph.json)
            state["graph"] = state["initial_graph"]
        learner.load_state_dict(state)
        return learner


def _with_squares(y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Outcome columns of every channel (see ``_CHANNELS``): values, then their squares (written into ``out``)."""
    v = y.shape[1]
    out = np.empty((y.shape[0], 2 * v)) if out is None else out
    out[:, :v] = y
    np.multiply(y, y, out=out[:, v:])
    return out


def _cluster_variance(
    sums: dict[str, np.ndarray], icpt: np.ndarray, slope: np.ndarray, mean: np.ndarray | float
) -> np.ndarray:
    """Cluster-robust variance of the mean of the residuals ``y - icpt - slope * x`` (around ``mean``),
    from per-cluster sums: ``sum_c (S_c - n_c * mean)^2 / n^2 * G / (G - 1)``, 0 with fewer than 2 clusters."""
    a, b = icpt, slope
    s2 = sums["cyy"] + a * a * sums["cnn"] + b * b * sums["cxx"] - 2 * a * sums["cny"] - 2 * b * sums["cxy"]
    s2 = s2 + 2 * a * b * sums["cnx"]
    ns = sums["cny"] - a * sums["cnn"] - b * sums["cnx"]
    total = np.maximum(s2 - 2 * mean * ns + mean * mean * sums["cnn"], 0.0)
    g = sums["n_clusters"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = total / sums["n"] ** 2 * g / (g - 1)
    return np.where(g >= 2, np.nan_to_num(out), 0.0)


def _bic(gram: np.ndarray, cols: list[int], y_col: int, n_rows: float, penalty: float) -> float:
    """Gaussian BIC ``n log(RSS / n) + penalty * k log n`` of the least-squares fit of column
    ``y_col`` on ``cols``, from a (weighted) Gram matrix."""
    g = gram[np.ix_(cols, cols)]
    rhs = gram[cols, y_col]
    ridge = 1e-9 * max(float(np.trace(g)) / len(cols), 1.0)
    beta = np.linalg.solve(g + ridge * np.eye(len(cols)), rhs)
    rss = max(float(gram[y_col, y_col] - rhs @ beta), 1e-12 * n_rows)
    return n_rows * np.log(rss / n_rows) + penalty * len(cols) * np.log(n_rows)


def _removal_bics(
    gram: np.ndarray, base: list[int], groups: list[list[int]], y_col: int, n_rows: float, penalty: float
) -> np.ndarray:
    """BIC change of removing each column group from the least-squares fit of ``y_col`` on ``base`` and every
    group (negative: the group does not pay for its columns). One inverse gives every removal's RSS
    increase: dropping columns S from a fit with coefficients b and inverse Gram matrix M adds
    ``b_S' (M_SS)^-1 b_S``."""
    cols = base + [c for group in groups for c in group]
    g = gram[np.ix_(cols, cols)]
    rhs = gram[cols, y_col]
    ridge = 1e-9 * max(float(np.trace(g)) / len(cols), 1.0)
    inv = np.linalg.inv(g + ridge * np.eye(len(cols)))
    beta = inv @ rhs
    rss = max(float(gram[y_col, y_col] - rhs @ beta), 1e-12 * n_rows)
    deltas = np.empty(len(groups))
    start = len(base)
    for k, group in enumerate(groups):
        span = np.arange(start, start + len(group))
        start += span.size
        b = beta[span]
        increase = max(float(b @ np.linalg.solve(inv[np.ix_(span, span)], b)), 0.0)
        deltas[k] = n_rows * np.log1p(increase / rss) - penalty * span.size * np.log(n_rows)
    return deltas


def _backward_bic(
    gram: np.ndarray, base: list[int], groups: list[list[int]], y_col: int, n_rows: float, penalty: float
) -> list[int]:
    """Greedy backward elimination of column groups on the Gaussian BIC of a least-squares fit (see ``_bic``).

    The model holds the ``base`` columns (never removed) and the columns of ``groups``; each step
    removes the group whose removal lowers the BIC most (``_removal_bics``), until none does. Returns
    the indices of the groups left.
    """
    active = list(range(len(groups)))
    while active:
        deltas = _removal_bics(gram, base, [groups[k] for k in active], y_col, n_rows, penalty)
        if deltas.min() >= 0:
            break
        active.pop(int(deltas.argmin()))
    return active


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0)


def _operator(op: sp.csr_array) -> sp.csr_array | np.ndarray:
    """A unit operator of the topology as used by ``_spread``: dense for a few hundred units (a BLAS
    product is faster there), sparse beyond (memory and cost grow with the pairs within reach)."""
    return op.toarray() if op.shape[0] <= _DENSE_UNITS else op


def _spread(
    op: sp.csr_array | np.ndarray, x: np.ndarray, scratch: _Scratch | None = None, name: str = "spread"
) -> np.ndarray:
    """``out[n, b, v] = sum_m op[n, m] * x[m, b, v]`` for unit-major ``x``, as one matrix product (a dense
    one into the scratch array ``name``)."""
    m, b, v = x.shape
    if scratch is None or sp.issparse(op):
        return np.asarray(op @ x.reshape(m, b * v)).reshape(op.shape[0], b, v)
    out = scratch.get(name, (op.shape[0], b * v))
    np.matmul(op, x.reshape(m, b * v), out=out)
    return out.reshape(op.shape[0], b, v)


def _distinct_states(u0: np.ndarray, u1: np.ndarray, scratch: _Scratch | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unit-major states ``(units, B, V)`` before and after, each distinct state once: ``(states, nxt)``.

    Within an episode the next state of transition t is the state of t + 1, so ``states`` is ``u0``
    followed by the next states that are not (episode ends, the last transition); ``states[:, t]`` is
    ``u0[:, t]`` and ``states[:, nxt[t]]`` equals ``u1[:, t]``. Spreading ``states`` once costs about half
    of spreading ``u0`` and ``u1``."""
    b = u0.shape[1]
    follows = np.zeros(b, dtype=bool)
    # reduced over units first (the long axis): 5x faster than over (units, V) at once (measured, 50 x 18)
    follows[:-1] = np.logical_and.reduce(u1[:, :-1] == u0[:, 1:], axis=0).all(axis=1)
    extra = np.flatnonzero(~follows)
    nxt = np.arange(1, b + 1)
    nxt[extra] = b + np.arange(extra.size)
    shape = (u0.shape[0], b + extra.size, u0.shape[2])
    states = np.empty(shape) if scratch is None else scratch.get("states", shape)
    np.concatenate([u0, u1[:, extra]], axis=1, out=states)
    return states, nxt


def _any_last(a: np.ndarray) -> np.ndarray:
    """``a.any(axis=-1)`` for a boolean array with a short last axis (the variables): numpy reduces a short
    inner axis slowly, or-ing its slices is twice as fast (measured on 50 units x 1,000 states x 18)."""
    if a.shape[-1] > 32 or a.shape[-1] == 0:  # a long axis: numpy's own reduction is fast there
        return a.any(axis=-1)
    out = a[..., 0].copy()
    for k in range(1, a.shape[-1]):
        out |= a[..., k]
    return out


def _gather_rows(
    blocks: list[tuple[np.ndarray, np.ndarray]], units: np.ndarray, scratch: _Scratch | None = None
) -> np.ndarray:
    """Rows ``[block_0[units, index_0] | block_1[units, index_1] | ...]`` of unit-major blocks ``(units, B, V)``.

    Written into one preallocated array, ``_GATHER_TILE`` rows at a time, so that a tile of the output
    stays in cache while every block writes its columns: on FaultAlarmRL's pruning rows this takes 0.5x
    the time of concatenating the gathered pieces (measured)."""
    widths = [block.shape[2] for block, _ in blocks]
    shape = (units.size, sum(widths))
    out = np.empty(shape) if scratch is None else scratch.get("rows", shape)
    for lo in range(0, units.size, _GATHER_TILE):
        rows = slice(lo, lo + _GATHER_TILE)
        start = 0
        for (block, index), width in zip(blocks, widths):
            out[rows, start : start + width] = block[units[rows], index[rows]]
            start += width
    return out


def _one_hot(index: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((index.size, n), dtype=bool)
    out[np.arange(index.size), index] = True
    return out


def _add_gram(gram: np.ndarray, z: np.ndarray, weights: np.ndarray, scratch: _Scratch | None = None) -> None:
    """Add weighted rows ``[1, z]`` to a Gram matrix."""
    wz = np.empty(z.shape) if scratch is None else scratch.get("weighted rows", z.shape)
    np.multiply(z, weights[:, None], out=wz)
    s = wz.sum(axis=0)
    gram[0, 0] += weights.sum()
    gram[0, 1:] += s
    gram[1:, 0] += s
    gram[1:, 1:] += wz.T @ z
