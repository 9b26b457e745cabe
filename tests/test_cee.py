"""CEEMask (seed 004): the redundant-action maze, pre-training, the per-state clustered masks, the VecEnv
wrapper under sb3-contrib's MaskablePPO, save/load, bad input."""

from __future__ import annotations

import io
import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import MaskablePPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import KVWriter, Logger

import sb3_causal  # noqa: F401  (registers the envs)
from sb3_causal.masks import CEEMask, MaskProvider, MaskProviderVecEnv
from sb3_causal_envs.maze import EFFECT_NAMES, RedundantActionMaze

# a small maze: every cell is reached quickly by random exploration, cells next to walls have merged classes
SMALL_LAYOUT = ("######", "#S...#", "#.#..#", "#...G#", "######")
MAZE_KWARGS = {"n_bits": 5, "layout": SMALL_LAYOUT, "max_steps": 30}


def _cells_obs(env: RedundantActionMaze) -> tuple[list[tuple[int, int]], np.ndarray]:
    cells = env.free_cells()
    return cells, np.stack([env.observation(c) for c in cells])


@pytest.fixture(scope="module")
def pretrained() -> tuple[CEEMask, RedundantActionMaze]:
    th.manual_seed(0)
    venv = make_vec_env("RedundantMaze-v0", n_envs=4, seed=0, env_kwargs={**MAZE_KWARGS, "random_start": True})
    mask = CEEMask(venv.observation_space, venv.action_space, seed=0)
    mask.pretrain(venv, 3000, seed=0)
    return mask, RedundantActionMaze(**MAZE_KWARGS)


# ---------------------------------------------------------------------- the maze
def test_maze_planted_classes() -> None:
    env = RedundantActionMaze(n_bits=6)
    assert env.action_space.n == 64
    counts = np.bincount(env.action_effect, minlength=len(EFFECT_NAMES))
    assert counts[0] == 32 and counts[1:5].sum() == 28 and list(counts[5:]) == [1, 1, 1, 1]
    open_cell = (3, 4)  # free on all four sides, walls two cells away north and south
    classes = env.equivalence_classes(open_cell)
    assert sorted(np.concatenate(classes)) == list(range(64))  # a partition of the actions
    for members in classes:  # every member of a class reaches the same cell, and no other action does
        targets = {env.move(open_cell, a) for a in members}
        assert len(targets) == 1
    # a different action seed permutes which index carries which effect, not the counts
    other = RedundantActionMaze(n_bits=6, action_seed=1)
    assert not np.array_equal(other.action_effect, env.action_effect)
    assert np.array_equal(np.sort(other.action_effect), np.sort(env.action_effect))


def test_maze_episode_and_reward() -> None:
    env = RedundantActionMaze(**MAZE_KWARGS)
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape and obs.sum() == 2
    east = int(np.flatnonzero(env.action_effect == EFFECT_NAMES.index("EE"))[0])
    south = int(np.flatnonzero(env.action_effect == EFFECT_NAMES.index("SS"))[0])
    _, r, term, _, _ = env.step(east)  # (1,1) -> (1,3)
    assert env.position == (1, 3) and r == 0 and not term
    _, r, term, _, _ = env.step(int(np.flatnonzero(env.action_effect == EFFECT_NAMES.index("E"))[0]))
    _, r, term, _, _ = env.step(south)  # (1,4) -> (3,4): the goal
    assert term and r == pytest.approx(1 - 0.9 * 3 / 30)
    with pytest.raises(ValueError, match="n_bits"):
        RedundantActionMaze(n_bits=3)


# ---------------------------------------------------------------------- pre-trained masks
def test_pretrained_mask_recovers_every_class_exactly(pretrained) -> None:
    mask, env = pretrained
    cells, obs = _cells_obs(env)
    clusters = mask.clusters(obs)
    masks = mask(obs, None)
    assert masks.any(axis=1).all()
    for k, cell in enumerate(cells):
        true = env.equivalence_classes(cell)
        found = sorted((np.flatnonzero(clusters[k] == c) for c in np.unique(clusters[k])), key=lambda m: int(m[0]))
        assert [list(m) for m in found] == [list(m) for m in true], f"cell {cell}"
        for members in true:  # each class keeps exactly one action; a unique-effect action is never masked
            assert masks[k, members].sum() == 1
    record = mask.pretrain_log[-1]
    assert record["idm_val_accuracy"] > 2 * record["chance_accuracy"] and record["idm_informative"]
    assert record["cluster_information_retained"] > 0.9 and not mask.collapse_detected


