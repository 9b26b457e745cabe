"""Local causal structure of one transition: which of ``(s, a)`` are parents of each ``s'_j`` and of ``r``.

The local graph is bipartite over ``inputs = states + actions`` and ``targets = next states + reward``:
next-state ``j`` is named ``"<state name>'"`` and the reward ``"r"``. It is learned with causal-learn's PC
(Fisher-z tests) on real transitions, with background knowledge in two tiers, ``(s, a)`` before ``(s', r)``,
so an edge between an input and a target can only point into the target, and the parents of a target
are its PC neighbours among the inputs. PC runs once per target, on the inputs and that target.

Fisher-z tests partial *linear* correlation. Transition mechanisms are rarely linear (SpuriousCorrelation's
reward is ``0.1 (1 - X^2)``), and a linear test then both misses parents and invents them: the part of
``r`` that is quadratic in ``X`` is left in the residual, where a proxy of ``X`` such as ``Z`` (or an action
that is a saturating function of ``X``) explains some of it. With ``square_features=True`` (the default)
every input also enters the tests as its centred square, so conditioning on ``{X, X^2}`` removes any
quadratic dependence; an input is a parent of a target when the input or its square is adjacent to it.
Edges among the inputs (the policy and the data collection make states and actions dependent) are allowed
while testing but are not part of the returned graph.

Degenerate data are handled, never silently: a constant column can be no one's parent and has no parent
it depends on, so it is left out of the tests (and reported); when PC itself fails (e.g. a singular
correlation matrix from duplicated or collinear columns, too few samples) the result is the complete
graph with the reason in ``StructureResult.fallback``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sb3_causal.graph import CausalGraph

__all__ = [
    "REWARD_NAME",
    "StructureResult",
    "complete_local_graph",
    "learn_local_graph",
    "local_variable_names",
    "next_state_name",
    "reward_ancestor_states",
]

REWARD_NAME = "r"
# Fisher-z needs a few more samples than conditioning variables; below this PC is not attempted.
MIN_SAMPLES = 20


def next_state_name(state_name: str) -> str:
    return f"{state_name}'"


def local_variable_names(state_names: Sequence[str], action_names: Sequence[str]) -> list[str]:
    """Variables of the local graph in index order: states, actions, next states, reward."""
    names = [*state_names, *action_names, *(next_state_name(s) for s in state_names), REWARD_NAME]
    if len(set(names)) != len(names):
        raise ValueError(f"state and action names must be unique and must not be {REWARD_NAME!r}: {names}")
    return names


def complete_local_graph(state_names: Sequence[str], action_names: Sequence[str]) -> CausalGraph:
    """Every input is a parent of every target (what MBPO's single model on ``(s, a)`` assumes)."""
    inputs = [*state_names, *action_names]
    targets = [*(next_state_name(s) for s in state_names), REWARD_NAME]
    return CausalGraph(local_variable_names(state_names, action_names), [(i, t) for t in targets for i in inputs])


def reward_ancestor_states(graph: CausalGraph, state_names: Sequence[str]) -> list[str]:
    """State variables whose value can change a present or future reward under the local graph.

    Start from the state parents of ``r``; add the state parents of ``s'_j`` for every state ``j`` already
    in the set, until nothing changes (the local graph unrolled over time). Order follows ``state_names``.
    """
    states = set(state_names)
    found = {p for p in graph.parents(REWARD_NAME) if p in states}
    frontier = list(found)
    while frontier:
        s = frontier.pop()
        for p in graph.parents(next_state_name(s)):
            if p in states and p not in found:
                found.add(p)
                frontier.append(p)
    return [s for s in state_names if s in found]


@dataclass
class StructureResult:
    """Outcome of one structure search.

    :param graph: the local graph (complete when ``fallback`` is set)
    :param n_samples: transitions the tests used
    :param seconds: wall time of the search
    :param constant: variables left out because they were constant in the data
    :param fallback: why the complete graph was returned instead of PC's, or None
    """

    graph: CausalGraph
    n_samples: int
    seconds: float
    constant: list[str] = field(default_factory=list)
    fallback: str | None = None


def learn_local_graph(
    observations: np.ndarray,
    actions: np.ndarray,
    next_observations: np.ndarray,
    rewards: np.ndarray,
    state_names: Sequence[str],
    action_names: Sequence[str],
    alpha: float = 0.05,
    max_samples: int | None = 10_000,
    square_features: bool = True,
) -> StructureResult:
    """Parents of each next-state variable and of the reward among ``(s, a)``, by PC with Fisher-z.

    :param observations: ``(n, n_states)`` states ``s``
    :param actions: ``(n, n_actions)`` actions ``a``
    :param next_observations: ``(n, n_states)`` next states ``s'``
    :param rewards: ``(n,)`` rewards
    :param state_names: names of the state entries
    :param action_names: names of the action entries
    :param alpha: significance level of the independence tests
    :param max_samples: use at most this many transitions, the last ones given (the data of the recent
        policies; None: all)
    :param square_features: also test the centred square of every input (see the module docstring)
    """
    from causallearn.graph.GraphNode import GraphNode
    from causallearn.search.ConstraintBased.PC import pc
    from causallearn.utils.cit import fisherz
    from causallearn.utils.PCUtils.BackgroundKnowledge import BackgroundKnowledge

    start = time.perf_counter()
    names = local_variable_names(state_names, action_names)
    n_states, n_actions = len(state_names), len(action_names)
    data = np.concatenate(
        [
            np.asarray(observations, dtype=np.float64).reshape(-1, n_states),
            np.asarray(actions, dtype=np.float64).reshape(-1, n_actions),
            np.asarray(next_observations, dtype=np.float64).reshape(-1, n_states),
            np.asarray(rewards, dtype=np.float64).reshape(-1, 1),
        ],
        axis=1,
    )
    if data.shape[1] != len(names):
        raise ValueError(f"data have {data.shape[1]} columns for {len(names)} variables {names}")
    if not np.all(np.isfinite(data)):
        raise ValueError("transitions contain NaN or infinite values; cannot test independence")
    if max_samples is not None and data.shape[0] > max_samples:
        data = data[-max_samples:]
    n = data.shape[0]
    n_inputs = n_states + n_actions

    def result(graph: CausalGraph, constant: list[str], fallback: str | None) -> StructureResult:
        return StructureResult(graph, n, time.perf_counter() - start, constant, fallback)

    complete = complete_local_graph(state_names, action_names)
    if n < MIN_SAMPLES:
        return result(complete, [], f"only {n} transitions (PC needs at least {MIN_SAMPLES})")

    spread = data.max(axis=0) - data.min(axis=0)
    scale = np.maximum(np.abs(data).max(axis=0), 1.0)
    is_constant = spread <= 1e-12 * scale
    constant = [names[i] for i in np.flatnonzero(is_constant)]
    keep = np.flatnonzero(~is_constant)
    kept_inputs = [i for i in keep if i < n_inputs]
    kept_targets = [i for i in keep if i >= n_inputs]
    if not kept_inputs or not kept_targets:
        return result(CausalGraph(names), constant, None)

    # One PC run per target over (kept inputs, target): targets are sinks with no edges among them, so
    # dropping the other targets leaves the structure over the rest unchanged, and the tests of an input
    # against a target condition on inputs only (conditioning on a sibling target such as X' when testing
    # X -> r is valid but has little power: X' is nearly a copy of X).
    features = data[:, kept_inputs]
    owner = list(kept_inputs)  # input variable of each feature column
    if square_features:
        squares = (features - features.mean(axis=0)) ** 2
        varied = squares.max(axis=0) - squares.min(axis=0) > 1e-12 * np.maximum(np.abs(squares).max(axis=0), 1.0)
        features = np.concatenate([features, squares[:, varied]], axis=1)
        owner += [v for v, ok in zip(kept_inputs, varied) if ok]
    n_feat = features.shape[1]
    pc_names = [f"v{k}" for k in range(n_feat + 1)]
    edges: list[tuple[str, str]] = []
    for target in kept_targets:
        knowledge = BackgroundKnowledge()
        for k, name in enumerate(pc_names):
            knowledge.add_node_to_tier(GraphNode(name), 0 if k < n_feat else 1)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = pc(
                    np.concatenate([features, data[:, [target]]], axis=1),
                    alpha=alpha,
                    indep_test=fisherz,
                    background_knowledge=knowledge,
                    show_progress=False,
                    node_names=pc_names,
                )
        except (ValueError, np.linalg.LinAlgError, ZeroDivisionError) as exc:
            return result(complete, constant, f"PC failed on {names[target]!r} ({exc}); using the complete graph")
        adjacent = np.asarray(found.G.graph)[:n_feat, n_feat] != 0
        parents = sorted({owner[k] for k in np.flatnonzero(adjacent)})
        edges += [(names[p], names[target]) for p in parents]
    return result(CausalGraph(names, edges), constant, None)
