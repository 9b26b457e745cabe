"""Our algorithms in rl-zoo3's tables, and the launcher's usage errors.

rl-zoo3 has no plugin API: its ``ALGOS`` (one dict shared by ``train``, ``enjoy`` and ``exp_manager``) and
``hyperparams_opt``'s ``HYPERPARAMS_SAMPLER`` / ``HYPERPARAMS_CONVERTER`` are where it looks algorithms up.
:func:`register` adds our entries to those dicts; it rebinds no name of the zoo (mask-aware evaluation comes
from :class:`~sb3_causal.zoo.manager.CausalExperimentManager`, a subclass of the zoo's manager).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import rl_zoo3.hyperparams_opt
from rl_zoo3.utils import ALGOS
from sb3_contrib import MaskablePPO
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_causal.algos import CausalDQN, CausalMaskablePPO, MaskableDQN
from sb3_causal.mbrl import CMBPO, MBPO
from sb3_causal.zoo.samplers import SAMPLERS, sampled_to_hyperparams

__all__ = ["HYPERPARAMS_DIR", "ZOO_ALGOS", "HyperparameterError", "ZooUsageError", "check_algo_and_env", "register"]

#: the shipped zoo-format YAML files, one per algorithm (``<algo>.yml``)
HYPERPARAMS_DIR = Path(__file__).resolve().parents[1] / "hyperparams"

#: name in the zoo -> algorithm class
ZOO_ALGOS: dict[str, type[BaseAlgorithm]] = {
    "causal_ppo": CausalMaskablePPO,
    "causal_dqn": CausalDQN,
    "causal_d3qn": CausalDQN,
    "maskable_dqn": MaskableDQN,
    "ppo_mask": MaskablePPO,
    "cmbpo": CMBPO,
    "mbpo": MBPO,
}


class ZooUsageError(ValueError):
    """A launcher argument names something that does not exist (an algorithm, an env, a model, a file)."""


class HyperparameterError(ZooUsageError):
    """A YAML / ``-params`` key or value the algorithm does not take, or a missing or unreadable YAML section."""


def register() -> None:
    """Add our algorithms and their Optuna samplers to rl-zoo3's tables (idempotent)."""
    ALGOS.update(ZOO_ALGOS)
    rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER.update(SAMPLERS)
    rl_zoo3.hyperparams_opt.HYPERPARAMS_CONVERTER.update(dict.fromkeys(SAMPLERS, sampled_to_hyperparams))


def _unknown(kind: str, name: str, known: Sequence[str], extra: str = "") -> ZooUsageError:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ZooUsageError(f"unknown {kind} {name!r}{hint}{extra}")


def check_algo_and_env(algo: str | None, env_id: str | None) -> None:
    """Raise a :class:`ZooUsageError` (with the closest name) for an ``algo`` or ``env_id`` nobody registered."""
    if algo is not None and algo not in ALGOS:
        ours, zoos = ", ".join(ZOO_ALGOS), ", ".join(k for k in ALGOS if k not in ZOO_ALGOS)
        raise _unknown("--algo", algo, list(ALGOS), f"; sb3-causal's: {ours}; the zoo's: {zoos}")
    if env_id is not None and env_id not in gym.registry:
        raise _unknown("--env", env_id, list(gym.registry), " (sb3-causal's: FaultAlarmRL-v0, SpuriousCorrelation-v0)")
