"""OnlineCausalLearner: ATT on toy SCMs with known effects, pruning, streaming exactness, bad input."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import pickle
from itertools import pairwise

import numpy as np
import pytest

from sb3_causal import CausalGraph
from sb3_causal.discovery.choosers import InterventionChooser, LeastEvidenceChooser, UniformChooser
from sb3_causal.discovery.online import OnlineCausalLearner
from sb3_causal.variables import CausalVariables
from sb3_causal_envs import FaultAlarmEnv
from sb3_causal_envs.factored import FactoredSCMEnv
from tests.toy_envs import LinearCascadeEnv, PoissonCascadeEnv


def collect(env, n_steps: int, seed: int, valid_only: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random-action transitions, never paired across episodes (``valid_only``: among the env's action masks)."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    o, a, n = [], [], []
    for _ in range(n_steps):
        if valid_only:
            action = int(rng.choice(np.flatnonzero(env.action_masks())))
        else:
            action = int(rng.integers(env.action_space.n))
        nxt, _, term, trunc, _ = env.step(action)
        o.append(obs)
        a.append(action)
        n.append(nxt)
        obs = env.reset()[0] if term or trunc else nxt
    return np.array(o), np.array(a), np.array(n)


@pytest.fixture(scope="module")
def linear_data():
    env = LinearCascadeEnv()
    return env, collect(env, 6000, seed=0)


def test_att_on_a_linear_scm_matches_the_known_effects(linear_data):
    env, (obs, actions, next_obs) = linear_data
    learner = OnlineCausalLearner(CausalVariables.factored(4, env.graph.variables, [0, 1, 2, 3, -1]))
    learner.observe(obs, actions, next_obs)
    effect, tstat, n_treated = learner.att()
    # do(a = 0) removes a's natural value m from b and d: ATT = -0.8 m, with m = E[a] under the
    # random policy: m = 0.3 * (4/5) m + 1, so m = 1/0.76 and ATT(a->b) = ATT(a->d) = -1.053.
    m = 1 / 0.76
    assert effect[0, 1] == pytest.approx(-0.8 * m, abs=0.08)
    assert effect[0, 3] == pytest.approx(-0.8 * m, abs=0.08)
    assert effect[0, 2] == pytest.approx(-0.8 * 0.8 * m, abs=0.08)  # through b
    ancestors = env.graph.ancestor_matrix()
    off_diag = ~np.eye(4, dtype=bool)
    assert np.all(np.abs(tstat[ancestors]) > 10)
    assert np.all(np.abs(tstat[~ancestors & off_diag]) < 4)
    assert np.all(n_treated > 800)  # 6000 steps, 5 actions, a variable active ~80% of the time


def test_linear_scm_graph_is_recovered(linear_data):
    env, (obs, actions, next_obs) = linear_data
    learner = OnlineCausalLearner(
        CausalVariables.factored(4, env.graph.variables, [0, 1, 2, 3, -1]), count_weighting=False
    )
    learner.observe(obs, actions, next_obs)
    assert learner.update() == env.graph


def test_pruning_removes_the_shortcut_of_a_poisson_chain():
    env = PoissonCascadeEnv()  # r -> s -> t and r -> u: r is an ancestor of t, not a parent
    obs, actions, next_obs = collect(env, 16000, seed=1)
    layout = CausalVariables.factored(4, env.graph.variables, [0, 1, 2, 3, -1])
    learner = OnlineCausalLearner(layout)
    learner.observe(obs, actions, next_obs)
    ancestors, _ = learner.ancestor_candidates()
    assert ancestors[0, 2]  # orientation finds the ancestor relation r -> t ...
    graph = learner.update()
    assert ("r", "t") not in graph  # ... and pruning removes it
    assert graph == env.graph
    unpruned = OnlineCausalLearner(layout, prune=False)
    unpruned.observe(obs, actions, next_obs)
    assert ("r", "t") in unpruned.update()


def test_streaming_statistics_are_exact(linear_data):
    env, (obs, actions, next_obs) = linear_data
    layout = CausalVariables.factored(4, env.graph.variables, [0, 1, 2, 3, -1])
    whole, parts = OnlineCausalLearner(layout), OnlineCausalLearner(layout)
    whole.observe(obs, actions, next_obs)
    for chunk in np.array_split(np.arange(len(obs)), 7):
        parts.observe(obs[chunk], actions[chunk], next_obs[chunk])
    for a, b in zip(whole.att(), parts.att()):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
    assert whole.update() == parts.update()


def test_prior_is_kept_until_a_variable_is_treated_enough():
    env = PoissonCascadeEnv()
    layout = CausalVariables.factored(4, env.graph.variables, [0, 1, 2, 3, -1])
    prior = CausalGraph(env.graph.variables, [("u", "t")])  # wrong: u causes nothing
    learner = OnlineCausalLearner(layout, prior, confirm_treated=200)
    assert learner.update() == prior  # no data yet: the prior
    obs, actions, next_obs = collect(env, 6000, seed=2)
    untreated_u = actions != 3
    learner.observe(obs[untreated_u], actions[untreated_u], next_obs[untreated_u])
    graph = learner.update()
    assert ("u", "t") in graph  # u never treated: no evidence against the prior, and no path explains it
    assert ("r", "s") in graph and ("s", "t") in graph  # what the interventions showed
    learner.observe(obs[~untreated_u], actions[~untreated_u], next_obs[~untreated_u])
    assert learner.att()[2][3] > 200  # u now treated often, with no significant effect on t
    assert ("u", "t") not in learner.update()


def test_fault_alarm_ancestors_are_found_quickly():
    env = FaultAlarmEnv()
    layout = env.causal_variables
    learner = OnlineCausalLearner(layout)
    learner.observe(*collect(env, 3000, seed=0, valid_only=True))
    assert learner.n_hops == 2  # chosen from data (the simulator's reach is 2, and hidden)
    ancestors, _ = learner.ancestor_candidates()
    truth = env.causal_graph.ancestor_matrix()
    precision = (ancestors & truth).sum() / ancestors.sum()
    assert precision > 0.95 and ancestors.sum() > 40
    assert learner.update().compare(env.causal_graph).precision > 0.9


def test_state_dict_round_trip(linear_data):
    env, (obs, actions, next_obs) = linear_data
    layout = CausalVariables.factored(4, env.graph.variables, [0, 1, 2, 3, -1])
    learner = OnlineCausalLearner(layout)
    learner.observe(obs, actions, next_obs)
    graph = learner.update()
    clone = OnlineCausalLearner(layout)
    clone.load_state_dict(learner.state_dict())
    assert clone.graph == graph and clone.n_transitions == learner.n_transitions
    assert clone.update() == graph


def test_bad_input_gives_clear_errors():
    layout = CausalVariables.factored(3)
    learner = OnlineCausalLearner(layout)
    good = np.zeros((2, 3))
    with pytest.raises(ValueError, match="NaN or inf"):
        learner.observe(np.full((2, 3), np.nan), np.array([0, 1]), good)
    with pytest.raises(ValueError, match=r"actions must be in \[0, 3\)"):
        learner.observe(good, np.array([0, 5]), good)
    with pytest.raises(ValueError, match="matching batches"):
        learner.observe(good, np.array([0]), good)
    with pytest.raises(ValueError, match="do not match the layout"):
        OnlineCausalLearner(layout, CausalGraph(["p", "q", "r"]))
    with pytest.raises(ValueError, match="z_threshold"):
        OnlineCausalLearner(layout, z_threshold=0)
    with pytest.raises(ValueError, match="blas_threads"):
        OnlineCausalLearner(layout, blas_threads=0)
    assert learner.update() == CausalGraph.empty(layout.names)  # an empty buffer: the prior, no crash


def _factored_data(n: int, family: str, model_seed: int, n_steps: int, seed: int = 0):
    env = FactoredSCMEnv(n, family, "zero", model_seed=model_seed)
    return env, collect(env, n_steps, seed=seed)


def test_a_change_of_spread_alone_is_learned():
    # Zero-mean linear-Gaussian SCM: do(x = 0) leaves every child's mean at 0 and only shrinks its variance.
    env, (obs, actions, next_obs) = _factored_data(4, "gaussian0", model_seed=0, n_steps=6000)
    learner = OnlineCausalLearner(env.causal_variables)
    learner.observe(obs, actions, next_obs)
    learner.att()
    mean_t, second_t = learner.channel_tstats[:2]  # the marginal channels
    edges = env.causal_graph.adjacency()
    assert np.all(np.abs(mean_t[edges]) < 3)  # the mean shows nothing ...
    assert np.all(np.abs(second_t[edges]) > learner.z_threshold)  # ... the second moment does
    assert learner.update() == env.causal_graph


def test_conditioning_on_found_ancestors_finds_weak_causes():
    # Model seed 1 (a tuning seed), 8 variables: x6 and x7 have three zero-mean causes each; the marginal
    # second moment misses the weak ones (a small share of the child's variance), the conditional
    # channels find them once the strong causes are conditioned on (adjacency orientation off: this is the
    # tests' own credit).
    env, (obs, actions, next_obs) = _factored_data(8, "gaussian0", model_seed=1, n_steps=20_000)
    graphs = {}
    for conditional in (False, True):
        learner = OnlineCausalLearner(env.causal_variables, conditional_test=conditional, orient_adjacent=False)
        learner.observe(obs, actions, next_obs)
        graphs[conditional] = learner.update().compare(env.causal_graph)
        assert learner.channel_tstats.shape[0] == (4 if conditional else 2)
    assert graphs[False].recall < 0.8
    assert graphs[True].recall == 1.0 and graphs[True].precision == 1.0


@pytest.mark.parametrize("family", ["gaussian0", "gaussian"])
def test_null_scm_conditional_channels_stay_at_nominal(family):
    # Continuous values: the conditional channels are on. No edges: nothing may be found.
    exceed, total, false_edges = 0, 0, 0
    for model_seed in range(3):
        env = FactoredSCMEnv(8, family, "zero", model_seed=model_seed, n_edges=0)
        obs, actions, next_obs = collect(env, 3000, seed=model_seed)
        learner = OnlineCausalLearner(env.causal_variables)
        learner.observe(obs, actions, next_obs)
        learner.att()
        off = ~np.eye(8, dtype=bool)
        assert learner.channel_tstats.shape[0] == 4
        exceed += int((np.abs(learner.channel_tstats[:, off]) > 1.96).sum())
        total += learner.channel_tstats[:, off].size
        false_edges += learner.update().n_edges
    assert exceed / total <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / total), exceed / total
    assert false_edges == 0


def test_null_scm_false_positive_rate_is_at_most_nominal():
    # No edges: every |t| > 1.96 is a false positive, nominally 5% per statistic.
    exceed, total, false_edges = 0, 0, 0
    for model_seed in range(4):
        env = FactoredSCMEnv(8, "poisson", "zero", model_seed=model_seed, n_edges=0)
        obs, actions, next_obs = collect(env, 3000, seed=model_seed)
        learner = OnlineCausalLearner(env.causal_variables)
        learner.observe(obs, actions, next_obs)
        learner.att()
        off = ~np.eye(8, dtype=bool)
        exceed += int((np.abs(learner.channel_tstats[:, off]) > 1.96).sum())
        total += learner.channel_tstats[:, off].size
        false_edges += learner.update().n_edges
    rate = exceed / total
    assert rate <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / total), rate
    assert false_edges == 0


def _rarely_treated(env, n_steps: int, seed: int, p_noop: float):
    """Transitions where each variable is treated with probability ``(1 - p_noop) / V`` (the no-op otherwise)."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    o, a, n = [], [], []
    for _ in range(n_steps):
        action = env.n_variables if rng.random() < p_noop else int(rng.integers(env.n_variables))
        nxt, *_ = env.step(action)
        o.append(obs)
        a.append(action)
        n.append(nxt)
        obs = nxt
    return np.array(o), np.array(a), np.array(n)


