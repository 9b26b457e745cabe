"""initial_graph: methods, time tiers on a toy lagged SCM, episode boundaries, errors, seeds."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from sb3_causal.discovery.initial import INITIAL_METHODS, initial_graph
from sb3_causal.discovery.observational import break_cycles, lagged_samples
from sb3_causal.discovery.thp import TopologicalHawkes
from sb3_causal.graph import CausalGraph
from sb3_causal.variables import CausalVariables
from sb3_causal_envs.fault_alarm import FaultAlarmEnv

HAS_TIGRAMITE = importlib.util.find_spec("tigramite") is not None
NEEDS_TIGRAMITE = pytest.mark.skipif(not HAS_TIGRAMITE, reason="tigramite (the [pcmci] extra) is not installed")

NAMES = ["x0", "x1", "x2", "x3"]
TRUTH = CausalGraph(NAMES, [("x0", "x1"), ("x1", "x2"), ("x0", "x3")])


def lagged_scm(n_steps: int = 1500, n_units: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A linear SCM on lags: x1_{t+1} <- x0_t, x2_{t+1} <- x1_t, x3_{t+1} <- x0_t; episodes of 100 steps."""
    rng = np.random.default_rng(seed)
    states = np.zeros((n_steps, n_units, 4))
    starts = np.arange(n_steps) % 100 == 0
    for t in range(n_steps):
        noise = rng.normal(size=(n_units, 4))
        if starts[t]:
            states[t] = noise
            continue
        prev = states[t - 1]
        states[t, :, 0] = noise[:, 0]
        states[t, :, 1] = 0.9 * prev[:, 0] + noise[:, 1]
        states[t, :, 2] = 0.9 * prev[:, 1] + noise[:, 2]
        states[t, :, 3] = -0.9 * prev[:, 0] + noise[:, 3]
    return states, starts


@pytest.mark.parametrize("method", ["pc", "ges", pytest.param("pcmci", marks=NEEDS_TIGRAMITE)])
def test_lagged_methods_recover_the_toy_scm(method: str) -> None:
    states, starts = lagged_scm()
    learned = initial_graph(method, NAMES, states=states, episode_starts=starts)
    assert learned.variables == tuple(NAMES)
    assert set(learned.edges) == set(TRUTH.edges)


def test_time_tiers_orient_edges_forward() -> None:
    # x1 at t+1 is driven by x0 at t; at lag 0 the two are independent, so only time can orient the edge.
    states, starts = lagged_scm(seed=1)
    for method in ("pc", "ges"):
        learned = initial_graph(method, NAMES, states=states, episode_starts=starts)
        assert not any(e in learned for e in [("x1", "x0"), ("x2", "x1"), ("x3", "x0")]), learned.edges


def test_episode_boundaries_are_never_paired() -> None:
    states = np.arange(10, dtype=float).reshape(10, 1, 1)
    starts = np.zeros(10, dtype=bool)
    starts[[0, 4, 7]] = True
    pairs = lagged_samples(states, starts)
    np.testing.assert_array_equal(pairs, [[0, 1], [1, 2], [2, 3], [4, 5], [5, 6], [7, 8], [8, 9]])


def test_a_dependence_only_across_boundaries_is_not_learned() -> None:
    # Within episodes the variables are independent noise; x1 at each episode's first step copies x0 at the
    # previous episode's last step. Pairing across boundaries would find x0 -> x1.
    rng = np.random.default_rng(0)
    states = rng.normal(size=(3000, 1, 2))
    starts = np.arange(3000) % 3 == 0
    states[starts[1:].nonzero()[0] + 1, 0, 1] = 5 * states[starts[1:].nonzero()[0], 0, 0]
    names = ["x0", "x1"]
    assert initial_graph("pc", names, states=states, episode_starts=starts).n_edges == 0
    assert ("x0", "x1") in initial_graph("pc", names, states=states, episode_starts=None)


def test_flat_observations_through_a_layout() -> None:
    states, starts = lagged_scm(n_units=2)
    layout = CausalVariables(names=tuple(NAMES), obs_index=np.arange(8).reshape(2, 4), action_target=np.arange(8))
    flat = states.reshape(states.shape[0], -1)
    direct = initial_graph("pc", NAMES, states=states, episode_starts=starts)
    assert initial_graph("pc", NAMES, states=flat, episode_starts=starts, layout=layout) == direct