def test_masks_are_per_env_and_per_state(pretrained) -> None:
    mask, env = pretrained
    _, obs = _cells_obs(env)
    mask.clear_cache()
    batch = mask(obs, None)
    mask.clear_cache()
    one_by_one = np.concatenate([mask(o[None], None) for o in obs])
    np.testing.assert_array_equal(batch, one_by_one)  # no batch averaging
    uncached = CEEMask.from_config({**mask.get_config(), "cache_size": 0})
    uncached.load_state_dict(mask.state_dict())
    np.testing.assert_array_equal(uncached(obs, None), batch)  # the memo changes nothing
    assert len({row.tobytes() for row in batch}) > 1  # states with different classes get different masks


def test_env_mask_is_anded_and_the_cluster_keeps_a_valid_member(pretrained) -> None:
    mask, env = pretrained
    cells, obs = _cells_obs(env)
    own = mask(obs[:1], None)[0]
    kept = int(np.flatnonzero(own)[0])
    env_masks = np.ones((1, env.n_actions), dtype=bool)
    env_masks[0, kept] = False  # the env forbids the representative of its class
    masks = mask(obs[:1], env_masks)[0]
    assert not masks[kept]
    members = next(m for m in env.equivalence_classes(cells[0]) if kept in m)
    if len(members) > 1:  # another member of that class stands in for it
        assert masks[members].sum() == 1
    with pytest.raises(ValueError, match="all-zero action mask"):
        mask(obs[:1], np.zeros((1, env.n_actions), dtype=bool))


def test_cluster_rule_on_given_n_values(monkeypatch) -> None:
    """The clustering and keep rule on hand-set N values: no cluster is ever masked entirely."""
    n_actions = 5
    mask = CEEMask(spaces.Box(0, 1, (2,)), spaces.Discrete(n_actions), tau=0.8, seed=0)
    mask.pretrained_steps += 1
    # actions 0, 1, 2 one cluster with equal effects (no share reaches tau); 3, 4 one cluster, 4 dominant
    n = np.full((n_actions, n_actions), -10.0)
    n[np.ix_([0, 1, 2], [0, 1, 2])] = 1.0
    n[np.ix_([3, 4], [3, 4])] = 1.0
    n[4, 4] = 3.0
    n[3, 4] = 2.8  # divergence between 3 and 4 below epsilon
    monkeypatch.setattr(mask, "n_values", lambda obs: np.repeat(n[None], len(obs), axis=0))
    obs = np.zeros((2, 2), dtype=np.float32)
    assert mask.clusters(obs)[0].tolist() == [0, 0, 0, 3, 3]
    masks = mask(obs, None)
    assert masks[0].tolist() == [True, False, False, False, True]  # tied cluster: lowest index; else the dominant
    env_masks = np.array([[False, True, True, True, True], [True] * 5])
    assert mask(obs, env_masks)[0].tolist() == [False, True, False, False, True]
    npm = CEEMask(spaces.Box(0, 1, (2,)), spaces.Discrete(n_actions), keep="random", seed=0)
    npm.pretrained_steps += 1
    monkeypatch.setattr(npm, "n_values", lambda obs: np.repeat(n[None], len(obs), axis=0))
    draws = np.stack([npm(obs, None)[0] for _ in range(30)])
    assert (draws[:, :3].sum(axis=1) == 1).all() and (draws[:, 3:].sum(axis=1) == 1).all()
    assert draws[:, :3].any(axis=0).all()  # every member of the 3-cluster gets drawn


