"""Action masks: the :class:`MaskProvider` interface and its implementations.

- :mod:`sb3_causal.masks.base`: the interface and the AND with the env's own masks.
- :mod:`sb3_causal.masks.causal`: :class:`CausalMask`, the seed paper's ``M_s(G)`` from a causal graph.
- :mod:`sb3_causal.masks.cee`: :class:`CEEMask`, action clusters from an inverse-dynamics effect estimate (seed 004).
- :mod:`sb3_causal.masks.wrappers`: :class:`MaskProviderVecEnv`, any provider's masks as a VecEnv's ``action_masks()``.
"""

from sb3_causal.masks.base import MaskProvider, combine_with_env_masks
from sb3_causal.masks.causal import CausalMask
from sb3_causal.masks.cee import CEEMask
from sb3_causal.masks.wrappers import MaskProviderVecEnv

__all__ = ["CEEMask", "CausalMask", "MaskProvider", "MaskProviderVecEnv", "combine_with_env_masks"]
