"""CausalMaskablePPO and CausalDQN / D3QN: masks acted with and stored, predict, save/load, seeds, bad input."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import MaskablePPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import KVWriter, configure
from stable_baselines3.common.vec_env import VecNormalize

import sb3_causal  # noqa: F401  (registers FaultAlarmRL-v0)
from sb3_causal import CausalDQN, CausalGraph, CausalMaskablePPO
from sb3_causal.algos import CausalModelFileError
from sb3_causal.algos.causal_base import GRAPH_ENTRY, LEARNER_ENTRY
from sb3_causal.algos.maskable_dqn import RecordTerminalActionMask
from sb3_causal.masks import CausalMask
from sb3_causal.variables import CausalVariables, VariableLayoutError
from tests.toy_envs import LinearCascadeEnv, PoissonCascadeEnv

th.set_num_threads(1)

SMALL_PPO = {"n_steps": 64, "batch_size": 32, "n_epochs": 2, "graph_update_freq": 100}
SMALL_DQN = {"learning_starts": 50, "buffer_size": 2000, "batch_size": 32, "graph_update_freq": 100}


class RecordActing(BaseCallback):
    """Records, per env step, the masks the agent acted with (as returned by ``get_masks``) and its actions."""

    def __init__(self, get_masks: Any) -> None:
        super().__init__()
        self.get_masks = get_masks
        self.masks: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.dones: list[np.ndarray] = []

    def _on_step(self) -> bool:
        value = self.get_masks(self.model)
        self.masks.append([np.array(v, copy=True) for v in value] if isinstance(value, list) else np.array(value))
        self.actions.append(np.asarray(self.locals["actions"]).reshape(-1).copy())
        self.dones.append(np.asarray(self.locals["dones"]).copy())
        return True


def ppo_next_masks(model: CausalMaskablePPO) -> np.ndarray:
    return model.env.current_masks()  # in _on_step: the masks of the new observations, cached for the next action


def test_ppo_stores_exactly_the_mask_it_acted_with() -> None:
    env = make_vec_env(PoissonCascadeEnv, n_envs=2, seed=0)
    model = CausalMaskablePPO("MlpPolicy", env, eta=0.3, k=1, seed=0, **SMALL_PPO)
    acted: list[np.ndarray] = []
    forward = model.policy.forward

    def recording_forward(obs: th.Tensor, deterministic: bool = False, action_masks: Any = None) -> Any:
        acted.append(np.array(action_masks, copy=True))
        return forward(obs, deterministic=deterministic, action_masks=action_masks)

    model.policy.forward = recording_forward  # type: ignore[method-assign]
    recorder = RecordActing(ppo_next_masks)
    model.learn(64 * 2, callback=recorder)  # exactly one rollout: the buffer still holds it
    acted_masks = np.stack(acted)
    buffer = model.rollout_buffer
    assert buffer.generator_ready  # train() flattened it env-major: (n_envs * n_steps, n_actions)
    stored = buffer.action_masks.reshape(2, 64, -1).swapaxes(0, 1).astype(bool)
    np.testing.assert_array_equal(stored, acted_masks)
    # what a callback sees between two steps is the cached mask the next step acts with (computed once)
    np.testing.assert_array_equal(np.stack(recorder.masks)[:-1], acted_masks[1:])
    actions = np.stack(recorder.actions)
    assert np.take_along_axis(acted_masks, actions[..., None], axis=2).all()  # every action was allowed
    # the masks are causal (k=1: one action) except on the eta lifts and the fallbacks
    narrowed = acted_masks.sum(axis=2) == 1
    assert 0.4 < narrowed.mean() < 0.95


def test_ppo_eta_one_acts_with_the_env_mask_alone() -> None:
    env = make_vec_env(PoissonCascadeEnv, n_envs=1, seed=1)
    model = CausalMaskablePPO("MlpPolicy", env, eta=1.0, seed=1, **SMALL_PPO)
    recorder = RecordActing(lambda m: [m.env.current_masks(), np.stack(m.env.venv.env_method("action_masks"))])
    model.learn(64, callback=recorder)
    agent_masks, env_masks = np.stack(recorder.masks).swapaxes(0, 1)
    np.testing.assert_array_equal(agent_masks, env_masks)  # eta = 1: the env's action_masks() alone
    assert not env_masks.all()


def test_dqn_never_takes_or_bootstraps_from_an_unmasked_action() -> None:
    env = make_vec_env(PoissonCascadeEnv, n_envs=2, seed=2, wrapper_class=RecordTerminalActionMask)
    model = CausalDQN("MlpPolicy", env, k=1, eta=0.2, seed=2, **SMALL_DQN)
    recorder = RecordActing(lambda m: [m._action_masks, m._env_masks])  # in _on_step: those of the acted state
    n_steps = 150
    model.learn(n_steps * 2, callback=recorder)
    masks, env_masks = np.stack([r[0] for r in recorder.masks]), np.stack([r[1] for r in recorder.masks])
    actions, dones = np.stack(recorder.actions), np.stack(recorder.dones)
    assert np.take_along_axis(masks, actions[..., None], axis=2).all()
    assert (masks.sum(axis=2) == 1).mean() > 0.5  # mostly causal (k=1), not the env's mask
    rb = model.replay_buffer
    stored_next = np.unpackbits(rb.packed_next_action_masks[:n_steps], axis=-1, count=rb.n_actions).astype(bool)
    # the next-state mask stored for step t is the env's mask of the state acted in at step t + 1 (same episode)
    same_episode = ~dones[:-1]
    np.testing.assert_array_equal(stored_next[:-1][same_episode], env_masks[1:][same_episode])
    np.testing.assert_array_equal(rb.actions[:n_steps, :, 0], actions)


def test_dqn_target_recomputes_the_causal_mask_without_lifts_and_ands_the_stored_env_mask() -> None:
    # Issue 12 defect 6: the target used the masks stored at collection time (eta lifts, old graphs).
    model = CausalDQN("MlpPolicy", PoissonCascadeEnv(), k=1, eta=1.0, seed=3, **SMALL_DQN)
    model.learn(120)
    batch = model.replay_buffer.sample(64)
    next_masks = model._next_action_masks(batch)
    provider = model.mask_provider
    expected_masks = provider(batch.raw_next_observations, batch.next_action_masks.numpy(), explore=False)
    np.testing.assert_array_equal(next_masks.numpy(), expected_masks)
    # eta = 1 lifts every acting mask, so the stored env masks alone would allow more: the target does not
    assert (next_masks.sum(dim=1) < batch.next_action_masks.sum(dim=1)).any()
    q_next = model.q_net_target(batch.next_observations)
    targets = model._target_q_values(batch, next_masks)
    best_valid = th.where(next_masks, q_next, th.finfo(q_next.dtype).min).max(dim=1).values
    expected = batch.rewards.squeeze(1) + (1 - batch.dones.squeeze(1)) * model.gamma * best_valid
    th.testing.assert_close(targets.squeeze(1), expected)


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_predict_applies_the_causal_mask_and_the_callers_masks(algo: str) -> None:
    env = PoissonCascadeEnv()
    names = CausalVariables.from_env(env).names
    graph = CausalGraph(names, [(0, 1), (1, 2), (0, 3)])  # the env's true graph, by variable index
    cls, kwargs = (CausalMaskablePPO, SMALL_PPO) if algo == "ppo" else (CausalDQN, SMALL_DQN)
    model = cls("MlpPolicy", env, initial_graph=graph, k=1, seed=4, **kwargs)
    assert model.causal_graph == graph
    obs = np.array([[0.0, 3.0, 2.0, 1.0], [1.0, 3.0, 2.0, 1.0]], dtype=np.float32)
    # variable 1 is the most upstream active variable of the first state, variable 0 of the second
    for _ in range(20):
        actions, _ = model.predict(obs, deterministic=False)
        assert actions.tolist() == [1, 0]
    single, _ = model.predict(obs[0], deterministic=True)
    assert single.shape == () and int(single) == 1
    # the caller's masks are AND-ed; where the AND is empty the caller's mask alone applies
    only_t = np.array([[False, False, True, False, False]] * 2)
    actions, _ = model.predict(obs, action_masks=only_t)
    assert actions.tolist() == [2, 2]
    with pytest.raises(ValueError, match="all-zero action mask"):
        model.predict(obs, action_masks=np.zeros((2, 5), dtype=bool))


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_save_load_round_trip_keeps_graph_learner_and_predictions(algo: str, tmp_path: Path) -> None:
    if algo == "ppo":
        model = CausalMaskablePPO("MlpPolicy", LinearCascadeEnv(), k=2, eta=0.1, seed=5, **SMALL_PPO)
    else:
        model = CausalDQN("DuelingMlpPolicy", LinearCascadeEnv(), double_q=True, k=2, eta=0.1, seed=5, **SMALL_DQN)
    model.learn(320)
    assert model.causal_graph.n_edges > 0
    path = tmp_path / "model.zip"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        assert CausalGraph.from_json(archive.read(GRAPH_ENTRY).decode()) == model.causal_graph
    loaded = type(model).load(path)
    assert loaded.causal_graph == model.causal_graph
    assert (loaded.k, loaded.eta) == (2, 0.1)
    old, new = model.causal_learner.state_dict(), loaded.causal_learner.state_dict()
    assert new["n_transitions"] == old["n_transitions"] == 300  # 3 updates of 100; 20 transitions pending
    np.testing.assert_allclose(new["gram"], old["gram"])
    np.testing.assert_allclose(new["treated"]["sxy"], old["treated"]["sxy"])
    obs = np.array([model.observation_space.sample() for _ in range(16)])
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    # training resumes from the saved statistics
    loaded.set_env(LinearCascadeEnv())
    loaded.learn(64, reset_num_timesteps=False)
    assert loaded.causal_learner.n_transitions == 300 + 100 * (loaded.num_timesteps >= 400)


def rewrite_entry(path: Path, entry: str, content: bytes | None) -> None:
    with zipfile.ZipFile(path) as archive:
        items = {name: archive.read(name) for name in archive.namelist()}
    if content is None:
        del items[entry]
    else:
        items[entry] = content
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in items.items():
            archive.writestr(name, data)


@pytest.mark.parametrize(
    ("entry", "content", "match"),
    [
        (GRAPH_ENTRY, b"{not json", "causal graph .* is corrupt"),
        (GRAPH_ENTRY, b'{"format": "something else"}', "causal graph .* is corrupt"),
        (GRAPH_ENTRY, b"\xff\xfe", "not UTF-8"),
        (LEARNER_ENTRY, b"garbage", "causal learner .* is corrupt"),
        (GRAPH_ENTRY, None, "no causal_graph.json"),
    ],
)
def test_a_corrupt_saved_graph_is_a_clear_error(entry: str, content: bytes | None, match: str, tmp_path: Path) -> None:
    model = CausalMaskablePPO("MlpPolicy", LinearCascadeEnv(), seed=6, **SMALL_PPO)
    path = tmp_path / "model.zip"
    model.save(path)
    rewrite_entry(path, entry, content)
    with pytest.raises(CausalModelFileError, match=match):
        CausalMaskablePPO.load(path)


def test_a_graph_over_other_variables_and_a_plain_model_are_rejected(tmp_path: Path) -> None:
    model = CausalMaskablePPO("MlpPolicy", LinearCascadeEnv(), seed=6, **SMALL_PPO)
    path = tmp_path / "model.zip"
    model.save(path)
    rewrite_entry(path, GRAPH_ENTRY, CausalGraph.empty(["p", "q", "r", "s"]).to_json().encode())
    with pytest.raises(CausalModelFileError, match="differ from the saved layout"):
        CausalMaskablePPO.load(path)
    plain = tmp_path / "plain.zip"
    MaskablePPO("MlpPolicy", PoissonCascadeEnv(), n_steps=64).save(plain)
    with pytest.raises(CausalModelFileError, match="not saved by a causal"):
        CausalMaskablePPO.load(plain)
    buffer = io.BytesIO()
    model.save(buffer)  # file-like targets work too
    buffer.seek(0)
    assert CausalMaskablePPO.load(buffer).causal_graph == model.causal_graph


class BoxActionEnv(gym.Env):
    observation_space = spaces.Box(-1, 1, (3,), np.float32)
    action_space = spaces.Box(-1, 1, (3,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        return np.zeros(3, np.float32), {}

    def step(self, action):
        return np.zeros(3, np.float32), 0.0, False, False, {}


class UnmappableEnv(BoxActionEnv):
    action_space = spaces.Discrete(7)


@pytest.mark.parametrize("cls", [CausalMaskablePPO, CausalDQN])
def test_bad_input_is_a_clear_error(cls: type) -> None:
    with pytest.raises(AssertionError, match=r"only supports .*Discrete"):  # SB3's own check, as upstream
        cls("MlpPolicy", BoxActionEnv())
    with pytest.raises(VariableLayoutError, match="cannot infer causal variables"):
        cls("MlpPolicy", UnmappableEnv())
    with pytest.raises(ValueError, match=r"k .* >= 1"):
        cls("MlpPolicy", LinearCascadeEnv(), k=0)
    with pytest.raises(ValueError, match=r"eta .* \[0, 1\]"):
        cls("MlpPolicy", LinearCascadeEnv(), eta=1.2)
    with pytest.raises(TypeError, match="MaskProvider"):
        cls("MlpPolicy", LinearCascadeEnv(), mask_provider=lambda obs, masks: masks)


class OnlyFirstAction:
    """A user's mask source: always action 0; counts the graphs it receives."""

    def __init__(self) -> None:
        self.graphs: list[CausalGraph] = []

    def __call__(self, observations: np.ndarray, env_masks: np.ndarray | None, *, explore: bool = True) -> np.ndarray:
        masks = np.zeros((len(observations), 5), dtype=bool)
        masks[:, 0] = True
        return masks

    def update_graph(self, graph: CausalGraph, n_hops: int | None = None) -> None:
        self.graphs.append(graph)