def test_orienting_adjacencies_finds_weak_edges_from_few_treatments():
    # ~55 treatments per variable: most zero-mean edges stay below the multiple-testing rule over all pairs,
    # but the data show the adjacencies, and the two directions' treatments orient them.
    env = FactoredSCMEnv(8, "gaussian0", "zero", model_seed=4)
    data = _rarely_treated(env, 3000, seed=0, p_noop=0.85)
    truth = env.causal_graph
    scores = {}
    for orient in (False, True):
        learner = OnlineCausalLearner(env.causal_variables, orient_adjacent=orient)
        learner.observe(*data)
        scores[orient] = learner.update().compare(truth)
    assert scores[False].recall <= 0.25
    assert scores[True].recall >= 0.85 and scores[True].precision == 1.0


@pytest.mark.parametrize("family", ["gaussian0", "poisson"])
def test_orienting_adjacencies_adds_no_edge_to_a_null_scm(family):
    for model_seed in range(3):
        env = FactoredSCMEnv(8, family, "zero", model_seed=model_seed, n_edges=0)
        learner = OnlineCausalLearner(env.causal_variables, orient_adjacent=True)
        learner.observe(*_rarely_treated(env, 3000, seed=model_seed, p_noop=0.5))
        assert learner.update().n_edges == 0