def test_thp_through_initial_graph() -> None:
    env = FaultAlarmEnv()
    log = env.record_alarm_log(300, seed=0)
    names = list(env.causal_variables.names)
    learned = initial_graph("thp", names, alarm_log=log, max_iter=5)
    assert learned == TopologicalHawkes(max_iter=5).fit(log)
    reordered = initial_graph("thp", names[::-1], alarm_log=log, max_iter=5)
    assert reordered.variables == tuple(names[::-1])
    assert set(reordered.edges) == set(learned.edges)
    with pytest.raises(ValueError, match="do not match"):
        initial_graph("thp", [*names[:-1], "other"], alarm_log=log)


def test_baselines_and_seeds() -> None:
    assert initial_graph("empty", NAMES).n_edges == 0
    assert initial_graph("full", NAMES) == CausalGraph.full(NAMES)
    a = initial_graph("random", NAMES, seed=3)
    assert a == initial_graph("random", NAMES, seed=3)
    assert a.n_edges == len(NAMES)
    assert initial_graph("random", NAMES, seed=3, n_edges=2).n_edges == 2
    seeds = {tuple(initial_graph("random", NAMES, seed=s).edges) for s in range(10)}
    assert len(seeds) > 1


def test_user_graph_is_copied_and_checked() -> None:
    given = CausalGraph(NAMES, [("x0", "x1")])
    out = initial_graph(given, NAMES)
    assert out == given and out is not given
    out.add_edge("x1", "x2")
    assert given.n_edges == 1
    with pytest.raises(ValueError, match="other variables"):
        initial_graph(given, ["x0", "x1", "x2", "y"])


def test_clear_errors() -> None:
    states, starts = lagged_scm()
    with pytest.raises(ValueError, match="unknown initial graph method 'lingam'") as info:
        initial_graph("lingam", NAMES)
    assert all(m in str(info.value) for m in INITIAL_METHODS)
    with pytest.raises(TypeError, match="method must be"):
        initial_graph(3, NAMES)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alarm_log="):
        initial_graph("thp", NAMES)
    for method in ("pc", "ges", "pcmci"):
        with pytest.raises(ValueError, match="states="):
            initial_graph(method, NAMES, alarm_log=object())
    with pytest.raises(ValueError, match="empty"):
        initial_graph("pc", NAMES, states=np.zeros((0, 1, 4)))
    with pytest.raises(ValueError, match="too few samples"):
        initial_graph("pc", NAMES, states=states[:5])
    if HAS_TIGRAMITE:
        with pytest.raises(ValueError, match="too few samples"):
            initial_graph("pcmci", NAMES, states=states[:5])
    constant = states.copy()
    constant[:, :, 2] = 1.0
    with pytest.raises(ValueError, match=r"constant columns.*x2@t"):
        initial_graph("ges", NAMES, states=constant, episode_starts=starts)
    if HAS_TIGRAMITE:
        with pytest.raises(ValueError, match=r"constant variables.*x2"):
            initial_graph("pcmci", NAMES, states=constant, episode_starts=starts)
    with pytest.raises(ValueError, match="NaN"):
        initial_graph("pc", NAMES, states=np.full_like(states, np.nan))
    with pytest.raises(ValueError, match="last axis"):
        initial_graph("pc", NAMES, states=states[:, :, :3])
    with pytest.raises(ValueError, match="episode_starts"):
        initial_graph("pc", NAMES, states=states, episode_starts=starts[:-1])
    with pytest.raises(ValueError, match="takes no options"):
        initial_graph("empty", NAMES, alpha=0.1)
    with pytest.raises(ValueError, match="unique"):
        initial_graph("empty", ["a", "a"])


def test_pcmci_without_tigramite_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    states, starts = lagged_scm()
    monkeypatch.setitem(sys.modules, "tigramite", None)
    with pytest.raises(ImportError, match=r"sb3-causal\[pcmci\]"):
        initial_graph("pcmci", NAMES, states=states, episode_starts=starts)


def test_break_cycles_drops_the_weakest_edge() -> None:
    adj = np.zeros((3, 3), dtype=bool)
    adj[0, 1] = adj[1, 2] = adj[2, 0] = adj[0, 2] = True
    strength = np.array([[0, 0.9, 0.5], [0, 0, 0.8], [0.1, 0, 0]])
    out = break_cycles(adj, strength)
    expected = adj.copy()
    expected[2, 0] = False
    np.testing.assert_array_equal(out, expected)
