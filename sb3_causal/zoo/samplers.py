"""Optuna search spaces of our algorithms, in rl-zoo3's sampler signature
``(trial, n_actions, n_envs, additional_args)``.

:func:`sampled_to_hyperparams` is also the ``HYPERPARAMS_CONVERTER`` the zoo's ``--trial-id`` uses to turn a stored
trial back into constructor arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna

__all__ = ["NET_ARCHS", "SAMPLERS", "sampled_to_hyperparams"]

NET_ARCHS: dict[str, list[int]] = {"small": [64, 64], "medium": [128, 128], "large": [256, 256]}


def sampled_to_hyperparams(params: dict[str, Any]) -> dict[str, Any]:
    """
    Turn sampled (or stored) trial parameters into constructor keyword arguments (``net_arch`` -> ``policy_kwargs``).

    It is also the ``HYPERPARAMS_CONVERTER`` of our algorithms, used by ``--trial-id`` to reload a trial.

    :param params: ``trial.params`` of one of our samplers
    """
    hyperparams = dict(params)
    if "net_arch" in hyperparams:
        hyperparams["policy_kwargs"] = {"net_arch": NET_ARCHS[hyperparams.pop("net_arch")]}
    return hyperparams


def _sample_causal(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "k": trial.suggest_categorical("k", [1, 3, 5, 10]),
        "eta": trial.suggest_float("eta", 0.0, 0.5),
        "graph_update_freq": trial.suggest_categorical("graph_update_freq", [500, 1000, 2000]),
    }


def sample_maskable_ppo_params(
    trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict
) -> dict[str, Any]:
    """
    MaskablePPO search space (``ppo_mask``), sized for FaultAlarmRL-like envs (rollouts of 128-1024 steps).

    :param trial: the Optuna trial (the other arguments: the zoo's sampler signature, unused)
    """
    params = {
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1e-3, log=True),
        "n_steps": trial.suggest_categorical("n_steps", [128, 256, 512, 1024]),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128]),
        "n_epochs": trial.suggest_categorical("n_epochs", [5, 10, 20]),
        "gamma": trial.suggest_categorical("gamma", [0.95, 0.99, 0.995]),
        "gae_lambda": trial.suggest_categorical("gae_lambda", [0.9, 0.95, 0.98]),
        "clip_range": trial.suggest_categorical("clip_range", [0.1, 0.2, 0.3]),
        "ent_coef": trial.suggest_float("ent_coef", 1e-8, 1e-2, log=True),
        "net_arch": trial.suggest_categorical("net_arch", list(NET_ARCHS)),
    }
    return sampled_to_hyperparams(params)


def sample_causal_ppo_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    CausalMaskablePPO search space: the MaskablePPO one plus the mask's ``k``, ``eta`` and the graph update period.

    :param trial: the Optuna trial (the other arguments: the zoo's sampler signature, unused)
    """
    return {**sample_maskable_ppo_params(trial, n_actions, n_envs, additional_args), **_sample_causal(trial)}


def sample_maskable_dqn_params(
    trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict
) -> dict[str, Any]:
    """
    MaskableDQN search space (the policy and ``double_q`` stay as the YAML sets them).

    :param trial: the Optuna trial (the other arguments: the zoo's sampler signature, unused)
    """
    params = {
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128]),
        "gamma": trial.suggest_categorical("gamma", [0.95, 0.99, 0.995]),
        "train_freq": trial.suggest_categorical("train_freq", [1, 4, 5, 8]),
        "target_update_interval": trial.suggest_categorical("target_update_interval", [250, 500, 1000, 2000]),
        "exploration_initial_eps": trial.suggest_float("exploration_initial_eps", 0.1, 1.0),
        "exploration_final_eps": trial.suggest_float("exploration_final_eps", 0.01, 0.1),
        "exploration_fraction": trial.suggest_float("exploration_fraction", 0.05, 0.5),
        "net_arch": trial.suggest_categorical("net_arch", list(NET_ARCHS)),
    }
    return sampled_to_hyperparams(params)


def sample_causal_dqn_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    CausalDQN / D3QN search space: the MaskableDQN one plus the mask's ``k``, ``eta`` and the graph update period.

    :param trial: the Optuna trial (the other arguments: the zoo's sampler signature, unused)
    """
    return {**sample_maskable_dqn_params(trial, n_actions, n_envs, additional_args), **_sample_causal(trial)}


def sample_mbpo_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    MBPO search space: SAC's learning rate, batch, gamma, tau, networks; G (``gradient_steps``), the real-data
    ratio and the world-model refit period.

    :param trial: the Optuna trial (the other arguments: the zoo's sampler signature, unused)
    """
    params = {
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256]),
        "gamma": trial.suggest_categorical("gamma", [0.98, 0.99, 0.995]),
        "tau": trial.suggest_categorical("tau", [0.005, 0.01, 0.02]),
        "gradient_steps": trial.suggest_categorical("gradient_steps", [2, 5, 10]),
        "real_ratio": trial.suggest_categorical("real_ratio", [0.05, 0.1, 0.25, 0.5]),
        "model_train_freq": trial.suggest_categorical("model_train_freq", [250, 500]),
        "net_arch": trial.suggest_categorical("net_arch", list(NET_ARCHS)),
    }
    return sampled_to_hyperparams(params)


def sample_cmbpo_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    C-MBPO search space: the MBPO one plus the significance level of PC's tests.

    :param trial: the Optuna trial (the other arguments: the zoo's sampler signature, unused)
    """
    params = sample_mbpo_params(trial, n_actions, n_envs, additional_args)
    params["structure_alpha"] = trial.suggest_categorical("structure_alpha", [0.01, 0.05, 0.1])
    return params


SAMPLERS: dict[str, Callable[..., dict[str, Any]]] = {
    "causal_ppo": sample_causal_ppo_params,
    "ppo_mask": sample_maskable_ppo_params,
    "causal_dqn": sample_causal_dqn_params,
    "causal_d3qn": sample_causal_dqn_params,
    "maskable_dqn": sample_maskable_dqn_params,
    "cmbpo": sample_cmbpo_params,
    "mbpo": sample_mbpo_params,
}
