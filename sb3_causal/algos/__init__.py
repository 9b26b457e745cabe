"""Causal RL algorithms (SB3 subclasses)."""

from sb3_causal.algos.maskable_dqn import MaskableDQN, MaskableReplayBuffer, RecordTerminalActionMask

__all__ = ["MaskableDQN", "MaskableReplayBuffer", "RecordTerminalActionMask"]
