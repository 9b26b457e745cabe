import numpy as np
import pytest
import scipy.sparse as sp

from sb3_causal.topology import Topology


def _ring(n: int) -> np.ndarray:
    adj = np.zeros((n, n), dtype=bool)
    for i in range(n):
        adj[i, (i + 1) % n] = adj[(i + 1) % n, i] = True
    return adj


def test_hop_distances_on_a_ring():
    topo = Topology(_ring(8))
    dist = topo.distances(3)
    assert dist[0, 0] == 0 and dist[0, 1] == 1 and dist[0, 7] == 1 and dist[0, 2] == 2 and dist[0, 3] == 3
    assert dist[0, 4] == -1  # four hops away, beyond max_hops
    assert topo.within(1).sum() == 8 * 3
    assert (topo.at_hop(2).toarray() == (dist == 2)).all()


def test_hop_weights_normalisations():
    adj = _ring(6)
    adj[0, 3] = adj[3, 0] = True  # unequal degrees
    topo = Topology(sp.csr_array(adj))
    a1 = adj.astype(float)
    deg = a1.sum(axis=1)
    assert np.allclose(topo.hop_weight(1, "sym").toarray(), a1 / np.sqrt(np.outer(deg, deg)))
    assert np.allclose(topo.hop_weight(1, "rw").toarray(), a1 / np.outer(deg, deg))
    assert np.allclose(topo.hop_weight(1, "none").toarray(), a1)
    assert np.allclose(topo.hop_weight(0).toarray(), np.eye(6))
    assert len(topo.hop_weights(3)) == 3


def test_isolated_units_and_no_topology():
    topo = Topology(None, n_units=4)
    assert topo.n_edges == 0
    assert (topo.distances(2) == np.where(np.eye(4, dtype=bool), 0, -1)).all()
    assert topo.hop_weight(1).nnz == 0


@pytest.mark.parametrize(
    ("adjacency", "message"),
    [(np.ones((2, 3)), "square"), (np.triu(np.ones((3, 3)), 1), "symmetric")],
)
def test_bad_topologies(adjacency, message):
    with pytest.raises(ValueError, match=message):
        Topology(adjacency)
    with pytest.raises(ValueError, match="normalization"):
        Topology(_ring(3)).hop_weight(1, "bogus")


def test_thousands_of_units_stay_sparse():
    rng = np.random.default_rng(0)
    n = 5000
    rows, cols = rng.integers(n, size=(2, 6000))
    adj = sp.coo_array((np.ones(6000, dtype=bool), (rows, cols)), shape=(n, n))
    topo = Topology(adj + adj.T)
    weights = topo.hop_weights(3, "rw")
    assert all(sp.issparse(w) for w in weights)
    assert topo.within(2).nnz < n * 50


def test_layouts_and_thp_take_their_hops_from_topology():
    from sb3_causal.discovery.thp import hop_weight_matrices
    from sb3_causal.variables import CausalVariables, VariableLayoutError

    adj = _ring(6)
    layout = CausalVariables(
        names=("a", "b"), obs_index=np.arange(12).reshape(6, 2), action_target=np.arange(12), topology=adj, n_hops=None
    )
    assert layout.n_hops is None and layout.intervenes_when_inactive  # undeclared reach; the default rule
    assert np.array_equal(layout.unit_distances(2), Topology(adj).distances(2))
    weights = hop_weight_matrices(adj, 6, 3, "rw")
    assert np.allclose(weights[2], Topology(adj).hop_weight(2, "rw").toarray())
    with pytest.raises(VariableLayoutError, match="n_hops"):
        CausalVariables(names=("a",), obs_index=[[0]], action_target=[0], n_hops=0)
