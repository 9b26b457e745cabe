"""Causal graphs over named variables: a DAG with the queries causal RL needs.

``CausalGraph`` is pure (numpy + networkx, no torch). Variables keep the order they were
given in; that order is the index used by adjacency matrices and action/variable maps.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

__all__ = ["CausalGraph", "CyclicGraphError", "GraphMetrics"]

_JSON_FORMAT = "sb3-causal/causal-graph"
_JSON_VERSION = 1


class CyclicGraphError(ValueError):
    """Raised when an operation would make a causal graph cyclic."""


@dataclass(frozen=True)
class GraphMetrics:
    """Edge-level comparison of a learned graph against a true one."""

    precision: float
    recall: float
    f1: float
    shd: int
    n_edges: int
    n_true_edges: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class CausalGraph:
    """A directed acyclic graph over named variables.

    :param variables: variable names, in index order (unique strings)
    :param edges: directed edges ``(cause, effect)`` given by name or by index
    """

    def __init__(self, variables: Sequence[str], edges: Iterable[tuple[Any, Any]] = ()) -> None:
        names = [str(v) for v in variables]
        if len(set(names)) != len(names):
            dupes = sorted({v for v in names if names.count(v) > 1})
            raise ValueError(f"CausalGraph variables must be unique; repeated: {dupes}")
        self._variables: tuple[str, ...] = tuple(names)
        self._index = {v: i for i, v in enumerate(names)}
        self._g = nx.DiGraph()
        self._g.add_nodes_from(names)
        for cause, effect in edges:
            self.add_edge(cause, effect)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_adjacency(cls, variables: Sequence[str], adjacency: np.ndarray) -> CausalGraph:
        """Build from a square matrix whose entry ``[i, j]`` is non-zero for an edge i -> j."""
        adj = np.asarray(adjacency)
        n = len(variables)
        if adj.shape != (n, n):
            raise ValueError(f"adjacency must have shape ({n}, {n}) for {n} variables, got {adj.shape}")
        if np.any(np.diag(adj) != 0):
            raise CyclicGraphError("adjacency has self-loops on its diagonal")
        graph = cls(variables)
        rows, cols = np.nonzero(adj)
        graph._g.add_edges_from((graph._variables[i], graph._variables[j]) for i, j in zip(rows, cols))
        if not nx.is_directed_acyclic_graph(graph._g):
            raise CyclicGraphError(f"adjacency is not acyclic; a cycle: {graph._find_cycle()}")
        return graph

    @classmethod
    def empty(cls, variables: Sequence[str]) -> CausalGraph:
        return cls(variables)

    @classmethod
    def full(cls, variables: Sequence[str]) -> CausalGraph:
        """The complete DAG in the given variable order (every i -> j with i < j)."""
        n = len(variables)
        return cls.from_adjacency(variables, np.triu(np.ones((n, n), dtype=bool), k=1))

    @classmethod
    def random(cls, variables: Sequence[str], n_edges: int | None = None, seed: int | None = None) -> CausalGraph:
        """A random DAG: a random variable order, then ``n_edges`` edges drawn uniformly among the
        pairs that respect it (default: as many edges as variables)."""
        n = len(variables)
        max_edges = n * (n - 1) // 2
        n_edges = n if n_edges is None else n_edges
        if not 0 <= n_edges <= max_edges:
            raise ValueError(f"n_edges must be in [0, {max_edges}] for {n} variables, got {n_edges}")
        rng = np.random.default_rng(seed)
        order = rng.permutation(n)
        iu, ju = np.triu_indices(n, k=1)
        chosen = rng.choice(iu.size, size=n_edges, replace=False)
        adj = np.zeros((n, n), dtype=bool)
        adj[order[iu[chosen]], order[ju[chosen]]] = True
        return cls.from_adjacency(variables, adj)

    def copy(self) -> CausalGraph:
        return CausalGraph(self._variables, self.edges)

    # ------------------------------------------------------------------ basic access
    @property
    def variables(self) -> tuple[str, ...]:
        return self._variables

    @property
    def n_variables(self) -> int:
        return len(self._variables)

    @property
    def edges(self) -> list[tuple[str, str]]:
        """Edges sorted by (cause index, effect index)."""
        return sorted(self._g.edges, key=lambda e: (self._index[e[0]], self._index[e[1]]))

    @property
    def n_edges(self) -> int:
        return self._g.number_of_edges()

    def name(self, variable: Any) -> str:
        """The name of a variable given by name or index (clear error when unknown)."""
        if isinstance(variable, (int, np.integer)) and not isinstance(variable, bool):
            if not 0 <= variable < self.n_variables:
                raise IndexError(f"variable index {variable} out of range [0, {self.n_variables})")
            return self._variables[int(variable)]
        if variable not in self._index:
            raise KeyError(f"unknown variable {variable!r}; known: {list(self._variables)}")
        return str(variable)

    def index(self, variable: Any) -> int:
        return self._index[self.name(variable)]

    def __contains__(self, edge: object) -> bool:
        if not isinstance(edge, tuple) or len(edge) != 2:
            return False
        return self.has_edge(*edge)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CausalGraph):
            return NotImplemented
        return self._variables == other._variables and set(self._g.edges) == set(other._g.edges)

    def __repr__(self) -> str:
        return f"CausalGraph(n_variables={self.n_variables}, n_edges={self.n_edges})"

    # ------------------------------------------------------------------ edits
    def has_edge(self, cause: Any, effect: Any) -> bool:
        return self._g.has_edge(self.name(cause), self.name(effect))

    def add_edge(self, cause: Any, effect: Any) -> None:
        """Add ``cause -> effect``; raises :class:`CyclicGraphError` if it would close a cycle."""
        u, v = self.name(cause), self.name(effect)
        if u == v:
            raise CyclicGraphError(f"self-loop {u!r} -> {u!r} is not allowed in a causal DAG")
        if self._g.has_edge(u, v):
            return
        if nx.has_path(self._g, v, u):
            path = nx.shortest_path(self._g, v, u)
            raise CyclicGraphError(f"edge {u!r} -> {v!r} would create the cycle {' -> '.join([u, *path])}")
        self._g.add_edge(u, v)

    def remove_edge(self, cause: Any, effect: Any) -> None:
        u, v = self.name(cause), self.name(effect)
        if not self._g.has_edge(u, v):
            raise KeyError(f"no edge {u!r} -> {v!r} to remove")
        self._g.remove_edge(u, v)

    # ------------------------------------------------------------------ queries
    def parents(self, variable: Any) -> list[str]:
        return self._sorted(self._g.predecessors(self.name(variable)))

    def children(self, variable: Any) -> list[str]:
        return self._sorted(self._g.successors(self.name(variable)))

    def ancestors(self, variable: Any) -> list[str]:
        return self._sorted(nx.ancestors(self._g, self.name(variable)))

    def descendants(self, variable: Any) -> list[str]:
        return self._sorted(nx.descendants(self._g, self.name(variable)))

    def causal_order(self) -> list[str]:
        """A topological order; ties are broken by variable index, so it is deterministic."""
        return list(nx.lexicographical_topological_sort(self._g, key=self._index.__getitem__))

    def adjacency(self, dtype: Any = bool) -> np.ndarray:
        """``A[i, j] = 1`` for an edge from variable i to variable j."""
        adj = np.zeros((self.n_variables, self.n_variables), dtype=dtype)
        for u, v in self._g.edges:
            adj[self._index[u], self._index[v]] = 1
        return adj

    def ancestor_matrix(self) -> np.ndarray:
        """``R[i, j]`` is True when variable i is a (strict) ancestor of variable j."""
        return self.reachability(self.adjacency())

    @staticmethod
    def reachability(adjacency: np.ndarray) -> np.ndarray:
        """``R[i, j]``: a directed path of length >= 1 from i to j in the graph of a square 0/1
        ``adjacency`` (cyclic or not), by repeated squaring of a boolean matrix."""
        reach = np.asarray(adjacency).astype(bool)
        while True:
            step = reach.astype(np.int64)
            nxt = reach | ((step @ step) > 0)
            if np.array_equal(nxt, reach):
                return reach
            reach = nxt

    @classmethod
    def from_ranked_edges(cls, variables: Sequence[str], edges: Iterable[tuple[int, int]]) -> CausalGraph:
        """A DAG from edges ``(cause index, effect index)`` inserted in the order given (strongest
        first), skipping any edge that would close a cycle with those already in."""
        graph = cls(variables)
        reach = np.eye(graph.n_variables, dtype=bool)  # reach[a, b]: a reaches b (or a == b)
        for i, j in edges:
            if reach[j, i]:
                continue
            graph._g.add_edge(graph._variables[i], graph._variables[j])
            reach |= np.outer(reach[:, i], reach[j, :])
        return graph

    def upstream_rank(self) -> np.ndarray:
        """A per-variable rank where smaller means more upstream.

        Variables are ranked by topological generation (sources first), then by how many
        descendants they have (more first), then by index. :class:`~sb3_causal.masks.CausalMask` ranks
        its candidates by it.
        """
        depth = np.zeros(self.n_variables, dtype=np.int64)
        for level, generation in enumerate(nx.topological_generations(self._g)):
            for v in generation:
                depth[self._index[v]] = level
        n_desc = self.ancestor_matrix().sum(axis=1)
        order = np.lexsort((np.arange(self.n_variables), -n_desc, depth))
        rank = np.empty(self.n_variables, dtype=np.int64)
        rank[order] = np.arange(self.n_variables)
        return rank

    def compare(self, truth: CausalGraph) -> GraphMetrics:
        """Precision, recall, F1 of directed edges and the structural Hamming distance to ``truth``."""
        if set(truth.variables) != set(self._variables):
            missing = sorted(set(truth.variables) ^ set(self._variables))
            raise ValueError(f"graphs are over different variables; differing: {missing}")
        learned = set(self._g.edges)
        true = set(truth._g.edges)
        tp = len(learned & true)
        precision = tp / len(learned) if learned else 0.0
        recall = tp / len(true) if true else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        # SHD: one per missing, extra, or reversed edge (a reversal counts once, not twice).
        reversed_ = {(u, v) for (u, v) in learned - true if (v, u) in true}
        extra = len(learned - true) - len(reversed_)
        missing = len({(u, v) for (u, v) in true - learned if (v, u) not in learned})
        return GraphMetrics(
            precision=precision,
            recall=recall,
            f1=f1,
            shd=extra + missing + len(reversed_),
            n_edges=len(learned),
            n_true_edges=len(true),
        )

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": _JSON_FORMAT,
            "version": _JSON_VERSION,
            "variables": list(self._variables),
            "edges": [list(e) for e in self.edges],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CausalGraph:
        if not isinstance(data, dict) or data.get("format") != _JSON_FORMAT:
            raise ValueError(f"not a serialised CausalGraph (expected format {_JSON_FORMAT!r})")
        variables, edges = data.get("variables"), data.get("edges")
        if not isinstance(variables, list) or not all(isinstance(v, str) for v in variables):
            raise ValueError("malformed CausalGraph JSON: 'variables' must be a list of variable names (strings)")
        if not isinstance(edges, list) or not all(isinstance(e, list) and len(e) == 2 for e in edges):
            raise ValueError("malformed CausalGraph JSON: 'edges' must be a list of [cause, effect] pairs")
        try:
            return cls(variables, [tuple(e) for e in edges])
        except (KeyError, IndexError) as exc:  # an edge names no variable
            raise ValueError(f"malformed CausalGraph JSON: {exc.args[0]}") from exc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> CausalGraph:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"CausalGraph JSON is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> CausalGraph:
        return cls.from_json(Path(path).read_text())

    # ------------------------------------------------------------------ drawing (sb3_causal.plotting)
    def to_dot(self, name: str = "causal_graph", truth: CausalGraph | None = None) -> str:
        """Graphviz DOT text; with ``truth``, edges coloured correct / extra / missing (:mod:`sb3_causal.plotting`)."""
        from sb3_causal.plotting import graph_to_dot

        return graph_to_dot(self, name=name, truth=truth)

    def plot(self, path: str | Path | None = None, truth: CausalGraph | None = None, ax: Any = None) -> Any:
        """Draw the graph layered by causal order (:func:`~sb3_causal.plotting.plot_graph`).

        With ``truth``, correct edges are drawn green, extra ones red and missing ones dashed grey, with a legend.
        Returns the matplotlib axes; writes ``path`` when given.
        """
        from sb3_causal.plotting import plot_graph

        return plot_graph(self, path=path, truth=truth, ax=ax)

    # ------------------------------------------------------------------ helpers
    def _sorted(self, names: Iterable[str]) -> list[str]:
        return sorted(names, key=self._index.__getitem__)

    def _find_cycle(self) -> str:
        try:
            cycle = nx.find_cycle(self._g)
        except nx.NetworkXNoCycle:  # pragma: no cover
            return "none"
        return " -> ".join([cycle[0][0], *[v for _, v in cycle]])
