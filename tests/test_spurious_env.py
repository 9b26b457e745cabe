"""SpuriousCorrelation-v0: equations, shifts, truncation, seeding, registration."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sb3_causal  # noqa: F401  (registers the environments)
from sb3_causal_envs import SpuriousCorrelationEnv


def _episode_return(shift: str, read: int, seed: int = 0) -> float:
    """Return of a proportional controller steering X to 0 from observation entry ``read`` (0: X, 1: Z)."""
    env = gym.make("SpuriousCorrelation-v0", shift=shift)
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        action = np.clip([-obs[read] / 0.05], -1.0, 1.0).astype(np.float32)
        obs, reward, terminated, truncated, _ = env.step(action)
        total += reward
        done = terminated or truncated
    return total


def test_registered_and_passes_gymnasium_checker():
    env = gym.make("SpuriousCorrelation-v0")
    assert isinstance(env.unwrapped, SpuriousCorrelationEnv)
    check_env(env.unwrapped, skip_render_check=True)


def test_start_state_and_truncation_at_200():
    env = SpuriousCorrelationEnv()
    obs, _ = env.reset(seed=1)
    np.testing.assert_array_equal(obs, [-1.0, -1.0])
    for t in range(1, 201):
        obs, _, terminated, truncated, info = env.step(env.action_space.sample())
        assert not terminated
        assert truncated == (t == 200)
        assert info["steps"] == t
        assert obs.dtype == np.float32 and np.all(np.abs(obs) <= 1.0)


def test_equations_without_noise():
    env = SpuriousCorrelationEnv(noise_std=0.0)
    env.reset(seed=0)
    obs, reward, *_ = env.step(np.array([1.0], dtype=np.float32))
    f_x = -1.0 + 0.05 - 0.005 * np.cos(-0.05)
    np.testing.assert_allclose(obs, [f_x, f_x], rtol=1e-6)
    assert reward == pytest.approx(0.0)  # 0.1 * (1 - X^2) at X = -1
    _, reward, *_ = env.step(np.array([0.0], dtype=np.float32))
    assert reward == pytest.approx(0.1 * (1 - f_x**2))
    far = SpuriousCorrelationEnv(shift="far", noise_std=0.0)
    far.reset(seed=0)
    obs, *_ = far.step(np.array([1.0], dtype=np.float32))
    np.testing.assert_allclose(obs, [f_x, -f_x], rtol=1e-6)
    near = SpuriousCorrelationEnv(shift="near", noise_std=0.0)
    near.reset(seed=0)
    obs, *_ = near.step(np.array([1.0], dtype=np.float32))
    np.testing.assert_allclose(obs, [f_x, 0.0], atol=1e-7)


def test_acting_on_x_is_robust_acting_on_z_breaks_under_shift():
    for shift in ("none", "near", "far"):
        assert _episode_return(shift, read=0) > 18.5
    assert _episode_return("none", read=1) > 18.5
    assert _episode_return("near", read=1) < 5.0
    assert _episode_return("far", read=1) < 1.0


def test_same_seed_same_trajectory():
    def rollout(seed: int) -> np.ndarray:
        env = SpuriousCorrelationEnv()
        obs, _ = env.reset(seed=seed)
        trace = [obs]
        for _ in range(20):
            obs, *_ = env.step(np.array([0.5], dtype=np.float32))
            trace.append(obs)
        return np.array(trace)

    np.testing.assert_array_equal(rollout(3), rollout(3))
    assert not np.array_equal(rollout(3), rollout(4))


def test_true_graph_reward_parent_is_x_only():
    graph = SpuriousCorrelationEnv().causal_graph
    assert graph.parents("r") == ["X"]
    assert graph.children("Z") == []
    assert SpuriousCorrelationEnv(shift="near").causal_graph.parents("Z'") == []


def test_bad_arguments_and_actions():
    with pytest.raises(ValueError, match="shift must be one of"):
        SpuriousCorrelationEnv(shift="sideways")
    env = SpuriousCorrelationEnv()
    with pytest.raises(gym.error.ResetNeeded):
        env.step(np.array([0.0], dtype=np.float32))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="one finite number"):
        env.step(np.array([np.nan], dtype=np.float32))
