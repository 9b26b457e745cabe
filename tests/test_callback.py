"""CausalGraphCallback: exact transitions with any SB3 algorithm, logging, bad input."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from sb3_contrib import MaskablePPO
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecNormalize

import sb3_causal  # noqa: F401
from sb3_causal.callbacks import CausalGraphCallback
from sb3_causal.discovery.online import OnlineCausalLearner
from sb3_causal.variables import CausalVariables, VariableLayoutError
from tests.toy_envs import LinearCascadeEnv


class CountingEnv(gym.Env):
    """Observation = [episode id, step index, 0]; episodes of random length 3-6; Discrete(3)."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-1e6, 1e6, shape=(3,), dtype=np.float32)
        self.action_space = spaces.Discrete(3)
        self._episode = -1
        self._t = 0
        self._length = 3

    def _obs(self) -> np.ndarray:
        return np.array([self._episode, self._t, 0.0], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._episode += 1
        self._t = 0
        self._length = int(self.np_random.integers(3, 7))
        return self._obs(), {}

    def step(self, action):
        self._t += 1
        done = self._t >= self._length
        terminated = done and self._episode % 2 == 0  # alternate termination and truncation
        return self._obs(), 1.0, terminated, done and not terminated, {}


class RecordingLearner(OnlineCausalLearner):
    """Keeps every transition it is given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def observe(self, obs, actions, next_obs) -> None:
        self.seen.append((np.array(obs), np.array(actions), np.array(next_obs)))
        super().observe(obs, actions, next_obs)


def recorded(learner: RecordingLearner) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(np.concatenate(parts) for parts in zip(*learner.seen))  # type: ignore[return-value]


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_transitions_are_exact_and_never_cross_episodes(algo):
    venv = make_vec_env(CountingEnv, n_envs=3, seed=0)
    learner = RecordingLearner(CausalVariables.factored(3))
    callback = CausalGraphCallback(learner=learner, update_freq=50)
    if algo == "ppo":
        model = PPO("MlpPolicy", venv, n_steps=32, batch_size=32, n_epochs=1, seed=0)
    else:
        model = DQN("MlpPolicy", venv, learning_starts=10, seed=0)
    model.learn(300, callback=callback)
    obs, actions, next_obs = recorded(learner)
    assert len(obs) + callback.n_pending >= 290  # every env step of every env (the first step of each env included)
    np.testing.assert_array_equal(next_obs[:, 0], obs[:, 0])  # same episode
    np.testing.assert_array_equal(next_obs[:, 1], obs[:, 1] + 1)  # consecutive steps
    assert set(np.unique(actions)) <= {0, 1, 2}
    assert learner.n_updates >= 5


def test_vec_normalize_gives_raw_observations():
    venv = VecNormalize(make_vec_env(CountingEnv, n_envs=2, seed=1), norm_reward=False)
    learner = RecordingLearner(CausalVariables.factored(3))
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0)
    model.learn(128, callback=CausalGraphCallback(learner=learner, update_freq=40))
    obs, _, next_obs = recorded(learner)
    assert np.all(obs[:, 1] == np.round(obs[:, 1]))  # raw step indices, not normalised values
    np.testing.assert_allclose(next_obs[:, 1], obs[:, 1] + 1, atol=1e-4)
    np.testing.assert_allclose(next_obs[:, 0], obs[:, 0], atol=1e-4)


def test_learns_a_toy_graph_with_ppo_and_logs_f1(tmp_path):
    env = LinearCascadeEnv()
    callback = CausalGraphCallback(update_freq=500, learner_kwargs={"count_weighting": False})
    model = PPO("MlpPolicy", env, n_steps=256, batch_size=64, n_epochs=1, seed=0)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(3000, callback=callback)
    assert callback.graph == env.graph
    log = (tmp_path / "progress.csv").read_text()
    assert "causal/f1" in log and "causal/edges" in log


def test_maskable_ppo_on_fault_alarm_with_random_initial_graph():
    env = gym.make("FaultAlarmRL-v0")
    callback = CausalGraphCallback(initial_graph="random", seed=0, update_freq=1000)
    model = MaskablePPO("MlpPolicy", env, n_steps=256, batch_size=64, n_epochs=1, seed=0)
    model.learn(2048, callback=callback)
    assert callback.learner.n_transitions + callback.n_pending == 2048
    assert callback.learner.n_transitions == 2000  # two updates of 1000; the rest waits for the next update
    truth = env.unwrapped.causal_graph
    assert callback.true_graph == truth
    assert callback.graph.compare(truth).precision > 0.8
    assert callback.learner.initial_graph.compare(truth).f1 < 0.4  # it started from a random graph


def test_bad_env_and_arguments_give_clear_errors():
    with pytest.raises(ValueError, match="update_freq"):
        CausalGraphCallback(update_freq=0)
    continuous = PPO("MlpPolicy", "Pendulum-v1", n_steps=64, batch_size=64)
    with pytest.raises(VariableLayoutError, match="not Discrete"):
        continuous.learn(64, callback=CausalGraphCallback())
    cartpole = PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=64)
    with pytest.raises(VariableLayoutError, match="cannot infer causal variables"):
        cartpole.learn(64, callback=CausalGraphCallback())
    with pytest.raises(ValueError, match="thp"):
        CausalGraphCallback(initial_graph="thp").setup(make_vec_env(LinearCascadeEnv, n_envs=1))
    with pytest.raises(ValueError, match=r"unknown|method"):
        CausalGraphCallback(initial_graph="nonsense").setup(make_vec_env(LinearCascadeEnv, n_envs=1))


def test_non_finite_observations_are_skipped_and_counted():
    class NanEnv(LinearCascadeEnv):
        def step(self, action):
            obs, r, term, trunc, info = super().step(action)
            if self._t % 7 == 0:
                obs = obs.copy()
                obs[0] = np.nan
            return obs, r, term, trunc, info

    callback = CausalGraphCallback(update_freq=100, learner_kwargs={"count_weighting": False})
    model = DQN("MlpPolicy", NanEnv(), learning_starts=1000, seed=0)
    with pytest.warns(UserWarning, match="NaN/inf"):
        model.learn(300, callback=callback)
    assert callback.n_skipped > 0
    assert callback.learner.n_transitions + callback.n_pending + callback.n_skipped == 300


def test_subproc_env_without_causal_attributes_keeps_its_workers() -> None:
    # Issue 12 defect 1: get_attr on a missing attribute kills a SubprocVecEnv worker (EOFError).
    from stable_baselines3.common.vec_env import SubprocVecEnv

    env = make_vec_env(
        CountingEnv, n_envs=2, seed=0, vec_env_cls=SubprocVecEnv, vec_env_kwargs={"start_method": "fork"}
    )
    try:
        callback = CausalGraphCallback(update_freq=20)
        PPO("MlpPolicy", env, n_steps=16, batch_size=16, n_epochs=1, seed=0).learn(32, callback=callback)
        assert callback.learner is not None and callback.learner.n_transitions > 0
        assert callback.true_graph is None
        assert env.env_method("reset")  # the workers are still alive
    finally:
        env.close()


@pytest.mark.parametrize("n_hops", [2, None])
def test_learner_statistics_do_not_depend_on_how_transitions_are_batched(n_hops):
    """The callback hands the learner blocks of consecutive transitions (a next state is mostly the
    following transition's state, which the learner spreads once); small or shuffled-free blocks agree."""
    rng = np.random.default_rng(3)
    n_units, names = 6, ("a", "b", "c")
    topo = np.zeros((n_units, n_units), dtype=bool)
    for u in range(n_units - 1):
        topo[u, u + 1] = topo[u + 1, u] = True
    layout = CausalVariables(
        names=names,
        obs_index=np.arange(n_units * 3).reshape(n_units, 3),
        action_target=np.arange(n_units * 3),
        topology=topo,
        n_hops=n_hops,
        intervenes_when_inactive=False,
    )
    states = (rng.random((401, n_units * 3)) < 0.2) * rng.integers(1, 4, size=(401, n_units * 3))
    obs, next_obs = states[:-1].astype(np.float32), states[1:].astype(np.float32)
    next_obs[::37] = rng.integers(0, 3, size=next_obs[::37].shape)  # episode ends: the next state is elsewhere
    actions = rng.integers(0, layout.n_actions, size=400)
    kwargs = {"hop_selection_rows": 1200, "cluster_size": 10}
    whole, pieces = OnlineCausalLearner(layout, **kwargs), OnlineCausalLearner(layout, **kwargs)
    whole.observe(obs, actions, next_obs)
    for lo in range(0, 400, 7):
        pieces.observe(obs[lo : lo + 7], actions[lo : lo + 7], next_obs[lo : lo + 7])
    assert whole.n_hops == pieces.n_hops is not None
    a, b = whole.state_dict(), pieces.state_dict()
    for key in ("gram", "gram_intervened", "n_rows_intervened"):
        np.testing.assert_allclose(a[key], b[key], rtol=1e-10, atol=1e-9)
    for part in ("treated", "control"):
        for key, value in a[part].items():
            np.testing.assert_allclose(value, b[part][key], rtol=1e-10, atol=1e-9, err_msg=f"{part}/{key}")
    assert whole.update() == pieces.update()
