"""Propensity (odds) weighting of control rows: a state-dependent policy biases the unweighted ATT, the
behaviour policy's action probabilities remove that bias; without them nothing changes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sb3_causal.discovery.online import OnlineCausalLearner
from sb3_causal.variables import CausalVariables
from sb3_causal_envs import FaultAlarmEnv
from tests.test_online_learner import collect
from tests.toy_envs import LinearCascadeEnv

X, Z, Y = 0, 1, 2  # variables of the confounded SCM


def confounded_transitions(n_steps: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Single unit, variables (x, z, y): ``y' = x' + 2 z + noise``, z and x fresh each step. Action 0 sets
    x' to 0, action 1 does nothing. The policy treats x with probability ``sigmoid(2 z)`` (in [0.05, 0.95]):
    treated rows come from high-z states, where y' is high whatever x is. The true effect of do(x = 0)
    on y's mean is -E[x'] = -1; on z there is none."""
    rng = np.random.default_rng(seed)
    state = np.array([1.0, 0.0, 0.0])
    x0, actions, x1, probs = [], [], [], []
    for _ in range(n_steps):
        p = float(np.clip(1.0 / (1.0 + np.exp(-2.0 * state[Z])), 0.05, 0.95))
        action = 0 if rng.random() < p else 1
        x_next = 0.0 if action == 0 else 1.0 + rng.standard_normal()
        nxt = np.array([x_next, rng.standard_normal(), x_next + 2.0 * state[Z] + rng.standard_normal()])
        x0.append(state)
        actions.append(action)
        x1.append(nxt)
        probs.append([p, 1.0 - p])
        state = nxt
    return np.array(x0)[:, None, :], np.array(actions), np.array(x1)[:, None, :], np.array(probs)


def confounded_layout() -> CausalVariables:
    return CausalVariables.factored(3, names=("x", "z", "y"), action_map=[X, -1])


def test_weighting_removes_the_bias_of_a_state_dependent_policy():
    x0, actions, x1, probs = confounded_transitions(20_000, seed=0)
    # conditional_test off: the conditional channels come from the pruning stage's unweighted Gram matrices
    plain = OnlineCausalLearner(confounded_layout(), conditional_test=False)
    weighted = OnlineCausalLearner(confounded_layout(), conditional_test=False, propensity_weighting=True)
    for lo in range(0, actions.size, 1000):
        part = slice(lo, lo + 1000)
        plain.observe_values(x0[part], actions[part], x1[part])
        weighted.observe_values(x0[part], actions[part], x1[part], probs[part])
    effect, _, _ = plain.att()
    assert effect[X, Y] > 0.0  # the treated rows' high z outweighs the true effect of -1
    assert np.abs(plain.channel_tstats[:, X, Z]).max() < 4.0  # z' is fresh: no bias to show there
    effect, _, _ = weighted.att()
    assert effect[X, Y] == pytest.approx(-1.0, abs=0.1)
    assert np.abs(weighted.channel_tstats[:, X, Z]).max() < 3.0


