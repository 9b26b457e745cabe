"""Action masks from a causal graph: the causal policy's ``M_s(G)`` (seed paper, Definition 3).

:class:`CausalMask` is the paper's mask: at state ``s`` keep the ``k`` most upstream *active*
variables of the current graph (the likely root causes of what is seen), map them to the actions
that intervene on them, and AND that with the env's ``action_masks()``.

The rule on a layout of units x variables (e.g. FaultAlarmRL's 50 devices x 18 alarm types, one
type-level graph shared by all devices, see :class:`~sb3_causal.variables.CausalVariables`):

* a pair ``(n, w)`` (unit n, variable w) is *active* when ``|value| > activity_threshold``;
* an active ``(n, w)`` is *dominated* when some active ``(m, v)`` has ``v`` a strict ancestor of ``w``
  in the graph and ``m`` within ``2 * (n_hops - 1)`` topology hops of ``n`` (a cause reaches one hop
  per propagation step, so an alarm two hops away may still be its cause's grandchild); with a
  single unit, this is "``w`` has an active ancestor";
* candidates are the active, non-dominated pairs that some action targets; they are ranked by the
  graph's :meth:`~sb3_causal.graph.CausalGraph.upstream_rank` of the variable, then by ``|value|``
  (bigger first: more alarms), then by flat index; the first ``k`` are kept;
* the causal mask allows the actions whose target is kept (an action that targets nothing, a no-op,
  is not a causal action).

Exploration and fallbacks, per env and per call: with probability ``eta`` the causal mask is *lifted*
(only the env's mask applies) so the structure learner keeps receiving interventions on every
variable; the draw uses the provider's own seeded generator (saved with a model, see
:meth:`CausalMask.state_dict`), so runs reproduce. The rows lifted by the latest call with ``explore=True``
are kept in :attr:`CausalMask.last_lifted` (an agent may act at random there, see CausalDQN's
``lift_actions``). With an intervention ``chooser`` a lifted row allows only the env-valid actions whose
(unit, variable) target the chooser picks among those some valid action of the row targets, and the valid
actions that target nothing (a no-op: the learner's control rows;
:func:`~sb3_causal.discovery.choosers.chosen_actions`); ``chooser=None``: every env-valid
action, the paper's lift. Where the AND of the
causal and env masks is empty (nothing active, or the graph points only at invalid actions) the env
mask applies alone. An env mask row with no valid action is an error, never a silent uniform sample.

The paper's TopK over the active subgraph's causal order is not used as written: it fills ``k`` with
later generations when fewer than ``k`` active variables have no active ancestor, and it has no notion of
units or hop reach (measured on the toy cascades: it keeps other variables than this rule on 40-100% of
states at k >= 2); the mask keeps only non-dominated pairs, vectorised here.

Cost: per graph update, one ancestor matrix and upstream rank (networkx, milliseconds); per call,
two small matrix products over ``(batch, units, variables)``, one sort of the few candidates of all rows
together, and the AND with the env mask on the kept (row, action) entries only (no Python loop over rows,
no dense ``(batch, n_actions)`` intermediate). A single observation with few active pairs (a single env acting)
compares its active pairs pairwise instead, and a lifted single row skips the candidates altogether.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sb3_causal.discovery.choosers import InterventionChooser, chosen_actions
from sb3_causal.graph import CausalGraph
from sb3_causal.masks.base import check_action_masks, combine_with_env_masks
from sb3_causal.variables import CausalVariables

__all__ = ["DEFAULT_ACTIVITY_THRESHOLD", "DEFAULT_ETA", "DEFAULT_K", "CausalMask", "check_mask_parameters"]

#: (unit, variable) root-cause candidates the mask keeps per state
DEFAULT_K = 5
#: probability of lifting the mask per env and step (the paper's Causal PPO value; Causal DQN uses 0.2)
DEFAULT_ETA = 0.3
#: a state value is active when its absolute value exceeds this
DEFAULT_ACTIVITY_THRESHOLD = 0.0
#: up to this many active pairs, one observation's domination test compares them pairwise (see _kept_pairs_of_one)
_PAIRWISE_ACTIVE = 32


def check_mask_parameters(k: Any, eta: Any, activity_threshold: Any = 0.0) -> None:
    """The one check of the causal mask's parameters (the algorithms call it in their constructors).

    :raises ValueError: naming the parameter, when ``k`` is not an integer >= 1, ``eta`` not in [0, 1] or
        ``activity_threshold`` negative
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k (the number of top causal candidates the mask keeps) must be an integer >= 1, got {k!r}")
    if not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"eta (the probability of lifting the causal mask) must be in [0, 1], got {eta!r}")
    if not float(activity_threshold) >= 0:
        raise ValueError(f"activity_threshold must be >= 0, got {activity_threshold!r}")


