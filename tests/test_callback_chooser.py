"""CausalGraphCallback(chooser=...): an off-policy agent's random exploratory actions go through an intervention
chooser; off by default, seeded, saved models unchanged, bad input refused."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from sb3_contrib import QRDQN
from stable_baselines3 import DQN, PPO, SAC
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback

import sb3_causal  # noqa: F401  (registers the envs)
from sb3_causal.algos import MaskableDQN
from sb3_causal.callbacks import CausalGraphCallback, ChooserActionSpace
from sb3_causal.discovery.choosers import LeastEvidenceChooser, UniformChooser, chosen_actions
from sb3_causal.variables import CausalVariables
from tests.toy_envs import PoissonCascadeEnv

N = 8  # variables of the factored env: actions 0..7 set a variable, action 8 does nothing


def factored_env() -> gym.Env:
    return gym.make("FactoredSCM-v0", n_variables=N, family="gaussian0", intervention="zero", model_seed=1)


class ActionRecorder(BaseCallback):
    """Keeps the actions of every step, and the action space's type at each step."""

    def __init__(self) -> None:
        super().__init__()
        self.actions: list[int] = []
        self.space_types: set[type] = set()

    def _on_step(self) -> bool:
        self.actions.extend(int(a) for a in np.asarray(self.locals["actions"]).reshape(-1))
        self.space_types.add(type(self.model.action_space))
        return True


def run_dqn(
    graph_cb: CausalGraphCallback | None, steps: int = 1200, seed: int = 0, algo: type = DQN, **kwargs: Any
) -> tuple[Any, ActionRecorder]:
    recorder = ActionRecorder()
    options = {"learning_starts": 200, "train_freq": 4, "exploration_fraction": 0.5, "seed": seed} | kwargs
    model = algo("MlpPolicy", factored_env(), **options)
    model.learn(steps, callback=[recorder] if graph_cb is None else [graph_cb, recorder])
    return model, recorder


def test_default_keeps_the_algorithms_actions() -> None:
    _, plain = run_dqn(None, steps=800)
    _, default = run_dqn(CausalGraphCallback(update_freq=200), steps=800)
    _, none = run_dqn(CausalGraphCallback(update_freq=200, chooser=None), steps=800)
    _, chosen = run_dqn(CausalGraphCallback(update_freq=200, chooser=LeastEvidenceChooser(N)), steps=800)
    assert plain.actions == default.actions == none.actions
    assert plain.space_types == {spaces.Discrete}
    assert chosen.actions != plain.actions  # the comparison can tell runs apart
    assert chosen.space_types == {ChooserActionSpace}


def treatment_spread(graph_cb: CausalGraphCallback) -> tuple[int, int]:
    n_treated = graph_cb.learner.n_treated
    return int(n_treated.min()), int(n_treated.max())


class EvidenceRecorder(ActionRecorder):
    """Also keeps, per step, the chooser's evidence when the action was drawn (runs before the graph callback,
    whose update may follow the step)."""

    def __init__(self, chooser: LeastEvidenceChooser) -> None:
        super().__init__()
        self.chooser = chooser
        self.evidence: list[np.ndarray] = []

    def _on_step(self) -> bool:
        self.evidence.append(self.chooser.evidence.copy())
        return super()._on_step()

    def allowed(self, valid: np.ndarray | None = None) -> np.ndarray:
        """``(steps, n_variables)``: the variables within the slack of the least evidence among the valid ones."""
        evidence = np.array(self.evidence)
        candidates = np.where(valid, evidence, np.inf) if valid is not None else evidence
        return evidence <= (1 + self.chooser.slack) * candidates.min(axis=1, keepdims=True) + 1


@pytest.mark.parametrize("algo", [DQN, QRDQN, MaskableDQN])
def test_exploratory_draws_go_to_the_least_evidence(algo: type) -> None:
    chooser = LeastEvidenceChooser(N)
    graph_cb = CausalGraphCallback(update_freq=100, chooser=chooser)
    recorder = EvidenceRecorder(chooser)
    model = algo("MlpPolicy", factored_env(), learning_starts=1000, seed=0)
    model.learn(1000, callback=[recorder, graph_cb])  # a warm-up: every action is a random one
    actions, allowed = np.array(recorder.actions), recorder.allowed()
    treated = actions < N
    assert 0.02 < (~treated).mean() < 0.5  # the no-op (the control rows) stays in the draw
    assert allowed[np.flatnonzero(treated), actions[treated]].all()
    assert (~allowed[200:]).sum(axis=1).mean() >= 2  # the chooser did exclude variables
    assert len(set(actions[:100])) == N + 1  # before the first update every action is allowed