def test_treatments_of_inactive_variables_count_where_the_layout_says():
    x0 = np.zeros((40, 1, 2))  # variable 0 is inactive (0) at every treatment
    x1 = np.random.default_rng(0).normal(size=(40, 1, 2))
    actions = np.zeros(40, dtype=np.int64)
    for intervenes, expected in ((True, 40), (False, 0)):
        layout = CausalVariables.factored(2, action_map=[0, 1, -1], intervenes_when_inactive=intervenes)
        learner = OnlineCausalLearner(layout)
        learner.observe_values(x0, actions, x1)
        assert learner.n_treated[0] == expected


def test_fault_alarm_layout_does_not_read_the_hop_count(monkeypatch):
    env = FaultAlarmEnv()

    def hidden(self):
        raise AssertionError("the layout read the simulator's hop count")

    monkeypatch.setattr(type(env.model), "n_hops", property(hidden))
    layout = env.causal_variables
    assert layout.n_hops is None and not layout.intervenes_when_inactive
    learner = OnlineCausalLearner(layout)
    assert learner.n_hops is None  # chosen from data once enough rows are in
    with pytest.raises(ValueError, match="n_hops"):
        OnlineCausalLearner(layout, n_hops=0)


def test_npz_round_trip_keeps_layout_settings_and_statistics(linear_data):
    env, (obs, actions, next_obs) = linear_data
    layout = CausalVariables.factored(4, env.graph.variables, [0, 1, 2, 3, -1])
    learner = OnlineCausalLearner(layout, multiple_testing="bonferroni", cluster_size=20)
    learner.observe(obs[:3000], actions[:3000], next_obs[:3000])
    graph = learner.update()
    clone = OnlineCausalLearner.from_npz(learner.to_npz())
    assert clone.layout.names == layout.names and clone.multiple_testing == "bonferroni"
    assert clone.cluster_size == 20 and clone.graph == graph
    for a, b in zip(learner.att(), clone.att()):
        np.testing.assert_array_equal(a, b)
    learner.observe(obs[3000:], actions[3000:], next_obs[3000:])
    clone.observe(obs[3000:], actions[3000:], next_obs[3000:])
    assert clone.update() == learner.update()