class CausalMask:
    """The causal mask ``M_s(G)``: actions on the top-``k`` most upstream active variables (see module doc).

    :param layout: how observations and actions map onto the graph's variables
    :param graph: the current causal graph over ``layout.names`` (replaced by :meth:`update_graph`)
    :param k: number of candidate (unit, variable) root causes kept per state (>= 1)
    :param eta: probability, per env and per call with ``explore=True``, of lifting the causal mask
        (the env mask alone applies); in [0, 1]
    :param seed: seed of the generator of the ``eta`` draws
    :param activity_threshold: a state value is active when its absolute value exceeds this
    :param chooser: an intervention chooser for lifted rows (None: a lifted row allows every env-valid action)
    :param n_hops: hops a cause reaches (default: the layout's; 1 when the layout leaves it to the learner,
        until :meth:`update_graph` gives the learner's)
    """

    def __init__(
        self,
        layout: CausalVariables,
        graph: CausalGraph,
        k: int = DEFAULT_K,
        eta: float = DEFAULT_ETA,
        seed: int | None = None,
        activity_threshold: float = DEFAULT_ACTIVITY_THRESHOLD,
        chooser: InterventionChooser | None = None,
        n_hops: int | None = None,
    ) -> None:
        check_mask_parameters(k, eta, activity_threshold)
        self.layout = layout
        self.k = int(k)
        self.eta = float(eta)
        self.activity_threshold = float(activity_threshold)
        self.chooser = chooser
        self.rng = np.random.default_rng(seed)
        u, v = layout.n_units, layout.n_variables
        self._set_reach(n_hops if n_hops is not None else (layout.n_hops or 1))
        targets = layout.action_target
        self._action_ok = targets >= 0
        self._action_pair = np.where(self._action_ok, targets, 0)
        self._targetable = np.zeros(u * v, dtype=bool)
        self._targetable[targets[self._action_ok]] = True
        self._pair_var = np.tile(np.arange(v), u)
        # the actions targeting each pair, -1 padded: row p of (n_pairs, most actions on one pair)
        acting = np.flatnonzero(self._action_ok)
        per_pair = np.bincount(targets[acting], minlength=u * v)
        self._pair_actions = np.full((u * v, max(int(per_pair.max(initial=0)), 1)), -1, dtype=np.int64)
        order = acting[np.argsort(targets[acting], kind="stable")]
        slot = np.arange(order.size) - np.repeat(np.cumsum(per_pair) - per_pair, per_pair)
        self._pair_actions[targets[order], slot] = order
        # counters (reset by reset_stats): calls x envs, lifted rows, rows that fell back to the env mask
        self.reset_stats()
        #: ``(batch,)`` bool: the rows the latest call with ``explore=True`` lifted (None before any such call)
        self.last_lifted: np.ndarray | None = None
        self.update_graph(graph)

    # ------------------------------------------------------------------ graph
    def _set_reach(self, n_hops: int) -> None:
        """Units within ``2 * (n_hops - 1)`` hops: where an active cause can dominate (see module doc)."""
        self.n_hops = int(n_hops)
        dist = self.layout.unit_distances(2 * (self.n_hops - 1))
        self._reach_within = dist >= 0  # [n, m]: an active cause on m can dominate n
        self._reach = self._reach_within.astype(np.float32)

    def update_graph(self, graph: CausalGraph, n_hops: int | None = None) -> None:
        """Precompute the graph's ancestor matrix and upstream rank (once per graph update).

        :param graph: the new graph over the layout's variables
        :param n_hops: the hop reach of effects in use (the learner's), recomputing the domination reach;
            None keeps the current one
        """
        if n_hops is not None and int(n_hops) != self.n_hops:
            self._set_reach(n_hops)
        if tuple(graph.variables) != tuple(self.layout.names):
            raise ValueError(
                f"graph variables {list(graph.variables)} do not match the layout's {list(self.layout.names)}"
            )
        self.graph = graph
        self._is_ancestor = graph.ancestor_matrix().astype(bool)  # [v, w]: v is a strict ancestor of w
        self._ancestors = self._is_ancestor.astype(np.float32)
        self._rank = graph.upstream_rank()
        self._pair_rank = self._rank[self._pair_var]
        self._n_ranks = int(self._rank.max(initial=0)) + 1

    # ------------------------------------------------------------------ masks
    def causal_pairs(self, observations: np.ndarray) -> np.ndarray:
        """``(batch, n_units * n_variables)`` bool: the kept top-``k`` (unit, variable) pairs of each state."""
        batch, rows, pairs = self._kept_pairs(observations)
        kept = np.zeros((batch, self._targetable.size), dtype=bool)
        kept[rows, pairs] = True
        return kept

    def _kept_pairs(self, observations: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
        """``(batch, rows, pairs)``: the kept top-``k`` pairs as (row, flat pair index) entries, by row."""
        obs = np.asarray(observations)
        batch = obs.shape[0]
        if batch == 1:
            single = self._kept_pairs_of_one(obs)
            if single is not None:
                return 1, np.zeros(single.size, dtype=np.int64), single
        u, v = self.layout.n_units, self.layout.n_variables
        magnitude = np.abs(self.layout.values(obs.reshape(batch, -1), copy=False).reshape(batch, -1))  # (B, U * V)
        active = magnitude > self.activity_threshold
        if not active.any():
            return batch, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        upstream_active = np.matmul(active.reshape(batch, u, v).astype(np.float32), self._ancestors)  # (B, m, w)
        dominated = np.matmul(self._reach, upstream_active) > 0  # (B, n, w): an active ancestor within reach
        # (np.nonzero of a 2-d array is ~10x slower than flatnonzero and a divmod)
        rows, pairs = np.divmod(np.flatnonzero(active & ~dominated.reshape(batch, -1) & self._targetable), u * v)
        if rows.size > self.k:
            # per row: upstream rank first, then |value| (bigger first), then flat index; the first k are kept.
            # The candidates come in (row, flat index) order and lexsort is stable, so two keys do: (row, rank)
            # packed into one integer, then -|value|
            order = np.lexsort((-magnitude[rows, pairs], rows * self._n_ranks + self._pair_rank[pairs]))
            rows, pairs = rows[order], pairs[order]
            first = np.searchsorted(rows, rows)  # where each row's candidates start
            top = np.arange(rows.size) - first < self.k
            rows, pairs = rows[top], pairs[top]
        return batch, rows, pairs

    def _kept_pairs_of_one(self, obs: np.ndarray) -> np.ndarray | None:
        """The kept pairs (flat indices) of a single observation with at most ``_PAIRWISE_ACTIVE`` active pairs
        (None beyond: :meth:`_kept_pairs`' matrix products are cheaper there): the same rule, with the
        domination test over pairs of active pairs. A single env acting sees a few active pairs (FaultAlarmRL
        under the agents: 13 in the median state, at most 26), and the fewer numpy calls, the less a call
        costs between the network's steps: 42-45 instead of 53-58 us per call in the agent (measured)."""
        magnitude = np.abs(self.layout.values(obs.reshape(1, -1), copy=False).reshape(-1))  # (U * V,)
        active = np.flatnonzero(magnitude > self.activity_threshold)
        if active.size > _PAIRWISE_ACTIVE:
            return None
        units, variables = np.divmod(active, self.layout.n_variables)
        # [a, b]: active pair b is an active ancestor of a, within reach
        dominated = self._reach_within[units[:, None], units] & self._is_ancestor[variables, variables[:, None]]
        pairs = active[~dominated.any(axis=1) & self._targetable[active]]
        if pairs.size > self.k:  # upstream rank, then |value| (bigger first), then flat index (lexsort is stable)
            pairs = pairs[np.lexsort((-magnitude[pairs], self._pair_rank[pairs]))[: self.k]]
        return pairs

    def __call__(self, observations: np.ndarray, env_masks: np.ndarray | None, *, explore: bool = True) -> np.ndarray:
        """Masks ``(batch, n_actions)``: the causal mask AND the env's (see the module doc for lifts and fallbacks).

        The AND and the fallback are :func:`~sb3_causal.masks.base.combine_with_env_masks`'s rule, applied
        here to the few (row, action) entries of the kept pairs rather than to dense ``(batch, n_actions)``
        arrays.

        :param observations: raw observations ``(batch, *obs_shape)``
        :param env_masks: the env's ``(batch, n_actions)`` validity masks, or None
        :param explore: draw the ``eta`` lifts (collecting experience); False for ``predict``
        """
        obs = np.asarray(observations)
        n_actions = self._action_pair.size
        env = None if env_masks is None else check_action_masks(env_masks, obs.shape[0], n_actions)
        if obs.shape[0] == 1:
            return self._single_row(obs, env, explore)
        batch, rows, pairs = self._kept_pairs(obs)
        lifted = np.zeros(batch, dtype=bool)
        if explore and self.eta > 0:
            lifted = self.rng.random(batch) < self.eta
        # the causal mask's entries: every action targeting a kept pair, in the rows not lifted, AND the env's
        if self._pair_actions.shape[1] == 1:  # one action per pair (the usual layout)
            actions = self._pair_actions[pairs, 0]
            ok = ~lifted[rows]
        else:
            slots = self._pair_actions[pairs]
            rows, actions = np.repeat(rows, slots.shape[1]), slots.ravel()
            ok = (actions >= 0) & ~lifted[rows]
        if env is not None:
            ok[ok] = env[rows[ok], actions[ok]]
        rows, actions = rows[ok], actions[ok]
        masks = np.zeros((batch, n_actions), dtype=bool)
        masks[rows, actions] = True
        fallback = ~lifted  # rows whose AND is empty: the env mask alone
        fallback[rows] = False
        if fallback.any():
            masks[fallback] = True if env is None else env[fallback]
        if lifted.any():
            masks[lifted] = self._lifted_masks(env, lifted)
        if explore:  # the statistics describe the masks acted with, not those of predict or a DQN target
            self.last_lifted = lifted
            self.n_rows += batch
            self.n_lifted += int(np.count_nonzero(lifted))
            self.n_fallback += int(np.count_nonzero(fallback))
            self.n_allowed += int(np.count_nonzero(masks[~lifted]))
        return masks

    def _single_row(self, obs: np.ndarray, env: np.ndarray | None, explore: bool) -> np.ndarray:
        """:meth:`__call__` for one observation (a single env acting): the same rule, the same generator draws,
        with Python scalars where arrays of one row would only add calls, and the kept pairs found only when
        the row is not lifted (with ``eta = 0.3``, 30% of the calls need none). Kept for its cost: without it
        the general path took 42 instead of 33 us per call on FaultAlarmRL, and the overhead benchmark's mask
        86 instead of 66 us per env step; ``tests/test_masks.py`` pins both paths to the reference rule."""
        n_actions = self._action_pair.size
        lifted = bool(explore and self.eta > 0 and self.rng.random(1)[0] < self.eta)
        fallback = False
        if lifted and self.chooser is None:  # the env mask alone (_lifted_masks' rule, without its arrays)
            masks = np.ones((1, n_actions), dtype=bool) if env is None else env.copy()
        elif lifted:
            masks = np.empty((1, n_actions), dtype=bool)
            masks[:] = self._lifted_masks(env, np.ones(1, dtype=bool))
        else:
            pairs = self._kept_pairs(obs)[2]
            if self._pair_actions.shape[1] == 1:  # one action per pair (the usual layout)
                actions = self._pair_actions[pairs, 0]
            else:
                actions = self._pair_actions[pairs].ravel()
                actions = actions[actions >= 0]
            if env is not None:
                actions = actions[env[0, actions]]
            if actions.size:
                masks = np.zeros((1, n_actions), dtype=bool)
                masks[0, actions] = True
            else:  # the AND is empty: the env mask alone
                fallback = True
                masks = np.ones((1, n_actions), dtype=bool) if env is None else env.copy()
        if explore:
            self.last_lifted = np.array([lifted])
            self.n_rows += 1
            self.n_lifted += int(lifted)
            self.n_fallback += int(fallback)
            if not lifted:
                self.n_allowed += int(np.count_nonzero(masks)) if fallback else int(actions.size)
        return masks

    def _lifted_masks(self, env_masks: np.ndarray | None, lifted: np.ndarray) -> np.ndarray | bool:
        """The masks of the lifted rows: the env's, or the chooser's targets AND the env's (empty AND: the env's)."""
        own = self._lifted_rows(env_masks, lifted)
        valid = None if env_masks is None else env_masks[lifted]
        if own is True:
            return True if valid is None else valid
        return combine_with_env_masks(own, valid)[0]

    def _lifted_rows(self, env_masks: np.ndarray | None, lifted: np.ndarray) -> np.ndarray | bool:
        """What a lifted row allows before the AND with the env mask: everything, or the actions on the
        chooser's targets and the untargeted ones (``chosen_actions``)."""
        if self.chooser is None:
            return True  # AND with the env mask leaves the env mask alone
        n_actions = self.layout.action_target.size
        valid = np.ones((int(lifted.sum()), n_actions), dtype=bool) if env_masks is None else env_masks[lifted]
        return chosen_actions(self.chooser, self.layout, valid, self.rng)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The generator state of the ``eta`` draws (JSON-serialisable), so a saved model resumes the same draws."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.rng.bit_generator.state = state["rng"]

    def reset_stats(self) -> None:
        self.n_rows = 0
        self.n_lifted = 0
        self.n_fallback = 0
        self.n_allowed = 0

    def __repr__(self) -> str:
        return f"CausalMask(k={self.k}, eta={self.eta}, graph={self.graph!r})"
