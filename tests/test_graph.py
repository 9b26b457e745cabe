"""CausalGraph: edits, cycle checks, queries, metrics, serialisation and drawing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sb3_causal import CausalGraph, CyclicGraphError


@pytest.fixture
def chain() -> CausalGraph:
    return CausalGraph(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("a", "c")])


def test_queries(chain):
    assert chain.parents("c") == ["a", "b"]
    assert chain.children("a") == ["b", "c"]
    assert chain.ancestors("c") == ["a", "b"]
    assert chain.descendants("a") == ["b", "c"]
    assert chain.causal_order() == ["a", "b", "c", "d"]
    assert chain.n_edges == 3 and ("a", "b") in chain and ("b", "a") not in chain
    assert chain.has_edge(0, 1)  # indices work too
    adj = chain.adjacency()
    assert adj[0, 1] and adj[1, 2] and not adj[2, 1]
    reach = chain.ancestor_matrix()
    assert reach[0, 2] and not reach[2, 0] and not reach[3].any()


def test_cycles_are_rejected_with_the_cycle_named(chain):
    with pytest.raises(CyclicGraphError, match=r"would create the cycle c -> a -> (b -> )?c"):
        chain.add_edge("c", "a")
    with pytest.raises(CyclicGraphError, match="self-loop"):
        chain.add_edge("d", "d")
    with pytest.raises(CyclicGraphError, match="not acyclic"):
        CausalGraph.from_adjacency(["x", "y"], np.array([[0, 1], [1, 0]]))
    assert chain.n_edges == 3  # unchanged by the failed edits


def test_bad_names_and_shapes(chain):
    with pytest.raises(KeyError, match="unknown variable 'zz'"):
        chain.parents("zz")
    with pytest.raises(ValueError, match="unique"):
        CausalGraph(["a", "a"])
    with pytest.raises(ValueError, match="shape"):
        CausalGraph.from_adjacency(["a", "b"], np.zeros((3, 3)))
    with pytest.raises(KeyError, match="no edge"):
        chain.remove_edge("d", "a")


def test_compare_metrics(chain):
    truth = CausalGraph(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("c", "d")])
    m = chain.compare(truth)
    assert m.precision == pytest.approx(2 / 3) and m.recall == pytest.approx(2 / 3)
    assert m.f1 == pytest.approx(2 / 3) and m.shd == 2
    reversed_ = CausalGraph(["a", "b", "c", "d"], [("b", "a"), ("b", "c"), ("c", "d")])
    assert reversed_.compare(truth).shd == 1  # a reversal counts once
    assert truth.compare(truth).f1 == 1.0
    with pytest.raises(ValueError, match="different variables"):
        chain.compare(CausalGraph(["a", "b"]))


def test_json_round_trip(tmp_path, chain):
    path = tmp_path / "g.json"
    chain.save(path)
    assert CausalGraph.load(path) == chain
    assert CausalGraph.from_json(chain.to_json()) == chain
    with pytest.raises(ValueError, match="not valid JSON"):
        CausalGraph.from_json("{")
    with pytest.raises(ValueError, match="not a serialised CausalGraph"):
        CausalGraph.from_json("[]")
    bad = chain.to_dict()
    bad["edges"].append(["c", "a"])
    with pytest.raises(CyclicGraphError):
        CausalGraph.from_dict(bad)


def test_dot_and_plot(tmp_path, chain):
    dot = chain.to_dot()
    assert dot.startswith("digraph") and '"a" -> "b";' in dot
    out = tmp_path / "g.png"
    chain.plot(out, truth=CausalGraph(["a", "b", "c", "d"], [("a", "b")]))
    assert out.stat().st_size > 1000


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 12), seed=st.integers(0, 10_000), density=st.floats(0, 1))
def test_random_graphs_are_dags_and_round_trip(n, seed, density):
    names = [f"v{i}" for i in range(n)]
    n_edges = int(density * n * (n - 1) / 2)
    g = CausalGraph.random(names, n_edges=n_edges, seed=seed)
    assert g.n_edges == n_edges
    assert g == CausalGraph.random(names, n_edges=n_edges, seed=seed)
    order = g.causal_order()
    pos = {v: i for i, v in enumerate(order)}
    assert all(pos[u] < pos[v] for u, v in g.edges)
    assert CausalGraph.from_json(g.to_json()) == g
    assert CausalGraph.full(names).n_edges == n * (n - 1) // 2


def test_reachability_is_the_one_ancestor_matrix(chain):
    adj = np.array([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0]])  # d -> a -> b -> c
    reach = CausalGraph.reachability(adj)
    assert reach[3, 2] and reach[0, 2] and not reach[2, 0] and not reach.diagonal().any()
    cyclic = CausalGraph.reachability(np.array([[0, 1], [1, 0]]))
    assert cyclic.all()  # a cycle reaches itself
    assert np.array_equal(chain.ancestor_matrix(), CausalGraph.reachability(chain.adjacency()))


def test_ranked_edges_skip_the_ones_closing_a_cycle():
    g = CausalGraph.from_ranked_edges(["a", "b", "c"], [(0, 1), (1, 2), (2, 0), (0, 2)])
    assert g.edges == [("a", "b"), ("a", "c"), ("b", "c")]  # c -> a came third and closed a -> b -> c -> a
