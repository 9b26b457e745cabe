"""CAASL pieces: the exact posterior over DAGs, the information-gain chooser (sb3_causal.design)."""

from __future__ import annotations

import itertools
from math import comb

import numpy as np
import pytest

from sb3_causal.design import ExactPosterior, InformationGainChooser, edge_metrics, expected_correct_entries


def brute_force(local_scores: np.ndarray, d: int) -> tuple[np.ndarray, float]:
    """Edge marginals and log normaliser by enumerating every (order, DAG consistent with it) pair.

    The weight of a pair is ``prod_v exp(local_scores[v, Pa_v])`` (prior rho and likelihood), i.e. the
    order-modular prior: a DAG counts once per topological order it has.
    """
    logs, edges = [], []
    for order in itertools.permutations(range(d)):
        choices, before = [], 0
        for v in order:
            choices.append([g for g in range(1 << d) if g & ~before == 0 and np.isfinite(local_scores[v, g])])
            before |= 1 << v
        combos = np.array(list(itertools.product(*choices)))  # (pairs, d): parent set of order[p] in column p
        logs.append(local_scores[np.array(order)[None, :], combos].sum(axis=1))
        adj = np.zeros((len(combos), d, d))
        adj[:, :, list(order)] = (combos[:, None, :] >> np.arange(d)[None, :, None]) & 1
        edges.append(adj)
    logs_a, edges_a = np.concatenate(logs), np.concatenate(edges)
    w = np.exp(logs_a - logs_a.max())
    return np.tensordot(w, edges_a, axes=1) / w.sum(), float(np.log(w.sum()) + logs_a.max())