@pytest.mark.parametrize("cls", [CausalMaskablePPO, CausalDQN])
def test_a_user_mask_provider_plugs_in(cls: type) -> None:
    provider = OnlyFirstAction()
    kwargs = SMALL_PPO if cls is CausalMaskablePPO else SMALL_DQN
    model = cls("MlpPolicy", LinearCascadeEnv(), mask_provider=provider, seed=7, **kwargs)
    recorder = RecordActing(lambda m: 0)
    model.learn(256, callback=recorder)
    assert np.concatenate(recorder.actions).tolist() == [0] * model.num_timesteps
    assert len(provider.graphs) == 2  # one per graph update: after 100 and 200 transitions


def run_actions(cls: type, seed: int) -> tuple[list[int], CausalGraph]:
    kwargs = SMALL_PPO if cls is CausalMaskablePPO else SMALL_DQN
    model = cls("MlpPolicy", PoissonCascadeEnv(), seed=seed, initial_graph="random", **kwargs)
    recorder = RecordActing(lambda m: 0)
    model.learn(200, callback=recorder)
    return np.concatenate(recorder.actions).tolist(), model.causal_graph


@pytest.mark.parametrize("cls", [CausalMaskablePPO, CausalDQN])
def test_seeds_reproduce_runs(cls: type) -> None:
    first, second, other = run_actions(cls, 8), run_actions(cls, 8), run_actions(cls, 9)
    assert first == second
    assert first[0] != other[0] or first[1] != other[1]


