"""Exact posterior edge marginals over DAGs for linear-Gaussian data with interventions.

The posterior is the one of Koivisto & Sood (2004) and Koivisto (2006): dynamic programming over
variable orders under an *order-modular* prior,

    p(order, G) ∝ prod_i rho_i(Pa_i)   for every DAG ``G`` consistent with ``order``, 0 otherwise,
    rho_i(Pa) = 1 / C(d - 1, |Pa|)     if |Pa| <= max_indegree, 0 otherwise,

so the prior on a DAG is proportional to (number of its topological orders) x prod_i rho_i(Pa_i): not
uniform over DAGs (the known bias of order-modular priors; the brute-force check in the tests enumerates
(order, DAG) pairs under exactly this prior). The local score is the BGe marginal likelihood (Geiger &
Heckerman 2002, with the correction of Kuipers, Moffa & Heckerman 2014) or, with ``score="bic"``, the BIC of
the linear-Gaussian regression of the node on its parents (maximum-likelihood fit with intercept, penalty
``(|Pa| + 2) / 2 log n`` for the weights, the intercept and the noise variance), used as a log marginal
likelihood. Interventional rows follow Eaton &
Murphy (2007): node ``i``'s local score uses only the rows in which ``i`` was not intervened on (a perfect
intervention cuts ``i`` from its parents; its other variables are ordinary data for their children).

All ``d * 2^d`` tables are vectorised with numpy. Sets of variables are bit masks (bit ``i`` = variable
``i``); adjacency matrices read ``A[u, v] = 1`` for an edge ``u -> v``.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np
from scipy.special import gammaln

__all__ = [
    "SCORES",
    "EdgePosterior",
    "ExactPosterior",
    "edge_metrics",
    "expected_correct_entries",
]

_NEG_INF = -np.inf
SCORES = ("bge", "bic")


def _logaddexp_reduce(x: np.ndarray, axis: int) -> np.ndarray:
    """Log-sum-exp along ``axis`` that returns -inf (not nan) where every entry is -inf."""
    peak = np.max(x, axis=axis, keepdims=True)
    safe = np.where(np.isfinite(peak), peak, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - safe), axis=axis)) + np.squeeze(safe, axis=axis)
    return out


def _subset_zeta(table: np.ndarray, n_bits: int) -> np.ndarray:
    """Log-space sum over subsets: ``out[..., S] = log sum_{G subset of S} exp(table[..., G])``."""
    out = table.copy()
    lead = out.shape[:-1]
    for j in range(n_bits):
        view = out.reshape(*lead, 2 ** (n_bits - 1 - j), 2, 2**j)
        view[..., 1, :] = np.logaddexp(view[..., 1, :], view[..., 0, :])
    return out


def _superset_zeta(table: np.ndarray, n_bits: int) -> np.ndarray:
    """Log-space sum over supersets: ``out[..., G] = log sum_{S superset of G} exp(table[..., S])``."""
    out = table.copy()
    lead = out.shape[:-1]
    for j in range(n_bits):
        view = out.reshape(*lead, 2 ** (n_bits - 1 - j), 2, 2**j)
        view[..., 0, :] = np.logaddexp(view[..., 0, :], view[..., 1, :])
    return out


@dataclass
class EdgePosterior:
    """The result of one exact posterior computation.

    :param edge_marginals: ``(d, d)`` posterior probabilities ``P(u -> v | data)``
    :param log_evidence: log of the normaliser ``Z`` (the marginal likelihood of the data under the
        order-modular prior, up to the prior's constant)
    :param local_scores: ``(d, 2^d)`` log of ``rho_v(G) p(x_v | x_G)`` (-inf where ``G`` is not a
        parent set of ``v``)
    :param log_alpha: ``(d, 2^d)`` subset sums of ``local_scores``
    :param log_forward: ``(2^d,)`` forward sums over orders of each set of variables
    """

    edge_marginals: np.ndarray
    log_evidence: float
    local_scores: np.ndarray
    log_alpha: np.ndarray
    log_forward: np.ndarray

    def sample_dags(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` (order, DAG) pairs from the posterior.

        :return: adjacency matrices ``(n, d, d)`` (bool) and orders ``(n, d)`` (each a topological order)
        """
        d = self.edge_marginals.shape[0]
        full = (1 << d) - 1
        adjs = np.zeros((n, d, d), dtype=bool)
        orders = np.zeros((n, d), dtype=np.int64)
        masks = np.arange(1 << d)
        for k in range(n):
            remaining = full
            for pos in range(d - 1, -1, -1):  # pick the last variable of the remaining set, then its parents
                members = [v for v in range(d) if remaining >> v & 1]
                logits = np.array(
                    [self.log_alpha[v, remaining ^ (1 << v)] + self.log_forward[remaining ^ (1 << v)] for v in members]
                )
                v = members[_sample_log(logits, rng)]
                before = remaining ^ (1 << v)
                inside = (masks & ~before) == 0
                parent_sets = masks[inside]
                g = parent_sets[_sample_log(self.local_scores[v, inside], rng)]
                adjs[k, :, v] = (g >> np.arange(d)) & 1
                orders[k, pos] = v
                remaining = before
        return adjs, orders


def _sample_log(logits: np.ndarray, rng: np.random.Generator) -> int:
    p = np.exp(logits - np.max(logits))
    return int(rng.choice(len(p), p=p / p.sum()))


class ExactPosterior:
    """Exact edge marginals of the posterior over DAGs on ``d`` variables, by dynamic programming over orders.

    The sizes are checked in the constructor, before anything is allocated: the order DP holds a few
    ``d x 2^d`` tables, and the local scores cost one Cholesky factorisation per subset of at most
    ``max_indegree + 1`` variables and per distinct set of non-intervened rows.

    :param n_variables: number of variables ``d`` (>= 2)
    :param max_indegree: largest parent set allowed (``None``: ``d - 1``, every DAG)
    :param alpha_mu: BGe prior precision scale of the mean (> 0)
    :param alpha_w: BGe Wishart degrees of freedom (> d - 1; ``None``: ``d + 2``). The prior scale matrix is
        ``t I`` with ``t = alpha_mu (alpha_w - d - 1) / (alpha_mu + 1)`` (Kuipers et al.; the prior mean of the
        covariance is then the identity) when ``alpha_w > d + 1``, else ``t = 1``
    :param max_table_entries: refuse ``d * 2^d`` above this (memory guard; 2^22 entries ~ 32 MB per table)
    :param max_local_scores: refuse more local scores ``d * sum_{l <= max_indegree} C(d - 1, l)`` than this
    :param score: local score, ``"bge"`` (marginal likelihood; ``alpha_mu``, ``alpha_w`` apply) or ``"bic"``
    :param bic_ridge: added to the diagonal of the maximum-likelihood covariance before its log-determinants
        (``"bic"`` only; keeps the score finite when a subset's rows are collinear or fewer than its size)
    """

    def __init__(
        self,
        n_variables: int,
        max_indegree: int | None = None,
        alpha_mu: float = 1.0,
        alpha_w: float | None = None,
        max_table_entries: int = 2**22,
        max_local_scores: int = 2**20,
        score: str = "bge",
        bic_ridge: float = 1e-6,
    ) -> None:
        if score not in SCORES:
            raise ValueError(f"unknown score {score!r}; choose one of {list(SCORES)}")
        if not bic_ridge >= 0:
            raise ValueError(f"bic_ridge must be >= 0, got {bic_ridge}")
        d = int(n_variables)
        if d < 2:
            raise ValueError(f"n_variables must be >= 2, got {n_variables}")
        k = d - 1 if max_indegree is None else int(max_indegree)
        if k < 0:
            raise ValueError(f"max_indegree must be >= 0, got {max_indegree}")
        if k > d - 1:
            raise ValueError(f"max_indegree={k} is too large: a node has at most d - 1 = {d - 1} possible parents")
        table = d * 2**d
        if table > max_table_entries:
            raise ValueError(
                f"exact posterior over d={d} variables needs d * 2^d = {table:,} entries per DP table, more than "
                f"max_table_entries={max_table_entries:,}: use fewer variables or raise the limit"
            )
        n_scores = d * sum(comb(d - 1, j) for j in range(k + 1))
        if n_scores > max_local_scores:
            raise ValueError(
                f"max_indegree={k} at d={d} needs {n_scores:,} local scores, more than max_local_scores="
                f"{max_local_scores:,}: lower max_indegree or raise the limit"
            )
        alpha_w = d + 2.0 if alpha_w is None else float(alpha_w)
        if alpha_mu <= 0:
            raise ValueError(f"alpha_mu must be > 0, got {alpha_mu}")
        if alpha_w <= d - 1:
            raise ValueError(f"alpha_w must be > d - 1 = {d - 1}, got {alpha_w}")
        self.n_variables = d
        self.max_indegree = k
        self.score = score
        self.bic_ridge = float(bic_ridge)
        self.alpha_mu = float(alpha_mu)
        self.alpha_w = alpha_w
        self._t = self.alpha_mu * (self.alpha_w - d - 1) / (self.alpha_mu + 1) if self.alpha_w > d + 1 else 1.0

        masks = np.arange(1 << d)
        self._bits = ((masks[:, None] >> np.arange(d)) & 1).astype(bool)  # (2^d, d)
        self._size = self._bits.sum(axis=1)
        # subsets of size l as index arrays, for the batched log-determinants (sizes 1..k+1)
        self._by_size = {
            size: (masks[self._size == size], np.nonzero(self._bits[self._size == size])[1].reshape(-1, size))
            for size in range(1, k + 2)
        }
        # log rho_v(G) and validity: G must not contain v and have at most k members
        log_rho = -np.log([comb(d - 1, j) for j in range(d)])
        self._log_prior = np.full((d, 1 << d), _NEG_INF)
        for v in range(d):
            ok = ~self._bits[:, v] & (self._size <= k)
            self._log_prior[v, ok] = log_rho[self._size[ok]]
        # forward/backward layers: the sets of each size, and their one-smaller neighbours
        self._layers = [masks[self._size == m] for m in range(d + 1)]

    # ----------------------------------------------------------------------------------------- scores
    def _check(self, data: np.ndarray, intervened: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        data = np.asarray(data, dtype=np.float64)
        intervened = np.asarray(intervened, dtype=bool)
        d = self.n_variables
        if data.ndim != 2 or data.shape[1] != d:
            raise ValueError(f"data must have shape (n, {d}), got {data.shape}")
        if intervened.shape != data.shape:
            raise ValueError(f"intervened must have the shape of data {data.shape}, got {intervened.shape}")
        if not np.all(np.isfinite(data)):
            raise ValueError("data contains non-finite values (nan or inf)")
        return data, intervened

    def _log_marginal_table(self, rows: np.ndarray) -> np.ndarray:
        """``log p(x_S)`` for every subset ``S`` of at most ``k + 1`` variables (others: nan).

        The local score of ``v`` given ``G`` is ``table[G | v] - table[G]``.
        """
        d, n = self.n_variables, rows.shape[0]
        out = np.full(1 << d, np.nan)
        out[0] = 0.0
        if n == 0:
            out[self._size <= self.max_indegree + 1] = 0.0
            return out
        if self.score == "bic":
            return self._bic_table(rows, out)
        mean = rows.mean(axis=0)
        centred = rows - mean
        r = self._t * np.eye(d) + centred.T @ centred + (n * self.alpha_mu / (n + self.alpha_mu)) * np.outer(mean, mean)
        a_mu, a_w, t = self.alpha_mu, self.alpha_w, self._t
        for size, (sets, idx) in self._by_size.items():
            sub = r[idx[:, :, None], idx[:, None, :]]
            logdet = 2.0 * np.log(np.diagonal(np.linalg.cholesky(sub), axis1=1, axis2=2)).sum(axis=1)
            j = np.arange(1, size + 1)
            const = (
                -size * n / 2 * np.log(np.pi)
                + size / 2 * np.log(a_mu / (n + a_mu))
                + gammaln((n + a_w - d + size + 1 - j) / 2).sum()
                - gammaln((a_w - d + size + 1 - j) / 2).sum()
                + (a_w - d + size) / 2 * size * np.log(t)
            )
            out[sets] = const - (n + a_w - d + size) / 2 * logdet
        return out

    def _bic_table(self, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
        """BIC ``table[S] = -n/2 (|S| log(2 pi e) + log det C_S) - log(n)/2 (|S| (|S| - 1) / 2 + 2 |S|)``.

        ``C`` is the maximum-likelihood covariance; ``table[G | v] - table[G]`` is then the maximised
        log-likelihood of ``v``'s regression on ``G`` (``-n/2 (log(2 pi sigma^2) + 1)``, ``sigma^2`` the residual
        variance ``det C_{G+v} / det C_G``) minus ``(|G| + 2) / 2 log n``.
        """
        d, n = self.n_variables, rows.shape[0]
        centred = rows - rows.mean(axis=0)
        cov = centred.T @ centred / n + self.bic_ridge * np.eye(d)
        for size, (sets, idx) in self._by_size.items():
            sub = cov[idx[:, :, None], idx[:, None, :]]
            sign, logdet = np.linalg.slogdet(sub)
            if np.any(sign <= 0):
                raise ValueError(
                    "BIC: a covariance sub-matrix is singular (constant or collinear variables): raise bic_ridge"
                )
            penalty = np.log(n) / 2 * (size * (size - 1) / 2 + 2 * size)
            out[sets] = -n / 2 * (size * np.log(2 * np.pi * np.e) + logdet) - penalty
        return out

    def local_scores(self, data: np.ndarray, intervened: np.ndarray) -> np.ndarray:
        """``(d, 2^d)`` log of ``rho_v(G) p(x_v | x_G)`` over the rows where ``v`` was not intervened on.

        :param data: ``(n, d)`` samples
        :param intervened: ``(n, d)`` bool, ``True`` where the sample's variable was set by an intervention
        """
        data, intervened = self._check(data, intervened)
        d = self.n_variables
        scores = self._log_prior.copy()
        cache: dict[bytes, np.ndarray] = {}  # nodes with the same usable rows share one table
        for v in range(d):
            keep = ~intervened[:, v]
            key = np.packbits(keep).tobytes()
            if key not in cache:
                cache[key] = self._log_marginal_table(data[keep])
            table = cache[key]
            ok = np.isfinite(scores[v])
            sets = np.nonzero(ok)[0]
            scores[v, sets] += table[sets | (1 << v)] - table[sets]
        return scores

    # ------------------------------------------------------------------------------------------ DP
    def from_local_scores(self, local_scores: np.ndarray) -> EdgePosterior:
        """Edge marginals from a ``(d, 2^d)`` table of local log scores (the DP over orders)."""
        d = self.n_variables
        full = (1 << d) - 1
        log_alpha = _subset_zeta(local_scores, d)
        one = 1 << np.arange(d)
        log_f = np.full(1 << d, _NEG_INF)  # forward: orders of S, each node's parents inside its predecessors
        log_b = np.full(1 << d, _NEG_INF)  # backward: orders of T placed after V \ T
        log_f[0] = log_b[0] = 0.0
        for layer in self._layers[1:]:
            member = self._bits[layer]  # (C, d)
            prev = layer[:, None] ^ one[None, :]
            fwd = np.where(member, log_alpha[np.arange(d)[None, :], prev] + log_f[prev], _NEG_INF)
            log_f[layer] = _logaddexp_reduce(fwd, axis=1)
            bwd = np.where(member, log_alpha[np.arange(d)[None, :], full ^ layer[:, None]] + log_b[prev], _NEG_INF)
            log_b[layer] = _logaddexp_reduce(bwd, axis=1)
        log_z = float(log_f[full])
        if not np.isfinite(log_z):
            raise ValueError("the posterior normaliser is not finite: check the local scores")
        # gamma_v(S): orders where v comes right after the set S; summed over supersets of each parent set
        sets = np.arange(1 << d)
        rest = full ^ sets[None, :] ^ one[:, None]  # (d, 2^d): V \ S \ {v}
        log_gamma = np.where(self._bits.T, _NEG_INF, log_f[None, :] + log_b[rest & full])
        log_big_gamma = _superset_zeta(log_gamma, d)
        weights = np.exp(local_scores + log_big_gamma - log_z)  # (v, G): posterior of v's parent set
        marginals = (weights @ self._bits.astype(np.float64)).T  # [u, v] = P(u -> v)
        np.fill_diagonal(marginals, 0.0)
        return EdgePosterior(
            edge_marginals=np.clip(marginals, 0.0, 1.0),
            log_evidence=log_z,
            local_scores=local_scores,
            log_alpha=log_alpha,
            log_forward=log_f,
        )

    def __call__(self, data: np.ndarray, intervened: np.ndarray) -> EdgePosterior:
        """The exact posterior given ``(n, d)`` samples and their ``(n, d)`` intervention flags."""
        return self.from_local_scores(self.local_scores(data, intervened))


def expected_correct_entries(edge_marginals: np.ndarray, true_adjacency: np.ndarray) -> float:
    """Expected number of the ``d (d - 1)`` off-diagonal adjacency entries a posterior graph gets right.

    ``sum_{u != v} A[u, v] P(u -> v) + (1 - A[u, v]) (1 - P(u -> v))``: the mean, over graphs drawn from the
    posterior, of the number of entries matching the truth (CAASL's reward, computed exactly).
    """
    p = np.asarray(edge_marginals, dtype=np.float64)
    a = np.asarray(true_adjacency, dtype=bool)
    off = ~np.eye(p.shape[0], dtype=bool)
    return float(np.where(a, p, 1.0 - p)[off].sum())


def edge_metrics(edge_marginals: np.ndarray, true_adjacency: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """F1 and SHD of the thresholded marginals, and AUPRC of the marginals, against a true adjacency.

    Works on adjacency matrices (a thresholded posterior need not be acyclic, so ``CausalGraph.compare``
    does not apply). SHD counts a reversed edge once.
    """
    p = np.asarray(edge_marginals, dtype=np.float64)
    a = np.asarray(true_adjacency, dtype=bool)
    off = ~np.eye(p.shape[0], dtype=bool)
    pred = (p > threshold) & off
    tp = float((pred & a).sum())
    n_pred, n_true = float(pred.sum()), float(a[off].sum())
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    skeleton_pred, skeleton_true = pred | pred.T, a | a.T
    upper = np.triu(np.ones_like(a), 1)
    missing_or_extra = float(((skeleton_pred != skeleton_true) & upper).sum())
    reversed_ = float(((skeleton_pred & skeleton_true) & upper & ((pred != a) | (pred.T != a.T))).sum())
    scores, labels = p[off], a[off]
    order = np.argsort(-scores, kind="stable")
    hits = labels[order].astype(np.float64)
    if hits.sum() == 0:
        auprc = 0.0
    else:
        precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        auprc = float((precision_at * hits).sum() / hits.sum())
    return {"f1": f1, "shd": missing_or_extra + reversed_, "auprc": auprc}
