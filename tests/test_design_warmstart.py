"""Warm start of the design policy: behaviour cloning of the info-gain teacher, prefilled buffer, frozen actor."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from stable_baselines3 import SAC

from sb3_causal.design import DesignSACPolicy, design_action
from sb3_causal.design.warmstart import (
    FreezeActorCallback,
    TeacherData,
    behaviour_clone,
    collect_teacher_episodes,
    prefill_replay_buffer,
)
from sb3_causal_envs.causal_design import CausalDesignEnv

KWARGS = {"net_arch": [16], "features_extractor_kwargs": {"embed_dim": 8, "n_layers": 1, "n_heads": 1, "ff_dim": 16}}


def small_env() -> CausalDesignEnv:
    return CausalDesignEnv(n_variables=4, n_observational=8, n_steps=3)


@pytest.fixture(scope="module")
def teacher() -> TeacherData:
    return collect_teacher_episodes(small_env(), 4, seed=0, n_outcomes=2)


def test_teacher_data_shapes_and_round_trip(teacher: TeacherData, tmp_path) -> None:
    assert len(teacher) == 12
    assert teacher.observations.shape == (12, 11, 4, 2)
    assert ((teacher.actions[:, :4] > 0).sum(axis=1) == 1).all()  # exactly one target per step
    assert (teacher.actions[:, 4:] == 1).all()
    teacher.save(tmp_path / "t.npz")
    again = TeacherData.load(tmp_path / "t.npz")
    np.testing.assert_array_equal(again.actions, teacher.actions)
    again = collect_teacher_episodes(small_env(), 4, seed=0, n_outcomes=2)  # seeded
    np.testing.assert_array_equal(again.actions, teacher.actions)


def test_behaviour_cloning_fits_the_teacher(teacher: TeacherData) -> None:
    model = SAC(DesignSACPolicy, small_env(), policy_kwargs=KWARGS, seed=0, buffer_size=100)
    losses = behaviour_clone(model, teacher, n_updates=300, batch_size=12, learning_rate=3e-3)
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    actions = np.array([design_action(model.policy, obs) for obs in teacher.observations])
    chosen = actions[:, :4].argmax(axis=1)
    assert (chosen == teacher.actions[:, :4].argmax(axis=1)).mean() >= 0.75
    prefill_replay_buffer(model, teacher)
    assert model.replay_buffer.size() == len(teacher)


def test_freeze_actor_callback_holds_the_actor_then_releases_it(teacher: TeacherData) -> None:
    model = SAC(
        DesignSACPolicy, small_env(), policy_kwargs=KWARGS, seed=0, buffer_size=100, learning_starts=0, batch_size=8
    )
    prefill_replay_buffer(model, teacher)
    before = [p.detach().clone() for p in model.actor.parameters()]
    critic_before = [p.detach().clone() for p in model.critic.parameters()]
    callback = FreezeActorCallback(n_steps=6)
    model.learn(5, callback=callback)  # the updates after steps 1-5: actor frozen
    assert all(th.equal(a, b) for a, b in zip(before, model.actor.parameters()))
    assert not all(th.equal(a, b) for a, b in zip(critic_before, model.critic.parameters()))
    model.learn(6, callback=callback, reset_num_timesteps=False)
    assert not callback.frozen
    assert not all(th.equal(a, b) for a, b in zip(before, model.actor.parameters()))
