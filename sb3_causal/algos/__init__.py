"""Causal RL algorithms (SB3 subclasses)."""