# ---------------------------------------------------------------------- acting under the mask
class _CopyRollout(BaseCallback):
    def __init__(self) -> None:
        super().__init__()
        self.copies: list[tuple[np.ndarray, np.ndarray]] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        buf = self.model.rollout_buffer
        self.copies.append((buf.action_masks.copy(), buf.actions.copy()))


def test_maskable_ppo_stores_the_mask_it_acted_with(pretrained) -> None:
    mask, _ = pretrained
    venv = make_vec_env("RedundantMaze-v0", n_envs=2, seed=1, env_kwargs=MAZE_KWARGS)
    wrapped = MaskProviderVecEnv(venv, mask, record=True)
    n_steps = 16
    model = MaskablePPO("MlpPolicy", wrapped, n_steps=n_steps, batch_size=16, n_epochs=1, seed=0)
    copy = _CopyRollout()
    model.learn(2 * n_steps * 2, callback=copy)
    assert len(copy.copies) == 2
    served = np.stack(wrapped.served_masks)
    for r, (stored, actions) in enumerate(copy.copies):
        acted = served[r * n_steps : (r + 1) * n_steps]
        np.testing.assert_array_equal(stored.reshape(acted.shape).astype(bool), acted)
        taken = actions.reshape(n_steps, 2).astype(int)
        assert np.take_along_axis(acted, taken[..., None], axis=2).all()  # every action was allowed
    assert acted.sum(axis=2).max() < mask.n_actions  # the mask did reduce the action set


def test_wrapper_rejects_a_non_provider() -> None:
    venv = make_vec_env("RedundantMaze-v0", n_envs=1, env_kwargs=MAZE_KWARGS)
    with pytest.raises(TypeError, match="MaskProvider"):
        MaskProviderVecEnv(venv, object())  # type: ignore[arg-type]


# ---------------------------------------------------------------------- persistence, logging, seeding
def test_save_load_round_trip(pretrained, tmp_path) -> None:
    mask, env = pretrained
    _, obs = _cells_obs(env)
    path = tmp_path / "cee.pt"
    mask.save(str(path))
    loaded = CEEMask.load(str(path))
    np.testing.assert_allclose(loaded.n_values(obs), mask.n_values(obs))
    np.testing.assert_array_equal(loaded(obs, None), mask(obs, None))
    # the other route: state_dict with torch.save plus the config as JSON
    config = json.loads(json.dumps(mask.get_config()))
    buffer = io.BytesIO()
    th.save(mask.state_dict(), buffer)
    buffer.seek(0)
    twin = CEEMask.from_config(config)
    with pytest.raises(RuntimeError, match="pretrain"):
        twin(obs, None)  # rebuilt, not yet loaded: untrained
    twin.load_state_dict(th.load(buffer, weights_only=True))
    assert twin.is_pretrained and twin.get_config() == mask.get_config()
    np.testing.assert_array_equal(twin(obs, None), mask(obs, None))


class _Collect(KVWriter):
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def write(self, key_values, key_excluded, step=0) -> None:
        self.rows.append(dict(key_values))


