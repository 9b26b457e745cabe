"""The initial (observational) causal graph: one entry point over every method.

``initial_graph(method, variables, ...)`` returns a :class:`CausalGraph` over ``variables`` learned from
recorded data, or a fixed baseline:

- ``"thp"``: Topological Hawkes Process on an alarm event log (``alarm_log=``), see
  :class:`~sb3_causal.discovery.thp.TopologicalHawkes`;
- ``"pc"`` / ``"ges"``: causal-learn on lagged state data (``states=``, ``episode_starts=``) with time
  tiers; ``"pcmci"``: tigramite (optional GPL extra) on the same data, episode-aware; see
  :mod:`sb3_causal.discovery.observational` (units are pooled as samples);
- ``"empty"``, ``"full"`` (every edge of the given variable order), ``"random"`` (seeded);
- a :class:`CausalGraph` given by the user, returned as a copy over ``variables``.

Options of a method go through ``**method_kwargs`` (e.g. ``alpha=0.05`` for PC, ``pair_cap=11`` for THP).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sb3_causal.discovery.observational import ges_lagged, pc_lagged, pcmci_lagged
from sb3_causal.discovery.thp import TopologicalHawkes
from sb3_causal.graph import CausalGraph
from sb3_causal.variables import CausalVariables

if TYPE_CHECKING:  # annotation only: discovery does not depend on SB3 at run time
    from stable_baselines3.common.vec_env import VecEnv

__all__ = ["DEFAULT_N_EVENTS", "INITIAL_METHODS", "initial_graph", "initial_graph_for_env"]

INITIAL_METHODS = ("thp", "pc", "ges", "pcmci", "empty", "random", "full")
_STATE_METHODS = {"pc": pc_lagged, "ges": ges_lagged, "pcmci": pcmci_lagged}


def initial_graph(
    method: str | CausalGraph,
    variables: Sequence[str],
    *,
    alarm_log: Any | None = None,
    states: np.ndarray | None = None,
    episode_starts: np.ndarray | None = None,
    layout: CausalVariables | None = None,
    seed: int | None = None,
    **method_kwargs: Any,
) -> CausalGraph:
    """Build the initial causal graph over ``variables``.

    :param method: one of :data:`INITIAL_METHODS`, or a user-given :class:`CausalGraph`
    :param variables: variable names; the returned graph's variables, in this order
    :param alarm_log: an ``AlarmLog`` (event times, devices, types, topology) for ``"thp"``; its
        ``type_names`` must be the same names as ``variables`` (any order)
    :param states: state values in time order for ``"pc"``, ``"ges"``, ``"pcmci"``: ``(T, n_units, n_variables)``,
        ``(T, n_variables)`` for one unit, or flat observations ``(T, obs_dim)`` together with ``layout``
    :param episode_starts: ``(T,)`` bool, True where a new episode begins (no step is paired across it);
        None means the states are one episode
    :param layout: the env's :class:`CausalVariables`; its names must match ``variables``, and it maps flat
        observations in ``states`` to ``(T, n_units, n_variables)``
    :param seed: seed of ``"random"`` (the other methods are deterministic)
    :param method_kwargs: options of the method: :class:`TopologicalHawkes` parameters (plus ``sequence_ids``)
        for ``"thp"``; keyword arguments of :func:`pc_lagged`, :func:`ges_lagged`, :func:`pcmci_lagged`;
        ``n_edges`` for ``"random"`` (default: as many edges as variables)
    :return: a new :class:`CausalGraph` over ``variables``
    """
    names = [str(v) for v in variables]
    if not names:
        raise ValueError("initial_graph needs at least one variable name")
    if len(set(names)) != len(names):
        raise ValueError(f"variables must be unique; repeated: {sorted({v for v in names if names.count(v) > 1})}")
    if layout is not None and list(layout.names) != names:
        raise ValueError(f"layout names {list(layout.names)} do not match variables {names}")

    if isinstance(method, CausalGraph):
        _no_options("a user-given graph", method_kwargs)
        if set(method.variables) != set(names):
            differing = sorted(set(method.variables) ^ set(names))
            raise ValueError(f"the given CausalGraph is over other variables than {names}; differing: {differing}")
        return CausalGraph(names, method.edges)
    if not isinstance(method, str):
        raise TypeError(f"method must be a name in {INITIAL_METHODS} or a CausalGraph, got {type(method).__name__}")
    key = method.lower()
    if key not in INITIAL_METHODS:
        raise ValueError(
            f"unknown initial graph method {method!r}; choose one of {INITIAL_METHODS} or pass a CausalGraph"
        )

    if key == "empty":
        _no_options(key, method_kwargs)
        return CausalGraph.empty(names)
    if key == "full":
        _no_options(key, method_kwargs)
        return CausalGraph.full(names)
    if key == "random":
        n_edges = method_kwargs.pop("n_edges", None)
        _no_options(key, method_kwargs)
        return CausalGraph.random(names, n_edges=n_edges, seed=seed)
    if key == "thp":
        return _thp(names, alarm_log, method_kwargs)
    if states is None:
        raise ValueError(
            f"method {key!r} learns from state data: pass states=(T, n_units, n_variables) array "
            "(and episode_starts=(T,) bool where episodes begin)"
        )
    return _STATE_METHODS[key](_as_unit_states(states, layout, len(names)), episode_starts, names, **method_kwargs)


def _thp(names: list[str], alarm_log: Any, options: dict[str, Any]) -> CausalGraph:
    if alarm_log is None:
        raise ValueError(
            "method 'thp' learns from an alarm event log: pass alarm_log= (e.g. env.record_alarm_log(2000))"
        )
    log_names = [str(v) for v in getattr(alarm_log, "type_names", ())]
    if set(log_names) != set(names) or len(log_names) != len(names):
        raise ValueError(f"alarm_log type names {log_names} do not match variables {names}")
    # A log that records its episodes and its per-pair cap (FaultAlarmRL's does) supplies them by default.
    sequence_ids = options.pop("sequence_ids", getattr(alarm_log, "sequences", None))
    options.setdefault("pair_cap", getattr(alarm_log, "pair_limit", None))
    learned = TopologicalHawkes(**options).fit(alarm_log, sequence_ids=sequence_ids)
    return CausalGraph(names, learned.edges)


def _as_unit_states(states: np.ndarray, layout: CausalVariables | None, n_variables: int) -> np.ndarray:
    """``(T, n_units, n_variables)`` state values; flat observations are mapped through ``layout``."""
    states = np.asarray(states)
    if layout is None or states.ndim == 3:
        if layout is not None and states.shape[1:] != (layout.n_units, n_variables):
            raise ValueError(
                f"states has shape {states.shape}; the layout expects (T, {layout.n_units}, {n_variables})"
            )
        return states
    if states.ndim != 2 or states.shape[1] < layout.obs_size:
        raise ValueError(
            f"with a layout, states must be flat observations (T, obs_dim >= {layout.obs_size}) or "
            f"(T, {layout.n_units}, {n_variables}); got shape {states.shape}"
        )
    return layout.values(states)


def _no_options(method: str, options: dict[str, Any]) -> None:
    if options:
        raise ValueError(f"{method} takes no options; got {sorted(options)}")


#: observational alarm events recorded for a ``"thp"`` initial graph
DEFAULT_N_EVENTS = 2000


def initial_graph_for_env(
    initial: str | CausalGraph,
    env: VecEnv,
    layout: CausalVariables,
    seed: int | None = None,
    n_events: int = DEFAULT_N_EVENTS,
    **kwargs: Any,
) -> CausalGraph:
    """Build an initial graph for ``env``: a given graph, or a method of :func:`initial_graph`.

    ``"thp"`` records ``n_events`` observational alarm events from the env's ``record_alarm_log``
    (FaultAlarmRL has one) unless an ``alarm_log`` is passed in ``kwargs``.
    """
    if isinstance(initial, CausalGraph):
        return initial_graph(initial, layout.names)
    if initial == "thp" and "alarm_log" not in kwargs:
        if not env.has_attr("record_alarm_log"):  # never call a missing method: it kills a SubprocVecEnv worker
            raise ValueError(
                "initial graph 'thp' needs an alarm event log: the env has no record_alarm_log(n_events, seed); "
                "pass alarm_log=... in initial_kwargs"
            )
        kwargs["alarm_log"] = env.env_method("record_alarm_log", n_events, seed, indices=[0])[0]
    return initial_graph(initial, layout.names, layout=layout, seed=seed, **kwargs)
