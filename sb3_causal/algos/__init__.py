"""Causal RL algorithms (SB3 subclasses)."""

from sb3_causal.algos.causal_dqn import CausalDQN
from sb3_causal.algos.causal_ppo import CausalMaskablePPO
from sb3_causal.algos.maskable_dqn import MaskableDQN
from sb3_causal.common.maskable.buffers import MaskableDictReplayBuffer, MaskableReplayBuffer
from sb3_causal.common.save_util import CausalModelFileError
from sb3_causal.common.wrappers import RecordTerminalActionMask

__all__ = [
    "CausalDQN",
    "CausalMaskablePPO",
    "CausalModelFileError",
    "MaskableDQN",
    "MaskableDictReplayBuffer",
    "MaskableReplayBuffer",
    "RecordTerminalActionMask",
]
