"""rl-baselines3-zoo launcher: train and tune sb3-causal's algorithms from zoo-format YAML (the ``zoo`` extra).

* :mod:`~sb3_causal.zoo.register`: our algorithms (``causal_ppo``, ``causal_dqn``, ``causal_d3qn``,
  ``maskable_dqn``, ``ppo_mask``, ``cmbpo``, ``mbpo``) and their samplers in rl-zoo3's tables;
* :mod:`~sb3_causal.zoo.samplers`: the Optuna search spaces;
* :mod:`~sb3_causal.zoo.manager`: :class:`CausalExperimentManager` (the zoo's manager with mask-aware
  evaluation and clear hyperparameter errors) and :func:`train`;
* :mod:`~sb3_causal.zoo.evaluate`: mask-aware evaluation callbacks and :func:`evaluate` (score a trained model).

::

    python -m sb3_causal.zoo --algo causal_ppo --env FaultAlarmRL-v0 -n 20000 --seed 0
    python -m sb3_causal.zoo --algo causal_ppo --env FaultAlarmRL-v0 -optimize --n-trials 20 \\
        --storage logs/causal_ppo.log --study-name causal_ppo_fault_alarm

On a base install (no rl-zoo3 / optuna) ``import sb3_causal.zoo`` still works: using any of its names raises an
ImportError naming ``pip install "sb3-causal[zoo]"``, and ``python -m sb3_causal.zoo`` says so in one line.

The submodules ``register`` and ``evaluate`` share their names with the functions :func:`register` and
:func:`evaluate` that the package exports: import from them with ``from sb3_causal.zoo.evaluate import ...``.
"""

from __future__ import annotations

import importlib
from typing import Any

#: the modules the launcher needs beyond the base install (import name -> distribution)
ZOO_EXTRA_MODULES = {"rl_zoo3": "rl-zoo3", "optuna": "optuna", "yaml": "pyyaml", "pandas": "pandas"}
INSTALL_HINT = 'pip install "sb3-causal[zoo]"'

__all__ = [
    "HYPERPARAMS_DIR",
    "INSTALL_HINT",
    "SAMPLERS",
    "ZOO_ALGOS",
    "CausalExperimentManager",
    "HyperparameterError",
    "ZooEvalCallback",
    "ZooTrialEvalCallback",
    "ZooUsageError",
    "check_algo_and_env",
    "check_hyperparams",
    "default_conf_file",
    "evaluate",
    "evaluate_model",
    "read_conf_file",
    "register",
    "require_zoo_extra",
    "sampled_to_hyperparams",
    "train",
    "uses_action_masks",
]


def require_zoo_extra() -> None:
    """Raise an ImportError naming the missing modules and :data:`INSTALL_HINT` when the zoo extra is absent."""
    missing = []
    for module, distribution in ZOO_EXTRA_MODULES.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(distribution)
    if missing:
        raise ImportError(f"the zoo launcher needs the zoo extra ({', '.join(missing)} missing): {INSTALL_HINT}")


try:
    require_zoo_extra()
except ImportError as _error:
    _MISSING_EXTRA: ImportError | None = _error
else:
    _MISSING_EXTRA = None
    from sb3_causal.zoo.evaluate import (
        ZooEvalCallback,
        ZooTrialEvalCallback,
        evaluate,
        evaluate_model,
        uses_action_masks,
    )
    from sb3_causal.zoo.manager import (
        CausalExperimentManager,
        check_hyperparams,
        default_conf_file,
        read_conf_file,
        train,
    )
    from sb3_causal.zoo.register import (
        HYPERPARAMS_DIR,
        ZOO_ALGOS,
        HyperparameterError,
        ZooUsageError,
        check_algo_and_env,
        register,
    )
    from sb3_causal.zoo.samplers import SAMPLERS, sampled_to_hyperparams


def __getattr__(name: str) -> Any:
    if _MISSING_EXTRA is not None and name in __all__:
        raise ImportError(str(_MISSING_EXTRA))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
