"""Topological Hawkes Process: exact features, EM, search, recovery of a small known network."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.optimize import minimize

from sb3_causal.discovery.thp import (
    TopologicalHawkes,
    compensator,
    excitation_features,
    fit_families,
    hop_weight_matrices,
    saturation_times,
)
from sb3_causal.graph import CausalGraph
from sb3_causal_envs.alarm_model import AlarmModel
from sb3_causal_envs.fault_alarm import AlarmLog, FaultAlarmEnv

NAMES = ["A", "B", "C", "D", "E"]


def small_model() -> AlarmModel:
    """5 types on a 12-device ring: A -> B, A -> C, C -> D, D -> E at hop 0 and B -> D at hop 1."""
    alpha = np.zeros((2, 5, 5))
    alpha[0, 0, 1], alpha[0, 0, 2], alpha[0, 2, 3], alpha[0, 3, 4] = 4e-3, 3e-3, 3e-3, 4e-3
    alpha[1, 1, 3] = 8e-3
    n = 12
    ring = np.zeros((n, n), dtype=bool)
    for i in range(n):
        ring[i, (i + 1) % n] = ring[(i + 1) % n, i] = True
    return AlarmModel(
        type_names=NAMES,
        alpha=alpha,
        mu=np.full(5, 6e-4),
        topology=ring,
        root_types=[0],
        root_devices=[0, 4, 8],
        transient=np.zeros((n, 5), dtype=bool),
        n_initial_roots=2,
        min_initial_alarms=5,
        alarm_cap=200,
    )


def random_log(rng: np.random.Generator, n_events: int = 60, n_devices: int = 6, n_types: int = 3) -> AlarmLog:
    topology = np.zeros((n_devices, n_devices), dtype=bool)
    for i in range(n_devices - 1):
        topology[i, i + 1] = topology[i + 1, i] = True
    times = np.sort(np.round(rng.uniform(0, 100, n_events), 0))  # rounding makes ties
    return AlarmLog(
        types=rng.integers(n_types, size=n_events),
        times=times,
        devices=rng.integers(n_devices, size=n_events),
        type_names=tuple(f"t{i}" for i in range(n_types)),
        topology=topology,
    )


@pytest.mark.parametrize("decay", [0.0, 0.05])
def test_excitation_features_match_brute_force(decay: float) -> None:
    log = random_log(np.random.default_rng(0))
    weights = hop_weight_matrices(log.topology, 6, 3, "sym")
    phi = excitation_features(log.times, log.devices, log.types, weights, 3, decay, block_size=7)
    expected = np.zeros_like(phi)
    for i in range(len(log)):
        for j in range(len(log)):
            if log.times[j] < log.times[i]:
                kernel = np.exp(-decay * (log.times[i] - log.times[j]))
                expected[i, :, log.types[j]] += weights[:, log.devices[i], log.devices[j]] * kernel
    np.testing.assert_allclose(phi, expected, rtol=1e-10, atol=1e-12)


def test_compensator_matches_numerical_integral() -> None:
    log = random_log(np.random.default_rng(1), n_events=25)
    weights = hop_weight_matrices(log.topology, 6, 2, "rw")
    decay = 0.03
    risk_end = np.random.default_rng(2).uniform(log.times[0], log.times[-1], size=(6, 3))
    integral, exposure = compensator(log.times, log.devices, log.types, weights, 3, decay, risk_end, block_size=4)
    grid = np.linspace(log.times[0], log.times[-1], 200_001)
    dt = grid[1] - grid[0]
    expected = np.zeros_like(integral)
    for j in range(len(log)):
        kernel = np.where(grid > log.times[j], np.exp(-decay * (grid - log.times[j])), 0.0)
        for n in range(6):
            for w in range(3):
                mass = kernel[grid < risk_end[n, w]].sum() * dt
                expected[:, log.types[j], w] += weights[:, n, log.devices[j]] * mass
    np.testing.assert_allclose(integral, expected, rtol=2e-3, atol=1e-3)
    np.testing.assert_allclose(exposure, (risk_end - log.times[0]).sum(axis=0))


def test_em_reaches_the_maximum_likelihood() -> None:
    rng = np.random.default_rng(3)
    x = rng.exponential(1.0, size=(1, 80, 3)) * (rng.random((1, 80, 3)) < 0.5)
    cost = np.array([[40.0, 25.0, 60.0]])
    exposure = 500.0
    mu, alpha, loglik = fit_families(x, cost, exposure, np.array([0.1]), np.full((1, 3), 0.1), 5000, 1e-12)

    def negative_loglik(p: np.ndarray) -> float:
        lam = p[0] + x[0] @ p[1:]
        return -(np.log(lam).sum() - p[0] * exposure - p[1:] @ cost[0])

    best = minimize(negative_loglik, np.full(4, 0.1), bounds=[(1e-9, None)] * 4, method="L-BFGS-B")
    assert loglik[0] == pytest.approx(-best.fun, abs=1e-3)
    assert negative_loglik(np.r_[mu, alpha[0]]) == pytest.approx(best.fun, abs=1e-3)


def test_hop_weights_match_the_simulator() -> None:
    model = AlarmModel.default(seed=3)
    ours = hop_weight_matrices(model.topology, model.n_devices, model.n_hops, model.hop_normalization)
    np.testing.assert_allclose(ours, np.stack([w.toarray() for w in model.hop_weights()]))


def test_saturation_times() -> None:
    times = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    devices = np.array([0, 0, 1, 0, 1, 0])
    types = np.array([1, 1, 0, 1, 0, 0])
    end = saturation_times(times, devices, types, n_devices=2, n_types=2, cap=2)
    np.testing.assert_array_equal(end, [[5.0, 1.0], [4.0, 5.0]])
    np.testing.assert_array_equal(saturation_times(times, devices, types, 2, 2, None), np.full((2, 2), 5.0))


def test_sequences_do_not_excite_each_other() -> None:
    log = random_log(np.random.default_rng(4))
    thp = TopologicalHawkes(max_hop=1, max_iter=0)
    # Two sequences; the second's first events must see no excitation, so splitting changes the fit.
    seq = (np.arange(len(log)) >= 30).astype(int)
    thp.fit(log)
    one = thp.result_
    thp.fit(log, sequence_ids=seq)
    two = thp.result_
    assert one is not None and two is not None
    assert two.log_likelihood != pytest.approx(one.log_likelihood)


def test_recovers_a_small_network() -> None:
    env = FaultAlarmEnv(model=small_model())
    truth = env.causal_graph
    for seed in (0, 1):
        log = env.record_alarm_log(1500, seed=seed)
        thp = TopologicalHawkes(pair_cap=11, decay=1e-3)
        learned = thp.fit(log)
        metrics = learned.compare(truth)
        assert metrics.recall == 1.0, learned.edges
        assert metrics.precision >= 0.7, learned.edges
        assert not any((v, u) in truth for u, v in learned.edges), "an edge points against the truth"
        # B -> D acts through neighbours: the hop-1 intensity carries it.
        b, d = NAMES.index("B"), NAMES.index("D")
        assert thp.result_ is not None
        assert thp.result_.alpha[1, b, d] > thp.result_.alpha[0, b, d]


def test_fit_is_deterministic_and_acyclic() -> None:
    log = FaultAlarmEnv(model=small_model()).record_alarm_log(800, seed=5)
    first = TopologicalHawkes().fit(log)
    second = TopologicalHawkes().fit(log)
    assert first == second
    assert isinstance(first, CausalGraph)  # CausalGraph.from_adjacency rejects cycles
    shuffled = np.random.default_rng(0).permutation(len(log))
    unsorted = replace(log, types=log.types[shuffled], times=log.times[shuffled], devices=log.devices[shuffled])
    assert TopologicalHawkes().fit(unsorted).edges == first.edges


def test_penalty_controls_sparsity() -> None:
    log = FaultAlarmEnv(model=small_model()).record_alarm_log(800, seed=6)
    sparse = TopologicalHawkes(penalty=1e6).fit(log)
    dense = TopologicalHawkes(penalty=0.0).fit(log)
    assert sparse.n_edges == 0
    assert dense.n_edges >= TopologicalHawkes().fit(log).n_edges


def test_bad_input() -> None:
    log = random_log(np.random.default_rng(0))
    with pytest.raises(ValueError, match="empty"):
        TopologicalHawkes().fit(replace(log, types=log.types[:0], times=log.times[:0], devices=log.devices[:0]))
    with pytest.raises(ValueError, match="types must be in"):
        TopologicalHawkes().fit(replace(log, types=log.types + 5))
    with pytest.raises(ValueError, match="devices must be in"):
        TopologicalHawkes().fit(replace(log, devices=log.devices + 6))
    with pytest.raises(ValueError, match="equally long"):
        TopologicalHawkes().fit(replace(log, times=log.times[:-1]))
    with pytest.raises(ValueError, match="zero time"):
        TopologicalHawkes().fit(replace(log, times=np.zeros(len(log))))
    with pytest.raises(ValueError, match="sequence_ids"):
        TopologicalHawkes().fit(log, sequence_ids=np.zeros(3))
    with pytest.raises(TypeError, match="AlarmLog"):
        TopologicalHawkes().fit(np.zeros(3))
    with pytest.raises(ValueError, match="max_hop"):
        TopologicalHawkes(max_hop=0)
    with pytest.raises(ValueError, match="penalty"):
        TopologicalHawkes(penalty="mdl")
    with pytest.raises(ValueError, match="hop_normalization"):
        TopologicalHawkes(hop_normalization="sqrt")
