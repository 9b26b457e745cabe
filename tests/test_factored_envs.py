"""FactoredSCM-v0: registered, seeded, spaces and layout, the true graph, intervention semantics."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_checker import check_env

import sb3_causal  # noqa: F401  (registers the envs)
from sb3_causal.variables import CausalVariables
from sb3_causal_envs.factored import FAMILIES, INTERVENTIONS, FactoredSCMEnv


@pytest.mark.parametrize(("family", "intervention"), list(zip(FAMILIES, INTERVENTIONS)))
def test_registered_env_passes_the_checker(family: str, intervention: str) -> None:
    env = gym.make("FactoredSCM-v0", n_variables=8, family=family, intervention=intervention, model_seed=3)
    check_env(env.unwrapped)
    base = env.unwrapped
    assert env.action_space.n == 9 and env.observation_space.shape == (8,)
    assert base.causal_graph.n_variables == 8 and base.causal_graph.n_edges == 8
    layout = CausalVariables.from_env(env)
    assert layout.intervenes_when_inactive and layout.action_target[-1] == -1


def test_model_and_sampling_are_seeded() -> None:
    a, b = FactoredSCMEnv(20, "poisson", model_seed=5), FactoredSCMEnv(20, "poisson", model_seed=5)
    assert a.causal_graph == b.causal_graph and np.array_equal(a.weights, b.weights)
    assert FactoredSCMEnv(20, "poisson", model_seed=6).causal_graph != a.causal_graph
    xa = [a.reset(seed=1)[0], *[a.step(k % 21)[0] for k in range(30)]]
    xb = [b.reset(seed=1)[0], *[b.step(k % 21)[0] for k in range(30)]]
    assert np.array_equal(np.array(xa), np.array(xb))


def test_interventions_do_what_they_say() -> None:
    zero = FactoredSCMEnv(8, "gaussian", "zero", model_seed=0)
    zero.reset(seed=0)
    assert all(zero.step(3)[0][3] == 0 for _ in range(5))
    shift = FactoredSCMEnv(8, "poisson", "shift", model_seed=0)
    shift.reset(seed=0)
    assert min(shift.step(2)[0][2] for _ in range(50)) >= 3  # a count shifted by 3
    noop = FactoredSCMEnv(8, "gaussian0", "zero", model_seed=0)
    noop.reset(seed=0)
    values = np.array([noop.step(8)[0] for _ in range(2000)])
    assert np.abs(values.mean(axis=0)).max() < 0.25  # zero-mean family, nothing intervened


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="family"):
        FactoredSCMEnv(8, "gamma")
    with pytest.raises(ValueError, match="intervention"):
        FactoredSCMEnv(8, intervention="clamp")
    with pytest.raises(ValueError, match="n_variables"):
        FactoredSCMEnv(1)