def test_choosers():
    candidates = np.array([[True, True, False, True], [False, False, False, False]])
    rng = np.random.default_rng(0)
    assert isinstance(UniformChooser(), InterventionChooser)
    assert np.array_equal(UniformChooser().choose(candidates, rng), candidates)
    chooser = LeastEvidenceChooser(n_variables=2)
    assert isinstance(chooser, InterventionChooser)

    class Learner:
        n_treated = np.array([500.0, 20.0])

    chooser.update(Learner())
    chosen = chooser.choose(candidates, rng)
    assert np.array_equal(chosen, [[False, True, False, True], [False, False, False, False]])  # variable 1, any unit
    with pytest.raises(ValueError, match="bool"):
        chooser.choose(candidates.astype(int), rng)


def test_huge_values_that_swamp_the_statistics_are_warned_about():
    rng = np.random.default_rng(0)
    learner = OnlineCausalLearner(CausalVariables.factored(3, action_map=[0, 1, 2, -1]))
    x = rng.normal(size=(200, 3))
    x[rng.random(200) < 0.3, 0] = 1e30  # a sensor that sometimes reports garbage
    with pytest.warns(UserWarning, match="median magnitude"):
        learner.observe(x[:-1], rng.integers(4, size=199), x[1:])


def test_a_layout_without_a_no_op_action_is_warned_about():
    with pytest.warns(UserWarning, match="no no-op action"):
        OnlineCausalLearner(CausalVariables.factored(3))


