"""Confounded bandits: the env's see / do / imagine payoffs, the agents' SB3-like surface, bad input."""

from __future__ import annotations

import csv
import io

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.logger import configure

import sb3_causal  # noqa: F401  (registers the envs)
from sb3_causal.bandits import (
    UCB,
    BanditFileError,
    CausalThompsonSampling,
    CounterfactualThompsonSampling,
    CounterfactualUCB,
    NotReadyError,
    ObservationalData,
    ThompsonSampling,
    record_observational,
)
from sb3_causal_envs.bandits import TABLES, ConfoundedBanditEnv, ConfoundedBanditTable, ConfoundedBanditVectorEnv


def greedy_casino_batch(num_envs: int) -> ConfoundedBanditVectorEnv:
    return gym.make_vec("GreedyCasino-v0", num_envs=num_envs, vectorization_mode="vector_entry_point")


def play(env: ConfoundedBanditVectorEnv, policy, n_rounds: int, seed: int) -> float:
    """Mean reward of ``policy(intuitions) -> arms`` over ``n_rounds`` rounds of every copy."""
    intuitions, _ = env.reset(seed=seed)
    total = 0.0
    for _ in range(n_rounds):
        intuitions, rewards, _, _, _ = env.step(policy(intuitions))
        total += rewards.sum()
    return total / (n_rounds * env.num_envs)


# ------------------------------------------------------------------------------------------------ envs
def test_greedy_casino_table_values():
    table = TABLES["greedy_casino"]
    assert table.observational_value == pytest.approx(0.15)
    np.testing.assert_allclose(table.interventional_payoffs, [0.30, 0.30])
    np.testing.assert_allclose(table.counterfactual_payoffs, [[0.15, 0.45], [0.45, 0.15]])
    assert table.optimal_value == pytest.approx(0.45)


@pytest.mark.parametrize(
    ("name", "policy", "expected"),
    [
        ("observational", lambda x: x, 0.15),
        ("do(arm 0)", lambda x: np.zeros_like(x), 0.30),
        ("do(arm 1)", lambda x: np.ones_like(x), 0.30),
        ("counterfactual", lambda x: 1 - x, 0.45),
    ],
)
def test_greedy_casino_sampled_payoffs_match_table(name, policy, expected):
    env = greedy_casino_batch(200)
    n = 200 * 100
    mean = play(env, policy, 100, seed=3)
    se = np.sqrt(expected * (1 - expected) / n)
    assert abs(mean - expected) < 4 * se, f"{name}: {mean:.4f} vs {expected} (4 SE = {4 * se:.4f})"


def test_single_env_matches_table_and_reports_confounders():
    env = gym.make("GreedyCasino-v0")
    check_env(env.unwrapped)
    x, _ = env.reset(seed=0)
    rewards = []
    for _ in range(4000):
        arm = 1 - x  # against the intuition
        next_x, reward, terminated, truncated, info = env.step(arm)
        b, d = info["confounders"]
        assert x == (b ^ d) == info["intuition"]
        assert info["expected_reward"] == pytest.approx(0.45) and info["regret"] == pytest.approx(0.0)
        rewards.append(reward)
        x = env.reset()[0] if truncated else next_x
        assert not terminated
    assert abs(np.mean(rewards) - 0.45) < 4 * np.sqrt(0.45 * 0.55 / 4000)
    _, _, _, _, info = env.step(x)  # the intuitive arm loses 0.30 against the conditional optimum
    assert info["regret"] == pytest.approx(0.30)


@pytest.mark.parametrize("name", ["wide_gap", "three_arms", "four_arms"])
def test_designed_tables_are_confounded(name):
    """The designed tables keep the ranking's premise: intuition < do() < intuition-conditioned optimum."""
    table = TABLES[name]
    best_do = table.interventional_payoffs.max()
    assert table.observational_value < best_do
    assert table.optimal_value - best_do >= 0.1
    ctf = table.counterfactual_payoffs
    np.testing.assert_array_equal(ctf.argmin(axis=1), np.arange(table.n_arms))  # the intuition pays least


def test_family_registered_with_custom_table_and_sampling():
    env = gym.make("ConfoundedBandit-v0", table="three_arms")
    assert env.action_space.n == 3 and env.observation_space.n == 3
    custom = ConfoundedBanditEnv(payoffs=[[0.9, 0.1], [0.1, 0.9]], intuition=[0, 1], confounder_probs=[0.25, 0.75])
    assert custom.table.observational_value == pytest.approx(0.9)
    assert custom.table.intuition_probs.tolist() == [0.25, 0.75]
    batch = ConfoundedBanditVectorEnv(num_envs=300, table="four_arms")
    assert abs(play(batch, lambda x: (x + 2) % 4, 50, seed=1) - 0.45) < 4 * np.sqrt(0.45 * 0.55 / 15000)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"payoffs": [[0.1, 1.2], [0.5, 0.5]], "intuition": [0, 1]}, "must lie in \\[0, 1\\]"),
        ({"payoffs": [[0.1, -0.1], [0.5, 0.5]], "intuition": [0, 1]}, "must lie in \\[0, 1\\]"),
        ({"payoffs": [[0.1, 0.2], [0.5, 0.5]], "intuition": [0, 1, 1]}, "intuition must have shape"),
        ({"payoffs": [0.1, 0.2], "intuition": [0, 1]}, "2-D array"),
        ({"payoffs": [[0.1, 0.2], [0.5, 0.5]], "intuition": [0, 2]}, "arm indices"),
        ({"payoffs": [[0.1, 0.2], [0.5, 0.5]], "intuition": [0, 1], "confounder_probs": [1.0]}, "confounder_probs"),
        ({"payoffs": [[0.1, 0.2], [0.5, 0.5]], "intuition": [0, 1], "confounder_probs": [0.7, 0.7]}, "distribution"),
        ({"payoffs": [[0.1, 0.2], [0.5, 0.5]]}, "both payoffs= and intuition="),
        ({}, "pass table="),
        ({"table": "nope"}, "unknown table"),
    ],
)
def test_bad_tables_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConfoundedBanditEnv(**kwargs)


