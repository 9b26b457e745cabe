"""Action masks: the :class:`MaskProvider` interface and its implementations.

- :mod:`sb3_causal.masks.base`: the interface and the AND with the env's own masks.
- :mod:`sb3_causal.masks.causal`: :class:`CausalMask`, the seed paper's ``M_s(G)`` from a causal graph.
"""

from sb3_causal.masks.base import MaskProvider, combine_with_env_masks
from sb3_causal.masks.causal import CausalMask

__all__ = ["CausalMask", "MaskProvider", "combine_with_env_masks"]
