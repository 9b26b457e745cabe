"""Environments of sb3-causal. ``import sb3_causal`` registers them with gymnasium (see
:mod:`sb3_causal.registration`); this package depends on the library's graph and variables layers,
never the other way round."""

from __future__ import annotations

from sb3_causal.registration import register_envs
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