def test_pretrain_resumes_logs_and_reproduces() -> None:
    env = RedundantActionMaze(**MAZE_KWARGS)
    kwargs = {"net_arch": (16,), "batch_size": 16, "max_epochs": 3, "guard": "warn", "seed": 3}

    def run(steps: list[int]) -> CEEMask:
        mask = CEEMask(env.observation_space, env.action_space, **kwargs)
        for n in steps:
            mask.pretrain(RedundantActionMaze(**MAZE_KWARGS), n, seed=1)
        return mask

    writer = _Collect()
    mask = CEEMask(env.observation_space, env.action_space, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a 200-step fit may well be flagged as a collapse: not tested here
        mask.pretrain(env, 200, logger=Logger(None, [writer]), progress_bar=True)
        assert int(mask.pretrained_steps) == 200 and len(mask.pretrain_log) == 1
        keys = {"idm_accuracy", "idm_val_accuracy", "idm_loss", "n_loss", "cluster_information_retained"}
        assert {f"cee/{k}" for k in keys | {"collapse_detected"}} <= set(writer.rows[-1])
        assert 1 <= mask.pretrain_log[-1]["idm_epochs"] <= 3
        mask.pretrain(env, 100)  # resumes: the buffer holds all 300 transitions
        assert int(mask.pretrained_steps) == 300 and mask.pretrain_log[-1]["transitions"] == 300
        # a full buffer is fitted before it is overwritten: 250 steps in a 100-transition buffer, three fits
        small = CEEMask(env.observation_space, env.action_space, **{**kwargs, "buffer_size": 100})
        small.pretrain(env, 250)
        assert [r["steps"] for r in small.pretrain_log] == [100, 200, 250]
        a, b = run([150]), run([150])
    _, obs = _cells_obs(env)
    np.testing.assert_array_equal(a.n_values(obs), b.n_values(obs))


def test_balanced_collection_tries_every_action_of_a_state_before_repeating() -> None:
    env = RedundantActionMaze(**MAZE_KWARGS)
    mask = CEEMask(env.observation_space, env.action_space, net_arch=(8,), max_epochs=1, guard="warn", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mask.pretrain(env, 400, seed=0)
    n = mask._buffer_len()
    states, actions = mask._buf_obs[:n], mask._buf_action[:n]
    _, state_id = np.unique(states, axis=0, return_inverse=True)
    for k in np.unique(state_id):
        counts = np.bincount(actions[state_id.ravel() == k], minlength=env.n_actions)
        assert counts.max() - counts.min() <= 1  # a deck per state: no action repeats before all were tried
    # the stored collecting probabilities are the uniform marginal
    np.testing.assert_allclose(np.exp(mask._buf_log_pi[:n]), 1.0 / env.n_actions, rtol=1e-5)


class _NoEffectEnv(gym.Env):
    """Four actions, none of which changes anything: no action can be told from another."""

    observation_space = spaces.Box(0.0, 1.0, (3,), dtype=np.float32)
    action_space = spaces.Discrete(4)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = self.np_random.random(3).astype(np.float32)
        return self.state, {}

    def step(self, action):
        return self.state, 0.0, False, False, {}


def test_collapse_guard_warns_and_allows_every_action() -> None:
    env = _NoEffectEnv()
    mask = CEEMask(env.observation_space, env.action_space, net_arch=(16,), batch_size=32, max_epochs=20, seed=0)
    with pytest.warns(UserWarning, match="not supported by the data"):
        mask.pretrain(env, 600, seed=0)
    record = mask.pretrain_log[-1]
    assert record["collapse_detected"] and not record["idm_informative"]
    obs = np.stack([env.reset(seed=i)[0] for i in range(5)])
    assert mask.clusters(obs).max() == 0  # the clusters did collapse into one ...
    assert mask(obs, None).all()  # ... but the mask serves every action instead of one
    env_masks = np.array([[True, False, True, True]] * 5)
    np.testing.assert_array_equal(mask(obs, env_masks), env_masks)
    buffer = io.BytesIO()
    mask.save(buffer)
    buffer.seek(0)
    assert CEEMask.load(buffer)(obs, None).all()  # the verdict is saved with the weights
    warned = CEEMask(env.observation_space, env.action_space, net_arch=(16,), max_epochs=5, guard="warn", seed=0)
    with pytest.warns(UserWarning, match="used anyway"):
        warned.pretrain(env, 300, seed=0)
    assert warned(obs, None).sum(axis=1).max() == 1  # guard="warn": the collapsed clusters are used
    strict = CEEMask(env.observation_space, env.action_space, net_arch=(16,), max_epochs=5, guard="raise", seed=0)
    with pytest.raises(RuntimeError, match="not supported by the data"):
        strict.pretrain(env, 300, seed=0)


def test_collapse_guard_catches_clusters_that_merge_distinguishable_actions(pretrained, monkeypatch) -> None:
    mask, _ = pretrained
    twin = CEEMask.from_config(mask.get_config())
    twin.load_state_dict(mask.state_dict())
    twin._buf_obs, twin._buf_next, twin._buf_action = mask._buf_obs, mask._buf_next, mask._buf_action
    twin._buf_log_pi, twin._buf_valid = mask._buf_log_pi, mask._buf_valid
    n = mask._buffer_len()
    held = np.flatnonzero(np.arange(n) % 10 == 9)
    log_p = twin.idm_log_probs(*(x[held] for x in (mask._buf_obs, mask._buf_next)))
    good = twin._collapse_check(held, log_p)
    assert good["idm_informative"] and good["cluster_information_retained"] > 0.9 and not good["collapse_detected"]
    # N values with no differences between actions: one cluster per state, although the IDM tells them apart
    monkeypatch.setattr(twin, "_n_values_flat", lambda flat: np.zeros((len(flat), twin.n_actions, twin.n_actions)))
    bad = twin._collapse_check(held, log_p)
    assert bad["clusters_per_state"] == 1 and bad["cluster_information_retained"] < 0.05 and bad["collapse_detected"]


# ---------------------------------------------------------------------- bad input
def test_bad_input_is_rejected_early() -> None:
    obs_space = spaces.Box(0, 1, (4,))
    with pytest.raises(TypeError, match="Discrete"):
        CEEMask(obs_space, spaces.Box(-1, 1, (2,)))
    with pytest.raises(TypeError, match="Box observation"):
        CEEMask(spaces.Dict({"x": obs_space}), spaces.Discrete(3))
    for tau in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="tau"):
            CEEMask(obs_space, spaces.Discrete(3), tau=tau)
    CEEMask(obs_space, spaces.Discrete(3), tau=1.0)  # the closed end of (0, 1]
    with pytest.raises(ValueError, match="keep"):
        CEEMask(obs_space, spaces.Discrete(3), keep="last")
    for bad in ({"guard": "ignore"}, {"validation_fraction": 0.0}, {"min_retained": 1.5}, {"net_arch": ()}):
        with pytest.raises(ValueError, match=next(iter(bad)).split("_")[0]):
            CEEMask(obs_space, spaces.Discrete(3), **bad)
    mask = CEEMask(obs_space, spaces.Discrete(3))
    assert isinstance(mask, MaskProvider) and CEEMask.uses_graph is False
    with pytest.raises(RuntimeError, match="pretrain"):
        mask(np.zeros((1, 4)), None)
    mask.pretrained_steps += 1
    with pytest.raises(ValueError, match="expected"):
        mask(np.zeros((1, 5)), None)  # observations of another env
    maze = RedundantActionMaze(**MAZE_KWARGS)
    with pytest.raises(ValueError, match="observations have shape"):
        CEEMask(obs_space, maze.action_space).pretrain(maze, 10)
    with pytest.raises(TypeError, match="graph"):
        mask.update_graph(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- MiniGrid
def test_unlock_pickup_fixed_layout_and_mask() -> None:
    env = gym.make("UnlockPickupFixed-v0")
    first, _ = env.reset(seed=1)
    second, _ = env.reset(seed=2)
    np.testing.assert_array_equal(first, second)  # one layout, whatever the seed
    assert env.action_space.n == 7 and first.shape == (198,)
    mask = CEEMask(env.observation_space, env.action_space, net_arch=(32,), batch_size=32, max_epochs=3, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 300 steps: possibly flagged as a collapse (tested elsewhere)
        mask.pretrain(env, 300)
    masks = mask(first[None], None)
    assert masks.shape == (1, 7) and masks.any()


def test_causal_maskable_ppo_acts_under_and_saves_a_cee_mask(pretrained, tmp_path) -> None:
    from sb3_causal import CausalMaskablePPO

    mask, env = pretrained
    venv = make_vec_env("RedundantMaze-v0", n_envs=2, seed=1, env_kwargs=MAZE_KWARGS)
    model = CausalMaskablePPO("MlpPolicy", venv, mask_provider=mask, n_steps=16, batch_size=16, n_epochs=1, seed=0)
    assert model.graph_callback is None  # uses_graph = False: no layout, no online learner
    model.learn(64)
    stored = model.rollout_buffer.action_masks.reshape(-1, mask.n_actions).astype(bool)
    assert stored.any(axis=1).all() and stored.sum(axis=1).max() < mask.n_actions  # acted under the CEE mask
    model.save(tmp_path / "model.zip")
    loaded = CausalMaskablePPO.load(tmp_path / "model.zip", env=venv)
    assert isinstance(loaded.mask_provider, CEEMask) and loaded.mask_provider is not mask
    _, obs = _cells_obs(env)
    np.testing.assert_array_equal(loaded.mask_provider(obs, None), mask(obs, None))


def test_unlock_pickup_known_solution_check() -> None:
    from sb3_causal_envs.minigrid_cee import SOLUTION_LAYOUT_0, solution_masked_steps

    def allow_all(obs: np.ndarray, env_masks: np.ndarray | None) -> np.ndarray:
        return np.ones((len(obs), 7), dtype=bool)

    def no_toggle(obs: np.ndarray, env_masks: np.ndarray | None) -> np.ndarray:
        return np.arange(7)[None, :] != 5

    assert solution_masked_steps(allow_all) == []
    assert solution_masked_steps(no_toggle) == [(SOLUTION_LAYOUT_0.index(5), 5)]  # the door stays locked
    with pytest.raises(ValueError, match="do not solve"):
        solution_masked_steps(allow_all, actions=SOLUTION_LAYOUT_0[:-1])


# ---------------------------------------------------------------------- rare effects
def test_balance_pairs_gives_every_distinct_pair_the_same_weight() -> None:
    space = spaces.Box(0.0, 1.0, (2,), np.float32)
    first = np.array([[0, 0], [0, 0], [0, 0], [1, 1]], dtype=np.float32)
    second = np.array([[0], [0], [1], [0]], dtype=np.float32)
    np.testing.assert_allclose(CEEMask(space, spaces.Discrete(3))._pair_weights(first, second), [0.5, 0.5, 1, 1])
    off = CEEMask(space, spaces.Discrete(3), balance_pairs=False)
    np.testing.assert_allclose(off._pair_weights(first, second), [1, 1, 1, 1])


def _rare_effect_mask(split_observed: bool) -> CEEMask:
    """States 0-3 (one-hot); in state 0 action 2 moves to state 3 (rare), everything else stays put."""
    eye = np.eye(4, dtype=np.float32)
    mask = CEEMask(
        spaces.Box(0.0, 1.0, (4,), np.float32),
        spaces.Discrete(3),
        net_arch=(16,),
        batch_size=64,
        max_epochs=20,
        split_observed=split_observed,
        min_retained=0.0,
        seed=0,
    )
    rng = np.random.default_rng(0)
    states = rng.choice(4, size=600, p=[0.05, 0.45, 0.45, 0.05])
    actions = rng.integers(0, 3, size=600)
    nxt = np.where((states == 0) & (actions == 2), 3, states)
    mask._store(eye[states], actions, eye[nxt], np.full((600, 3), 1 / 3), np.ones((600, 3), dtype=bool))
    mask.pretrained_steps += 600
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny IDM may be flagged uninformative: the guard is tested elsewhere
        mask.fit()
    return mask


def test_split_observed_keeps_an_action_the_data_saw_act(tmp_path) -> None:
    mask = _rare_effect_mask(split_observed=True)
    eye = np.eye(4, dtype=np.float32)
    assert set(mask._apart) == {eye[0].tobytes()}  # the only state where tried actions led to different states
    apart = mask._apart[eye[0].tobytes()]
    assert apart[2, 0] and apart[2, 1] and not apart[0, 1]
    cluster = mask.clusters(eye[:1])[0]
    assert cluster[2] != cluster[0] and cluster[2] != cluster[1]
    assert mask(eye[:1], None)[0, 2]  # the action with the rare effect is never masked
    mask.save(tmp_path / "m.pt")
    loaded = CEEMask.load(tmp_path / "m.pt")  # the table is saved with the weights
    np.testing.assert_array_equal(loaded.clusters(eye), mask.clusters(eye))
    np.testing.assert_array_equal(loaded(eye, None), mask(eye, None))
    assert not _rare_effect_mask(split_observed=False)._apart
