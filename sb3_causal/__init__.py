"""sb3-causal: online causal reinforcement learning for Stable-Baselines3.

Importing the package registers its environments (``FaultAlarmRL-v0``, ...) with gymnasium.
"""

from __future__ import annotations

from sb3_causal.algos import CausalDQN, CausalMaskablePPO, MaskableDQN
from sb3_causal.callbacks import CausalGraphCallback
from sb3_causal.graph import CausalGraph, CyclicGraphError, GraphMetrics
from sb3_causal.mbrl import CMBPO, MBPO
from sb3_causal.registration import register_envs

register_envs()

__version__ = "0.1.0"

__all__ = [
    "CMBPO",
    "MBPO",
    "CausalDQN",
    "CausalGraph",
    "CausalGraphCallback",
    "CausalMaskablePPO",
    "CyclicGraphError",
    "GraphMetrics",
    "MaskableDQN",
    "__version__",
]
