"""CAASL's SAC policy: equivariance over variables, invariance over history rows (sb3_causal.design.extractor)."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import SAC

from sb3_causal.design import DesignSACPolicy, design_action
from sb3_causal_envs.causal_design import CausalDesignEnv

POLICY_KWARGS = {"net_arch": [16], "features_extractor_kwargs": {"embed_dim": 8, "n_layers": 2, "n_heads": 2}}


@pytest.fixture(scope="module")
def model() -> SAC:
    env = CausalDesignEnv(n_variables=4, n_observational=6, n_steps=3)
    return SAC(DesignSACPolicy, env, policy_kwargs=POLICY_KWARGS, seed=0, learning_starts=10_000, buffer_size=100)


def history(seed: int) -> np.ndarray:
    env = CausalDesignEnv(n_variables=4, n_observational=6, n_steps=3)
    obs, _ = env.reset(seed=seed)
    obs, *_ = env.step(np.array([1, -1, -1, -1, 0.5, 0, 0, 0]))
    return obs


def actor_params(model: SAC, obs: np.ndarray) -> tuple[th.Tensor, th.Tensor]:
    with th.no_grad():
        mean, log_std, _ = model.policy.actor.get_action_dist_params(th.as_tensor(obs)[None])
    return mean[0], log_std[0]


def q_values(model: SAC, obs: np.ndarray, action: np.ndarray) -> th.Tensor:
    with th.no_grad():
        return th.cat(model.policy.critic(th.as_tensor(obs)[None], th.as_tensor(action, dtype=th.float32)[None]))


def test_permuting_variables_permutes_the_outputs(model: SAC) -> None:
    obs = history(0)
    perm = np.array([2, 0, 3, 1])
    mean, log_std = actor_params(model, obs)
    mean_p, log_std_p = actor_params(model, obs[:, perm])
    both = np.concatenate([perm, 4 + perm])  # targets and values follow their variable
    th.testing.assert_close(mean_p, mean[both], atol=1e-5, rtol=1e-5)
    th.testing.assert_close(log_std_p, log_std[both], atol=1e-5, rtol=1e-5)
    action = np.linspace(-1, 1, 8)
    th.testing.assert_close(
        q_values(model, obs[:, perm], action[both]), q_values(model, obs, action), atol=1e-5, rtol=1e-5
    )
    assert not th.allclose(mean[:4], mean[:4].flip(0))  # the outputs do depend on the variable


def test_permuting_history_rows_leaves_the_outputs_unchanged(model: SAC) -> None:
    obs = history(1)
    rows = np.random.default_rng(0).permutation(7)  # the 7 collected rows; the 2 padded rows stay at the end
    shuffled = obs.copy()
    shuffled[:7] = obs[rows]
    mean, _ = actor_params(model, obs)
    th.testing.assert_close(actor_params(model, shuffled)[0], mean, atol=1e-5, rtol=1e-5)
    padded_first = np.concatenate([obs[7:], obs[:7]])  # where the padding sits does not matter either
    th.testing.assert_close(actor_params(model, padded_first)[0], mean, atol=1e-5, rtol=1e-5)
    changed = obs.copy()
    changed[0, 0, 0] += 5.0
    assert not th.allclose(actor_params(model, changed)[0], mean)


def test_runs_at_another_d_and_round_trips(model: SAC, tmp_path) -> None:
    bigger = CausalDesignEnv(n_variables=6, n_observational=6, n_steps=3)
    obs, _ = bigger.reset(seed=0)
    action = design_action(model.policy, obs)
    assert action.shape == (12,) and np.all(np.abs(action) <= 1)
    obs4 = history(2)
    model.save(tmp_path / "design.zip")
    loaded = SAC.load(tmp_path / "design.zip")
    np.testing.assert_allclose(loaded.predict(obs4, deterministic=True)[0], model.predict(obs4, deterministic=True)[0])
    np.testing.assert_allclose(design_action(model.policy, obs4), model.predict(obs4, deterministic=True)[0], atol=1e-6)


def test_d_mismatch_and_bad_histories(model: SAC) -> None:
    obs_space = spaces.Box(-np.inf, np.inf, (9, 4, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="env and policy disagree on d"):
        DesignSACPolicy(obs_space, spaces.Box(-1, 1, (10,), dtype=np.float32), lambda _: 1e-3)
    with pytest.raises(ValueError, match=r"\(n_samples, n_variables, 2\)"):
        DesignSACPolicy(spaces.Box(-1, 1, (9, 4), dtype=np.float32), spaces.Box(-1, 1, (8,)), lambda _: 1e-3)
    with pytest.raises(ValueError, match="non-finite"):
        design_action(model.policy, np.full((9, 4, 2), np.nan, dtype=np.float32))


def test_learns_a_few_steps() -> None:
    env = CausalDesignEnv(n_variables=3, n_observational=5, n_steps=2)
    sac = SAC(
        DesignSACPolicy, env, policy_kwargs=POLICY_KWARGS, seed=0, learning_starts=8, batch_size=8, buffer_size=100
    )
    before = [p.detach().clone() for p in sac.policy.actor.head.parameters()]
    sac.learn(16)
    after = list(sac.policy.actor.head.parameters())
    assert any(not th.equal(a, b) for a, b in zip(after, before))


def test_relative_targets_stay_equivariant_and_round_trip(tmp_path) -> None:
    env = CausalDesignEnv(n_variables=4, n_observational=6, n_steps=3)
    kwargs = {**POLICY_KWARGS, "relative_targets": True}
    relative = SAC(DesignSACPolicy, env, policy_kwargs=kwargs, seed=0, learning_starts=10_000, buffer_size=100)
    obs = history(0)
    mean, _ = actor_params(relative, obs)
    assert float(mean[:4].max()) == pytest.approx(1.0)  # the best variable sits at the offset (initially 1)
    perm = np.array([2, 0, 3, 1])
    both = np.concatenate([perm, 4 + perm])
    th.testing.assert_close(actor_params(relative, obs[:, perm])[0], mean[both], atol=1e-5, rtol=1e-5)
    relative.save(tmp_path / "relative.zip")
    loaded = SAC.load(tmp_path / "relative.zip")
    assert loaded.policy.actor.relative_targets
    np.testing.assert_allclose(design_action(loaded.policy, obs), design_action(relative.policy, obs), atol=1e-6)


def test_deep_sets_critic_stays_invariant_and_sees_interactions(tmp_path) -> None:
    env = CausalDesignEnv(n_variables=4, n_observational=6, n_steps=3)
    additive, deep_sets = (
        SAC(
            DesignSACPolicy,
            env,
            policy_kwargs={**POLICY_KWARGS, "critic_readout_arch": readout},
            seed=0,
            learning_starts=10_000,
            buffer_size=100,
        )
        for readout in (None, [16])
    )
    obs = history(0)
    perm = np.array([2, 0, 3, 1])
    both = np.concatenate([perm, 4 + perm])
    action = np.linspace(-1, 1, 8)
    th.testing.assert_close(
        q_values(deep_sets, obs[:, perm], action[both]), q_values(deep_sets, obs, action), atol=1e-5, rtol=1e-5
    )

    def interaction(model: SAC) -> float:
        """Q(1, 1) - Q(1, -1) - Q(-1, 1) + Q(-1, -1) over the targets of variables 0 and 1 (0 if additive)."""
        total = 0.0
        for a0, a1, sign in ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)):
            act = np.array([a0, a1, -1, -1, 0.5, 0.5, 0.5, 0.5], dtype=np.float32)
            total += sign * float(q_values(model, obs, act)[0])
        return total

    assert abs(interaction(additive)) < 1e-5
    assert abs(interaction(deep_sets)) > 1e-4
    deep_sets.save(tmp_path / "deep_sets.zip")
    loaded = SAC.load(tmp_path / "deep_sets.zip")
    assert loaded.policy.critic.readout_arch == [16]
    th.testing.assert_close(q_values(loaded, obs, action), q_values(deep_sets, obs, action))
