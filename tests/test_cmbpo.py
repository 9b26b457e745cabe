"""C-MBPO / MBPO: structure learning, factorised world model, training, save/load, seeds, bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.logger import configure

import sb3_causal  # noqa: F401  (registers the environments)
from sb3_causal.graph import CausalGraph
from sb3_causal.mbrl import CMBPO, MBPO, GaussianEnsemble, UnsupportedSpaceError, learn_local_graph
from sb3_causal.mbrl.structure import complete_local_graph, reward_ancestor_states
from sb3_causal_envs import SpuriousCorrelationEnv

th.set_num_threads(1)

# small everything: a few seconds per training
TINY = dict(
    learning_starts=100,
    batch_size=64,
    gradient_steps=1,
    policy_kwargs=dict(net_arch=[32, 32]),
    ensemble_size=3,
    n_elites=2,
    model_hidden=(32, 32),
    model_max_epochs=5,
    model_train_freq=100,
    rollout_batch_size=100,
    rollout_schedule=(100, 300, 1, 2),
    structure_update_freq=200,
    device="cpu",
)


def _transitions(n_random: int, n_controlled: int, seed: int = 0) -> list[np.ndarray]:
    """Real transitions of SpuriousCorrelation-v0: random episodes, then a noisy controller of X."""
    env = SpuriousCorrelationEnv()
    rng = np.random.default_rng(seed)
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, float]] = []
    for episode in range(n_random + n_controlled):
        obs, _ = env.reset(seed=seed + episode)
        done = False
        while not done:
            if episode < n_random:
                action = rng.uniform(-1, 1, size=1)
            else:
                action = np.clip(-obs[:1] / 0.2 + rng.normal(0, 0.5, size=1), -1, 1)
            next_obs, reward, terminated, truncated, _ = env.step(action.astype(np.float32))
            rows.append((obs, action, next_obs, reward))
            obs, done = next_obs, terminated or truncated
    return [np.array(column) for column in zip(*rows)]


def _make(cls: type[CMBPO], seed: int = 0, env_id: str = "SpuriousCorrelation-v0", **kwargs) -> CMBPO:
    return cls("MlpPolicy", gym.make(env_id), seed=seed, **{**TINY, **kwargs})


# ---------------------------------------------------------------------------------------------- structure
def test_pc_finds_the_true_local_graph_of_spurious_correlation():
    obs, actions, next_obs, rewards = _transitions(n_random=5, n_controlled=20)
    result = learn_local_graph(obs, actions, next_obs, rewards, ["X", "Z"], ["A"])
    assert result.fallback is None and result.n_samples == 5000
    graph = result.graph
    assert graph.parents("r") == ["X"]
    assert graph.parents("X'") == ["X", "A"]
    assert graph.parents("Z'") == ["X", "A"]
    assert graph.compare(SpuriousCorrelationEnv().causal_graph).f1 == 1.0
    assert reward_ancestor_states(graph, ["X", "Z"]) == ["X"]


def test_linear_fisher_z_alone_is_fooled_by_the_quadratic_reward():
    """Why the quadratic test is the default: plain Fisher-z invents parents of r (Z or A) here."""
    obs, actions, next_obs, rewards = _transitions(n_random=5, n_controlled=20)
    linear = learn_local_graph(obs, actions, next_obs, rewards, ["X", "Z"], ["A"], test="fisherz")
    assert linear.graph.parents("r") != ["X"]


def test_constant_columns_are_left_out_and_reported():
    obs, actions, next_obs, rewards = _transitions(n_random=3, n_controlled=2)
    ones = np.ones((len(obs), 1))
    result = learn_local_graph(
        np.hstack([obs, ones]), actions, np.hstack([next_obs, ones]), rewards, ["X", "Z", "C"], ["A"]
    )
    assert result.fallback is None
    assert result.constant == ["C", "C'"]
    assert result.graph.parents("C'") == [] and result.graph.children("C") == []


def test_pc_failure_falls_back_to_the_complete_graph_with_the_reason():
    obs, actions, next_obs, rewards = _transitions(n_random=3, n_controlled=2)
    dup_obs, dup_next = np.hstack([obs, obs[:, :1]]), np.hstack([next_obs, next_obs[:, :1]])  # singular
    result = learn_local_graph(dup_obs, actions, dup_next, rewards, ["X", "Z", "X2"], ["A"])
    assert result.fallback is not None and "singular" in result.fallback
    assert result.graph == complete_local_graph(["X", "Z", "X2"], ["A"])
    too_few = learn_local_graph(obs[:5], actions[:5], next_obs[:5], rewards[:5], ["X", "Z"], ["A"])
    assert too_few.fallback is not None and "transitions" in too_few.fallback


def test_structure_rejects_non_finite_data():
    obs, actions, next_obs, rewards = _transitions(n_random=1, n_controlled=0)
    obs[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        learn_local_graph(obs, actions, next_obs, rewards, ["X", "Z"], ["A"])


# ---------------------------------------------------------------------------------------------- dynamics
def test_gaussian_ensemble_learns_a_noisy_function_batched_over_members():
    th.manual_seed(0)
    x = th.rand(2000, 2) * 2 - 1
    y = (x[:, :1] * 2 - x[:, 1:] ** 2) + 0.05 * th.randn(2000, 1)
    ens = GaussianEnsemble(2, 1, n_members=4, n_elites=2, hidden=(32, 32))
    opt = th.optim.Adam(ens.parameters(), lr=3e-3)
    metrics = ens.fit(x, y, opt, batch_size=128, max_epochs=60)
    assert ens.weights[0].shape == (4, 2, 32)  # one stacked tensor for all members
    mean = ens.sample(x, deterministic=True)
    assert mean.shape == (2000, 1)
    assert th.mean((mean - (x[:, :1] * 2 - x[:, 1:] ** 2)) ** 2).item() < 0.01
    assert metrics["holdout_mse"] < 0.1  # standardised units
    assert len(set(ens.elites.tolist())) == 2


def test_each_factor_model_uses_exactly_its_parents():
    env = gym.make("SpuriousCorrelation-v0")
    truth = env.unwrapped.causal_graph
    model = CMBPO("MlpPolicy", env, structure=truth, seed=0, **{k: v for k, v in TINY.items()})
    model.learn(300)
    names = [*model.state_names, *model.action_names]
    for spec, factor in zip(model.world_model.specs, model.world_model.factors):
        (target,) = spec.targets
        target_name = model.variable_names[len(names) + target]
        assert [names[i] for i in spec.inputs] == truth.parents(target_name)
        assert factor.in_dim == len(truth.parents(target_name))
    # changing Z (a parent of nothing) changes no prediction; changing X does
    obs = th.tensor([[-0.5, -0.5], [0.2, 0.2]])
    act = th.tensor([[0.3], [-0.3]])
    th.manual_seed(1)
    base = model.world_model.step(obs, act, deterministic=True)
    moved_z = model.world_model.step(obs + th.tensor([0.0, 0.7]), act, deterministic=True)
    moved_x = model.world_model.step(obs + th.tensor([0.7, 0.0]), act, deterministic=True)
    for a, b in zip(base, moved_z):
        th.testing.assert_close(a, b)
    assert not th.allclose(base[1], moved_x[1])
    assert model.policy_mask.tolist() == [1.0, 0.0]


def test_mbpo_is_one_model_on_all_inputs():
    model = _make(MBPO)
    model.learn(250)
    (spec,) = model.world_model.specs
    assert spec.targets == (0, 1, 2) and spec.inputs == (0, 1, 2)
    assert model.causal_graph == complete_local_graph(["X", "Z"], ["A"])
    assert model.policy_mask.tolist() == [1.0, 1.0]
    with pytest.raises(TypeError, match="MBPO fixes"):
        MBPO("MlpPolicy", gym.make("SpuriousCorrelation-v0"), structure="pc")


# ---------------------------------------------------------------------------------------------- training
def test_short_cmbpo_training_learns_the_graph_and_fills_the_model_buffer(tmp_path):
    model = _make(CMBPO, learning_starts=600, structure_update_freq=10_000)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(800, log_interval=1)  # the episode ending at 800 dumps the training keys
    assert "Z" not in model.reward_parents and "X" in model.reward_parents
    assert model.policy_mask.tolist() == [1.0, 0.0]
    assert model.model_buffer is not None and model.model_buffer.size > 0
    assert model.structure_history and model.structure_history[0]["step"] == 601
    # the masked policy ignores Z
    obs = np.array([[-0.5, -0.9], [-0.5, 0.9]], dtype=np.float32)
    actions, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(actions[0], actions[1])
    logged = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    for key in ("structure/n_edges", "model/rollout_length", "model/holdout_mse/r", "train/critic_loss"):
        assert key in logged


def test_short_sac_training_runs_as_the_model_free_baseline():
    model = SAC("MlpPolicy", gym.make("SpuriousCorrelation-v0"), learning_starts=100, batch_size=64, seed=0)
    model.learn(200)
    assert model.num_timesteps == 200


def test_same_seed_same_graph_same_policy():
    def run(seed: int) -> tuple[CausalGraph, np.ndarray]:
        model = _make(CMBPO, seed=seed)
        model.learn(400)
        obs = np.linspace(-1, 1, 10, dtype=np.float32).reshape(5, 2)
        return model.causal_graph, model.predict(obs, deterministic=True)[0]

    graph_a, actions_a = run(3)
    graph_b, actions_b = run(3)
    assert graph_a == graph_b
    np.testing.assert_array_equal(actions_a, actions_b)


def test_save_load_round_trip(tmp_path):
    model = _make(CMBPO, learning_starts=300)
    model.learn(350)
    assert model.policy_mask.tolist() == [1.0, 0.0]  # a learned graph and mask to round-trip
    path = tmp_path / "cmbpo.zip"
    model.save(path)
    loaded = CMBPO.load(path, device="cpu")
    assert loaded.causal_graph == model.causal_graph
    assert isinstance(loaded.causal_graph_json, str)  # the graph travels as JSON, never pickled
    np.testing.assert_array_equal(loaded.policy_mask, model.policy_mask)
    obs = np.array([[-0.3, 0.4], [0.8, -0.8]], dtype=np.float32)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    s, a = th.tensor(obs), th.tensor([[0.5], [-0.5]])
    for x, y in zip(
        model.world_model.step(s, a, deterministic=True), loaded.world_model.step(s, a, deterministic=True)
    ):
        th.testing.assert_close(x, y)
    for f, g in zip(model.world_model.factors, loaded.world_model.factors):
        assert th.equal(f.elites, g.elites)
    # training continues after load (the model buffer is refilled)
    loaded.set_env(gym.make("SpuriousCorrelation-v0"))
    loaded.learn(150, reset_num_timesteps=False)
    assert loaded.num_timesteps == 500


def test_works_on_another_continuous_env_with_default_names():
    calls = []

    def always_done(obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        calls.append(obs.shape)
        return np.ones(len(obs), dtype=bool)

    model = _make(CMBPO, env_id="Pendulum-v1", termination_fn=always_done, model_train_freq=1000)
    model.learn(300)
    assert model.state_names == ("s0", "s1", "s2") and model.action_names == ("a0",)
    assert set(model.causal_graph.variables) == {"s0", "s1", "s2", "a0", "s0'", "s1'", "s2'", "r"}
    # one fit, one batch of rollouts, each ended after its first model step by termination_fn
    assert calls == [(TINY["rollout_batch_size"], 3)]
    assert model.model_buffer is not None and model.model_buffer.size == TINY["rollout_batch_size"]
    assert model.model_buffer.dones[: model.model_buffer.size].all()


@pytest.mark.slow
def test_cmbpo_policy_keeps_its_return_under_far_shift():
    """A real (slow) training: C-MBPO's masked policy steers X to 0 whatever the shift does to Z."""
    model = CMBPO(
        "MlpPolicy",
        gym.make("SpuriousCorrelation-v0"),
        seed=0,
        learning_starts=400,
        batch_size=128,
        gradient_steps=5,
        policy_kwargs=dict(net_arch=[64, 64]),
        rollout_batch_size=1000,
        rollout_schedule=(400, 3000, 1, 3),
        structure_update_freq=1000,
    )
    model.learn(3000)
    assert model.reward_parents == ["X"]
    returns = {}
    for shift in ("none", "far"):
        env = gym.make("SpuriousCorrelation-v0", shift=shift)
        obs, _ = env.reset(seed=0)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(model.predict(obs, deterministic=True)[0])
            total, done = total + reward, terminated or truncated
        returns[shift] = total
    assert returns["none"] > 15.0
    assert returns["far"] >= 0.9 * returns["none"]