def test_exploration_goes_to_the_least_treated_variables_under_a_greedy_agent() -> None:
    # epsilon 0.3 after a short warm-up: the greedy agent concentrates, the exploration fills the gaps
    options = {"learning_starts": 100, "exploration_fraction": 0.05, "exploration_final_eps": 0.3}
    least_treated = {}
    for chooser in (None, LeastEvidenceChooser(N)):
        for seed in (0, 1):
            graph_cb = CausalGraphCallback(update_freq=250, chooser=chooser)
            run_dqn(graph_cb, steps=2000, seed=seed, **options)
            least_treated[chooser is None, seed] = treatment_spread(graph_cb)[0]
    # (measured: 101 / 69 uniform, 150 / 147 least evidence)
    for seed in (0, 1):
        assert least_treated[False, seed] > least_treated[True, seed]
    assert sum(least_treated[False, s] for s in (0, 1)) > 1.3 * sum(least_treated[True, s] for s in (0, 1))


class CountingChooser(UniformChooser):
    def __init__(self) -> None:
        self.n_updates = 0

    def update(self, learner: Any) -> None:
        self.n_updates += 1


def test_the_chooser_is_updated_after_each_graph_update() -> None:
    chooser = CountingChooser()
    graph_cb = CausalGraphCallback(update_freq=300, chooser=chooser)
    run_dqn(graph_cb, steps=1200)
    assert graph_cb.learner.n_updates == 4
    assert chooser.n_updates == 4


def test_same_seed_same_actions() -> None:
    runs = [
        run_dqn(CausalGraphCallback(update_freq=200, chooser=LeastEvidenceChooser(N)), seed=s)[1] for s in (3, 3, 4)
    ]
    assert runs[0].actions == runs[1].actions
    assert runs[0].actions != runs[2].actions


def test_models_saved_during_and_after_training_hold_the_plain_space(tmp_path) -> None:
    checkpoints = CheckpointCallback(save_freq=500, save_path=str(tmp_path), name_prefix="dqn")
    graph_cb = CausalGraphCallback(update_freq=200, chooser=LeastEvidenceChooser(N))
    model = DQN("MlpPolicy", factored_env(), learning_starts=200, seed=0)
    space = model.action_space
    model.learn(1200, callback=[graph_cb, checkpoints])
    assert model.action_space is space and type(space) is spaces.Discrete  # restored at training end
    model.save(tmp_path / "final")
    saved = sorted(tmp_path.glob("dqn_*_steps.zip"))
    assert len(saved) == 2
    for path in [tmp_path / "final.zip", *saved]:
        loaded = DQN.load(path, env=factored_env())
        assert type(loaded.action_space) is spaces.Discrete and loaded.action_space.n == N + 1
        loaded.learn(100)  # loads and trains like any saved DQN
    # a pickled (deep-copied) ChooserActionSpace is the plain space, with the generator's state
    chosen = ChooserActionSpace(spaces.Discrete(N + 1, seed=5), LeastEvidenceChooser(N), CausalVariables.factored(N))
    for clone in (copy.deepcopy(chosen), pickle.loads(pickle.dumps(chosen))):
        assert type(clone) is spaces.Discrete and clone == chosen.original
        assert clone.np_random.bit_generator.state == chosen.np_random.bit_generator.state