def chain_data(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.normal(size=(n, d))
    for v in range(1, d):
        x[:, v] += 0.8 * x[:, v - 1]
    return x


@pytest.mark.parametrize("score", ["bge", "bic"])
@pytest.mark.parametrize(("d", "max_indegree"), [(3, None), (4, None), (4, 1), (5, None), (5, 2)])
def test_marginals_equal_brute_force(d: int, max_indegree: int | None, score: str) -> None:
    rng = np.random.default_rng(d)
    x = chain_data(25, d, rng)
    intervened = np.zeros_like(x, dtype=bool)
    intervened[:4, 1] = True
    x[:4, 1] = 2.0
    post = ExactPosterior(d, max_indegree=max_indegree, score=score)
    result = post(x, intervened)
    marginals, log_z = brute_force(result.local_scores, d)
    np.testing.assert_allclose(result.edge_marginals, marginals, atol=1e-10)
    assert result.log_evidence == pytest.approx(log_z, abs=1e-8)
    if max_indegree is not None:  # the cap is honoured: no sampled DAG has more parents
        adjs, _ = result.sample_dags(20, np.random.default_rng(0))
        assert adjs.sum(axis=1).max() <= max_indegree


def test_bge_is_score_equivalent() -> None:
    """Observational data cannot tell X -> Y from Y -> X: BGe gives both DAGs the same score."""
    x = chain_data(40, 2, np.random.default_rng(1))
    scores = ExactPosterior(2).local_scores(x, np.zeros_like(x, dtype=bool))
    assert scores[0, 0] + scores[1, 1] == pytest.approx(scores[1, 0] + scores[0, 2], rel=1e-10)
    marginals = ExactPosterior(2)(x, np.zeros_like(x, dtype=bool)).edge_marginals
    assert marginals[0, 1] == pytest.approx(marginals[1, 0], abs=1e-10)


def test_bic_local_score_is_the_penalised_regression_likelihood() -> None:
    """BIC of v given G: the maximised Gaussian log-likelihood of least squares with intercept - (|G|+2)/2 log n."""
    rng = np.random.default_rng(5)
    x = chain_data(40, 4, rng)
    intervened = np.zeros_like(x, dtype=bool)
    intervened[:8, 2] = True
    x[:8, 2] = 1.5
    scores = ExactPosterior(4, score="bic", bic_ridge=0.0).local_scores(x, intervened)
    for v, parents in [(0, []), (1, [0]), (2, [1]), (2, [0, 1, 3]), (3, [0, 2])]:
        rows = x[~intervened[:, v]]
        n = len(rows)
        design = np.column_stack([np.ones(n), rows[:, parents]])
        resid = rows[:, v] - design @ np.linalg.lstsq(design, rows[:, v], rcond=None)[0]
        sigma2 = np.mean(resid**2)
        expected = -n / 2 * (np.log(2 * np.pi * sigma2) + 1) - (len(parents) + 2) / 2 * np.log(n)
        g = sum(1 << u for u in parents)
        log_rho = -np.log(comb(3, len(parents)))
        assert scores[v, g] == pytest.approx(expected + log_rho, rel=1e-9)


def test_bic_prefers_the_true_parents() -> None:
    x = chain_data(200, 3, np.random.default_rng(6))
    marginals = ExactPosterior(3, score="bic")(x, np.zeros_like(x, dtype=bool)).edge_marginals
    skeleton = marginals + marginals.T
    assert skeleton[0, 1] > 0.9 and skeleton[1, 2] > 0.9 and skeleton[0, 2] < 0.5


def test_interventional_rows_excluded_from_the_intervened_node() -> None:
    rng = np.random.default_rng(2)
    x = chain_data(30, 3, rng)
    intervened = np.zeros_like(x, dtype=bool)
    intervened[:10, 1] = True
    x[:10, 1] = rng.uniform(-3, 3, size=10)
    post = ExactPosterior(3)
    scores = post.local_scores(x, intervened)
    without = post.local_scores(x[10:], intervened[10:])
    observational = post.local_scores(x, np.zeros_like(intervened))
    np.testing.assert_allclose(scores[1], without[1])  # node 1 sees only its non-intervened rows
    np.testing.assert_allclose(scores[[0, 2]], observational[[0, 2]])  # the others use every row
    assert not np.allclose(scores[1], observational[1])


def test_interventions_orient_an_edge() -> None:
    """Observationally X0 - X1 is unoriented; interventions on X0 that move X1 orient it X0 -> X1."""
    rng = np.random.default_rng(3)
    n = 40
    x0 = np.concatenate([rng.normal(size=n), np.full(10, 3.0)])
    x1 = 1.5 * x0 + 0.3 * rng.normal(size=n + 10)
    data = np.column_stack([x0, x1])
    intervened = np.zeros_like(data, dtype=bool)
    post = ExactPosterior(2)
    before = post(data[:n], intervened[:n]).edge_marginals
    intervened[n:, 0] = True
    after = post(data, intervened).edge_marginals
    assert abs(before[0, 1] - before[1, 0]) < 0.05
    assert after[0, 1] > 0.95


def test_reward_and_metrics() -> None:
    truth = np.array([[0, 1], [0, 0]], dtype=bool)
    assert expected_correct_entries(np.array([[0, 0.75], [0.25, 0]]), truth) == pytest.approx(1.5)
    metrics = edge_metrics(np.array([[0, 0.9], [0.1, 0]]), truth)
    assert metrics == {"f1": 1.0, "shd": 0.0, "auprc": 1.0}
    reversed_ = edge_metrics(np.array([[0, 0.1], [0.9, 0]]), truth)
    assert reversed_["f1"] == 0.0 and reversed_["shd"] == 1.0


def test_bad_input_errors() -> None:
    with pytest.raises(ValueError, match="max_indegree=5 is too large"):
        ExactPosterior(4, max_indegree=5)
    with pytest.raises(ValueError, match=r"d \* 2\^d"):
        ExactPosterior(30)  # refused before any table exists
    with pytest.raises(ValueError, match="unknown score 'bde'"):
        ExactPosterior(4, score="bde")
    with pytest.raises(ValueError, match="lower max_indegree"):
        ExactPosterior(16, max_indegree=15, max_local_scores=10_000)
    post = ExactPosterior(3)
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        post(np.zeros((5, 4)), np.zeros((5, 4), dtype=bool))
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        post(bad, np.zeros_like(bad, dtype=bool))


def test_chooser_keeps_the_best_candidate() -> None:
    chooser = InformationGainChooser(3, n_units=2, seed=0)
    candidates = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0], [1, 0, 0, 1, 0, 0]], dtype=bool)
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(chooser.choose(candidates, rng), candidates)  # nothing known yet: uniform
    chooser.gains = np.array([0.1, 0.5, 0.2])
    chosen = chooser.choose(candidates, rng)
    np.testing.assert_array_equal(chosen[0], [0, 1, 0, 0, 0, 0])
    assert not chosen[1].any()
    assert chosen[2].sum() == 1 and (chosen[2] <= candidates[2]).all()
    with pytest.raises(RuntimeError, match="holds no samples"):
        chooser.update(object())  # nobody fed it: an error, not silently uniform lifts
    with pytest.raises(ValueError, match=r"shape \(batch, 6\)"):
        chooser.choose(np.ones((1, 3), dtype=bool), rng)