# ---------------------------------------------------------------------------------------------- bad input
def test_discrete_actions_are_refused_with_a_clear_error():
    with pytest.raises(UnsupportedSpaceError, match="Discrete actions are not supported"):
        CMBPO("MlpPolicy", "CartPole-v1")


class _ImageEnv(gym.Env):
    observation_space = spaces.Box(0, 255, shape=(16, 16, 3), dtype=np.uint8)
    action_space = spaces.Box(-1, 1, shape=(1,), dtype=np.float32)


def test_image_observations_are_refused_with_a_clear_error():
    with pytest.raises(UnsupportedSpaceError, match="flat Box observation"):
        CMBPO("MlpPolicy", _ImageEnv())


class _DuplicatedX(gym.ObservationWrapper):
    """Observation ``[X, Z, X]``: a perfectly collinear column, so PC's correlation matrix is singular."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.append(observation, observation[0]).astype(np.float32)


def test_pc_failure_in_training_is_logged_and_falls_back_to_the_complete_graph():
    model = CMBPO("MlpPolicy", _DuplicatedX(SpuriousCorrelationEnv()), seed=0, state_names=["X", "Z", "X2"], **TINY)
    with pytest.warns(UserWarning, match="PC failed .*singular.*complete graph"):
        model.learn(150)
    assert model.causal_graph == complete_local_graph(["X", "Z", "X2"], ["A"])
    assert model.structure_history[-1]["fallback"] is not None
    assert model.policy_mask.tolist() == [1.0, 1.0, 1.0]


def test_bad_arguments():
    env = gym.make("SpuriousCorrelation-v0")
    with pytest.raises(ValueError, match="structure must be"):
        CMBPO("MlpPolicy", env, structure="magic")
    with pytest.raises(ValueError, match="policy_inputs"):
        CMBPO("MlpPolicy", env, policy_inputs="some")
    with pytest.raises(ValueError, match=r"\(s, a\) -> \(s', r\)"):
        CMBPO("MlpPolicy", env, structure=CausalGraph(["X", "Z", "A", "X'", "Z'", "r"], [("X'", "r")]))
    with pytest.raises(ValueError, match="state_names has 3 names"):
        CMBPO("MlpPolicy", env, state_names=["a", "b", "c"])
