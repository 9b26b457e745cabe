"""Causal RL algorithms (SB3 subclasses)."""

from sb3_causal.algos.causal_base import CausalModelFileError
from sb3_causal.algos.causal_dqn import CausalDQN
from sb3_causal.algos.causal_ppo import CausalMaskablePPO
from sb3_causal.algos.maskable_dqn import MaskableDQN, MaskableReplayBuffer, RecordTerminalActionMask

__all__ = [
    "CausalDQN",
    "CausalMaskablePPO",
    "CausalModelFileError",
    "MaskableDQN",
    "MaskableReplayBuffer",
    "RecordTerminalActionMask",
]
