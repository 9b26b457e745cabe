"""Environments of sb3-causal, registered with gymnasium on import (of this package or ``sb3_causal``)."""

from __future__ import annotations

import gymnasium as gym

from sb3_causal_envs.alarm_model import AlarmModel, load_table_b2
from sb3_causal_envs.fault_alarm import AlarmLog, AlarmSimulator, FaultAlarmEnv
from sb3_causal_envs.spurious import SpuriousCorrelationEnv

__all__ = [
    "AlarmLog",
    "AlarmModel",
    "AlarmSimulator",
    "FaultAlarmEnv",
    "SpuriousCorrelationEnv",
    "load_table_b2",
    "register_envs",
]

# id -> entry point; the env enforces its own step limit, so no TimeLimit wrapper is added.
ENV_IDS = {
    "FaultAlarmRL-v0": "sb3_causal_envs.fault_alarm:FaultAlarmEnv",
    "SpuriousCorrelation-v0": "sb3_causal_envs.spurious:SpuriousCorrelationEnv",
}


def register_envs() -> None:
    """Register every environment of this package with gymnasium (idempotent)."""
    for env_id, entry_point in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, disable_env_checker=False)


register_envs()
