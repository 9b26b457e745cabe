"""DesignSAC: SAC with a behaviour-regularised actor loss (sb3_causal.design.sac)."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from stable_baselines3 import SAC

from sb3_causal.design import DesignSAC, DesignSACPolicy
from sb3_causal.design.warmstart import FreezeActorCallback, TeacherData, collect_teacher_episodes, imitation_loss
from sb3_causal_envs.causal_design import CausalDesignEnv

KWARGS = {
    "net_arch": [16],
    "features_extractor_kwargs": {"embed_dim": 8, "n_layers": 1, "n_heads": 1, "ff_dim": 16},
    "relative_targets": True,
}
SAC_KWARGS = {"policy_kwargs": KWARGS, "seed": 0, "buffer_size": 100, "learning_starts": 4, "batch_size": 8}


def small_env() -> CausalDesignEnv:
    return CausalDesignEnv(n_variables=4, n_observational=8, n_steps=3)


@pytest.fixture(scope="module")
def teacher() -> TeacherData:
    return collect_teacher_episodes(small_env(), 4, seed=0, n_outcomes=2)


def demo_loss(model: SAC, data: TeacherData) -> float:
    with th.no_grad():
        return float(imitation_loss(model.actor, th.as_tensor(data.observations), th.as_tensor(data.actions)))


def test_without_imitation_it_is_sac(teacher: TeacherData) -> None:
    sac = SAC(DesignSACPolicy, small_env(), **SAC_KWARGS)
    sac.learn(12)  # before the next model re-seeds the global generators
    design = DesignSAC(
        DesignSACPolicy, small_env(), bc_coef=0.0, normalize_q=False, demonstrations=teacher, **SAC_KWARGS
    )
    design.learn(12)
    assert design._n_updates == 8
    for a, b in zip(sac.policy.parameters(), design.policy.parameters()):
        th.testing.assert_close(a, b)


def test_imitation_pulls_the_actor_to_the_teacher(teacher: TeacherData) -> None:
    losses = {}
    for bc_coef in (0.0, 5.0):
        model = DesignSAC(
            DesignSACPolicy, small_env(), bc_coef=bc_coef, demonstrations=teacher, learning_rate=3e-3, **SAC_KWARGS
        )
        model.learn(40)
        losses[bc_coef] = demo_loss(model, teacher)
    assert losses[5.0] < 0.8 * losses[0.0]


def test_annealing_and_round_trip(teacher: TeacherData, tmp_path) -> None:
    teacher.save(tmp_path / "teacher.npz")
    model = DesignSAC(
        DesignSACPolicy,
        small_env(),
        bc_coef=1.0,
        bc_coef_final=0.2,
        bc_anneal_updates=10,
        demonstrations=str(tmp_path / "teacher.npz"),
        **SAC_KWARGS,
    )
    assert model.current_bc_coef() == 0.0  # the file is read at the first update
    model.learn(9)  # one update after each of steps 5..9 (learning_starts=4)
    assert model._n_updates == 5
    assert model.current_bc_coef() == pytest.approx(1.0 - 0.8 * 0.5)
    model.learn(20, reset_num_timesteps=False)
    assert model.current_bc_coef() == pytest.approx(0.2)
    model.save(tmp_path / "design.zip")
    loaded = DesignSAC.load(tmp_path / "design.zip", env=small_env())
    assert loaded._demo_obs is None and loaded.demonstrations_path == str(tmp_path / "teacher.npz")
    assert loaded.bc_coef_final == 0.2
    obs = teacher.observations[0]
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    loaded.learn(6, reset_num_timesteps=False)
    assert loaded._demo_obs is not None  # read again from the saved path


def test_bad_input(teacher: TeacherData) -> None:
    with pytest.raises(ValueError, match="bc_coef must be"):
        DesignSAC(DesignSACPolicy, small_env(), bc_coef=-1.0, **SAC_KWARGS)
    with pytest.raises(ValueError, match="bc_anneal_updates > 0"):
        DesignSAC(DesignSACPolicy, small_env(), bc_coef_final=0.1, **SAC_KWARGS)
    other = CausalDesignEnv(n_variables=5, n_observational=8, n_steps=3)
    with pytest.raises(ValueError, match="do not fit the model's observation space"):
        DesignSAC(DesignSACPolicy, other, demonstrations=teacher, **SAC_KWARGS)
    bad = TeacherData(**{**teacher.__dict__, "actions": np.full_like(teacher.actions, np.nan)})
    with pytest.raises(ValueError, match="non-finite"):
        DesignSAC(DesignSACPolicy, small_env(), demonstrations=bad, **SAC_KWARGS)


def test_frozen_actor_skips_the_actor_update(teacher: TeacherData) -> None:
    model = DesignSAC(DesignSACPolicy, small_env(), bc_coef=5.0, demonstrations=teacher, **SAC_KWARGS)
    before = [p.detach().clone() for p in model.actor.parameters()]
    callback = FreezeActorCallback(n_steps=100)
    model.learn(9, callback=callback)
    assert model._n_updates == 5
    assert all(th.equal(a, b) for a, b in zip(before, model.actor.parameters()))
