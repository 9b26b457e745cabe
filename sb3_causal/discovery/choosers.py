"""Intervention choosers: which (unit, variable) pairs an exploratory (eta-lifted) row may intervene on.

A causal mask lifts some rows (probability ``eta``) so that the agent also tries actions the
current graph would mask. Which of the valid actions such a lifted row may take is the chooser's
call. :class:`UniformChooser` allows them all (the seed paper's lift). :class:`LeastEvidenceChooser`
allows only the candidates whose variable has the least evidence so far (fewest treated rows in the
online learner), so that a greedy agent (DQN) still covers every variable. An active-design chooser
(e.g. expected information gain) plugs into the same :class:`InterventionChooser` protocol. The same
choosers also pick where a plain off-policy agent's random exploratory actions go
(``CausalGraphCallback(chooser=...)``, through :func:`chosen_actions`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from sb3_causal.discovery.online import OnlineCausalLearner
    from sb3_causal.variables import CausalVariables

__all__ = ["InterventionChooser", "LeastEvidenceChooser", "UniformChooser", "chosen_actions"]


@runtime_checkable
class InterventionChooser(Protocol):
    """Decides which interventions an exploratory row may take."""

    def choose(self, candidates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``candidates``: ``(batch, n_units * n_variables)`` bool, the (unit, variable) pairs that some
        valid action of the row targets. Returns a bool array of the same shape: the pairs a lifted
        row may intervene on (a non-empty subset of each non-empty candidate row)."""
        ...

    def update(self, learner: OnlineCausalLearner) -> None:
        """Called after each graph update with the learner (its evidence: treated counts, statistics)."""
        ...


def _check_candidates(candidates: np.ndarray) -> np.ndarray:
    candidates = np.asarray(candidates)
    if candidates.ndim != 2 or candidates.dtype != bool:
        raise ValueError(
            f"candidates must be a (batch, n_units * n_variables) bool array, got {candidates.dtype} {candidates.shape}"
        )
    return candidates


def chosen_actions(
    chooser: InterventionChooser, layout: CausalVariables, valid: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """``(batch, n_actions)`` bool: the valid actions whose (unit, variable) target the chooser picks, and the
    valid actions without a target.

    The candidates of a row are the pairs some valid action of the row targets (``action_target[a] >= 0``).
    Valid actions without a target (a no-op) stay allowed: they are the control arm every test compares
    with (the learner's clean control needs ``10 * min_treated`` no-op rows; with the no-op left out of the
    exploratory draws of a DQN exploring half the time, a run kept 52 no-op rows and learned 9 false edges).

    :param chooser: the intervention chooser
    :param layout: the variable layout (its ``action_target``: the flat pair ``unit * n_variables + variable``
        each action targets, -1 none)
    :param valid: ``(batch, n_actions)`` bool, the valid actions of each row (at least one per row)
    :param rng: passed to ``chooser.choose``

    The one home of this rule: a causal mask's lifted rows (``CausalMask(chooser=...)``) and the callback's
    exploratory draws (``CausalGraphCallback(chooser=...)``) both use it.
    """
    valid = np.asarray(valid, dtype=bool)
    targets = layout.action_target
    if valid.ndim != 2 or valid.shape[1] != targets.size:
        raise ValueError(f"valid must be (batch, {targets.size}) bool, got shape {valid.shape}")
    targeted = valid & (targets >= 0)
    candidates = np.zeros((valid.shape[0], layout.n_units * layout.n_variables), dtype=bool)
    rows, actions = np.nonzero(targeted)
    candidates[rows, targets[actions]] = True
    chosen = np.asarray(chooser.choose(candidates, rng), dtype=bool)
    if chosen.shape != candidates.shape:
        raise ValueError(f"the chooser returned shape {chosen.shape}, expected {candidates.shape}")
    allowed = targeted & chosen[:, np.maximum(targets, 0)]
    allowed |= valid & (targets < 0)
    empty = ~allowed.any(axis=1)  # valid actions on pairs the chooser did not pick, nothing else
    allowed[empty] = valid[empty]
    return allowed


class UniformChooser:
    """Every candidate stays allowed: a lifted row picks among all valid actions (today's lifts)."""

    def choose(self, candidates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _check_candidates(candidates).copy()

    def update(self, learner: OnlineCausalLearner) -> None:
        return None


class LeastEvidenceChooser:
    """Lifted rows go to the candidate variables with the least evidence so far.

    Evidence of variable i is its number of treated rows in the learner (``learner.n_treated``).
    Each row keeps the candidates whose variable's evidence is within ``slack`` (relative) of the
    row's smallest, so a variable treated 40 times is preferred over one treated 6,000 times.

    :param n_variables: variables per unit (candidates are ``unit * n_variables + variable``)
    :param slack: relative tolerance: candidates with evidence ``<= (1 + slack) * min + 1`` are kept
    """

    def __init__(self, n_variables: int, slack: float = 0.25) -> None:
        if n_variables < 1:
            raise ValueError(f"n_variables must be >= 1, got {n_variables}")
        if slack < 0:
            raise ValueError(f"slack must be >= 0, got {slack}")
        self.n_variables = int(n_variables)
        self.slack = float(slack)
        self.evidence = np.zeros(self.n_variables)

    def update(self, learner: OnlineCausalLearner) -> None:
        evidence = np.asarray(learner.n_treated, dtype=np.float64)
        if evidence.shape != (self.n_variables,):
            raise ValueError(f"the learner has {evidence.size} variables, the chooser {self.n_variables}")
        self.evidence = evidence

    def choose(self, candidates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        candidates = _check_candidates(candidates)
        if candidates.shape[1] % self.n_variables:
            raise ValueError(f"candidates have {candidates.shape[1]} columns, not a multiple of {self.n_variables}")
        per_pair = np.tile(self.evidence, candidates.shape[1] // self.n_variables)
        masked = np.where(candidates, per_pair[None, :], np.inf)
        least = masked.min(axis=1, keepdims=True)
        return candidates & (masked <= (1.0 + self.slack) * least + 1.0)
