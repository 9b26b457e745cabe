"""The causal mask M_s(G): top-K most upstream active (unit, variable) pairs, eta lifts, env-mask fallback."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sb3_causal  # noqa: F401  (registers FaultAlarmRL-v0)
from sb3_causal.graph import CausalGraph
from sb3_causal.masks import CausalMask, MaskProvider, combine_with_env_masks
from sb3_causal.variables import CausalVariables

CHAIN = CausalGraph(["a", "b", "c"], [("a", "b"), ("b", "c")])
ONE_UNIT = CausalVariables.factored(3, names=["a", "b", "c"], action_map=[0, 1, 2, -1])  # action 3: no-op


def line_layout(n_units: int, names=("a", "b", "c"), n_hops: int = 2) -> CausalVariables:
    """Units on a line 0 - 1 - 2 - ...; action u * V + v treats (u, v)."""
    v = len(names)
    topo = np.zeros((n_units, n_units), dtype=bool)
    for u in range(n_units - 1):
        topo[u, u + 1] = topo[u + 1, u] = True
    return CausalVariables(
        names=names,
        obs_index=np.arange(n_units * v).reshape(n_units, v),
        action_target=np.arange(n_units * v),
        topology=topo,
        n_hops=n_hops,
    )


def allowed(masks: np.ndarray) -> list[int]:
    return np.flatnonzero(masks[0]).tolist()


def test_single_unit_keeps_the_most_upstream_active_variable() -> None:
    mask = CausalMask(ONE_UNIT, CHAIN, k=3, eta=0.0)
    # b and c active: c has an active ancestor (b), so only b is a candidate, even with k=3
    assert allowed(mask(np.array([[0.0, 2.0, 5.0]]), None)) == [1]
    # a and c active: a dominates c through the inactive b (ancestor in the graph, not only a parent)
    assert allowed(mask(np.array([[1.0, 0.0, 5.0]]), None)) == [0]
    # under the empty graph nothing dominates: every active variable is a candidate, none of the no-op
    empty = CausalMask(ONE_UNIT, CausalGraph.empty(["a", "b", "c"]), k=3, eta=0.0)
    assert allowed(empty(np.array([[1.0, 0.0, 5.0]]), None)) == [0, 2]


def test_k_cuts_candidates_by_upstream_rank_then_magnitude() -> None:
    graph = CausalGraph(["a", "b", "c"], [("a", "c")])  # a and b are sources; a has more descendants
    mask = CausalMask(ONE_UNIT, graph, k=1, eta=0.0)
    assert allowed(mask(np.array([[1.0, 9.0, 0.0]]), None)) == [0]  # rank first, not the bigger count
    # the same variable on two far-apart units: the bigger count wins the single slot
    layout = line_layout(4, n_hops=1)  # hop 0 only: units never dominate each other
    mask = CausalMask(layout, CausalGraph.empty(["a", "b", "c"]), k=1, eta=0.0)
    obs = np.zeros((1, 12))
    obs[0, 0 * 3 + 1] = 2.0  # (unit 0, b)
    obs[0, 3 * 3 + 1] = 7.0  # (unit 3, b)
    assert allowed(mask(obs, None)) == [3 * 3 + 1]


def test_units_dominate_within_two_propagation_hops_only() -> None:
    layout = line_layout(4, n_hops=2)  # a cause reaches one hop per step: domination within 2 hops
    mask = CausalMask(layout, CHAIN, k=10, eta=0.0)
    obs = np.zeros((1, 12))
    obs[0, 0 * 3 + 0] = 1.0  # a on unit 0
    obs[0, 2 * 3 + 2] = 1.0  # c on unit 2 (2 hops away): dominated by a on unit 0
    obs[0, 3 * 3 + 2] = 1.0  # c on unit 3 (3 hops away): a candidate
    assert allowed(mask(obs, None)) == [0, 3 * 3 + 2]
    assert mask.causal_pairs(obs)[0].tolist() == mask(obs, None)[0].tolist()  # factored: action = pair


def test_env_mask_is_anded_and_an_empty_and_falls_back() -> None:
    mask = CausalMask(ONE_UNIT, CHAIN, k=1, eta=0.0)
    obs = np.array([[0.0, 2.0, 5.0]])
    env = np.array([[True, True, True, True]])
    assert allowed(mask(obs, env)) == [1]
    env = np.array([[False, False, True, True]])  # the causal choice b is invalid: fall back to the env mask
    assert allowed(mask(obs, env)) == [2, 3]
    assert mask.n_fallback == 1
    # nothing active and no env mask: every action allowed, never an all-False row
    assert allowed(mask(np.zeros((1, 3)), None)) == [0, 1, 2, 3]


def test_an_env_mask_with_no_valid_action_is_an_error() -> None:
    mask = CausalMask(ONE_UNIT, CHAIN, k=1, eta=0.0)
    with pytest.raises(ValueError, match=r"all-zero action mask.* in env index 1"):
        mask(np.ones((2, 3)), np.array([[True] * 4, [False] * 4]))
    with pytest.raises(ValueError, match="shape"):
        combine_with_env_masks(np.ones((2, 4), dtype=bool), np.ones((2, 3), dtype=bool))


def test_eta_lifts_the_causal_mask_reproducibly() -> None:
    obs = np.tile([[0.0, 2.0, 5.0]], (4000, 1))
    env = np.ones((4000, 4), dtype=bool)
    never = CausalMask(ONE_UNIT, CHAIN, k=1, eta=0.0, seed=0)(obs, env)
    assert never.sum(axis=1).max() == 1
    always = CausalMask(ONE_UNIT, CHAIN, k=1, eta=1.0, seed=0)(obs, env)
    assert always.all()
    some = CausalMask(ONE_UNIT, CHAIN, k=1, eta=0.3, seed=3)
    masks = some(obs, env)
    lifted = masks.sum(axis=1) == 4
    assert 0.27 < lifted.mean() < 0.33
    assert some.n_lifted == lifted.sum()
    np.testing.assert_array_equal(CausalMask(ONE_UNIT, CHAIN, k=1, eta=0.3, seed=3)(obs, env), masks)
    # predict-time masks never lift
    assert some(obs[:50], env[:50], explore=False).sum(axis=1).max() == 1


def test_update_graph_changes_the_mask() -> None:
    mask = CausalMask(ONE_UNIT, CausalGraph.empty(["a", "b", "c"]), k=3, eta=0.0)
    obs = np.array([[0.0, 2.0, 5.0]])
    assert allowed(mask(obs, None)) == [1, 2]
    mask.update_graph(CHAIN)
    assert allowed(mask(obs, None)) == [1]
    with pytest.raises(ValueError, match="do not match the layout"):
        mask.update_graph(CausalGraph.empty(["x", "y", "z"]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, r"k .* >= 1"),
        ({"k": 1.5}, r"k .* integer"),
        ({"eta": -0.1}, r"eta .* \[0, 1\]"),
        ({"eta": 1.5}, "eta"),
    ],
)
def test_bad_parameters_are_clear_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CausalMask(ONE_UNIT, CHAIN, **kwargs)


def test_causal_mask_is_a_mask_provider() -> None:
    assert isinstance(CausalMask(ONE_UNIT, CHAIN), MaskProvider)
    assert not isinstance(object(), MaskProvider)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(0, 3), min_size=12, max_size=12),
    env_bits=st.lists(st.booleans(), min_size=12, max_size=12),
    k=st.integers(1, 4),
)
def test_masks_are_valid_subsets_of_the_env_mask(values: list[int], env_bits: list[bool], k: int) -> None:
    layout = line_layout(4, n_hops=2)
    mask = CausalMask(layout, CHAIN, k=k, eta=0.0)
    env = np.array([env_bits])
    env[0, 0] = True  # the env always offers something
    obs = np.array([values], dtype=np.float64)
    out = mask(obs, env)
    assert out.any() and not (out & ~env).any()
    if mask.n_fallback == 0:
        assert out.sum() <= k
        active = obs[0] > 0
        assert not (out[0] & ~active).any()  # a causal action treats an active pair


def test_true_graph_mask_keeps_the_oracle_action_on_fault_alarm() -> None:
    env = gym.make("FaultAlarmRL-v0")
    base = env.unwrapped
    mask = CausalMask(base.causal_variables, base.causal_graph, k=5, eta=0.0)
    hits = n = 0
    obs, _ = env.reset(seed=1)
    for _ in range(60):
        env_mask = base.action_masks()
        m = mask(obs[None], env_mask[None])[0]
        assert not (m & ~env_mask).any()
        assert m.sum() <= 5
        action = base.oracle_action()
        hits += int(m[action])
        n += 1
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset()
    assert hits == n


# ---------------------------------------------------------------------------- shared interfaces
def test_update_graph_with_n_hops_recomputes_the_domination_reach() -> None:
    layout = line_layout(4, n_hops=2)
    mask = CausalMask(layout, CHAIN, k=10, eta=0.0)
    obs = np.zeros((1, 12))
    obs[0, 0 * 3 + 0] = 1.0  # a on unit 0
    obs[0, 2 * 3 + 2] = 1.0  # c on unit 2, two hops away
    assert allowed(mask(obs, None)) == [0]  # reach 2 * (2 - 1) = 2 hops: c on unit 2 is dominated
    mask.update_graph(CHAIN, n_hops=1)  # the learner says effects stay on their unit
    assert allowed(mask(obs, None)) == [0, 2 * 3 + 2]
    mask.update_graph(CHAIN)  # None keeps the reach in use
    assert mask.n_hops == 1 and allowed(mask(obs, None)) == [0, 2 * 3 + 2]


class FirstCandidate:
    """An intervention chooser: the first candidate (unit, variable) pair of each row; records its calls."""

    def __init__(self) -> None:
        self.calls: list[np.ndarray] = []

    def choose(self, candidates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        self.calls.append(candidates.copy())
        chosen = np.zeros_like(candidates)
        rows = np.flatnonzero(candidates.any(axis=1))
        chosen[rows, candidates[rows].argmax(axis=1)] = True
        return chosen


def test_a_chooser_decides_what_a_lifted_row_may_intervene_on() -> None:
    chooser = FirstCandidate()
    mask = CausalMask(ONE_UNIT, CHAIN, k=1, eta=1.0, seed=0, chooser=chooser)  # eta = 1: every row lifted
    env_masks = np.array([[False, True, True, True], [True, True, True, True]])
    masks = mask(np.array([[0.0, 0.0, 5.0], [0.0, 0.0, 5.0]]), env_masks)
    # candidates: the pairs some env-valid action targets (the no-op targets none)
    assert chooser.calls[0].tolist() == [[False, True, True], [True, True, True]]
    # the chosen pair's action, and the no-op (it targets nothing: the learner's control rows)
    assert masks.tolist() == [[False, True, False, True], [True, False, False, True]]
    # without a chooser a lifted row allows the env mask (the paper's lift)
    plain = CausalMask(ONE_UNIT, CHAIN, k=1, eta=1.0, seed=0)
    assert plain(np.array([[0.0, 0.0, 5.0], [0.0, 0.0, 5.0]]), env_masks).tolist() == env_masks.tolist()
    # predict (explore=False) never lifts, so never asks the chooser
    mask(np.array([[0.0, 0.0, 5.0]]), None, explore=False)
    assert len(chooser.calls) == 1


def test_the_mask_generator_state_round_trips() -> None:
    mask = CausalMask(ONE_UNIT, CHAIN, k=1, eta=0.5, seed=3)
    mask(np.ones((4, 3)), None)
    state = mask.state_dict()
    expected = mask.rng.random(5)
    other = CausalMask(ONE_UNIT, CHAIN, k=1, eta=0.5, seed=99)
    other.load_state_dict(state)
    np.testing.assert_array_equal(other.rng.random(5), expected)


class _ReferenceMask:
    """The mask as written before its vectorisation (b6ccc6d): a loop over rows, dense AND with the env mask.

    Kept here as the specification the fast :class:`CausalMask` must reproduce exactly (masks, statistics
    and generator draws)."""

    def __init__(self, mask: CausalMask) -> None:
        self.m = mask

    def causal_pairs(self, obs: np.ndarray) -> np.ndarray:
        m = self.m
        values = m.layout.values(obs.reshape(obs.shape[0], -1))
        magnitude = np.abs(values)
        active = magnitude > m.activity_threshold
        upstream_active = np.matmul(active.astype(np.float32), m._ancestors)
        dominated = np.matmul(m._reach, upstream_active) > 0
        batch = values.shape[0]
        candidates = (active & ~dominated).reshape(batch, -1) & m._targetable
        magnitude = magnitude.reshape(batch, -1)
        kept = np.zeros_like(candidates)
        for b in range(batch):
            idx = np.flatnonzero(candidates[b])
            if idx.size > m.k:
                idx = idx[np.lexsort((idx, -magnitude[b, idx], m._rank[m._pair_var[idx]]))[: m.k]]
            kept[b, idx] = True
        return kept

    def __call__(self, obs: np.ndarray, env_masks: np.ndarray | None, explore: bool) -> tuple[np.ndarray, tuple]:
        m = self.m
        causal = self.causal_pairs(obs)[:, m._action_pair] & m._action_ok
        lifted = np.zeros(causal.shape[0], dtype=bool)
        if explore and m.eta > 0:
            lifted = m.rng.random(causal.shape[0]) < m.eta
            causal[lifted] = m._lifted_rows(env_masks, lifted)
        masks, fallback = combine_with_env_masks(causal, env_masks)
        stats = (int(lifted.sum()), int((fallback & ~lifted).sum()), int(masks[~lifted].sum()))
        return masks, stats


@pytest.mark.parametrize("chooser", [None, "uniform", "least"])
@pytest.mark.parametrize("layout_kind", ["one_unit", "line", "fault_alarm", "scattered"])
def test_masks_equal_the_reference_implementation(layout_kind: str, chooser: str | None) -> None:
    from sb3_causal.discovery.choosers import LeastEvidenceChooser, UniformChooser

    rng = np.random.default_rng(7)
    if layout_kind == "one_unit":
        layout, density = ONE_UNIT, 0.5
    elif layout_kind == "line":
        layout, density = line_layout(6, names=tuple("abcde"), n_hops=2), 0.15
    elif layout_kind == "scattered":  # values at no regular stride in the observation (the gather path, no slice)
        base = line_layout(4, names=tuple("abcd"), n_hops=2)
        obs_index = np.random.default_rng(3).permutation(base.n_units * 4 + 5)[: base.n_units * 4]
        layout = CausalVariables(
            names=base.names,
            obs_index=obs_index.reshape(base.n_units, 4),
            action_target=base.action_target,
            topology=base.topology,
            n_hops=2,
        )
        density = 0.2
    else:
        layout, density = gym.make("FaultAlarmRL-v0").unwrapped.causal_variables, 0.03
    v = layout.n_variables
    for trial in range(4):
        adjacency = np.triu(rng.random((v, v)) < 0.3, 1)
        graph = CausalGraph(layout.names, [(layout.names[i], layout.names[j]) for i, j in zip(*np.nonzero(adjacency))])
        make = {None: lambda: None, "uniform": UniformChooser, "least": lambda: LeastEvidenceChooser(v)}[chooser]
        kwargs = {"k": int(rng.integers(1, 6)), "eta": 0.3, "activity_threshold": float(rng.choice([0.0, 1.0]))}
        fast = CausalMask(layout, graph, seed=trial, chooser=make(), n_hops=int(rng.integers(1, 3)), **kwargs)
        slow = CausalMask(layout, graph, seed=trial, chooser=make(), n_hops=fast.n_hops, **kwargs)
        reference = _ReferenceMask(slow)
        assert (layout._obs_slice is None) == (layout_kind == "scattered")  # both ways of reading the values run
        for batch in (1, 1, 3, 64):
            obs = np.zeros((batch, layout.obs_size), dtype=np.float32)
            on = rng.random((batch, layout.n_units, v)) < density
            counts = np.where(on, rng.integers(1, 4, size=on.shape), 0)
            obs[:, layout.obs_index] = counts.reshape(batch, layout.n_units, v)
            env_masks = None
            if rng.random() < 0.7:
                env_masks = rng.random((batch, layout.n_actions)) < 0.5
                env_masks[np.arange(batch), rng.integers(0, layout.n_actions, size=batch)] = True
            explore = bool(rng.random() < 0.7)
            np.testing.assert_array_equal(fast.causal_pairs(obs), reference.causal_pairs(obs))
            before = (fast.n_lifted, fast.n_fallback, fast.n_allowed)
            got = fast(obs, env_masks, explore=explore)
            expected, stats = reference(obs, env_masks, explore)
            np.testing.assert_array_equal(got, expected)
            if explore:
                assert (fast.n_lifted - before[0], fast.n_fallback - before[1], fast.n_allowed - before[2]) == stats
            assert fast.rng.bit_generator.state == slow.rng.bit_generator.state


@pytest.mark.parametrize("limit", [0, 32, 10**6])
def test_one_observation_pairwise_and_matrix_domination_agree(limit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A single observation takes the pairwise domination test up to ``_PAIRWISE_ACTIVE`` active pairs and the
    matrix products beyond; both keep the reference rule's pairs, from a few active pairs to hundreds."""
    import sb3_causal.masks.causal as causal_module

    monkeypatch.setattr(causal_module, "_PAIRWISE_ACTIVE", limit)
    layout = gym.make("FaultAlarmRL-v0").unwrapped.causal_variables
    v = layout.n_variables
    rng = np.random.default_rng(11)
    for trial in range(6):
        adjacency = np.triu(rng.random((v, v)) < 0.3, 1)
        graph = CausalGraph(layout.names, [(layout.names[i], layout.names[j]) for i, j in zip(*np.nonzero(adjacency))])
        mask = CausalMask(layout, graph, k=int(rng.integers(1, 6)), n_hops=int(rng.integers(1, 4)), seed=trial)
        reference = _ReferenceMask(mask)
        for density in (0.0, 0.005, 0.03, 0.1, 0.3):
            obs = np.zeros((1, layout.obs_size), dtype=np.float32)
            on = rng.random((layout.n_units, v)) < density
            obs[0, layout.obs_index] = np.where(on, rng.integers(1, 4, size=on.shape), 0)
            np.testing.assert_array_equal(mask.causal_pairs(obs), reference.causal_pairs(obs))