def test_constant_propensities_change_nothing():
    """A policy that ignores the state: every weight is 1 (single unit), the same effects as unweighted."""
    env = LinearCascadeEnv()
    layout = CausalVariables.from_env(env)
    o, a, n = collect(env, 3000, seed=0)  # uniform random actions
    probs = np.full((len(a), env.action_space.n), 1.0 / env.action_space.n)
    plain = OnlineCausalLearner(layout)
    weighted = OnlineCausalLearner(layout, propensity_weighting=True)
    plain.observe(o, a, n)
    weighted.observe(o, a, n, probs)
    for ours, theirs in zip(weighted.att(), plain.att()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(weighted.channel_tstats, plain.channel_tstats, rtol=1e-12, atol=1e-12)


def fault_alarm_transitions(n_steps: int, seed: int):
    """FaultAlarmRL under random-over-active treatments, with the driver's action probabilities."""
    env = FaultAlarmEnv(model_seed=0)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    o, a, n, p = [], [], [], []
    for _ in range(n_steps):
        valid = np.flatnonzero(env.action_masks())
        action = int(rng.choice(valid))
        prob = np.zeros(env.action_space.n)
        prob[valid] = 1.0 / valid.size
        nxt, _, term, trunc, _ = env.step(action)
        o.append(obs)
        a.append(action)
        n.append(nxt)
        p.append(prob)
        obs = env.reset()[0] if term or trunc else nxt
    return env, (np.array(o), np.array(a), np.array(n), np.array(p))


@pytest.fixture(scope="module")
def fault_alarm_data():
    return fault_alarm_transitions(600, seed=0)


def test_hop_choice_replays_the_buffered_probabilities(fault_alarm_data):
    """Reach chosen from data: the buffered transitions are replayed with their own probabilities, so the
    statistics equal those of a learner that was told the chosen reach from the start."""
    env, (obs, actions, next_obs, probs) = fault_alarm_data
    layout = dataclasses.replace(env.causal_variables, n_hops=None)
    chosen = OnlineCausalLearner(layout, hop_selection_rows=300 * layout.n_units, propensity_weighting=True)
    batches = [slice(lo, lo + 200) for lo in range(0, actions.size, 200)]
    for part in batches:
        chosen.observe(obs[part], actions[part], next_obs[part], probs[part])
    assert chosen.n_hops is not None and not chosen._hop_probs
    told = OnlineCausalLearner(
        layout, n_hops=chosen.n_hops, hop_normalization=chosen.hop_normalization, propensity_weighting=True
    )
    for part in batches:
        told.observe(obs[part], actions[part], next_obs[part], probs[part])
    for name in ("_treated", "_control"):
        for key, value in getattr(told, name).state().items():
            np.testing.assert_allclose(getattr(chosen, name).state()[key], value, rtol=1e-12, err_msg=key)
    weights = told._control
    assert (weights.sww < weights.n).any()  # the odds are below 1 here: the rows are weighted


def test_saved_and_loaded_mid_buffer_continues_the_same(fault_alarm_data):
    env, (obs, actions, next_obs, probs) = fault_alarm_data
    layout = dataclasses.replace(env.causal_variables, n_hops=None)
    learner = OnlineCausalLearner(layout, hop_selection_rows=300 * layout.n_units, propensity_weighting=True)
    learner.observe(obs[:200], actions[:200], next_obs[:200], probs[:200])  # still buffering
    loaded = OnlineCausalLearner.from_npz(learner.to_npz())
    assert loaded.propensity_weighting and loaded.propensity_clip == learner.propensity_clip
    for model in (learner, loaded):
        model.observe(obs[200:], actions[200:], next_obs[200:], probs[200:])
        model.update()
    for ours, theirs in zip(loaded.att(), learner.att()):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(loaded._control.sww, learner._control.sww)


def test_bad_probabilities_are_refused():
    x0, actions, x1, probs = confounded_transitions(50, seed=1)
    with pytest.raises(ValueError, match="without propensity_weighting"):
        OnlineCausalLearner(confounded_layout()).observe_values(x0, actions, x1, probs)
    learner = OnlineCausalLearner(confounded_layout(), propensity_weighting=True)
    with pytest.raises(ValueError, match="needs the behaviour policy's action_probs"):
        learner.observe_values(x0, actions, x1)
    with pytest.raises(ValueError, match="shape"):
        learner.observe_values(x0, actions, x1, probs[:, :1])
    with pytest.raises(ValueError, match="sum to 1"):
        learner.observe_values(x0, actions, x1, probs * 0.5)
    wrong = probs.copy()
    wrong[0] = [1.0, 0.0] if actions[0] == 1 else [0.0, 1.0]
    with pytest.raises(ValueError, match="probability 0 to the action taken"):
        learner.observe_values(x0, actions, x1, wrong)
    with pytest.raises(ValueError, match="propensity_clip"):
        OnlineCausalLearner(confounded_layout(), propensity_clip=0.0)
