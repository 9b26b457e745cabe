"""CausalDQN's lifted rows as the randomised part of the design (``lift_actions``)."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

from sb3_causal import CausalDQN, CausalGraph
from sb3_causal.algos.maskable_dqn import RecordTerminalActionMask
from sb3_causal.common.behaviour import behaviour_probabilities
from sb3_causal.masks import CausalMask
from sb3_causal.variables import CausalVariables
from tests.toy_envs import PoissonCascadeEnv

CHAIN = CausalGraph(["a", "b", "c"], [("a", "b"), ("b", "c")])
ONE_UNIT = CausalVariables.factored(3, names=["a", "b", "c"], action_map=[0, 1, 2, -1])
# no warm-up, no epsilon: without lifts every action is the greedy one
GREEDY_DQN = {
    "learning_starts": 0,
    "exploration_initial_eps": 0.0,
    "exploration_final_eps": 0.0,
    "buffer_size": 1000,
    "graph_update_freq": 100,
}


def test_the_mask_reports_the_rows_it_lifted() -> None:
    obs = np.tile([[0.0, 2.0, 5.0]], (500, 1))
    env = np.ones((500, 4), dtype=bool)
    mask = CausalMask(ONE_UNIT, CHAIN, k=1, eta=0.3, seed=1)
    assert mask.last_lifted is None
    masks = mask(obs, env)
    np.testing.assert_array_equal(mask.last_lifted, masks.sum(axis=1) == 4)  # a lifted row: the env mask
    assert 0.2 < mask.last_lifted.mean() < 0.4
    before = mask.last_lifted
    mask(obs[:10], env[:10], explore=False)  # predict and DQN targets do not lift and leave it alone
    assert mask.last_lifted is before
    single = CausalMask(ONE_UNIT, CHAIN, k=1, eta=1.0, seed=1)
    single(obs[:1], env[:1])  # the one-observation path
    np.testing.assert_array_equal(single.last_lifted, [True])
    CausalMask(ONE_UNIT, CHAIN, k=1, eta=0.0, seed=1)(obs[:1], env[:1])


def _actions_at_one_state(lift_actions: str, eta: float, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """``n`` actions CausalDQN takes at the same observation (its masks recomputed, and lifts redrawn, each
    time), and the env's mask there."""
    model = CausalDQN("MlpPolicy", PoissonCascadeEnv(), k=1, eta=eta, seed=0, lift_actions=lift_actions, **GREEDY_DQN)
    model._setup_learn(100)
    model._setup_causal()
    obs = model._last_obs
    actions = []
    for _ in range(n):
        model._last_obs = obs.copy()  # a new object: the acting masks (and the lift) are drawn again
        actions.append(int(model._sample_action(0)[0][0]))
    return np.array(actions), model._current_masks()[0][0]


def test_random_lifts_draw_uniformly_among_the_valid_actions() -> None:
    greedy, valid = _actions_at_one_state("greedy", eta=1.0)
    assert valid.sum() >= 3
    assert np.unique(greedy).size == 1  # no epsilon: the lifted row acts greedily (the paper's lift)
    random, _ = _actions_at_one_state("random", eta=1.0)
    counts = np.bincount(random, minlength=valid.size)
    np.testing.assert_array_equal(counts > 0, valid)  # every valid action is drawn, no other ...
    assert counts[valid].min() > random.size / valid.sum() / 2  # ... about equally often
    never, _ = _actions_at_one_state("random", eta=0.0)
    assert np.unique(never).size == 1  # no lift, no random action


def test_random_lifts_reach_the_propensities() -> None:
    """With propensity weighting, a lifted row's recorded probabilities are uniform over its acting mask."""
    env = make_vec_env(PoissonCascadeEnv, n_envs=2, seed=0, wrapper_class=RecordTerminalActionMask)
    model = CausalDQN("MlpPolicy", env, k=1, eta=0.5, seed=0, lift_actions="random", **GREEDY_DQN)
    records: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    class Probe(BaseCallback):
        def _on_step(self) -> bool:
            lifted = model.random_action_rows()
            records.append((behaviour_probabilities(model, self.locals), model._action_masks.copy(), lifted.copy()))
            return True

    model.learn(100, callback=Probe())
    probs = np.stack([r[0] for r in records])
    masks = np.stack([r[1] for r in records])
    lifted = np.stack([r[2] for r in records])
    assert 0.3 < lifted.mean() < 0.7
    uniform = masks / masks.sum(axis=2, keepdims=True)
    np.testing.assert_allclose(probs[lifted], uniform[lifted])
    assert (probs[~lifted].max(axis=1) == 1.0).all()  # no epsilon: the greedy action has it all


def test_greedy_lifts_report_no_random_rows() -> None:
    model = CausalDQN("MlpPolicy", PoissonCascadeEnv(), eta=1.0, seed=0, lift_actions="greedy", **GREEDY_DQN)
    model.learn(10)
    assert model.mask_provider.last_lifted.all()  # lifted, yet acting greedily: nothing to report as random
    assert model.random_action_rows() is None


def test_lift_actions_is_checked_and_saved(tmp_path) -> None:
    with pytest.raises(ValueError, match="lift_actions"):
        CausalDQN("MlpPolicy", PoissonCascadeEnv(), lift_actions="uniform")
    model = CausalDQN("MlpPolicy", PoissonCascadeEnv(), seed=0, lift_actions="random", **GREEDY_DQN)
    assert CausalDQN("MlpPolicy", PoissonCascadeEnv()).lift_actions == "greedy"  # the default: the paper's lift
    model.learn(20)
    model.save(tmp_path / "m.zip")
    assert CausalDQN.load(tmp_path / "m.zip", env=PoissonCascadeEnv()).lift_actions == "random"
