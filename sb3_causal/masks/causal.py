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
variable; the draw uses the provider's own seeded generator, so runs reproduce. Where the AND of the
causal and env masks is empty (nothing active, or the graph points only at invalid actions) the env
mask applies alone. An env mask row with no valid action is an error, never a silent uniform sample.

Cost: per graph update, one ancestor matrix and upstream rank (networkx, milliseconds); per call,
two small matrix products over ``(batch, units, variables)`` and a sort of the few candidates.
"""

from __future__ import annotations

import numpy as np

from sb3_causal.graph import CausalGraph
from sb3_causal.masks.base import combine_with_env_masks
from sb3_causal.variables import CausalVariables

__all__ = ["CausalMask"]


class CausalMask:
    """The causal mask ``M_s(G)``: actions on the top-``k`` most upstream active variables (see module doc).

    :param layout: how observations and actions map onto the graph's variables
    :param graph: the current causal graph over ``layout.names`` (replaced by :meth:`update_graph`)
    :param k: number of candidate (unit, variable) root causes kept per state (>= 1)
    :param eta: probability, per env and per call with ``explore=True``, of lifting the causal mask
        (the env mask alone applies); in [0, 1]
    :param seed: seed of the generator of the ``eta`` draws
    :param activity_threshold: a state value is active when its absolute value exceeds this
    """

    def __init__(
        self,
        layout: CausalVariables,
        graph: CausalGraph,
        k: int = 5,
        eta: float = 0.3,
        seed: int | None = None,
        activity_threshold: float = 0.0,
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k (the number of top causal candidates kept) must be an integer >= 1, got {k!r}")
        if not 0.0 <= float(eta) <= 1.0:
            raise ValueError(f"eta (the probability of lifting the causal mask) must be in [0, 1], got {eta!r}")
        if activity_threshold < 0:
            raise ValueError(f"activity_threshold must be >= 0, got {activity_threshold!r}")
        self.layout = layout
        self.k = int(k)
        self.eta = float(eta)
        self.activity_threshold = float(activity_threshold)
        self.rng = np.random.default_rng(seed)
        u, v = layout.n_units, layout.n_variables
        n_hops = 1 if layout.n_hops is None else layout.n_hops  # undeclared: same unit until a learner chooses
        dist = layout.unit_distances(2 * (n_hops - 1))
        self._reach = (dist >= 0).astype(np.float32)  # [n, m]: an active cause on m can dominate n
        targets = layout.action_target
        self._action_ok = targets >= 0
        self._action_pair = np.where(self._action_ok, targets, 0)
        self._targetable = np.zeros(u * v, dtype=bool)
        self._targetable[targets[self._action_ok]] = True
        self._pair_var = np.tile(np.arange(v), u)
        # counters (reset by reset_stats): calls x envs, lifted rows, rows that fell back to the env mask
        self.reset_stats()
        self.update_graph(graph)

    # ------------------------------------------------------------------ graph
    def update_graph(self, graph: CausalGraph) -> None:
        """Precompute the graph's ancestor matrix and upstream rank (once per graph update)."""
        if tuple(graph.variables) != tuple(self.layout.names):
            raise ValueError(
                f"graph variables {list(graph.variables)} do not match the layout's {list(self.layout.names)}"
            )
        self.graph = graph
        self._ancestors = graph.ancestor_matrix().astype(np.float32)  # [v, w]: v is a strict ancestor of w
        self._rank = graph.upstream_rank()

    # ------------------------------------------------------------------ masks
    def causal_pairs(self, observations: np.ndarray) -> np.ndarray:
        """``(batch, n_units * n_variables)`` bool: the kept top-``k`` (unit, variable) pairs of each state."""
        obs = np.asarray(observations)
        values = self.layout.values(obs.reshape(obs.shape[0], -1))  # (B, U, V)
        magnitude = np.abs(values)
        active = magnitude > self.activity_threshold
        upstream_active = np.matmul(active.astype(np.float32), self._ancestors)  # (B, m, w): an ancestor of w on m
        dominated = np.matmul(self._reach, upstream_active) > 0  # (B, n, w): ... on a unit within reach of n
        batch = values.shape[0]
        candidates = (active & ~dominated).reshape(batch, -1) & self._targetable
        magnitude = magnitude.reshape(batch, -1)
        kept = np.zeros_like(candidates)
        for b in range(batch):
            idx = np.flatnonzero(candidates[b])
            if idx.size > self.k:
                idx = idx[np.lexsort((idx, -magnitude[b, idx], self._rank[self._pair_var[idx]]))[: self.k]]
            kept[b, idx] = True
        return kept

    def __call__(self, observations: np.ndarray, env_masks: np.ndarray | None, *, explore: bool = True) -> np.ndarray:
        """Masks ``(batch, n_actions)``: the causal mask AND the env's (see the module doc for lifts and fallbacks).

        :param observations: raw observations ``(batch, *obs_shape)``
        :param env_masks: the env's ``(batch, n_actions)`` validity masks, or None
        :param explore: draw the ``eta`` lifts (collecting experience); False for ``predict``
        """
        kept = self.causal_pairs(observations)
        causal = kept[:, self._action_pair] & self._action_ok
        batch = causal.shape[0]
        if explore and self.eta > 0:
            lifted = self.rng.random(batch) < self.eta
            causal[lifted] = True  # AND with the env mask leaves the env mask alone
            self.n_lifted += int(lifted.sum())
        else:
            lifted = np.zeros(batch, dtype=bool)
        masks, fallback = combine_with_env_masks(causal, env_masks)
        self.n_rows += batch
        self.n_fallback += int((fallback & ~lifted).sum())
        self.n_allowed += int(masks[~lifted].sum())
        return masks

    def reset_stats(self) -> None:
        self.n_rows = 0
        self.n_lifted = 0
        self.n_fallback = 0
        self.n_allowed = 0

    def __repr__(self) -> str:
        return f"CausalMask(k={self.k}, eta={self.eta}, graph={self.graph!r})"
