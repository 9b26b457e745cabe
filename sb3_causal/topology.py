"""Unit topology: hop distances and hop weights between units (devices), sparse.

A layout of units x variables (FaultAlarmRL's devices x alarm types) shares one type-level causal
graph across units linked by an undirected topology. Effects travel along it hop by hop; every
part of the library that needs "which units are h hops apart" or "with what weight does a unit h
hops away excite this one" asks this module, so there is one definition of both.

Everything is stored as ``scipy.sparse`` CSR arrays and computed by breadth-first frontier
expansion with sparse products, so the cost grows with the number of unit pairs within reach
(``O(n_units * reach)``), never with ``n_units ** 2``: thousands of units fit.

Hop-weight normalisations of the adjacency ``A_h`` of units exactly ``h`` hops apart, with ``D_h``
its degree matrix (rows of isolated units stay zero):

* ``"sym"``: ``D_h^-1/2 A_h D_h^-1/2`` (the seed paper's Eq. B2);
* ``"rw"``: ``D_h^-1 A_h D_h^-1`` (the weighting of the authors' simulator code);
* ``"none"``: ``A_h``.

Hop 0 is the identity (a unit excites itself with weight 1).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import scipy.sparse as sp

__all__ = ["HOP_NORMALIZATIONS", "Topology"]

HOP_NORMALIZATIONS = ("sym", "rw", "none")


class Topology:
    """An undirected graph over ``n_units`` units.

    :param adjacency: ``(n_units, n_units)`` symmetric 0/1 adjacency, dense or scipy sparse; the
        diagonal is ignored. ``None`` means units do not interact (no edges).
    :param n_units: number of units; needed when ``adjacency`` is None, checked otherwise
    """

    def __init__(self, adjacency: np.ndarray | sp.sparray | sp.spmatrix | None, n_units: int | None = None) -> None:
        if adjacency is None:
            if n_units is None:
                raise ValueError("Topology(None) needs n_units")
            adj = sp.csr_array((int(n_units), int(n_units)), dtype=bool)
        else:
            adj = sp.csr_array(adjacency, dtype=bool) if sp.issparse(adjacency) else None
            if adj is None:
                dense = np.asarray(adjacency)
                if dense.ndim != 2 or dense.shape[0] != dense.shape[1]:
                    raise ValueError(f"topology must be a square unit adjacency matrix, got shape {dense.shape}")
                adj = sp.csr_array(dense.astype(bool))
            if adj.shape[0] != adj.shape[1]:
                raise ValueError(f"topology must be a square unit adjacency matrix, got shape {adj.shape}")
            if n_units is not None and adj.shape[0] != int(n_units):
                raise ValueError(f"topology has {adj.shape[0]} units, expected {n_units}")
            adj.setdiag(False)
            adj.eliminate_zeros()
            if (adj != adj.T).nnz:
                raise ValueError("topology must be symmetric (an undirected unit adjacency)")
        self.adjacency: sp.csr_array = adj.astype(bool)
        self._rings: list[sp.csr_array] = [sp.eye_array(self.n_units, dtype=bool, format="csr")]
        self._reach: sp.csr_array = self._rings[0]

    @property
    def n_units(self) -> int:
        return int(self.adjacency.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.adjacency.nnz // 2)

    @cached_property
    def degree(self) -> np.ndarray:
        return np.asarray(self.adjacency.sum(axis=1)).ravel().astype(np.int64)

    # ------------------------------------------------------------------ distances
    def at_hop(self, h: int) -> sp.csr_array:
        """Bool ``(n_units, n_units)``: units exactly ``h`` hops apart (``h = 0``: the identity)."""
        if h < 0:
            raise ValueError(f"hop must be >= 0, got {h}")
        while len(self._rings) <= h:
            frontier = (self._rings[-1].astype(np.int32) @ self.adjacency.astype(np.int32)).astype(bool)
            frontier = frontier - frontier.multiply(self._reach)  # drop units already reached
            frontier = sp.csr_array(frontier, dtype=bool)
            frontier.eliminate_zeros()
            self._rings.append(frontier)
            self._reach = sp.csr_array(self._reach + frontier, dtype=bool)
        return self._rings[h]

    def within(self, max_hops: int) -> sp.csr_array:
        """Bool ``(n_units, n_units)``: units at most ``max_hops`` hops apart (each unit reaches itself)."""
        if max_hops < 0:
            raise ValueError(f"max_hops must be >= 0, got {max_hops}")
        out = self.at_hop(0).copy()
        for h in range(1, max_hops + 1):
            out = out + self.at_hop(h)
        return sp.csr_array(out, dtype=bool)

    def distances(self, max_hops: int) -> np.ndarray:
        """Dense ``D[n, m]``: hop distance if at most ``max_hops``, else -1. Only for small topologies."""
        dist = np.full((self.n_units, self.n_units), -1, dtype=np.int64)
        for h in range(max_hops + 1):
            rows, cols = self.at_hop(h).nonzero()
            dist[rows, cols] = h
        return dist

    # ------------------------------------------------------------------ weights
    def hop_weight(self, h: int, normalization: str = "sym") -> sp.csr_array:
        """Float ``W_h[n, m]``: weight with which unit m excites unit n at exactly ``h`` hops (module doc)."""
        if normalization not in HOP_NORMALIZATIONS:
            raise ValueError(f"hop normalization must be one of {HOP_NORMALIZATIONS}, got {normalization!r}")
        a_h = self.at_hop(h).astype(np.float64)
        if h == 0 or normalization == "none":
            return sp.csr_array(a_h)
        deg = np.asarray(a_h.sum(axis=1)).ravel()
        scale = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
        if normalization == "sym":
            scale = np.sqrt(scale)
        d = sp.diags_array(scale)
        return sp.csr_array(d @ a_h @ d)

    def hop_weights(self, n_hops: int, normalization: str = "sym") -> list[sp.csr_array]:
        """``[W_0, ..., W_{n_hops - 1}]`` (``n_hops = 1``: the same unit only)."""
        if n_hops < 1:
            raise ValueError(f"n_hops must be >= 1 (1 = same unit only), got {n_hops}")
        return [self.hop_weight(h, normalization) for h in range(n_hops)]

    def __repr__(self) -> str:
        return f"Topology(n_units={self.n_units}, n_edges={self.n_edges})"
