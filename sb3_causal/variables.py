"""How a gymnasium env's observations and actions map onto causal variables.

A causal graph is over *variables* (e.g. FaultAlarmRL's 18 alarm types). An env may replicate
them over *units* (its 50 devices) linked by a topology: state value ``(unit, variable)`` is one
observation entry, and an action intervenes on one ``(unit, variable)`` (or on none).

An env declares its layout with a ``causal_variables`` attribute; otherwise the one obvious
default applies (a flat Box observation of n entries and Discrete(n) or Discrete(n + 1) actions,
action k intervening on entry k, the extra action doing nothing), and anything else is a clear
error asking for an explicit layout.

What a no-op action buys: with a single unit, the online learner compares transitions that
intervened on variable i with control transitions that did not. With a do-nothing action
(``Discrete(n + 1)``) the controls are clean; without one, every control is itself an intervention
on some other variable, which can orient an edge backwards on small graphs (the learner warns).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_causal.topology import Topology

__all__ = ["CausalVariables", "VariableLayoutError"]

ENV_ATTRIBUTE = "causal_variables"


class VariableLayoutError(ValueError):
    """The env's spaces cannot be mapped onto causal variables without an explicit layout."""


@dataclass(frozen=True)
class CausalVariables:
    """A layout of causal variables in an env.

    :param names: variable names; a causal graph over them is what the learners estimate
    :param obs_index: ``(n_units, n_variables)`` index of each state value in the flat observation
    :param action_target: ``(n_actions,)`` flat target ``unit * n_variables + variable`` of each
        action, or -1 for an action that intervenes on nothing
    :param topology: ``(n_units, n_units)`` symmetric unit adjacency, or None when units do not
        influence each other (only hop 0)
    :param n_hops: topology hops a cause reaches: 1 means the same unit only, 2 adds topology
        neighbours, ...; ``None``: not declared, the online learner chooses it from data
    :param unit_names: optional names of the units
    :param intervenes_when_inactive: whether an action on a variable whose value is inactive (zero)
        is an intervention. True (default) for set-to-value or shift interventions, which change
        the next state whatever the current one; False where acting on an inactive variable does
        nothing (FaultAlarmRL: treating a device with no alarm of that type)
    """

    names: tuple[str, ...]
    obs_index: np.ndarray
    action_target: np.ndarray
    topology: np.ndarray | None = None
    n_hops: int | None = 1
    unit_names: tuple[str, ...] = field(default=())
    intervenes_when_inactive: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(str(n) for n in self.names))
        obs_index = np.asarray(self.obs_index, dtype=np.int64)
        if obs_index.ndim == 1:
            obs_index = obs_index[None, :]
        object.__setattr__(self, "obs_index", obs_index)
        object.__setattr__(self, "action_target", np.asarray(self.action_target, dtype=np.int64).ravel())
        if obs_index.ndim != 2 or obs_index.shape[1] != len(self.names):
            raise VariableLayoutError(
                f"obs_index must have shape (n_units, {len(self.names)}) for {len(self.names)} variables, "
                f"got {obs_index.shape}"
            )
        if (obs_index < 0).any():
            raise VariableLayoutError("obs_index entries must be non-negative observation indices")
        n_targets = obs_index.size
        bad = (self.action_target < -1) | (self.action_target >= n_targets)
        if bad.any():
            raise VariableLayoutError(
                f"action_target entries must be -1 or in [0, {n_targets}); action {int(np.argmax(bad))} is not"
            )
        if self.topology is not None:
            topo = np.asarray(self.topology).astype(bool)
            if topo.shape != (self.n_units, self.n_units) or not np.array_equal(topo, topo.T):
                raise VariableLayoutError(f"topology must be a symmetric ({self.n_units}, {self.n_units}) matrix")
            object.__setattr__(self, "topology", topo)
        if self.n_hops is not None and (isinstance(self.n_hops, bool) or int(self.n_hops) < 1):
            raise VariableLayoutError(f"n_hops must be >= 1 or None (chosen from data), got {self.n_hops!r}")
        if self.unit_names and len(self.unit_names) != self.n_units:
            raise VariableLayoutError(f"unit_names has {len(self.unit_names)} names for {self.n_units} units")

    # ------------------------------------------------------------------ sizes
    @property
    def n_variables(self) -> int:
        return len(self.names)

    @property
    def n_units(self) -> int:
        return int(self.obs_index.shape[0])

    @property
    def n_actions(self) -> int:
        return int(self.action_target.size)

    @property
    def obs_size(self) -> int:
        """Smallest flat observation size this layout can index."""
        return int(self.obs_index.max()) + 1

    # ------------------------------------------------------------------ mapping
    def values(self, obs: np.ndarray, copy: bool = True) -> np.ndarray:
        """State values ``(..., n_units, n_variables)`` from flat observations ``(..., obs_dim)``.

        :param copy: ``False``: a view of ``obs`` where the observation indices are evenly spaced (e.g.
            FaultAlarmRL's every other entry), a copy otherwise; for read-only use on hot paths (the mask,
            the learner's ``observe``), where the gather copy was half the cost of reading a batch (measured)
        """
        obs = np.asarray(obs)
        flat = obs.reshape(*obs.shape[: obs.ndim - 1], -1) if obs.ndim > 1 else obs.reshape(-1)
        if copy or self._obs_slice is None:
            return flat[..., self.obs_index]
        return flat[..., self._obs_slice].reshape(*flat.shape[:-1], *self.obs_index.shape)

    @cached_property
    def _obs_slice(self) -> slice | None:
        """The slice selecting the flat ``obs_index`` in order, when its indices are evenly spaced (else None)."""
        flat = self.obs_index.reshape(-1)
        if flat.size < 2:
            return None
        step = int(flat[1] - flat[0])
        if step < 1 or (np.diff(flat) != step).any():
            return None
        return slice(int(flat[0]), int(flat[0]) + step * flat.size, step)

    def targets(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(unit, variable)`` intervened on by each action; both -1 for a no-op action."""
        target = self.action_target[np.asarray(actions, dtype=np.int64)]
        unit = np.where(target >= 0, target // self.n_variables, -1)
        var = np.where(target >= 0, target % self.n_variables, -1)
        return unit, var

    @cached_property
    def unit_topology(self) -> Topology:
        """The units' :class:`~sb3_causal.topology.Topology` (sparse hop distances and weights)."""
        return Topology(self.topology, n_units=self.n_units)

    def unit_distances(self, max_distance: int) -> np.ndarray:
        """Dense ``D[n, m]``: hop distance between units n and m if at most ``max_distance``, else -1
        (see :meth:`Topology.distances`; for large topologies use :attr:`unit_topology` directly)."""
        return self.unit_topology.distances(max_distance)

    def check_env(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        """Raise :class:`VariableLayoutError` when this layout does not fit the env's spaces."""
        if not isinstance(action_space, spaces.Discrete):
            raise VariableLayoutError(
                f"causal variables need a Discrete action space (one intervention per action), got {action_space}"
            )
        if int(action_space.n) != self.n_actions:
            raise VariableLayoutError(
                f"layout maps {self.n_actions} actions but the action space is Discrete({action_space.n})"
            )
        if not isinstance(observation_space, spaces.Box):
            raise VariableLayoutError(f"causal variables need a Box observation space, got {observation_space}")
        if int(np.prod(observation_space.shape)) < self.obs_size:
            raise VariableLayoutError(
                f"layout indexes {self.obs_size} observation entries but the observation has "
                f"{int(np.prod(observation_space.shape))}"
            )

    # ------------------------------------------------------------------ construction
    @classmethod
    def factored(
        cls,
        n_variables: int,
        names: Sequence[str] | None = None,
        action_map: Sequence[int] | np.ndarray | None = None,
        intervenes_when_inactive: bool = True,
    ) -> CausalVariables:
        """A plain factored layout: observation entry k is variable k, one unit.

        :param action_map: variable intervened on by each action (-1: none); default action k -> variable k
        :param intervenes_when_inactive: see the class documentation
        """
        names = tuple(names) if names is not None else tuple(f"x{k}" for k in range(n_variables))
        if len(names) != n_variables:
            raise VariableLayoutError(f"{len(names)} names for {n_variables} variables")
        action_map = np.arange(n_variables) if action_map is None else np.asarray(action_map)
        return cls(
            names=names,
            obs_index=np.arange(n_variables)[None, :],
            action_target=action_map,
            intervenes_when_inactive=intervenes_when_inactive,
        )

    @classmethod
    def from_env(cls, env: Any) -> CausalVariables:
        """The env's declared layout (attribute ``causal_variables``), else the factored default.

        Accepts a gymnasium env (wrappers are looked through) or an SB3 VecEnv.
        """
        declared = _declared_layout(env)
        obs_space, act_space = env.observation_space, env.action_space
        if declared is not None:
            if not isinstance(declared, CausalVariables):
                raise VariableLayoutError(
                    f"env attribute {ENV_ATTRIBUTE!r} must be a CausalVariables, got {type(declared).__name__}"
                )
            declared.check_env(obs_space, act_space)
            return declared
        if not isinstance(act_space, spaces.Discrete):
            raise VariableLayoutError(
                f"cannot map actions onto causal variables: the action space is {act_space}, not Discrete. "
                "Causal masks and interventional learning need one intervention per discrete action."
            )
        if not isinstance(obs_space, spaces.Box) or len(obs_space.shape) != 1:
            raise VariableLayoutError(
                f"cannot infer causal variables from the observation space {obs_space}: pass an explicit "
                f"CausalVariables (or give the env a {ENV_ATTRIBUTE!r} attribute)"
            )
        n_obs, n_act = int(obs_space.shape[0]), int(act_space.n)
        if n_act == n_obs:
            return cls.factored(n_obs)
        if n_act == n_obs + 1:
            return cls.factored(n_obs, action_map=[*range(n_obs), -1])
        raise VariableLayoutError(
            f"cannot infer causal variables: {n_obs} observation entries and {n_act} actions. The default "
            "layout needs action k to intervene on entry k (n or n + 1 actions); pass "
            "CausalVariables.factored(n, action_map=...) or a full CausalVariables."
        )


def _declared_layout(env: Any) -> Any:
    from stable_baselines3.common.vec_env import VecEnv

    if isinstance(env, VecEnv):
        # has_attr first: get_attr of a missing attribute kills a SubprocVecEnv worker
        return env.get_attr(ENV_ATTRIBUTE, indices=[0])[0] if env.has_attr(ENV_ATTRIBUTE) else None
    getter = getattr(env, "get_wrapper_attr", None)
    try:
        return getter(ENV_ATTRIBUTE) if getter is not None else getattr(env, ENV_ATTRIBUTE)
    except AttributeError:
        return None