def test_draws_respect_the_env_action_masks() -> None:
    env = PoissonCascadeEnv()
    layout = env.causal_variables
    chooser = LeastEvidenceChooser(layout.n_variables, slack=0.0)
    chooser.evidence = np.array([5.0, 1.0, 1.0, 9.0])  # variables 1 and 2 have the least evidence
    space = ChooserActionSpace(spaces.Discrete(5, seed=0), chooser, layout)
    space.set_valid(np.array([[1, 1, 0, 1, 1], [1, 0, 0, 0, 1], [0, 0, 0, 0, 1]], dtype=bool))
    draws = np.array([[space.sample() for _ in range(3)] for _ in range(200)])  # SB3 draws env 0, 1, 2 in turn
    space.set_valid(None)
    assert set(draws[:, 0]) == {1, 4}  # valid: 0, 1, 3; least evidence among them: 1; and the no-op 4
    assert set(draws[:, 1]) == {0, 4}  # only variable 0 is valid
    assert set(draws[:, 2]) == {4}  # nothing to treat
    assert set(space.sample() for _ in range(300)) == {1, 2, 4}  # no env masks: every action valid
    assert set(space.sample(mask=np.array([0, 0, 0, 1, 0], dtype=np.int8)) for _ in range(20)) == {3}
    masks = np.array([[1, 1, 1, 1, 0], [0, 0, 1, 1, 1]], dtype=bool)
    picks = np.array([space.sample_valid_actions(masks) for _ in range(200)])  # MaskableDQN's exploratory draw
    assert set(picks[:, 0]) == {1, 2} and set(picks[:, 1]) == {2, 4}


def test_maskable_dqn_explores_among_the_chosen_valid_actions() -> None:
    chooser = LeastEvidenceChooser(4)
    graph_cb = CausalGraphCallback(update_freq=100, chooser=chooser)

    class MaskRecorder(EvidenceRecorder):
        def _on_step(self) -> bool:
            self.masks.append(self.model._action_masks[0].copy())  # the masks this step's action was drawn with
            return super()._on_step()

    recorder = MaskRecorder(chooser)
    recorder.masks = []
    model = MaskableDQN("MlpPolicy", PoissonCascadeEnv(), learning_starts=600, seed=0)
    model.learn(600, callback=[recorder, graph_cb])  # a warm-up: every action is a random one
    actions, masks = np.array(recorder.actions), np.array(recorder.masks)
    allowed = recorder.allowed(masks[:, :4])
    assert recorder.space_types == {ChooserActionSpace}
    rows = np.arange(actions.size)
    assert masks[rows, actions].all()  # valid
    treated = actions < 4
    assert allowed[rows[treated], actions[treated]].all()  # on a variable of least evidence
    assert (masks[:, :4] & ~allowed).any(axis=1).sum() > 50  # steps with a valid variable the chooser excluded


def test_chosen_actions() -> None:
    layout = CausalVariables.factored(3, action_map=[0, 1, 2, -1, 1])  # two actions set variable 1
    chooser = LeastEvidenceChooser(3, slack=0.0)
    chooser.evidence = np.array([0.0, 0.0, 10.0])
    valid = np.array([[1, 1, 1, 1, 1], [0, 0, 1, 1, 0], [0, 0, 0, 1, 0]], dtype=bool)
    allowed = chosen_actions(chooser, layout, valid, np.random.default_rng(0))
    assert allowed.tolist() == [
        [True, True, False, True, True],  # variables 0 and 1 (two actions) and the no-op
        [False, False, True, True, False],
        [False, False, False, True, False],
    ]
    no_noop = np.array([[1, 1, 1, 0, 1], [0, 0, 0, 0, 1]], dtype=bool)
    assert chosen_actions(chooser, layout, no_noop, np.random.default_rng(0)).tolist() == [
        [True, True, False, False, True],
        [False, False, False, False, True],
    ]
    with pytest.raises(ValueError, match="valid must be"):
        chosen_actions(chooser, layout, valid[:, :3], np.random.default_rng(0))


class BoxActionEnv(gym.Env):
    observation_space = spaces.Box(-1, 1, shape=(2,), dtype=np.float32)
    action_space = spaces.Box(-1, 1, shape=(2,), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(2, dtype=np.float32), 0.0, False, False, {}


def test_bad_choosers_and_algorithms_are_refused() -> None:
    with pytest.raises(ValueError, match="InterventionChooser"):
        CausalGraphCallback(chooser=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"off-policy.*PPO is on-policy.*bias the policy gradient"):
        PPO("MlpPolicy", factored_env(), n_steps=64).learn(64, callback=CausalGraphCallback(chooser=UniformChooser()))
    with pytest.raises(ValueError, match=r"Discrete action space starting at 0.*SAC has Box"):
        SAC("MlpPolicy", BoxActionEnv(), learning_starts=10).learn(
            20, callback=CausalGraphCallback(chooser=UniformChooser())
        )
