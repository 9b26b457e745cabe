"""MaskableDQN: masks in exploration, greedy action and TD target; double-Q, dueling; save/load, seeds, errors."""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

import sb3_causal  # noqa: F401  (registers FaultAlarmRL-v0)
from sb3_causal.algos import MaskableDQN, MaskableReplayBuffer, RecordTerminalActionMask
from sb3_causal.algos.dqn_policies import (
    DuelingDQNPolicy,
    DuelingQNetwork,
    MaskableDQNPolicy,
    check_action_masks,
    mask_q_values,
)
from sb3_causal.algos.maskable_dqn import TERMINAL_ACTION_MASK_KEY, MaskableReplayBufferSamples

th.set_num_threads(1)

N = 5  # states and actions of the toy env
TINY = dict(net_arch=[16])


def toy_mask(state: int) -> np.ndarray:
    """Valid moves from ``state``: every other state except ``state + 1`` and ``state + 2`` (mod N)."""
    mask = np.ones(N, dtype=bool)
    mask[[(state + 1) % N, (state + 2) % N]] = False
    mask[state] = False
    return mask


class NoMaskToyEnv(gym.Env):
    """Action a moves to state a. Reaching state N - 1 ends the episode (terminated); ``max_steps`` truncates.

    The observation is one-hot(state) followed by the state's action mask, so any stored mask can be
    checked against its observation. Invalid actions are counted and lure an unmasked agent with a
    big reward; the valid mask differs between states, so an episode's first and last masks differ.
    """

    def __init__(self, max_steps: int = 3) -> None:
        self.observation_space = spaces.Box(0.0, 1.0, shape=(2 * N,), dtype=np.float32)
        self.action_space = spaces.Discrete(N)
        self.max_steps = max_steps
        self.state = 0
        self.steps = 0
        self.invalid_taken = 0
        self.actions_taken = 0

    def _obs(self) -> np.ndarray:
        return np.concatenate([np.eye(N)[self.state], toy_mask(self.state)]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.state, self.steps = 0, 0
        return self._obs(), {}

    def step(self, action):
        a = int(action)
        self.actions_taken += 1
        self.steps += 1
        if not toy_mask(self.state)[a]:
            self.invalid_taken += 1
            return self._obs(), 10.0, False, self.steps >= self.max_steps, {}
        self.state = a
        terminated = a == N - 1
        return self._obs(), float(terminated), terminated, not terminated and self.steps >= self.max_steps, {}


class ToyMaskEnv(NoMaskToyEnv):
    """The toy env with its ``action_masks()``."""

    def action_masks(self) -> np.ndarray:
        return toy_mask(self.state)


def small_model(env: Any, **kwargs: Any) -> MaskableDQN:
    params: dict[str, Any] = dict(
        learning_starts=30,
        buffer_size=2_000,
        batch_size=16,
        train_freq=1,
        target_update_interval=50,
        exploration_fraction=0.5,
        policy_kwargs=TINY,
        seed=0,
    )
    policy = kwargs.pop("policy", "MlpPolicy")
    params.update(kwargs)
    return MaskableDQN(policy, env, **params)


def stored_rows(model: MaskableDQN) -> dict[str, np.ndarray]:
    buf = model.replay_buffer
    n = buf.size()
    masks = np.unpackbits(buf.packed_next_action_masks[:n], axis=-1, count=N).astype(bool)
    return {
        "next_obs": buf.next_observations[:n],
        "dones": buf.dones[:n].astype(bool),
        "timeouts": buf.timeouts[:n].astype(bool),
        "masks": masks,
    }


# ---------------------------------------------------------------------------- masking primitives
def test_mask_q_values_never_nan_and_argmax_is_valid() -> None:
    q = th.tensor([[5.0, 1.0, -3.0], [0.0, 9.0, 2.0]])
    masks = th.tensor([[False, True, True], [True, False, False]])
    masked = mask_q_values(q, masks)
    assert masked.argmax(dim=1).tolist() == [1, 0]
    assert th.isfinite(masked).all()
    # A terminal row (done = 1) multiplies the max by 0: finite, so 0, never NaN.
    assert (0 * masked).eq(0).all()
    assert mask_q_values(q, None) is q


def test_check_action_masks_shapes_and_empty_rows() -> None:
    assert check_action_masks([1, 0, 1], 1, 3).tolist() == [[True, False, True]]
    with pytest.raises(ValueError, match=r"shape \(2, 3\), expected \(3, 2\)"):
        check_action_masks(np.ones((2, 3)), 3, 2)
    with pytest.raises(ValueError, match="env index 1"):
        check_action_masks([[True, False], [False, False]], 2, 2)
    with pytest.raises(ValueError, match="env index 7"):
        check_action_masks([[False, False]], 1, 2, env_indices=[7])


def test_dueling_network_combines_streams_with_all_action_mean() -> None:
    env = ToyMaskEnv()
    policy = DuelingDQNPolicy(env.observation_space, env.action_space, lambda _: 1e-3, net_arch=[8], stream_arch=[4])
    net = policy.q_net
    assert isinstance(net, DuelingQNetwork)
    obs = th.rand(6, 2 * N)
    latent = net.trunk(obs)
    value, adv = net.value_stream(latent), net.advantage_stream(latent)
    th.testing.assert_close(net(obs), value + adv - adv.mean(dim=1, keepdim=True))
    masks = th.as_tensor(np.stack([toy_mask(i % N) for i in range(6)]))
    actions = net._predict(obs, action_masks=masks)
    assert masks[th.arange(6), actions].all()


# ---------------------------------------------------------------------------- the TD target
@pytest.mark.parametrize("double_q", [False, True])
def test_target_never_bootstraps_from_invalid_action(double_q: bool) -> None:
    model = small_model(ToyMaskEnv(), double_q=double_q, gamma=0.5)
    # Hand-set Q-values: action 0 (invalid in every row) is by far the best under both nets.
    target_q = th.tensor([[100.0, 1.0, 2.0, 3.0, 4.0], [100.0, 8.0, 6.0, 7.0, 0.0], [100.0, 5.0, 5.0, 5.0, 5.0]])
    online_q = th.tensor([[100.0, 9.0, 0.0, 0.0, 0.0], [100.0, 0.0, 0.0, 0.0, 9.0], [100.0, 1.0, 1.0, 1.0, 1.0]])
    model.q_net_target.forward = lambda obs: target_q  # type: ignore[method-assign]
    model.q_net.forward = lambda obs: online_q  # type: ignore[method-assign]
    masks = th.tensor([[False, True, True, False, True], [False, True, False, False, True], [False] + [True] * 4])
    batch = MaskableReplayBufferSamples(
        observations=th.zeros(3, 2 * N),
        actions=th.zeros(3, 1, dtype=th.long),
        next_observations=th.zeros(3, 2 * N),
        dones=th.tensor([[0.0], [0.0], [1.0]]),
        rewards=th.tensor([[1.0], [2.0], [3.0]]),
        next_action_masks=masks,
    )
    target = model._target_q_values(batch, masks).flatten()
    # double-Q: online argmax over valid actions is 1 and 4, valued by the target net at 1.0 and 0.0;
    # plain: the target net's max over valid actions is 4.0 and 8.0. Row 3 is terminal.
    next_values = [1.0, 0.0] if double_q else [4.0, 8.0]
    expected = [1 + 0.5 * next_values[0], 2 + 0.5 * next_values[1], 3.0]
    assert target.tolist() == pytest.approx(expected)
    # Without masks the invalid action 0 would have won: the mask is what changed the result.
    unmasked = model._target_q_values(batch, None).flatten()
    assert unmasked[0].item() == pytest.approx(1 + 0.5 * 100.0)


# ---------------------------------------------------------------------------- acting
@pytest.mark.parametrize("n_envs", [1, 2])
def test_never_takes_an_invalid_action_while_learning(n_envs: int) -> None:
    envs = [ToyMaskEnv() for _ in range(n_envs)]
    vec_env = DummyVecEnv([(lambda e=e: RecordTerminalActionMask(e)) for e in envs])
    model = small_model(vec_env, exploration_final_eps=0.3)
    model.learn(400)
    assert sum(e.actions_taken for e in envs) >= 400
    assert sum(e.invalid_taken for e in envs) == 0


def test_unmasked_dqn_does_take_invalid_actions() -> None:
    """Control for the test above: the toy env does detect invalid actions."""
    env = ToyMaskEnv()
    DQN("MlpPolicy", env, learning_starts=30, policy_kwargs=TINY, seed=0).learn(200)
    assert env.invalid_taken > 0


def test_predict_honours_masks() -> None:
    model = small_model(ToyMaskEnv())
    obs = np.stack([ToyMaskEnv()._obs() for _ in range(3)])
    free, _ = model.predict(obs, deterministic=True)
    masks = np.ones((3, N), dtype=bool)
    masks[np.arange(3), free] = False  # forbid the unmasked greedy choice
    masked, _ = model.predict(obs, deterministic=True, action_masks=masks)
    assert masks[np.arange(3), masked].all()
    # Single observation, mask of shape (n_actions,): only action 2 allowed.
    only2 = np.zeros(N, dtype=bool)
    only2[2] = True
    action, _ = model.predict(obs[0], deterministic=True, action_masks=only2)
    assert action.shape == () and int(action) == 2
    # Epsilon-random actions sample only, and uniformly enough, among the valid ones.
    model.exploration_rate = 1.0
    two = np.zeros((200, N), dtype=bool)
    two[:, [1, 3]] = True
    sampled, _ = model.predict(np.repeat(obs[:1], 200, axis=0), deterministic=False, action_masks=two)
    assert set(sampled.tolist()) == {1, 3}
    assert 60 < (sampled == 1).sum() < 140


def test_sb3_contrib_maskable_evaluation_works() -> None:
    from sb3_contrib.common.maskable.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    model = small_model(ToyMaskEnv()).learn(100)
    env = ToyMaskEnv(max_steps=4)
    evaluate_policy(model, Monitor(env), n_eval_episodes=3, deterministic=True)
    assert env.actions_taken > 0 and env.invalid_taken == 0


def test_predict_rejects_bad_masks() -> None:
    model = small_model(ToyMaskEnv())
    obs = np.zeros((2, 2 * N), dtype=np.float32)
    with pytest.raises(ValueError, match="env index 1"):
        model.predict(obs, deterministic=True, action_masks=np.array([[True] * N, [False] * N]))
    model.exploration_rate = 1.0
    with pytest.raises(ValueError, match="env index 0"):
        model.predict(obs, deterministic=False, action_masks=np.array([[False] * N, [True] * N]))
    with pytest.raises(ValueError, match="expected"):
        model.predict(obs, deterministic=True, action_masks=np.ones((2, N + 1), dtype=bool))


def test_all_invalid_env_mask_raises_naming_the_env() -> None:
    class Stuck(ToyMaskEnv):
        def action_masks(self) -> np.ndarray:
            return np.zeros(N, dtype=bool) if self.steps >= 2 else toy_mask(self.state)

    vec_env = DummyVecEnv([ToyMaskEnv, Stuck])
    model = small_model(vec_env)
    with pytest.raises(ValueError, match="env index 1"):
        model.learn(50)


# ---------------------------------------------------------------------------- the stored next-state masks
def test_stored_next_masks_are_those_of_the_next_observation() -> None:
    env = ToyMaskEnv(max_steps=3)
    model = small_model(env)
    model.learn(300)
    rows = stored_rows(model)
    next_obs, dones, timeouts, masks = rows["next_obs"], rows["dones"], rows["timeouts"], rows["masks"]
    obs_masks = next_obs[..., N:].astype(bool)  # the mask carried in each stored next observation
    truncated, terminated = dones & timeouts, dones & ~timeouts
    assert truncated.sum() > 5 and terminated.sum() > 5 and (~dones).sum() > 5
    # Not done, and truncated (the terminal observation's mask, recorded before the auto-reset).
    keep = ~dones | truncated
    assert (masks[keep] == obs_masks[keep]).all()
    # Terminated: not bootstrapped; stored all-ones (never all-zero).
    assert masks[terminated].all()
    # The reset state's mask differs from the terminal ones, so the check above can fail.
    assert not (obs_masks[truncated] == toy_mask(0)).all(axis=-1).all()


def test_unrecorded_terminal_mask_warns_and_bootstraps_over_all_actions() -> None:
    env = ToyMaskEnv(max_steps=2)
    model = small_model(DummyVecEnv([lambda: env]))  # a user VecEnv without RecordTerminalActionMask
    with pytest.warns(UserWarning, match="RecordTerminalActionMask"):
        model.learn(60)
    rows = stored_rows(model)
    truncated = rows["dones"] & rows["timeouts"]
    assert truncated.any()
    assert rows["masks"][truncated].all()


def test_hook_can_supply_masks_without_env_masks() -> None:
    """A subclass's _get_action_masks sees raw observations (acting and TD target) and decides the mask."""

    class ObsMaskDQN(MaskableDQN):
        def _get_action_masks(self, observations: np.ndarray, env_action_masks: np.ndarray | None, explore: bool):
            assert env_action_masks is None
            self.hook_calls.append((explore, len(observations)))
            return observations[:, N:] > 0.5

    env = NoMaskToyEnv()
    model = ObsMaskDQN("MlpPolicy", env, learning_starts=30, policy_kwargs=TINY, seed=0, buffer_size=1000)
    model.hook_calls = []
    model.learn(200)
    assert env.invalid_taken == 0
    assert model.replay_buffer.packed_next_action_masks is None  # nothing from the env to store
    # acting: once per step for the current observation (+1 at reset); target: once per gradient step
    acting = [n for explore, n in model.hook_calls if explore]
    target = [n for explore, n in model.hook_calls if not explore]
    assert acting == [1] * 201
    assert len(target) == model._n_updates > 0 and set(target) == {model.batch_size}
    batch = model.replay_buffer.sample(16)
    np.testing.assert_array_equal(model._next_action_masks(batch).numpy(), batch.raw_next_observations[:, N:] > 0.5)


def test_hook_sees_raw_observations_under_vec_normalize() -> None:
    seen: list[np.ndarray] = []

    class RecordingDQN(MaskableDQN):
        def _get_action_masks(self, observations: np.ndarray, env_action_masks: np.ndarray | None, explore: bool):
            seen.append(observations.copy())
            return env_action_masks

    envs = [ToyMaskEnv(max_steps=2) for _ in range(2)]
    # clip_obs: VecNormalize clips the normalised terminal observation, and clipped values cannot be un-normalised
    vec_env = VecNormalize(DummyVecEnv([(lambda e=e: RecordTerminalActionMask(e)) for e in envs]), clip_obs=1e5)
    model = RecordingDQN("MlpPolicy", vec_env, learning_starts=20, policy_kwargs=TINY, seed=0, buffer_size=500)
    model.learn(80)
    raw = np.concatenate(seen)
    # one-hot and mask bits, not normalised (terminal observations are un-normalised: float round-off)
    assert (np.isclose(raw, 0.0, atol=1e-5) | np.isclose(raw, 1.0, atol=1e-5)).all()
    assert len(raw) > 81  # the current observations, plus the terminal observations of truncated episodes
    assert sum(e.invalid_taken for e in envs) == 0


# ---------------------------------------------------------------------------- like DQN without masks
def test_without_masks_it_is_exactly_dqn() -> None:
    kwargs = dict(learning_starts=50, policy_kwargs=TINY, seed=3, train_freq=2, target_update_interval=40)
    ours = MaskableDQN("MlpPolicy", "CartPole-v1", **kwargs).learn(300)
    theirs = DQN("MlpPolicy", "CartPole-v1", **kwargs).learn(300)
    assert ours.replay_buffer.packed_next_action_masks is None
    np.testing.assert_array_equal(ours.replay_buffer.actions[:300], theirs.replay_buffer.actions[:300])
    for a, b in zip(ours.policy.state_dict().values(), theirs.policy.state_dict().values()):
        th.testing.assert_close(a, b, rtol=0, atol=0)


# ---------------------------------------------------------------------------- bad input
def test_bad_input_errors() -> None:
    with pytest.raises(AssertionError, match=r"only supports .*Discrete"):  # SB3's own check, as for DQN
        MaskableDQN("MlpPolicy", "Pendulum-v1")
    with pytest.raises(ValueError, match="optimize_memory_usage"):
        MaskableDQN("MlpPolicy", ToyMaskEnv(), optimize_memory_usage=True)
    with pytest.raises(ValueError, match="n_steps"):
        MaskableDQN("MlpPolicy", ToyMaskEnv(), n_steps=3)
    from stable_baselines3.common.buffers import ReplayBuffer

    with pytest.raises(TypeError, match="MaskableReplayBuffer"):
        MaskableDQN("MlpPolicy", ToyMaskEnv(), replay_buffer_class=ReplayBuffer)
    with pytest.raises(ValueError, match="optimize_memory_usage"):
        MaskableReplayBuffer(10, ToyMaskEnv().observation_space, spaces.Discrete(N), optimize_memory_usage=True)


# ---------------------------------------------------------------------------- save/load, seeds, logging
def test_save_load_round_trip(tmp_path) -> None:
    model = small_model(ToyMaskEnv(), policy="DuelingMlpPolicy", double_q=True)
    model.learn(120)
    path = tmp_path / "mdqn.zip"
    model.save(path)
    loaded = MaskableDQN.load(path, env=ToyMaskEnv())
    assert isinstance(loaded.policy, DuelingDQNPolicy) and loaded.double_q
    assert loaded.replay_buffer.size() == 0  # the replay buffer (and its masks) is not saved
    obs = np.stack([np.concatenate([np.eye(N)[s], toy_mask(s)]).astype(np.float32) for s in range(N)])
    masks = np.stack([toy_mask(s) for s in range(N)])
    for m in (None, masks):
        np.testing.assert_array_equal(
            model.predict(obs, deterministic=True, action_masks=m)[0],
            loaded.predict(obs, deterministic=True, action_masks=m)[0],
        )
    loaded.learn(60)  # and it keeps training with masks
    assert loaded.replay_buffer.packed_next_action_masks is not None


def test_seed_reproduces_run() -> None:
    def run() -> MaskableDQN:
        return small_model(ToyMaskEnv(), policy="DuelingMlpPolicy", double_q=True, seed=7).learn(200)

    a, b = run(), run()
    np.testing.assert_array_equal(a.replay_buffer.actions[:200], b.replay_buffer.actions[:200])
    for x, y in zip(a.policy.state_dict().values(), b.policy.state_dict().values()):
        th.testing.assert_close(x, y, rtol=0, atol=0)


def test_logs_and_progress_bar(tmp_path) -> None:
    model = small_model(ToyMaskEnv())
    model.set_logger(configure(str(tmp_path), ["csv"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tqdm's experimental-feature warning
        model.learn(150, progress_bar=True, log_interval=1)
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    for key in ("train/loss", "rollout/exploration_rate", "rollout/valid_action_fraction", "rollout/ep_rew_mean"):
        assert key in header


def test_policy_class_and_aliases() -> None:
    assert MaskableDQN.policy_aliases["MlpPolicy"] is MaskableDQNPolicy
    assert MaskableDQN.policy_aliases["DuelingMlpPolicy"] is DuelingDQNPolicy
    assert TERMINAL_ACTION_MASK_KEY == "terminal_action_mask"


# ---------------------------------------------------------------------------- FaultAlarmRL
class ValidActionCheck(BaseCallback):
    """Counts FaultAlarmRL steps whose treated pair had no active alarm (an invalid action)."""

    def __init__(self) -> None:
        super().__init__()
        self.invalid = 0
        self.steps = 0

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            self.steps += 1
            self.invalid += info["treated_alarms"] == 0
        return True


@pytest.mark.parametrize("policy", ["MlpPolicy", "DuelingMlpPolicy"])
def test_trains_briefly_on_fault_alarm(policy: str) -> None:
    env = gym.make("FaultAlarmRL-v0")
    model = MaskableDQN(
        policy,
        env,
        learning_starts=64,
        buffer_size=1_000,
        batch_size=16,
        policy_kwargs=dict(net_arch=[32]),
        double_q=policy == "DuelingMlpPolicy",
        seed=0,
    )
    check = ValidActionCheck()
    model.learn(300, callback=check)
    assert check.steps == 300 and check.invalid == 0
    assert model.logger.name_to_value["train/n_updates"] > 0
    assert np.isfinite(model.logger.name_to_value["train/loss"])


# ---------------------------------------------------------------------------- image and Dict observations
class ImageMaskEnv(gym.Env):
    """36 x 36 grey image whose first pixel row says which of the 3 actions are valid; 8-step episodes."""

    observation_space = spaces.Box(0, 255, shape=(36, 36, 1), dtype=np.uint8)
    action_space = spaces.Discrete(3)

    def __init__(self, dict_obs: bool = False) -> None:
        self.dict_obs = dict_obs
        if dict_obs:
            self.observation_space = spaces.Dict(
                {"image": ImageMaskEnv.observation_space, "vec": spaces.Box(0, 1, shape=(3,), dtype=np.float32)}
            )
        self.invalid_taken = 0
        self._t = 0
        self._valid = np.ones(3, dtype=bool)

    def _obs(self) -> Any:
        image = np.zeros((36, 36, 1), dtype=np.uint8)
        image[0, :3, 0] = 255 * self._valid
        return {"image": image, "vec": self._valid.astype(np.float32)} if self.dict_obs else image

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._t = 0
        self._valid = np.array([True, False, True])
        return self._obs(), {}

    def step(self, action):
        self.invalid_taken += int(not self._valid[int(action)])
        self._t += 1
        self._valid = np.roll(self._valid, 1)
        return self._obs(), float(action == 0), False, self._t >= 8, {}

    def action_masks(self) -> np.ndarray:
        return self._valid.copy()


@pytest.mark.parametrize(("policy", "dict_obs"), [("CnnPolicy", False), ("MultiInputPolicy", True)])
def test_cnn_and_multi_input_policies_like_dqn(policy: str, dict_obs: bool) -> None:
    # Issue 12 defect 5: no CnnPolicy / MultiInputPolicy, so no drop-in DQN on image or Dict observations.
    env = ImageMaskEnv(dict_obs)
    model = MaskableDQN(policy, env, learning_starts=16, buffer_size=200, batch_size=8, seed=0)
    model.learn(48)
    assert env.invalid_taken == 0 and model._n_updates > 0
    assert model.replay_buffer.packed_next_action_masks is not None
    obs, _ = env.reset()
    action, _ = model.predict(obs, deterministic=True, action_masks=env.action_masks())
    assert env.action_masks()[int(action)]
