"""Local causal structure of one transition: which of ``(s, a)`` are parents of each ``s'_j`` and of ``r``.

The local graph is bipartite over ``inputs = states + actions`` and ``targets = next states + reward``:
next-state ``j`` is named ``"<state name>'"`` and the reward ``"r"``. It is learned with causal-learn's PC
(Fisher-z tests) on real transitions, with background knowledge in two tiers, ``(s, a)`` before ``(s', r)``,
so an edge between an input and a target can only point into the target, and the parents of a target
are its PC neighbours among the inputs. PC runs once per target, on the inputs and that target.

Fisher-z tests partial *linear* correlation. Transition mechanisms are rarely linear (SpuriousCorrelation's
reward is ``0.1 (1 - X^2)``), and a linear test then both misses parents and invents them: the part of
``r`` that is quadratic in ``X`` stays in the residual, where a proxy of ``X`` such as ``Z`` (or an action
that is a saturating function of ``X``) explains some of it. ``test="quadratic_fisherz"`` (the default)
is the same Gaussian partial-correlation test on a quadratic basis of the inputs: an input ``V`` enters as
``(V, V^2)`` (a target as itself), and ``X _||_ Y | S`` is Wilks' likelihood-ratio test that the partial
canonical correlations of ``basis(X)`` and ``basis(Y)`` given ``basis(S)`` are zero (Bartlett's
chi-square; with one column each it is Fisher-z's test). For a target ``t`` that is the F-like test of
whether ``(X, X^2)`` adds to a quadratic regression of ``t`` on ``S``. Squaring the target too would ask
the conditioning set to explain ``t^2``, a quartic of the inputs, and invent parents again. The test is
registered with causal-learn and runs inside its PC; ``test="fisherz"`` is plain Fisher-z.
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


def _quadratic_fisherz_class() -> type:
    """The quadratic-basis partial-correlation test as a causal-learn ``CIT_Base`` (imported lazily)."""
    from causallearn.utils.cit import NO_SPECIFIED_PARAMETERS_MSG, CIT_Base
    from scipy.stats import chi2

    class _QuadraticFisherZ(CIT_Base):
        def __init__(self, data: np.ndarray, squared: np.ndarray | None = None, **kwargs: object) -> None:
            super().__init__(data, **kwargs)
            self.check_cache_method_consistent(QUADRATIC_FISHERZ, NO_SPECIFIED_PARAMETERS_MSG)
            self.assert_input_data_is_valid()
            z = (data - data.mean(axis=0)) / data.std(axis=0)
            sq = z**2
            # a square that is (nearly) linear in its variable (e.g. a binary one) adds nothing: left out
            keep_sq = np.abs([np.corrcoef(z[:, k], sq[:, k])[0, 1] for k in range(z.shape[1])]) < 0.999
            keep_sq &= sq.std(axis=0) > 1e-8
            if squared is not None:
                keep_sq &= np.asarray(squared, dtype=bool)
            basis = np.concatenate([z, sq[:, keep_sq]], axis=1)
            self.columns = [[k] for k in range(z.shape[1])]
            for b, k in enumerate(np.flatnonzero(keep_sq)):
                self.columns[k].append(z.shape[1] + b)
            self.cov = np.cov(basis, rowvar=False)

        def _logdet(self, cols: list[int]) -> float:
            if not cols:
                return 0.0
            sign, value = np.linalg.slogdet(self.cov[np.ix_(cols, cols)])
            if sign <= 0:
                raise ValueError("Data correlation matrix is singular (collinear variables); cannot run the test.")
            return float(value)

        def __call__(self, X, Y, condition_set=None) -> float:
            xs, ys, cond, cache_key = self.get_formatted_XYZ_and_cachekey(X, Y, condition_set)
            if cache_key in self.pvalue_cache:
                return self.pvalue_cache[cache_key]
            a = [c for v in xs for c in self.columns[v]]
            b = [c for v in ys for c in self.columns[v]]
            s = [c for v in cond for c in self.columns[v]]
            log_wilks = self._logdet(a + b + s) + self._logdet(s) - self._logdet(a + s) - self._logdet(b + s)
            scale = self.sample_size - 1 - len(s) - (len(a) + len(b) + 1) / 2
            stat = max(-scale * min(log_wilks, 0.0), 0.0)
            p = float(chi2.sf(stat, len(a) * len(b)))
            self.pvalue_cache[cache_key] = p
            return p

    return _QuadraticFisherZ


QUADRATIC_FISHERZ = "quadratic_fisherz"
TESTS = ("quadratic_fisherz", "fisherz")


def _register_quadratic_fisherz() -> None:
    from causallearn.utils import cit

    if QUADRATIC_FISHERZ not in cit._custom_ci_tests:
        cit.register_ci_test(QUADRATIC_FISHERZ, _quadratic_fisherz_class())


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
    test: str = QUADRATIC_FISHERZ,
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
    :param test: ``"quadratic_fisherz"`` (partial correlations on ``(V, V^2)``) or ``"fisherz"`` (linear)
    """
    from causallearn.graph.GraphNode import GraphNode
    from causallearn.search.ConstraintBased.PC import pc
    from causallearn.utils.PCUtils.BackgroundKnowledge import BackgroundKnowledge

    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")
    _register_quadratic_fisherz()
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
    n_in = len(kept_inputs)
    pc_names = [f"v{k}" for k in range(n_in + 1)]
    edges: list[tuple[str, str]] = []
    for target in kept_targets:
        knowledge = BackgroundKnowledge()
        for k, name in enumerate(pc_names):
            knowledge.add_node_to_tier(GraphNode(name), 0 if k < n_in else 1)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = pc(
                    data[:, [*kept_inputs, target]],
                    alpha=alpha,
                    indep_test=test,
                    background_knowledge=knowledge,
                    show_progress=False,
                    node_names=pc_names,
                    **({"squared": np.arange(n_in + 1) < n_in} if test == QUADRATIC_FISHERZ else {}),
                )
        except (ValueError, np.linalg.LinAlgError, ZeroDivisionError) as exc:
            return result(complete, constant, f"PC failed on {names[target]!r} ({exc}); using the complete graph")
        adjacent = np.asarray(found.G.graph)[:n_in, n_in] != 0
        parents = [kept_inputs[k] for k in np.flatnonzero(adjacent)]
        edges += [(names[p], names[target]) for p in parents]
    return result(CausalGraph(names, edges), constant, None)