def test_thp_warns_when_a_log_s_times_go_backwards():
    from types import SimpleNamespace

    from sb3_causal.discovery.thp import TopologicalHawkes

    log = SimpleNamespace(
        types=np.array([0, 1, 0]), times=np.array([1.0, 3.0, 2.0]), devices=np.zeros(3, int), topology=np.zeros((1, 1))
    )
    with pytest.warns(UserWarning, match="go backwards"):
        TopologicalHawkes().fit(log, type_names=["a", "b"])


def test_hop_normalization_is_declared_or_chosen_from_data_and_saved():
    env = FaultAlarmEnv()
    o, a, n = collect(env, 400, seed=0, valid_only=True)
    layout = env.causal_variables
    with pytest.raises(ValueError, match="hop_normalization"):
        OnlineCausalLearner(layout, hop_normalization="l2")
    declared = OnlineCausalLearner(layout, n_hops=2)
    assert declared.hop_normalization == "rw"  # the documented default
    learner = OnlineCausalLearner(layout, hop_normalization=None, hop_selection_rows=10_000)
    learner.observe(o, a, n)
    assert {norm for _, norm in learner.hop_scores} == {"sym", "rw", "none"}
    chosen = min(learner.hop_scores, key=learner.hop_scores.__getitem__)
    assert (learner.n_hops, learner.hop_normalization) == chosen
    learner.update()
    clone = OnlineCausalLearner.from_npz(learner.to_npz())
    assert clone.declared_hop_normalization is None and clone.hop_normalization == learner.hop_normalization
    np.testing.assert_array_equal(clone._gram, learner._gram)
    # A file written before the argument existed (no setting, no state entry) used "sym" hop features.
    with np.load(io.BytesIO(declared.to_npz())) as npz:
        arrays = {key: npz[key] for key in npz.files if key != "state/hop_normalization"}
    config = json.loads(str(arrays["config"]))
    del config["hop_normalization"]
    arrays["config"] = np.array(json.dumps(config))
    old = io.BytesIO()
    np.savez(old, **arrays)
    assert OnlineCausalLearner.from_npz(old.getvalue()).hop_normalization == "sym"


def _flat_state(learner: OnlineCausalLearner) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key, value in learner.state_dict().items():
        items = value.items() if isinstance(value, dict) else [("", value)]
        out.update({f"{key}.{k}": np.asarray(v) for k, v in items if not isinstance(v, str)})
    return out