def test_vector_env_rejects_bad_actions():
    env = ConfoundedBanditVectorEnv(num_envs=3, table="greedy_casino")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="integer arm indices"):
        env.step(np.array([0, 1]))
    with pytest.raises(ValueError, match="arm indices in"):
        env.step(np.array([0, 1, 2]))


# ------------------------------------------------------------------------------------------------ agents
def make_agents(env, seed: int) -> dict:
    data = record_observational(ConfoundedBanditVectorEnv(num_envs=env.num_envs, table="greedy_casino"), 300, seed=99)
    return {
        "ucb": UCB(env, seed=seed),
        "ts": ThompsonSampling(env, seed=seed),
        "ctf_ucb": CounterfactualUCB(env, seed=seed),
        "ctf_ts": CounterfactualThompsonSampling(env, seed=seed),
        "causal_ts": CausalThompsonSampling(env, observational_data=data, seed=seed),
    }


def test_counterfactual_agents_beat_plain_ones_on_greedy_casino():
    agents = make_agents(greedy_casino_batch(20), seed=0)
    mean_reward = {}
    for name, agent in agents.items():
        agent.learn(20 * 2000)
        mean_reward[name] = agent.cumulative_reward.mean() / 2000
    for plain in ("ucb", "ts"):
        assert mean_reward[plain] < 0.33, mean_reward
    for causal in ("ctf_ucb", "ctf_ts", "causal_ts"):
        assert mean_reward[causal] > 0.40, mean_reward


@pytest.mark.parametrize("name", ["ucb", "ts", "ctf_ucb", "ctf_ts", "causal_ts"])
def test_agents_reproduce_with_a_seed(name):
    runs = []
    for seed in (7, 7, 8):
        agent = make_agents(greedy_casino_batch(4), seed=seed)[name]
        agent.learn(4 * 300)
        runs.append((agent.pulls.copy(), agent.cumulative_reward.copy()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][0], runs[2][0])


@pytest.mark.parametrize("name", ["ucb", "ts", "ctf_ucb", "ctf_ts", "causal_ts"])
def test_save_load_round_trip(name, tmp_path):
    agent = make_agents(greedy_casino_batch(3), seed=1)[name]
    agent.learn(3 * 200)
    agent.save(tmp_path / "agent")
    loaded = type(agent).load(tmp_path / "agent", env=greedy_casino_batch(3))
    np.testing.assert_array_equal(loaded.pulls, agent.pulls)
    np.testing.assert_array_equal(loaded.successes, agent.successes)
    assert loaded.num_timesteps == agent.num_timesteps
    assert loaded._get_hyperparameters() == agent._get_hyperparameters()
    obs = np.array([0, 1, 1])
    for deterministic in (True, False):  # the random state travels too
        for _ in range(5):
            expected = agent.predict(obs, deterministic=deterministic)[0]
            np.testing.assert_array_equal(loaded.predict(obs, deterministic=deterministic)[0], expected)
    buffer = io.BytesIO()  # file objects work as in SB3
    agent.save(buffer)
    buffer.seek(0)
    assert type(agent).load(buffer).num_timesteps == agent.num_timesteps


def test_load_rejects_other_class_and_non_agent_files(tmp_path):
    UCB(greedy_casino_batch(2), seed=0).save(tmp_path / "ucb.zip")
    with pytest.raises(BanditFileError, match="holds a UCB"):
        ThompsonSampling.load(tmp_path / "ucb.zip")
    (tmp_path / "junk.zip").write_text("not a zip")
    with pytest.raises(BanditFileError, match="not a saved bandit agent"):
        UCB.load(tmp_path / "junk.zip")


def test_acting_before_the_spaces_are_known_raises():
    agent = CounterfactualThompsonSampling(seed=0)
    with pytest.raises(NotReadyError, match="does not know its observation and action spaces"):
        agent.predict(0)
    with pytest.raises(NotReadyError):
        agent.learn(10)
    agent.set_env(gym.make("GreedyCasino-v0"))
    arm, _ = agent.predict(1)
    assert arm.shape == () and arm in (0, 1)
    with pytest.raises(ValueError, match="intuitions in"):
        agent.predict(2)


