"""OnlineCausalLearner: ATT on toy SCMs with known effects, pruning, streaming exactness, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from sb3_causal import CausalGraph
from sb3_causal.discovery.online import OnlineCausalLearner
from sb3_causal.variables import CausalVariables
from sb3_causal_envs import FaultAlarmEnv
from tests.toy_envs import LinearCascadeEnv, PoissonCascadeEnv


def collect(env, n_steps: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random-action transitions, never paired across episodes."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    o, a, n = [], [], []
    for _ in range(n_steps):
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
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    o, a, n = [], [], []
    for _ in range(3000):
        action = int(rng.choice(np.flatnonzero(env.action_masks())))
        nxt, _, term, trunc, _ = env.step(action)
        o.append(obs)
        a.append(action)
        n.append(nxt)
        obs = env.reset()[0] if term or trunc else nxt
    learner = OnlineCausalLearner(layout)
    learner.observe(np.array(o), np.array(a), np.array(n))
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
    assert learner.update() == CausalGraph.empty(layout.names)  # an empty buffer: the prior, no crash
