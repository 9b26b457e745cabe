"""The mask-provider interface: what an agent acting under action masks asks of a mask source.

A *mask provider* maps a batch of raw observations and the env's own validity masks to the masks an
agent acts with. The causal algorithms (:class:`~sb3_causal.algos.CausalMaskablePPO`,
:class:`~sb3_causal.algos.CausalDQN`) only talk to this small interface (:class:`MaskProvider`), so
another mask source (an effect-estimation masker, a user's own rule) plugs in without touching them.
Every provider combines its own masks with the env's through :func:`combine_with_env_masks`: per env
and per state, the AND of both, or the env mask alone where the AND is empty.

Two class-level choices a provider makes (read by the algorithms):

* ``uses_graph = False``: the provider does not use a causal graph; the algorithms then build no
  variable layout and no online learner for it (so it works on image or Dict observations) and never
  call its ``update_graph``. A provider without the attribute uses the graph.
* subclassing :class:`torch.nn.Module`: the provider holds trained networks; the algorithms save its
  ``state_dict`` in the model zip as SB3 saves the policy, with ``get_config() -> dict`` (JSON-serialisable
  constructor arguments) so that ``load`` rebuilds it with ``type(provider).from_config(config)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sb3_causal.graph import CausalGraph

__all__ = ["MaskProvider", "check_action_masks", "combine_with_env_masks", "uses_graph"]


@runtime_checkable
class MaskProvider(Protocol):
    """What a causal algorithm needs from a source of action masks.

    ``__call__`` returns ``(batch, n_actions)`` bool masks (``True`` = allowed) with at least one allowed
    action per row, already combined with ``env_masks`` (the env's own validity masks, or ``None`` when the
    env has none). ``explore=True`` while collecting experience (the provider may add exploration, as
    :class:`~sb3_causal.masks.CausalMask`'s ``eta``); ``explore=False`` in ``predict`` and for a DQN's
    bootstrap target. ``update_graph`` receives each new graph of the online learner and, when the
    learner knows it, the hop reach of effects in use (``n_hops``).
    """

    def __call__(
        self, observations: np.ndarray, env_masks: np.ndarray | None, *, explore: bool = True
    ) -> np.ndarray: ...

    def update_graph(self, graph: CausalGraph, n_hops: int | None = None) -> None: ...


def uses_graph(provider: Any) -> bool:
    """Whether ``provider`` uses a causal graph (its class attribute ``uses_graph``, True when absent)."""
    return bool(getattr(provider, "uses_graph", True))


def check_action_masks(
    action_masks: Any, n_batch: int, n_actions: int, env_indices: Sequence[int] | None = None
) -> np.ndarray:
    """Validate action masks and return them as a ``(n_batch, n_actions)`` bool array.

    The one home of the "no valid action" check: a row with no allowed action is an error, never a
    silent uniform sample (an all-zero mask makes MaskableCategorical sample every action).

    :param action_masks: masks, ``True``/non-zero = valid; shape ``(n_batch, n_actions)``, or ``(n_actions,)``
        when ``n_batch == 1``
    :param n_batch: number of observations (envs) the masks are for
    :param n_actions: size of the ``Discrete`` action space
    :param env_indices: env index of each row, used in error messages (default ``range(n_batch)``)
    :return: the masks as a bool array of shape ``(n_batch, n_actions)``
    :raises ValueError: on a shape mismatch, or when a row has no valid action
    """
    masks = np.asarray(action_masks)
    if n_batch == 1 and masks.shape == (n_actions,):
        masks = masks.reshape(1, n_actions)
    elif masks.shape != (n_batch, n_actions):
        raise ValueError(
            f"action mask has shape {masks.shape}, expected ({n_batch}, {n_actions}): "
            f"one row of {n_actions} flags (True = valid) for each of the {n_batch} env(s)/observation(s)"
        )
    if masks.dtype != np.bool_:
        masks = masks != 0
    empty = np.flatnonzero(~masks.any(axis=1))
    if empty.size:
        names = list(range(n_batch)) if env_indices is None else list(env_indices)
        bad = ", ".join(str(names[i]) for i in empty)
        raise ValueError(
            f"all actions are invalid (all-zero action mask) in env index {bad}: there is no action to take "
            "or to bootstrap from. End the episode (terminated=True) instead of offering no valid action."
        )
    return masks


def combine_with_env_masks(own: np.ndarray, env_masks: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """AND a provider's masks with the env's; rows where the AND is empty fall back to the env mask alone.

    :param own: ``(batch, n_actions)`` bool masks of the provider
    :param env_masks: ``(batch, n_actions)`` env validity masks, or None (every action valid)
    :return: the combined masks and a ``(batch,)`` bool array of the rows that fell back
    :raises ValueError: when an env mask row allows no action at all (see :func:`check_action_masks`)
    """
    if env_masks is None:
        combined = own.copy()
        fallback = ~combined.any(axis=1)
        combined[fallback] = True
        return combined, fallback
    env_masks = check_action_masks(env_masks, *own.shape)
    combined = own & env_masks
    fallback = ~combined.any(axis=1)
    combined[fallback] = env_masks[fallback]
    return combined, fallback