def test_bad_agent_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="alpha"):
        UCB(alpha=-1.0)
    with pytest.raises(ValueError, match="Beta prior"):
        ThompsonSampling(prior_failures=0.0)
    with pytest.raises(TypeError, match="observational_data must be an ObservationalData"):
        CausalThompsonSampling(observational_data=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="observational_data has shape"):
        data = ObservationalData(np.zeros((3, 3)), np.ones((3, 3)))
        CausalThompsonSampling(gym.make("GreedyCasino-v0"), observational_data=data)
    with pytest.raises(ValueError, match="successes <= pulls"):
        ObservationalData(np.ones((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="Discrete observation"):
        UCB(gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="env has 3 intuitions and 3 arms"):
        UCB(gym.make("GreedyCasino-v0")).set_env(gym.make("ConfoundedBandit-v0", table="three_arms"))


def test_observational_recorder_measures_the_intuitive_cells():
    data = record_observational(greedy_casino_batch(50), 200, seed=0)
    assert data.pulls.shape == (50, 2, 2)
    assert data.pulls[:, 0, 1].sum() == data.pulls[:, 1, 0].sum() == 0  # only the intuitive arm is played
    assert data.pulls.sum() == 50 * 200
    pooled = data.successes.sum(axis=(0, 2)) / data.pulls.sum(axis=(0, 2))
    np.testing.assert_allclose(pooled, [0.15, 0.15], atol=4 * np.sqrt(0.15 * 0.85 / 5000))
    log = ObservationalData.from_log([0, 0, 1], [0, 0, 1], [1.0, 0.0, 1.0], n_arms=2)
    np.testing.assert_allclose(log.payoff_given_intuition, [0.5, 1.0])


def test_causal_ts_seeding_and_weighting_avoid_the_intuitive_arm():
    """Before any own round, observational data (intuitive arm pays 0.15) steer causal TS away from it.

    Seeded cell ~ Beta(16, 86) (mean 0.157), counter-intuitive cell ~ Beta(1, 1): the intuitive arm wins a
    draw with probability E[0.157-ish] = 0.157 unweighted, and ~0.10 once damped by 1 - |0.5 - 0.15|."""
    env = greedy_casino_batch(1)
    data = ObservationalData(np.array([[15.0, 0.0], [0.0, 15.0]]), np.array([[100.0, 0.0], [0.0, 100.0]]))
    obs = np.zeros(2000, dtype=np.int64)
    causal = CausalThompsonSampling(env, observational_data=data, seed=0)
    plain = CounterfactualThompsonSampling(env, seed=0)
    intuitive_causal = (causal.predict(obs)[0] == 0).mean()
    intuitive_plain = (plain.predict(obs)[0] == 0).mean()
    assert 0.07 < intuitive_causal < 0.13 and 0.45 < intuitive_plain < 0.55
    unweighted = CausalThompsonSampling(env, observational_data=data, weighting=False, seed=0)
    assert 0.13 < (unweighted.predict(obs)[0] == 0).mean() < 0.19


def test_next_step_autoreset_rounds_are_not_learned():
    env = gym.vector.SyncVectorEnv([lambda: ConfoundedBanditEnv(table="greedy_casino", max_rounds=5)] * 2)
    agent = ThompsonSampling(env, seed=0).learn(40)
    # 20 steps per copy: rounds 1-5, reset, 7-11, reset, 13-17, reset, 19-20 -> 17 learned rounds each
    assert agent.pulls.sum() == 2 * 17
    single = UCB(gym.make("GreedyCasino-v0", max_rounds=5), seed=0).learn(23)
    assert single.pulls.sum() == 23  # a single env resets in the same step: every step is a round


def test_logging_and_callbacks(tmp_path):
    agent = CounterfactualUCB(greedy_casino_batch(2), seed=0)
    agent.set_logger(configure(str(tmp_path), ["csv"]))
    agent.learn(2 * 300, log_interval=100)
    with open(tmp_path / "progress.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 3
    assert {"bandit/cumulative_regret", "bandit/arm_0", "bandit/arm_1", "rollout/mean_reward"} <= set(rows[0])
    assert float(rows[-1]["bandit/cumulative_regret"]) == pytest.approx(agent.cumulative_regret.mean())
    assert float(rows[0]["bandit/arm_0"]) + float(rows[0]["bandit/arm_1"]) == pytest.approx(1.0)

    calls = []

    def stop_after_30(locals_, globals_) -> bool:
        calls.append(locals_["self"].num_timesteps)
        return len(calls) < 30

    stopped = ThompsonSampling(greedy_casino_batch(2), seed=0).learn(2 * 1000, callback=stop_after_30)
    assert stopped.num_timesteps == 2 * 30 and calls[:2] == [2, 4]


def test_table_is_immutable():
    table = ConfoundedBanditTable(payoffs=[[0.1, 0.2], [0.3, 0.4]], intuition=[0, 1])
    with pytest.raises(ValueError, match="read-only"):
        table.payoffs[0, 0] = 0.9