def test_information_gain_prefers_the_unresolved_variables() -> None:
    """X0 - X1 strongly dependent and unoriented, X2 independent: intervening on X2 teaches least."""
    rng = np.random.default_rng(4)
    x0 = rng.normal(size=30)
    data = np.column_stack([x0, x0 + 0.2 * rng.normal(size=30), rng.normal(size=30)])
    chooser = InformationGainChooser(3, n_outcomes=6, seed=0)
    gains = chooser.update_data(data, np.zeros_like(data, dtype=bool))
    assert gains[0] > gains[2] and gains[1] > gains[2]
    assert min(gains[0], gains[1]) > 0.1


def test_chooser_keeps_the_samples_of_factored_transitions() -> None:
    """observe_transitions maps next observations to rows and actions to intervention flags (no-op: none)."""
    from sb3_causal_envs.factored import FactoredSCMEnv

    env = FactoredSCMEnv(n_variables=3, model_seed=0)
    layout = env.causal_variables
    chooser = InformationGainChooser(3, n_outcomes=2, value_scale=0.0, seed=0)
    env.reset(seed=0)
    actions = np.array([0, 3, 2, 3, 1] * 8)
    next_obs = np.array([env.step(int(a))[0] for a in actions])
    chooser.observe_transitions(layout, actions, next_obs)
    values, flags = chooser.data()
    np.testing.assert_allclose(values, next_obs, rtol=1e-6)
    np.testing.assert_array_equal(flags[:5], [[1, 0, 0], [0, 0, 0], [0, 0, 1], [0, 0, 0], [0, 1, 0]])
    assert (values[flags] == 0.0).all()  # do(x = 0)
    chooser.update(None)
    assert chooser.gains is not None and chooser.gains.shape == (3,)
    with pytest.raises(ValueError, match="non-finite"):
        chooser.observe(np.full((1, 3), np.nan), np.zeros((1, 3), dtype=bool))


@pytest.mark.parametrize(("update_freq", "refresh_every"), [(50, None), (1000, 40)])
def test_chooser_fed_by_callback_drives_causal_dqn_lifts(update_freq: int, refresh_every: int | None) -> None:
    """CausalDQN + DesignDataCallback on FactoredSCM-v0: the chooser gets every step's sample and scores
    (at the agent's graph updates, or every ``refresh_every`` samples when the graph never updates)."""
    import gymnasium as gym

    from sb3_causal import CausalDQN
    from sb3_causal.design import DesignDataCallback

    env = gym.make("FactoredSCM-v0", n_variables=4, model_seed=1, max_steps=20)
    chooser = InformationGainChooser(4, n_outcomes=1, value_scale=0.0, seed=0)
    model = CausalDQN("MlpPolicy", env, graph_update_freq=update_freq, chooser=chooser, learning_starts=20, seed=0)
    model.learn(120, callback=DesignDataCallback(chooser, refresh_every=refresh_every))
    assert chooser.n_rows == 120
    assert chooser.gains is not None and np.all(np.isfinite(chooser.gains))
