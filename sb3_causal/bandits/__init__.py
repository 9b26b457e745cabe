"""Bandits with unobserved confounders (seed 002): agents with an SB3-like surface and the observational recorder.

The environments (``GreedyCasino-v0``, ``ConfoundedBandit-v0``) live in :mod:`sb3_causal_envs.bandits`.
"""

from __future__ import annotations

from sb3_causal.bandits.agents import (
    UCB,
    CausalThompsonSampling,
    CounterfactualThompsonSampling,
    CounterfactualUCB,
    ThompsonSampling,
)
from sb3_causal.bandits.base import BanditAgent, BanditEnvBatch, BanditFileError, NotReadyError
from sb3_causal.bandits.recorder import ObservationalData, record_observational

__all__ = [
    "UCB",
    "BanditAgent",
    "BanditEnvBatch",
    "BanditFileError",
    "CausalThompsonSampling",
    "CounterfactualThompsonSampling",
    "CounterfactualUCB",
    "NotReadyError",
    "ObservationalData",
    "ThompsonSampling",
    "record_observational",
]
