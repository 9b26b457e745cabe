"""The mask-provider interface: what an agent acting under action masks asks of a mask source.

A *mask provider* maps a batch of raw observations and the env's own validity masks to the masks an
agent acts with. The causal algorithms (:class:`~sb3_causal.algos.CausalMaskablePPO`,
:class:`~sb3_causal.algos.CausalDQN`) only talk to this small interface (:class:`MaskProvider`), so
another mask source (an effect-estimation masker, a user's own rule) plugs in without touching them.
Every provider combines its own masks with the env's through :func:`combine_with_env_masks`: per env
and per state, the AND of both, or the env mask alone where the AND is empty.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from sb3_causal.graph import CausalGraph

__all__ = ["MaskProvider", "combine_with_env_masks"]


@runtime_checkable
class MaskProvider(Protocol):
    """What a causal algorithm needs from a source of action masks.

    ``__call__`` returns ``(batch, n_actions)`` bool masks (``True`` = allowed) with at least one allowed
    action per row, already combined with ``env_masks`` (the env's own validity masks, or ``None`` when the
    env has none). ``explore=True`` while collecting experience (the provider may add exploration, as
    :class:`CausalMask`'s ``eta``); ``explore=False`` in ``predict``. ``update_graph`` receives each new
    graph of the online learner.
    """

    def __call__(
        self, observations: np.ndarray, env_masks: np.ndarray | None, *, explore: bool = True
    ) -> np.ndarray: ...

    def update_graph(self, graph: CausalGraph) -> None: ...


def combine_with_env_masks(own: np.ndarray, env_masks: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """AND a provider's masks with the env's; rows where the AND is empty fall back to the env mask alone.

    :param own: ``(batch, n_actions)`` bool masks of the provider
    :param env_masks: ``(batch, n_actions)`` env validity masks, or None (every action valid)
    :return: the combined masks and a ``(batch,)`` bool array of the rows that fell back
    :raises ValueError: when an env mask row allows no action at all
    """
    if env_masks is None:
        combined = own.copy()
        fallback = ~combined.any(axis=1)
        combined[fallback] = True
        return combined, fallback
    env_masks = np.asarray(env_masks, dtype=bool)
    if env_masks.shape != own.shape:
        raise ValueError(f"env action masks have shape {env_masks.shape}, expected {own.shape}")
    empty_env = np.flatnonzero(~env_masks.any(axis=1))
    if empty_env.size:
        raise ValueError(
            f"the env's action mask allows no action in env index {', '.join(map(str, empty_env))}: there is "
            "nothing to act with. End the episode (terminated=True) instead of offering no valid action."
        )
    combined = own & env_masks
    fallback = ~combined.any(axis=1)
    combined[fallback] = env_masks[fallback]
    return combined, fallback
