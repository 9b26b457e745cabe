"""Action-mask utilities of the masked DQN: masked Q-values, uniform sampling among valid actions.

:func:`~sb3_causal.masks.base.check_action_masks` (validation, the "no valid action" error) lives with the
mask providers and is re-exported here.
"""

from __future__ import annotations

import numpy as np
import torch as th

from sb3_causal.masks.base import check_action_masks

__all__ = ["check_action_masks", "mask_q_values", "sample_valid_actions"]


def mask_q_values(q_values: th.Tensor, action_masks: th.Tensor | None) -> th.Tensor:
    """Q-values with invalid actions set to the most negative finite float (never ``-inf``, never ``NaN``).

    :param q_values: ``(batch, n_actions)`` Q-values
    :param action_masks: ``(batch, n_actions)`` bool, ``True`` = valid; ``None`` leaves ``q_values`` unchanged
    :return: the masked Q-values
    """
    if action_masks is None:
        return q_values
    return q_values.masked_fill(~action_masks, th.finfo(q_values.dtype).min)


def sample_valid_actions(action_masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per row, uniform among that row's valid actions.

    :param action_masks: ``(batch, n_actions)`` bool, at least one ``True`` per row
    :param rng: the generator to draw from (the algorithms pass their action space's, seeded by SB3)
    :return: ``(batch,)`` action indices
    """
    picks = rng.integers(0, action_masks.sum(axis=1))
    # index of the (pick + 1)-th valid action of each row
    return (np.cumsum(action_masks, axis=1) > picks[:, None]).argmax(axis=1)
