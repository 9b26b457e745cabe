"""The acting policy's action probabilities, recorded by CausalGraphCallback for propensity weighting."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from sb3_contrib import MaskablePPO, RecurrentPPO
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

import sb3_causal  # noqa: F401
from sb3_causal import CausalDQN, CausalMaskablePPO
from sb3_causal.callbacks import CausalGraphCallback
from sb3_causal.discovery.choosers import LeastEvidenceChooser
from sb3_causal.discovery.online import OnlineCausalLearner
from tests.toy_envs import LinearCascadeEnv

WEIGHTED = {"propensity_weighting": True, "count_weighting": False}


class ProbeLearner(OnlineCausalLearner):
    """Keeps every batch of action probabilities and actions it is given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.probs: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []

    def observe(self, obs, actions, next_obs, action_probs=None) -> None:
        self.probs.append(np.array(action_probs))
        self.actions.append(np.array(actions))
        super().observe(obs, actions, next_obs, action_probs)


class TakenProbability(BaseCallback):
    """The probability of each taken action from the acting forward pass (``exp(log_probs)`` of the step)."""

    def __init__(self) -> None:
        super().__init__()
        self.taken: list[np.ndarray] = []

    def _on_step(self) -> bool:
        self.taken.append(np.exp(self.locals["log_probs"].cpu().numpy()))
        return True


def _probe(env: gym.Env) -> ProbeLearner:
    return ProbeLearner(env.unwrapped.causal_variables, **WEIGHTED)


@pytest.mark.parametrize("algo", [PPO, A2C])
def test_on_policy_probabilities_are_the_acting_distribution(algo):
    env = make_vec_env(LinearCascadeEnv, n_envs=2, seed=0)
    learner = ProbeLearner(env.get_attr("causal_variables")[0], **WEIGHTED)
    graph_cb, taken_cb = CausalGraphCallback(learner=learner, update_freq=100), TakenProbability()
    model = algo("MlpPolicy", env, n_steps=32, seed=0, **({"batch_size": 32, "n_epochs": 1} if algo is PPO else {}))
    model.learn(256, callback=[graph_cb, taken_cb])
    probs, actions = np.concatenate(learner.probs), np.concatenate(learner.actions)
    n = probs.shape[0]
    assert n >= 200
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # the recorded distribution gives the taken action exactly the probability it was drawn with
    np.testing.assert_allclose(probs[np.arange(n), actions], np.concatenate(taken_cb.taken)[:n], rtol=1e-5)
    assert not np.allclose(learner._control.sww, learner._control.n)  # rows were weighted (unweighted: sww == n)


def test_maskable_ppo_probabilities_respect_the_masks():
    env = gym.make("FaultAlarmRL-v0")
    learner = _probe(env)
    graph_cb, taken_cb = CausalGraphCallback(learner=learner, update_freq=256), TakenProbability()
    model = MaskablePPO("MlpPolicy", env, n_steps=128, batch_size=64, n_epochs=1, seed=0)
    model.learn(512, callback=[graph_cb, taken_cb])
    probs, actions = np.concatenate(learner.probs), np.concatenate(learner.actions)
    n = probs.shape[0]
    np.testing.assert_allclose(probs[np.arange(n), actions], np.concatenate(taken_cb.taken)[:n], rtol=1e-5)
    support = (probs > 0).sum(axis=1)
    assert support.max() < env.action_space.n  # masked actions get probability 0


def test_epsilon_greedy_probabilities():
    env = make_vec_env(LinearCascadeEnv, n_envs=1, seed=0)
    learner = ProbeLearner(env.get_attr("causal_variables")[0], **WEIGHTED)
    eps, n_actions, warm = 0.2, env.action_space.n, 50
    model = DQN("MlpPolicy", env, learning_starts=warm, exploration_initial_eps=eps, exploration_final_eps=eps, seed=0)
    model.learn(300, callback=CausalGraphCallback(learner=learner, update_freq=100))
    probs = np.concatenate(learner.probs)
    np.testing.assert_allclose(probs[:warm], 1.0 / n_actions)  # the warm-up draws uniformly
    later = np.sort(probs[warm:], axis=1)
    np.testing.assert_allclose(later[:, -1], 1 - eps + eps / n_actions)  # the greedy action
    np.testing.assert_allclose(later[:, :-1], eps / n_actions)


@pytest.mark.parametrize("agent", ["causal_dqn", "causal_ppo"])
def test_causal_agents_learn_with_propensity_weighting(agent):
    """The agents' acting masks (causal mask, lifts) are what the probabilities use: the learner refuses
    probabilities that give the taken action 0, so a wrong mask fails here."""
    env = gym.make("FaultAlarmRL-v0")
    kwargs = {"learner_kwargs": {"propensity_weighting": True, "n_hops": 2}, "graph_update_freq": 256, "seed": 0}
    if agent == "causal_dqn":
        model = CausalDQN("MlpPolicy", env, learning_starts=100, **kwargs)
    else:
        model = CausalMaskablePPO("MlpPolicy", env, n_steps=128, batch_size=64, n_epochs=1, **kwargs)
    model.learn(600)
    learner = model.causal_learner
    assert learner.n_transitions >= 512
    assert not np.allclose(learner._control.sww, learner._control.n)  # rows were weighted


def test_unsupported_algorithm_is_refused_with_a_clear_error():
    env = LinearCascadeEnv()
    model = RecurrentPPO("MlpLstmPolicy", env, n_steps=16, batch_size=16, seed=0)
    with pytest.raises(ValueError, match="get_distribution"):
        model.learn(32, callback=CausalGraphCallback(learner_kwargs=WEIGHTED))


def test_default_learner_gets_no_probabilities():
    env = LinearCascadeEnv()
    learner = ProbeLearner(env.causal_variables, count_weighting=False)
    PPO("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=1, seed=0).learn(
        128, callback=CausalGraphCallback(learner=learner, update_freq=64)
    )
    assert learner.probs and all(p.ndim == 0 for p in learner.probs)  # np.array(None): nothing was passed


def test_epsilon_greedy_probabilities_follow_the_chooser():
    """With CausalGraphCallback(chooser=...), DQN's exploratory draws (here the warm-up) are uniform over the
    chooser's pool, and the recorded probabilities say so."""
    env = make_vec_env(LinearCascadeEnv, n_envs=1, seed=0)
    layout = env.get_attr("causal_variables")[0]
    learner = ProbeLearner(layout, **WEIGHTED)
    callback = CausalGraphCallback(learner=learner, update_freq=100, chooser=LeastEvidenceChooser(layout.n_variables))
    DQN("MlpPolicy", env, learning_starts=300, seed=0).learn(300, callback=callback)
    probs, actions = np.concatenate(learner.probs), np.concatenate(learner.actions)
    assert np.all(probs[np.arange(len(actions)), actions] > 0)
    support = probs > 0
    np.testing.assert_allclose(
        probs[support], np.broadcast_to(1 / support.sum(axis=1, keepdims=True), probs.shape)[support]
    )
    np.testing.assert_array_equal(support[:100], True)  # no evidence yet: every action
    assert (support[100:].sum(axis=1) < env.action_space.n).any()  # after an update: the least-treated (and no-op)