@pytest.mark.parametrize("n_hops", [2, None])
def test_observe_work_arrays_carry_nothing_between_calls(n_hops):
    # observe() keeps its work arrays between calls (no fresh pages each chunk): a learner whose arrays are
    # dropped before every call, and a pickled copy taken midway, must end with bit-identical statistics.
    env = FaultAlarmEnv(model_seed=1)
    layout = dataclasses.replace(env.causal_variables, n_hops=n_hops)
    obs, actions, next_obs = collect(env, 1200, seed=2, valid_only=True)
    kept = OnlineCausalLearner(layout, hop_selection_rows=30_000)
    fresh = OnlineCausalLearner(layout, hop_selection_rows=30_000)
    sizes = [300, 7, 293, 400, 200]
    bounds = np.cumsum([0, *sizes])
    for k, (lo, hi) in enumerate(pairwise(bounds)):
        if k == 2:
            copied = pickle.loads(pickle.dumps(copy.deepcopy(kept)))
            assert not copied._scratch._buffers  # the work arrays are a cache: copies leave them out
            kept = copied
        fresh._scratch = type(fresh._scratch)()
        for learner in (kept, fresh):
            learner.observe(obs[lo:hi], actions[lo:hi], next_obs[lo:hi])
    a, b = _flat_state(kept), _flat_state(fresh)
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert kept.n_hops == fresh.n_hops and kept.update() == fresh.update()


def test_observe_helpers_match_plain_numpy():
    from sb3_causal.discovery.online import _any_last, _gather_rows

    rng = np.random.default_rng(0)
    flags = rng.random((4, 9, 5)) < 0.1
    assert np.array_equal(_any_last(flags), flags.any(axis=2))
    wide = rng.random((3, 6, 40)) < 0.01
    assert np.array_equal(_any_last(wide), wide.any(axis=2))
    blocks = [rng.normal(size=(4, 9, 3)), rng.normal(size=(4, 9, 2))]
    units, index = rng.integers(4, size=2500), rng.integers(9, size=2500)  # more rows than one tile
    expected = np.concatenate([blocks[0][units, index], blocks[1][units, (index + 1) % 9]], axis=1)
    assert np.array_equal(_gather_rows([(blocks[0], index), (blocks[1], (index + 1) % 9)], units), expected)
    # layout.values(copy=False): a strided view where the observation indices are evenly spaced, else a copy
    obs = rng.normal(size=(6, 12))
    for index, is_view in (([[0, 2], [4, 6]], True), ([[1, 0], [5, 11]], False), ([[3]], False)):
        layout = CausalVariables(tuple("pq")[: len(index[0])], np.array(index), np.arange(np.size(index)))
        view = layout.values(obs, copy=False)
        assert np.array_equal(view, layout.values(obs)) and np.shares_memory(view, obs) == is_view


@pytest.mark.parametrize("limit", [1, None])
def test_blas_threads_hold_inside_the_learner_only(monkeypatch, linear_data, limit):
    """``blas_threads`` caps numpy's BLAS inside observe / att / update and restores the process's setting."""
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads() -> set[int]:
        return {lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"}

    env, (obs, actions, next_obs) = linear_data
    learner = OnlineCausalLearner(CausalVariables.from_env(env), blas_threads=limit)
    seen: list[set[int]] = []
    inner = learner._att_from
    monkeypatch.setattr(learner, "_att_from", lambda *args: (seen.append(blas_threads()), inner(*args))[1])
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        outside = blas_threads()
        learner.observe(obs[:500], actions[:500], next_obs[:500])
        learner.update()
        assert blas_threads() == outside
    assert seen and all(inside == ({1} if limit == 1 else outside) for inside in seen)
    assert learner.get_config()["blas_threads"] == limit
