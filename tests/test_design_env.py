"""CausalDesign-v0: the CAASL design environment (sb3_causal_envs.causal_design)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_checker import check_env

import sb3_causal  # noqa: F401  (registers CausalDesign-v0)
from sb3_causal.design import expected_correct_entries
from sb3_causal_envs.causal_design import CausalDesignEnv, sample_dag


def small_env(**kwargs) -> CausalDesignEnv:
    return CausalDesignEnv(**{"n_variables": 5, "n_observational": 8, "n_steps": 3, **kwargs})


@pytest.mark.filterwarnings("ignore:It seems that your observation")
@pytest.mark.filterwarnings("ignore:The minimal resolution")
def test_passes_check_env_and_is_registered() -> None:
    check_env(small_env())
    env = gym.make("CausalDesign-v0")
    assert env.observation_space.shape == (60, 10, 2)
    assert env.action_space.shape == (20,)


def test_seed_reproduces_scm_and_samples() -> None:
    a, b, c = small_env(), small_env(), small_env()
    obs_a, _ = a.reset(seed=7)
    obs_b, _ = b.reset(seed=7)
    obs_c, _ = c.reset(seed=8)
    np.testing.assert_array_equal(a.true_adjacency, b.true_adjacency)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(obs_a, obs_b)
    assert not np.array_equal(obs_a, obs_c)
    action = a.action_space.sample()
    np.testing.assert_array_equal(a.step(action)[0], b.step(action)[0])


def test_history_layout_intervention_and_telescoping_reward() -> None:
    env = small_env()
    obs, info = env.reset(seed=0)
    assert (obs[8:, :, 1] == -1).all() and (obs[8:, :, 0] == 0).all()  # padding marked
    assert (obs[:8, :, 1] == 0).all()
    start, total = info["expected_correct"], 0.0
    action = -np.ones(10)
    action[[2, 4]] = 1.0
    action[5 + 2], action[5 + 4] = 0.5, -1.0
    for t in range(3):
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        row = obs[8 + t]
        np.testing.assert_array_equal(row[:, 1], [0, 0, 1, 0, 1])
        assert row[2, 0] == pytest.approx(1.0) and row[4, 0] == pytest.approx(-2.0)  # value_scale 2
        assert terminated == (t == 2) and not truncated
    assert total == pytest.approx(info["expected_correct"] - start)
    marginals = env.last_posterior.edge_marginals
    assert info["expected_correct"] == pytest.approx(expected_correct_entries(marginals, env.true_adjacency))


def test_shift_interventions_add_to_the_mechanism() -> None:
    hard, shift = small_env(), small_env(intervention="shift")
    hard.reset(seed=3)
    shift.reset(seed=3)
    targets = np.array([True, True, True, True, True])
    # every node intervened: hard sets the values, shift adds them to the mechanism's draw
    hard_x = hard.sample(1, targets, np.full(5, 0.7))[0]
    np.testing.assert_allclose(hard_x, 0.7)
    shift_x = shift.sample(1, targets, np.full(5, 0.7))[0]
    assert not np.allclose(shift_x, 0.7)


def test_graph_priors() -> None:
    rng = np.random.default_rng(0)
    er = np.mean([sample_dag(10, "er", 3.0, rng).sum() for _ in range(200)])
    assert er == pytest.approx(30, abs=1.5)  # the authors' "degree 3": about 30 of 45 pairs
    sf = sample_dag(10, "sf", 2.0, rng)
    assert sf.sum() == 1 + 2 * 8  # node 1 takes one parent, nodes 2..9 two each
    for adj in (sample_dag(6, "er", 2.0, rng), sf):  # acyclic: a nilpotent adjacency
        assert not np.linalg.matrix_power(adj.astype(int), adj.shape[0]).any()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown graph prior 'bogus'"):
        CausalDesignEnv(graph_prior="bogus")
    with pytest.raises(ValueError, match="unknown noise"):
        CausalDesignEnv(noise="cauchy")
    with pytest.raises(ValueError, match="max_indegree=12 is too large"):
        CausalDesignEnv(n_variables=10, max_indegree=12)
    env = small_env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full(10, np.nan))
