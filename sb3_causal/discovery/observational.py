"""Type-level causal graphs from recorded state trajectories: lagged PC and GES (causal-learn), PCMCI (tigramite).

The data are per-step state values ``states[t, unit, variable]`` (for FaultAlarmRL: the alarm count of
each (device, type) pair) with ``episode_starts[t]`` True where a new episode begins. A step is never
paired with the first step of the next episode.

**Units are pooled as samples.** The graph is over variables shared by all units, so each
``(unit, t)`` pair contributes one sample ``(x_t, x_{t+1})`` of the variables of that unit. This
ignores effects that cross units (FaultAlarmRL's hop-1 propagation between neighbouring devices); a
cross-unit effect only shows up through the unit's own variables. With one unit this is the plain
time-series setting.

**Lagged variables and tiers (PC, GES).** Each sample has ``2 * n_variables`` columns: the
variables at ``t`` (tier 0) then at ``t + 1`` (tier 1). Time order forbids any edge from tier 1 to
tier 0 (causal-learn background knowledge for PC; for GES, which takes no background knowledge in
causal-learn, every adjacency between the tiers is read as pointing forward in time, which is what
the tier constraint implies). The type graph has ``v -> w`` when ``v_t`` and ``w_{t+1}`` are
adjacent, ``v != w``; with ``contemporaneous=True`` a directed edge ``v_{t+1} -> w_{t+1}`` also counts.

**Cycles.** Lagged edges between types can point both ways (``v_t -> w_{t+1}`` and
``w_t -> v_{t+1}``); :func:`break_cycles` repeatedly finds a cycle and drops its weakest edge, the
strength of ``v -> w`` being ``|corr(v_t, w_{t+1})|`` (PC, GES) or PCMCI's ``|val_matrix|``.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from typing import Any

import networkx as nx
import numpy as np

from sb3_causal.graph import CausalGraph

__all__ = ["break_cycles", "check_states", "ges_lagged", "lagged_samples", "pc_lagged", "pcmci_lagged"]


# ---------------------------------------------------------------------- data
def check_states(
    states: np.ndarray, episode_starts: np.ndarray | None, n_variables: int
) -> tuple[np.ndarray, np.ndarray]:
    """Validate state data; return ``states`` as float ``(T, n_units, n_variables)`` and ``episode_starts`` (T,) bool.

    :param states: ``(T, n_units, n_variables)``, or ``(T, n_variables)`` for one unit
    :param episode_starts: ``(T,)`` True where an episode begins; None means one episode
    :param n_variables: number of variables expected on the last axis
    """
    states = np.asarray(states, dtype=np.float64)
    if states.ndim == 2:
        states = states[:, None, :]
    if states.ndim != 3:
        raise ValueError(f"states must have shape (T, n_units, n_variables), got {states.shape}")
    if states.shape[0] == 0 or states.shape[1] == 0:
        raise ValueError(f"states is empty (shape {states.shape}): record some steps first")
    if states.shape[2] != n_variables:
        raise ValueError(f"states has {states.shape[2]} variables on its last axis, expected {n_variables}")
    if not np.all(np.isfinite(states)):
        raise ValueError("states contains NaN or infinite values")
    if episode_starts is None:
        starts = np.zeros(states.shape[0], dtype=bool)
    else:
        starts = np.asarray(episode_starts)
        if starts.shape != (states.shape[0],):
            raise ValueError(
                f"episode_starts must have shape ({states.shape[0]},) like states' time axis, got {starts.shape}"
            )
        starts = starts.astype(bool)
    starts = starts.copy()
    starts[0] = True
    return states, starts


def lagged_samples(states: np.ndarray, episode_starts: np.ndarray) -> np.ndarray:
    """Samples ``[x_t, x_{t+1}]`` of shape ``(n_samples, 2 * n_variables)``, units pooled, within episodes only.

    :param states: ``(T, n_units, n_variables)``
    :param episode_starts: ``(T,)`` bool, True where an episode begins
    """
    keep = ~episode_starts[1:]  # step t pairs with t + 1 unless t + 1 starts a new episode
    now, nxt = states[:-1][keep], states[1:][keep]  # (n_pairs, n_units, V)
    n_vars = states.shape[2]
    return np.concatenate([now.reshape(-1, n_vars), nxt.reshape(-1, n_vars)], axis=1)


def _check_samples(data: np.ndarray, variables: Sequence[str], min_per_column: int = 2) -> None:
    n_samples, n_cols = data.shape
    if n_samples < min_per_column * n_cols:
        raise ValueError(
            f"too few samples for lagged structure learning: {n_samples} (t, t+1) pairs for {n_cols} lagged "
            f"columns; need at least {min_per_column * n_cols}. Record more steps (or longer episodes)."
        )
    n_vars = len(variables)
    constant = np.flatnonzero(np.ptp(data, axis=0) == 0)
    if constant.size:
        names = sorted({f"{variables[c % n_vars]}@{'t+1' if c >= n_vars else 't'}" for c in constant})
        raise ValueError(
            f"constant columns in the lagged state data (no variation, so no test or score is defined): {names}. "
            "Record data in which every variable varies, or leave those variables out."
        )


def _lag_correlation(data: np.ndarray, n_vars: int) -> np.ndarray:
    """``|corr(v_t, w_{t+1})|`` for every pair, the strength used to break cycles."""
    corr = np.corrcoef(data, rowvar=False)
    return np.abs(corr[:n_vars, n_vars:])


# ---------------------------------------------------------------------- PC / GES
def pc_lagged(
    states: np.ndarray,
    episode_starts: np.ndarray | None,
    variables: Sequence[str],
    alpha: float = 0.01,
    indep_test: str = "fisherz",
    contemporaneous: bool = False,
    max_k: int | None = None,
) -> CausalGraph:
    """PC (causal-learn) on lagged state data with time tiers; the type-level graph.

    :param states: ``(T, n_units, n_variables)`` state values in time order
    :param episode_starts: ``(T,)`` True where an episode begins (None: one episode)
    :param variables: variable names, the order of the last axis of ``states``
    :param alpha: significance level of the independence tests
    :param indep_test: causal-learn test name (``"fisherz"``, ``"kci"``, ...)
    :param contemporaneous: also report directed edges within the ``t + 1`` slice
    :param max_k: optional bound on the size of conditioning sets
    """
    from causallearn.graph.GraphNode import GraphNode
    from causallearn.search.ConstraintBased.PC import pc
    from causallearn.utils.PCUtils.BackgroundKnowledge import BackgroundKnowledge

    n_vars = len(variables)
    states, starts = check_states(states, episode_starts, n_vars)
    data = lagged_samples(states, starts)
    _check_samples(data, variables)
    names = [f"x{i}_t" for i in range(n_vars)] + [f"x{i}_t1" for i in range(n_vars)]
    knowledge = BackgroundKnowledge()
    for i, name in enumerate(names):
        knowledge.add_node_to_tier(GraphNode(name), int(i >= n_vars))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cg = pc(
            data,
            alpha=alpha,
            indep_test=indep_test,
            background_knowledge=knowledge,
            show_progress=False,
            node_names=names,
            max_k=max_k,
        )
    return _type_graph(cg.G.graph, data, variables, contemporaneous)


def ges_lagged(
    states: np.ndarray,
    episode_starts: np.ndarray | None,
    variables: Sequence[str],
    score_func: str = "local_score_BIC",
    max_parents: int | None = None,
    contemporaneous: bool = False,
) -> CausalGraph:
    """GES (causal-learn) on lagged state data; adjacencies across the time tiers point forward in time.

    :param states: ``(T, n_units, n_variables)`` state values in time order
    :param episode_starts: ``(T,)`` True where an episode begins (None: one episode)
    :param variables: variable names, the order of the last axis of ``states``
    :param score_func: causal-learn score (``"local_score_BIC"``, ``"local_score_BDeu"``, ...)
    :param max_parents: optional bound on parents per node in the search
    :param contemporaneous: also report directed edges within the ``t + 1`` slice
    """
    from causallearn.search.ScoreBased.GES import ges

    n_vars = len(variables)
    states, starts = check_states(states, episode_starts, n_vars)
    data = lagged_samples(states, starts)
    _check_samples(data, variables)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        record = ges(data, score_func=score_func, maxP=max_parents)
    return _type_graph(record["G"].graph, data, variables, contemporaneous)


def _type_graph(
    endpoints: np.ndarray, data: np.ndarray, variables: Sequence[str], contemporaneous: bool
) -> CausalGraph:
    """Read causal-learn's endpoint matrix over lagged columns into a type-level DAG.

    causal-learn's convention: ``G[j, i] == 1 and G[i, j] == -1`` is ``i -> j``; any non-zero pair is an adjacency.
    """
    n = len(variables)
    adjacent = (endpoints != 0) | (endpoints.T != 0)
    adjacency = adjacent[:n, n:].copy()  # v_t -- w_{t+1}: time orients it v -> w
    if contemporaneous:
        within = endpoints[n:, n:]
        adjacency |= (within.T == 1) & (within == -1)  # [a, b]: a_{t+1} -> b_{t+1}
    np.fill_diagonal(adjacency, False)  # a variable's own lag is persistence, not a graph edge
    return CausalGraph.from_adjacency(variables, break_cycles(adjacency, _lag_correlation(data, n)))


# ---------------------------------------------------------------------- PCMCI
def pcmci_lagged(
    states: np.ndarray,
    episode_starts: np.ndarray | None,
    variables: Sequence[str],
    tau_max: int = 1,
    pc_alpha: float | None = 0.05,
    alpha_level: float = 0.01,
    cond_ind_test: Any = None,
) -> CausalGraph:
    """PCMCI (tigramite, optional GPL extra) on state data; ``v -> w`` when some lag ``1..tau_max`` is significant.

    Every (episode, unit) is one tigramite dataset (``analysis_mode="multiple"``), so no lag spans an
    episode boundary and units are pooled as samples; episodes of ``tau_max`` steps or fewer are skipped.

    :param states: ``(T, n_units, n_variables)`` state values in time order
    :param episode_starts: ``(T,)`` True where an episode begins (None: one episode)
    :param variables: variable names, the order of the last axis of ``states``
    :param tau_max: largest lag tested
    :param pc_alpha: significance level of PCMCI's condition-selection (PC1) phase (None: tigramite selects it)
    :param alpha_level: significance level of the MCI tests that decide the links
    :param cond_ind_test: a tigramite conditional independence test (default ``ParCorr()``)
    """
    try:
        from tigramite import data_processing
        from tigramite.independence_tests.parcorr import ParCorr
        from tigramite.pcmci import PCMCI
    except ImportError as exc:
        raise ImportError(
            "the 'pcmci' initial graph needs tigramite (GPL-3.0, an optional extra): pip install 'sb3-causal[pcmci]'"
        ) from exc

    n_vars = len(variables)
    if tau_max < 1:
        raise ValueError(f"tau_max must be >= 1 (lagged links only), got {tau_max}")
    states, starts = check_states(states, episode_starts, n_vars)
    bounds = np.r_[np.flatnonzero(starts), states.shape[0]]
    datasets: dict[int, np.ndarray] = {}
    for begin, end in itertools.pairwise(bounds):
        if end - begin <= tau_max:
            continue
        for unit in range(states.shape[1]):
            datasets[len(datasets)] = states[begin:end, unit, :]
    n_samples = sum(d.shape[0] - tau_max for d in datasets.values())
    if n_samples < 2 * n_vars * (tau_max + 1):
        raise ValueError(
            f"too few samples for PCMCI: {n_samples} lagged samples for {n_vars} variables and tau_max={tau_max}; "
            f"need at least {2 * n_vars * (tau_max + 1)}. Record more steps (or longer episodes)."
        )
    pooled = np.concatenate(list(datasets.values()))
    constant = [variables[i] for i in np.flatnonzero(np.ptp(pooled, axis=0) == 0)]
    if constant:
        raise ValueError(f"constant variables in the state data (no test is defined for them): {constant}")
    frame = data_processing.DataFrame(datasets, analysis_mode="multiple", var_names=list(variables))
    pcmci = PCMCI(dataframe=frame, cond_ind_test=cond_ind_test if cond_ind_test is not None else ParCorr(), verbosity=0)
    results = pcmci.run_pcmci(tau_min=1, tau_max=tau_max, pc_alpha=pc_alpha, alpha_level=alpha_level)
    links = (results["graph"][:, :, 1:] == "-->").any(axis=2)  # [v, w]: v at t - tau -> w at t
    np.fill_diagonal(links, False)
    strength = np.abs(results["val_matrix"][:, :, 1:]).max(axis=2)
    return CausalGraph.from_adjacency(variables, break_cycles(links, strength))


# ---------------------------------------------------------------------- cycles
def break_cycles(adjacency: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """Make a directed graph acyclic by repeatedly dropping the weakest edge of some cycle.

    :param adjacency: ``(n, n)`` bool, ``[i, j]`` an edge i -> j (the diagonal is ignored)
    :param strength: ``(n, n)`` edge strengths (larger is stronger); among equally weak edges the smallest (i, j) goes
    :return: an acyclic copy of ``adjacency``
    """
    adj = np.asarray(adjacency, dtype=bool).copy()
    np.fill_diagonal(adj, False)
    graph = nx.DiGraph()
    graph.add_nodes_from(range(adj.shape[0]))
    graph.add_edges_from(zip(*np.nonzero(adj)))
    while True:
        try:
            cycle = nx.find_cycle(graph)
        except nx.NetworkXNoCycle:
            return adj
        u, v = min(((int(a), int(b)) for a, b in cycle), key=lambda e: (strength[e], e))
        graph.remove_edge(u, v)
        adj[u, v] = False