class ListOutput(KVWriter):
    """An SB3 logger output keeping every dumped key/value."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        self.records.append(dict(key_values))

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("cls", "policy", "kwargs"),
    [
        (CausalMaskablePPO, "MlpPolicy", {"initial_graph": "thp", "initial_kwargs": {"n_events": 500}}),
        (CausalDQN, "MlpPolicy", {"initial_graph": "random"}),
        (CausalDQN, "DuelingMlpPolicy", {"double_q": True, "initial_graph": "empty"}),
    ],
)
def test_agents_train_briefly_on_fault_alarm(cls: type, policy: str, kwargs: dict) -> None:
    small = {**(SMALL_PPO if cls is CausalMaskablePPO else SMALL_DQN), "graph_update_freq": 128}
    model = cls(policy, "FaultAlarmRL-v0", seed=10, **small, **kwargs)
    initial = model.causal_graph
    assert initial.variables == gym.make("FaultAlarmRL-v0").unwrapped.causal_graph.variables
    if kwargs["initial_graph"] != "empty":
        assert initial.n_edges > 0
    assert isinstance(model.mask_provider, CausalMask)
    output = ListOutput()
    model.set_logger(configure(None, []))
    model.logger.output_formats = [output]
    model.learn(256, progress_bar=True, log_interval=1)
    assert model.causal_learner.n_transitions + model.graph_callback.n_pending == model.num_timesteps >= 256
    logged = {key for record in output.records for key in record}
    assert {"causal/edges", "causal/f1", "causal/mask_mean_actions"} <= logged


def test_ppo_masks_see_raw_observations_under_vec_normalize() -> None:
    env = VecNormalize(make_vec_env(PoissonCascadeEnv, n_envs=2, seed=11), norm_reward=False)
    model = CausalMaskablePPO("MlpPolicy", env, eta=0.0, k=1, seed=11, **SMALL_PPO)
    recorder = RecordActing(lambda m: [m.env.current_masks(), m.get_vec_normalize_env().get_original_obs()])
    model.learn(128, callback=recorder)
    for masks, raw in recorder.masks:
        active = np.concatenate([raw > 0, np.zeros((2, 1), dtype=bool)], axis=1)
        causal = ~masks[:, -1]  # rows not on the fallback (nothing active -> the env mask, which allows the no-op)
        assert causal.any() or not active.any()  # both rows may hold no active variable: both fall back
        assert (masks[causal].sum(axis=1) == 1).all()
        assert (masks[causal] <= active[causal]).all()  # the kept action treats a variable active in the raw obs


# ---------------------------------------------------------------------------- issue 12: SB3 defects
def test_predict_masks_use_the_raw_observations_under_vec_normalize_never_unnormalised() -> None:
    # Defect 2: predict un-normalised observations; clipped values (and round-off) turned zeros "active".
    venv = VecNormalize(make_vec_env(PoissonCascadeEnv, n_envs=2, seed=0), clip_obs=0.5, norm_reward=False)
    model = CausalMaskablePPO("MlpPolicy", venv, k=1, eta=0.0, seed=0, **SMALL_PPO)
    model.learn(192)
    eval_env = VecNormalize(make_vec_env(PoissonCascadeEnv, n_envs=1, seed=5), clip_obs=0.5, training=False)
    eval_env.obs_rms = venv.obs_rms
    from stable_baselines3.common.callbacks import EvalCallback

    model.learn(64, callback=EvalCallback(eval_env, n_eval_episodes=1, eval_freq=10_000), reset_num_timesteps=False)
    provider = model.mask_provider
    for env in (venv, eval_env):
        obs = env.reset()
        for _ in range(5):
            expected = provider(env.get_original_obs(), None, explore=False)
            np.testing.assert_array_equal(model._predict_masks(obs, None), expected)
            np.testing.assert_array_equal(model._predict_masks(obs[0], None), expected[:1])
            obs = env.step(model.predict(obs, deterministic=True)[0])[0]
    # what un-normalising would have given: clipped zeros come back as non-zeros
    raw = venv.get_original_obs()
    assert (raw == 0).any() and not np.array_equal(venv.unnormalize_obs(venv.normalize_obs(raw)) != 0, raw != 0)
    with pytest.raises(ValueError, match="raw observations"):
        model.predict(np.full((1, 4), 0.123, dtype=np.float32))


@pytest.mark.parametrize("cls", [CausalMaskablePPO, CausalDQN])
def test_a_bare_callable_is_a_callback(cls: type) -> None:
    # Defect 3: learn(callback=function) failed ('function' object has no attribute 'init_callback').
    calls: list[int] = []

    def on_step(locals_: dict[str, Any], globals_: dict[str, Any]) -> bool:
        calls.append(1)
        return True

    kwargs = SMALL_PPO if cls is CausalMaskablePPO else SMALL_DQN
    model = cls("MlpPolicy", LinearCascadeEnv(), seed=0, **kwargs)
    model.learn(64, callback=on_step)
    assert len(calls) == model.num_timesteps
    assert model.graph_callback.n_pending == model.num_timesteps  # the graph callback ran too


@pytest.mark.parametrize("cls", [CausalMaskablePPO, CausalDQN])
def test_load_from_a_file_object_that_was_not_rewound(cls: type) -> None:
    # Defect 4: load() read from the file object's current position.
    kwargs = SMALL_PPO if cls is CausalMaskablePPO else SMALL_DQN
    model = cls("MlpPolicy", LinearCascadeEnv(), seed=0, **kwargs)
    buffer = io.BytesIO()
    model.save(buffer)
    assert buffer.tell() > 0  # not rewound
    loaded = cls.load(buffer)
    assert loaded.causal_graph == model.causal_graph


@pytest.mark.parametrize("cls", [CausalMaskablePPO, CausalDQN])
def test_evaluate_policy_without_masking_still_applies_the_causal_mask(cls: type) -> None:
    # Defect 7: the causal mask is part of the policy; use_masking=False drops only the env's masks.
    from sb3_contrib.common.maskable.evaluation import evaluate_policy

    kwargs = SMALL_PPO if cls is CausalMaskablePPO else SMALL_DQN
    model = cls("MlpPolicy", PoissonCascadeEnv(), mask_provider=OnlyFirstAction(), seed=0, **kwargs)
    taken: list[int] = []

    class Recording(PoissonCascadeEnv):
        def step(self, action):
            taken.append(int(action))
            return super().step(action)

    evaluate_policy(model, Recording(), n_eval_episodes=1, use_masking=False)
    assert taken and set(taken) == {0}


def test_learn_twice_gives_the_graph_of_one_learn_and_save_load_keeps_the_mask_generator(tmp_path: Path) -> None:
    # Defect 8: each learn ended with an extra graph update; load re-seeded the mask's generator.
    # Warm-up actions only (random among the masked actions): SB3's own training is not exact across learn
    # calls (DQN's learn(150) and learn(300) already act differently from the first gradient step on).
    def make() -> CausalDQN:
        kwargs = {**SMALL_DQN, "graph_update_freq": 70, "learning_starts": 10_000}
        return CausalDQN("MlpPolicy", PoissonCascadeEnv(), k=1, eta=0.5, seed=4, **kwargs)

    split, whole = make(), make()
    split.learn(150)
    split.learn(150, reset_num_timesteps=False)
    whole.learn(300)
    assert split.causal_learner.n_updates == whole.causal_learner.n_updates == 4
    assert split.causal_graph == whole.causal_graph
    np.testing.assert_array_equal(split.causal_learner.state_dict()["gram"], whole.causal_learner.state_dict()["gram"])
    np.testing.assert_array_equal(split.replay_buffer.actions[:300], whole.replay_buffer.actions[:300])
    split.save(tmp_path / "m.zip")
    loaded = CausalDQN.load(tmp_path / "m.zip")
    np.testing.assert_array_equal(loaded.mask_provider.rng.random(8), split.mask_provider.rng.random(8))


def test_eval_callback_gets_the_env_the_user_gave_no_type_warning() -> None:
    # Defect 9: "Training and eval env are not of the same type" for every EvalCallback of the causal PPO;
    # the extra wrapper also made sync_envs_normalization skip the VecNormalize statistics.
    import warnings

    from stable_baselines3.common.callbacks import EvalCallback

    venv = VecNormalize(make_vec_env(PoissonCascadeEnv, n_envs=1, seed=0))
    eval_env = VecNormalize(make_vec_env(PoissonCascadeEnv, n_envs=1, seed=1), training=False)
    model = CausalMaskablePPO("MlpPolicy", venv, seed=0, **SMALL_PPO)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.learn(128, callback=EvalCallback(eval_env, n_eval_episodes=1, eval_freq=64))
    assert model.get_env() is venv
    np.testing.assert_array_equal(eval_env.obs_rms.mean, venv.obs_rms.mean)


class WideEnv(gym.Env):
    """One causal variable per observation entry, 4000 of them: far too many for the learner's statistics."""

    observation_space = spaces.Box(0, 1, shape=(4000,), dtype=np.float32)
    action_space = spaces.Discrete(4001)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        return np.zeros(4000, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(4000, dtype=np.float32), 0.0, False, False, {}


@pytest.mark.parametrize("cls", [CausalMaskablePPO, CausalDQN])
def test_a_layout_too_big_for_the_learner_is_refused_before_allocating(cls: type) -> None:
    # Defect 10: the learner's memory grows with the cube of the variable count (4000 variables: ~1 TiB).
    with pytest.raises(MemoryError, match=r"would need [\d,.]+ GiB for 4000 causal variables"):
        cls("MlpPolicy", WideEnv(), buffer_size=10) if cls is CausalDQN else cls("MlpPolicy", WideEnv())


# ---------------------------------------------------------------------------- issue 12: what a newcomer hits
@pytest.mark.parametrize("cls", [CausalMaskablePPO, CausalDQN])
def test_typos_fail_in_the_constructor_not_in_learn(cls: type) -> None:
    with pytest.raises(ValueError, match=r"unknown initial_graph 'tph'.*'thp'"):
        cls("MlpPolicy", LinearCascadeEnv(), initial_graph="tph")
    with pytest.raises(ValueError, match=r"unknown learner_kwargs \['z_treshold'\].*z_threshold"):
        cls("MlpPolicy", LinearCascadeEnv(), learner_kwargs={"z_treshold": 3.0})
    with pytest.raises(ValueError, match=r"initial_graph='pc' learns from recorded state data.*states"):
        cls("MlpPolicy", LinearCascadeEnv(), initial_graph="pc")
    with pytest.raises(ValueError, match="record_alarm_log"):
        cls("MlpPolicy", LinearCascadeEnv(), initial_graph="thp")
    with pytest.raises(ValueError, match=r"graph_update_freq .* integer >= 1, got 0\.5"):
        cls("MlpPolicy", LinearCascadeEnv(), graph_update_freq=0.5)
    with pytest.raises(ValueError, match=r"activity_threshold must be >= 0"):
        cls("MlpPolicy", LinearCascadeEnv(), activity_threshold=-1.0)


def test_causal_dqn_errors_name_causal_dqn() -> None:
    with pytest.raises(ValueError, match=r"^CausalDQN does not support n-step"):
        CausalDQN("MlpPolicy", LinearCascadeEnv(), n_steps=3)
    with pytest.raises(TypeError, match=r"^CausalDQN needs a MaskableReplayBuffer"):
        CausalDQN("MlpPolicy", LinearCascadeEnv(), replay_buffer_class=dict)


def test_a_corrupt_learner_file_never_suggests_unsafe_loading(tmp_path: Path) -> None:
    model = CausalDQN("MlpPolicy", LinearCascadeEnv(), seed=0, **SMALL_DQN)
    path = tmp_path / "model.zip"
    model.save(path)
    pickled = io.BytesIO()
    np.savez(pickled, **{"state/n_transitions": np.array([object()], dtype=object)})
    rewrite_entry(path, LEARNER_ENTRY, pickled.getvalue())
    with pytest.raises(CausalModelFileError, match="pickled Python objects, which are never loaded") as info:
        CausalDQN.load(path)
    assert "allow_pickle" not in str(info.value)


def test_loading_another_algorithms_zip_is_a_clear_error(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    PPO("MlpPolicy", "CartPole-v1", n_steps=64).save(tmp_path / "ppo.zip")
    with pytest.raises(CausalModelFileError, match="not saved by a causal sb3-causal algorithm"):
        CausalDQN.load(tmp_path / "ppo.zip")
    CausalMaskablePPO("MlpPolicy", LinearCascadeEnv(), **SMALL_PPO).save(tmp_path / "causal_ppo.zip")
    with pytest.raises(CausalModelFileError, match="saved by another algorithm"):
        CausalDQN.load(tmp_path / "causal_ppo.zip")


# ------------------------------------------------------------ mask providers without a graph, saved in the zip
class BestScoreMask(th.nn.Module):
    """A mask provider holding a network and no causal graph: the env-valid action of highest score."""

    uses_graph = False

    def __init__(self, n_inputs: int, n_actions: int) -> None:
        super().__init__()
        self.n_inputs, self.n_actions = n_inputs, n_actions
        self.score = th.nn.Linear(n_inputs, n_actions)

    def get_config(self) -> dict[str, int]:
        return {"n_inputs": self.n_inputs, "n_actions": self.n_actions}

    @classmethod
    def from_config(cls, config: dict[str, int]) -> BestScoreMask:
        return cls(**config)

    def forward(self, observations: Any, env_masks: np.ndarray | None, *, explore: bool = True) -> np.ndarray:
        flat = np.asarray(observations, dtype=np.float32).reshape(len(observations), -1)
        with th.no_grad():
            scores = self.score(th.as_tensor(flat[:, : self.n_inputs])).numpy()
        if env_masks is not None:
            scores = np.where(env_masks, scores, -np.inf)
        return scores >= scores.max(axis=1, keepdims=True)

    def update_graph(self, graph: CausalGraph, n_hops: int | None = None) -> None:
        raise AssertionError("a provider with uses_graph = False never receives a graph")


@pytest.mark.parametrize("cls", [CausalMaskablePPO, CausalDQN])
def test_a_graph_free_module_provider_on_images_is_saved_in_the_zip(cls: type, tmp_path: Path) -> None:
    from tests.test_maskable_dqn import ImageMaskEnv

    env = ImageMaskEnv()
    provider = BestScoreMask(36 * 36, 3)
    kwargs = {"n_steps": 16, "batch_size": 8, "n_epochs": 1} if cls is CausalMaskablePPO else SMALL_DQN
    model = cls("CnnPolicy", env, mask_provider=provider, seed=0, **kwargs)  # no layout for images: none needed
    assert model.graph_callback is None
    recorder = RecordActing(lambda m: 0)
    model.learn(32, callback=recorder)
    assert env.invalid_taken == 0
    with pytest.raises(RuntimeError, match="uses no causal graph"):
        _ = model.causal_graph
    obs = np.stack([env.reset()[0]] + [env.step(0)[0] for _ in range(3)])
    model.save(tmp_path / "model.zip")
    with zipfile.ZipFile(tmp_path / "model.zip") as archive:
        assert "mask_provider.pth" in archive.namelist() and GRAPH_ENTRY not in archive.namelist()
    loaded = cls.load(tmp_path / "model.zip")
    assert isinstance(loaded.mask_provider, BestScoreMask) and loaded.mask_provider is not provider
    for a, b in zip(loaded.mask_provider.state_dict().values(), provider.state_dict().values()):
        th.testing.assert_close(a, b, rtol=0, atol=0)
    np.testing.assert_array_equal(loaded._predict_masks(obs, None), model._predict_masks(obs, None))


def test_a_chooser_steers_the_lifted_steps_and_bad_choosers_are_refused(tmp_path) -> None:
    from sb3_causal.discovery.choosers import LeastEvidenceChooser

    env = gym.make("FactoredSCM-v0", n_variables=6, model_seed=0)
    chooser = LeastEvidenceChooser(n_variables=6, slack=0.0)
    model = CausalMaskablePPO(
        "MlpPolicy", env, eta=1.0, chooser=chooser, graph_update_freq=64, n_steps=64, batch_size=64, n_epochs=1, seed=0
    )
    model.learn(256)
    assert model.mask_provider.chooser is chooser
    treated = np.asarray(model.causal_learner.n_treated)
    assert chooser.evidence.tolist() == treated.tolist()  # updated with the learner's evidence
    # a lifted row (eta = 1) allows only the actions on the least-treated variables
    obs, _ = env.reset(seed=1)
    allowed = model.mask_provider(obs[None], None, explore=True)[0]
    least = set(np.flatnonzero(treated == treated.min()).tolist())
    assert allowed[:6].any() and set(np.flatnonzero(allowed[:6]).tolist()) <= least
    with pytest.raises(TypeError, match="InterventionChooser"):
        CausalMaskablePPO("MlpPolicy", env, chooser=object())
