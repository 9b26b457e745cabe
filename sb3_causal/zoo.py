"""rl-baselines3-zoo launcher: train and tune sb3-causal's algorithms from zoo-format YAML.

rl-zoo3 has no plugin API, so :func:`register` adds our algorithms to the zoo's own tables, in place
(``rl_zoo3``'s ``ALGOS`` is one dict shared by ``train``, ``enjoy`` and ``exp_manager``):

* ``ALGOS``: ``causal_ppo`` (:class:`~sb3_causal.CausalMaskablePPO`), ``causal_dqn`` and ``causal_d3qn``
  (:class:`~sb3_causal.CausalDQN`; the YAML of ``causal_d3qn`` selects the dueling policy and double-Q),
  ``maskable_dqn`` (:class:`~sb3_causal.MaskableDQN`), ``ppo_mask`` (sb3-contrib's ``MaskablePPO``),
  ``cmbpo`` and ``mbpo`` (:mod:`sb3_causal.mbrl`);
* ``hyperparams_opt.HYPERPARAMS_SAMPLER`` / ``HYPERPARAMS_CONVERTER``: the Optuna samplers below (and the
  converter ``--trial-id`` uses to turn a stored trial back into hyperparameters);
* ``exp_manager.EvalCallback`` and ``exp_manager.TrialEvalCallback``: the two names ``ExperimentManager``
  builds its evaluation callbacks from (``create_callbacks`` and ``objective``) are rebound to
  :class:`ZooEvalCallback` / :class:`ZooTrialEvalCallback`, sb3-contrib's ``MaskableEvalCallback`` that
  evaluates with the env's action masks whenever the model's ``predict`` takes ``action_masks`` and the eval
  env has ``action_masks()``; otherwise it is the zoo's plain evaluation, unchanged;
* ``train.ExperimentManager``: :class:`CausalExperimentManager`, the zoo's manager plus a check of every
  hyperparameter key against the algorithm's constructor (a clear :class:`HyperparameterError` instead of a
  ``TypeError`` deep inside) and :class:`~sb3_causal.algos.maskable_dqn.RecordTerminalActionMask` around each
  env of a masked DQN (so truncated episodes bootstrap with their own terminal masks).

:func:`train` is the zoo's ``train`` (same arguments: ``--algo``, ``--env``, ``-n``, ``-f``, ``--seed``,
``-conf/--conf-file``, ``-optimize``, ``--n-trials``, ``--storage``, ``--study-name``, ...). When no
``--conf-file`` is given it reads ``sb3_causal/hyperparams/<algo>.yml`` for our algorithms, and for the zoo's
own algorithms too when that file has a section for ``--env`` (e.g. ``ppo`` on ``FaultAlarmRL-v0``).
:func:`evaluate` loads a trained model from the zoo's log folder (or a zip) and reports its returns,
mask-aware.

    python -m sb3_causal.zoo --algo causal_ppo --env FaultAlarmRL-v0 -n 20000 --seed 0
    python -m sb3_causal.zoo --algo causal_ppo --env FaultAlarmRL-v0 -optimize --n-trials 20 \\
        --storage sqlite:///causal_ppo.db --study-name causal_ppo_fault_alarm
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import json
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import optuna
import rl_zoo3
import rl_zoo3.exp_manager
import rl_zoo3.hyperparams_opt
import rl_zoo3.train
import yaml
from rl_zoo3.callbacks import TrialEvalCallback
from rl_zoo3.exp_manager import ExperimentManager
from rl_zoo3.utils import ALGOS, create_test_env, get_model_path, get_saved_hyperparams
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback
from sb3_contrib.common.maskable.evaluation import evaluate_policy
from sb3_contrib.common.maskable.utils import is_masking_supported
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnv

from sb3_causal.algos import CausalDQN, CausalMaskablePPO, MaskableDQN, RecordTerminalActionMask
from sb3_causal.mbrl import CMBPO, MBPO

__all__ = [
    "HYPERPARAMS_DIR",
    "ZOO_ALGOS",
    "CausalExperimentManager",
    "HyperparameterError",
    "ZooEvalCallback",
    "ZooTrialEvalCallback",
    "ZooUsageError",
    "check_hyperparams",
    "default_conf_file",
    "evaluate",
    "evaluate_model",
    "register",
    "train",
    "uses_action_masks",
]

#: the shipped zoo-format YAML files, one per algorithm (``<algo>.yml``)
HYPERPARAMS_DIR = Path(__file__).with_name("hyperparams")

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

#: YAML keys the zoo consumes itself (never passed to the algorithm's constructor)
ZOO_KEYS = frozenset(
    {
        "n_timesteps",
        "n_envs",
        "normalize",
        "env_kwargs",
        "env_wrapper",
        "vec_env_wrapper",
        "frame_stack",
        "callback",
        "monitor_kwargs",
        "noise_type",
        "noise_std",
    }
)
#: constructor arguments the zoo passes itself (a YAML key with one of these names would clash)
SET_BY_ZOO = frozenset({"env", "seed", "verbose", "device", "tensorboard_log", "_init_setup_model", "self"})


class ZooUsageError(ValueError):
    """A launcher argument names something that does not exist (an algorithm, an env, a model)."""


class HyperparameterError(ZooUsageError):
    """A YAML / ``--hyperparams`` key that the algorithm does not take, or a missing hyperparameter section."""


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


# ---------------------------------------------------------------------- hyperparameter keys
def constructor_keys(algo_class: type[BaseAlgorithm]) -> set[str]:
    """The keyword arguments ``algo_class(...)`` accepts (``**kwargs`` followed up to the base class taking them)."""
    keys: set[str] = set()
    for cls in algo_class.__mro__:
        if "__init__" not in vars(cls):
            continue
        parameters = inspect.signature(cls.__init__).parameters.values()
        keys |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return keys - SET_BY_ZOO


def check_hyperparams(algo: str, hyperparams: dict[str, Any], source: str = "the hyperparameters") -> None:
    """
    Raise a :class:`HyperparameterError` naming every key of ``hyperparams`` that neither the zoo nor ``algo``'s
    constructor takes, with the valid keys.

    :param algo: the zoo name of the algorithm (a key of ``rl_zoo3.ALGOS``)
    :param hyperparams: one env section of a zoo YAML file (plus ``--hyperparams`` overrides)
    :param source: where the keys come from (for the message)
    """
    algo_class = ALGOS[algo]
    ctor = constructor_keys(algo_class)
    clashing = sorted(k for k in hyperparams if k in SET_BY_ZOO)
    if clashing:
        raise HyperparameterError(
            f"{source}: {clashing} are set by the zoo launcher itself (use --seed, --device, --verbose, "
            "-tb on the command line instead), remove them from the YAML"
        )
    unknown = sorted(k for k in hyperparams if k not in ctor and k not in ZOO_KEYS)
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, sorted(ctor | ZOO_KEYS), n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise HyperparameterError(
            f"{source}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(hints)} for --algo {algo} "
            f"({algo_class.__name__}). Valid keys: {', '.join(sorted(ctor))}; "
            f"zoo keys: {', '.join(sorted(ZOO_KEYS))}"
        )


def default_conf_file(algo: str, env_id: str | None = None) -> Path | None:
    """
    The shipped YAML ``--algo`` reads when no ``--conf-file`` is given, or None (the zoo's own file).

    :param algo: zoo name of the algorithm
    :param env_id: the env; for the zoo's own algorithms our file is used only when it has a section for it
    """
    path = HYPERPARAMS_DIR / f"{algo}.yml"
    if not path.is_file():
        return None
    if algo in ZOO_ALGOS:
        return path
    sections = yaml.safe_load(path.read_text()) or {}
    return path if env_id in sections else None


# ---------------------------------------------------------------------- mask-aware evaluation
def uses_action_masks(model: BaseAlgorithm, env: VecEnv | gym.Env) -> bool:
    """True when ``model.predict`` takes ``action_masks`` and ``env`` has ``action_masks()``."""
    return "action_masks" in inspect.signature(model.predict).parameters and is_masking_supported(env)


class ZooEvalCallback(MaskableEvalCallback):
    """
    The zoo's evaluation callback, mask-aware: sb3-contrib's ``MaskableEvalCallback`` with ``use_masking``
    decided when training starts by :func:`uses_action_masks` (the zoo's plain ``EvalCallback`` calls
    ``predict`` without masks, so a maskable agent would be scored on actions it never takes).

    Takes ``EvalCallback``'s arguments.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("use_masking", None)
        super().__init__(*args, use_masking=False, **kwargs)

    def _init_callback(self) -> None:
        super()._init_callback()
        self.use_masking = uses_action_masks(self.model, self.eval_env)


class ZooTrialEvalCallback(TrialEvalCallback, ZooEvalCallback):
    """The zoo's Optuna ``TrialEvalCallback`` (reports to the trial, prunes), evaluating as :class:`ZooEvalCallback`."""


# ---------------------------------------------------------------------- experiment manager
def _record_terminal_mask(inner: Callable[[gym.Env], gym.Env] | None) -> Callable[[gym.Env], gym.Env]:
    """An ``env_wrapper`` that applies ``inner`` and then :class:`RecordTerminalActionMask` (when the env has masks)."""

    def wrap(env: gym.Env) -> gym.Env:
        if inner is not None:
            env = inner(env)
        if is_masking_supported(env) and not is_wrapped(env, RecordTerminalActionMask):
            env = RecordTerminalActionMask(env)
        return env

    return wrap


class CausalExperimentManager(ExperimentManager):
    """rl-zoo3's ``ExperimentManager`` plus a hyperparameter key check and the terminal-mask wrapper of masked DQNs."""

    def read_hyperparameters(self) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            hyperparams, saved = super().read_hyperparameters()
        except ValueError as exc:
            if "Hyperparameters not found" not in str(exc):
                raise
            sections = _yaml_sections(self.config)
            raise HyperparameterError(
                f"{self.config} has no section for {self.env_name.gym_id} (sections: {sections}). Pass a YAML "
                f"with one: --conf-file my.yml, where my.yml has a '{self.env_name.gym_id}:' section (see "
                f"{HYPERPARAMS_DIR} for examples), or a 'default:' section"
            ) from exc
        check_hyperparams(self.algo, hyperparams, source=f"{self.config} [{self.env_name.gym_id}]")
        return hyperparams, saved

    def _preprocess_hyperparams(self, hyperparams: dict[str, Any]) -> tuple[dict[str, Any], Any, Any, Any]:
        hyperparams, env_wrapper, callbacks, vec_env_wrapper = super()._preprocess_hyperparams(hyperparams)
        if issubclass(ALGOS[self.algo], MaskableDQN):
            env_wrapper = _record_terminal_mask(env_wrapper)
        return hyperparams, env_wrapper, callbacks, vec_env_wrapper


def _yaml_sections(config: str) -> list[str]:
    try:
        return list(yaml.safe_load(Path(config).read_text()) or {})
    except (OSError, yaml.YAMLError):
        return []


# ---------------------------------------------------------------------- Optuna samplers
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

    :param trial: the Optuna trial
    :param n_actions: unused (the zoo's sampler signature)
    :param n_envs: unused
    :param additional_args: unused
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

    :param trial: the Optuna trial
    :param n_actions: unused (the zoo's sampler signature)
    :param n_envs: unused
    :param additional_args: unused
    """
    return {**sample_maskable_ppo_params(trial, n_actions, n_envs, additional_args), **_sample_causal(trial)}


def sample_maskable_dqn_params(
    trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict
) -> dict[str, Any]:
    """
    MaskableDQN search space (the policy and ``double_q`` stay as the YAML sets them).

    :param trial: the Optuna trial
    :param n_actions: unused (the zoo's sampler signature)
    :param n_envs: unused
    :param additional_args: unused
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

    :param trial: the Optuna trial
    :param n_actions: unused (the zoo's sampler signature)
    :param n_envs: unused
    :param additional_args: unused
    """
    return {**sample_maskable_dqn_params(trial, n_actions, n_envs, additional_args), **_sample_causal(trial)}


def sample_mbpo_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
    """
    MBPO search space: SAC's learning rate, batch, gamma, tau, networks; G (``gradient_steps``), the real-data
    ratio and the world-model refit period.

    :param trial: the Optuna trial
    :param n_actions: unused (the zoo's sampler signature)
    :param n_envs: unused
    :param additional_args: unused
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

    :param trial: the Optuna trial
    :param n_actions: unused (the zoo's sampler signature)
    :param n_envs: unused
    :param additional_args: unused
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


# ---------------------------------------------------------------------- registration
def register() -> None:
    """Register our algorithms, samplers and the mask-aware evaluation with rl-zoo3 (idempotent; see the module doc)."""
    ALGOS.update(ZOO_ALGOS)
    rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER.update(SAMPLERS)
    rl_zoo3.hyperparams_opt.HYPERPARAMS_CONVERTER.update(dict.fromkeys(SAMPLERS, sampled_to_hyperparams))
    rl_zoo3.exp_manager.EvalCallback = ZooEvalCallback
    rl_zoo3.exp_manager.TrialEvalCallback = ZooTrialEvalCallback
    rl_zoo3.train.ExperimentManager = CausalExperimentManager


@contextmanager
def _argv(argv: list[str]):
    saved = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = saved


def _option(argv: Sequence[str], *names: str) -> str | None:
    """The value of the last ``--name value`` / ``--name=value`` among ``names`` in ``argv``."""
    value = None
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                value = argv[i + 1]
            elif arg.startswith(name + "="):
                value = arg.split("=", 1)[1]
    return value


def train(argv: Sequence[str] | None = None, prog: str = "python -m sb3_causal.zoo") -> None:
    """
    rl-zoo3's ``train`` with our algorithms registered and our YAML as the default ``--conf-file``.

    :param argv: the zoo's ``train`` arguments (default: ``sys.argv[1:]``)
    :param prog: program name shown in ``--help``
    """
    register()
    args = list(sys.argv[1:] if argv is None else argv)
    algo = _option(args, "--algo")
    # with --gym-packages the env is registered by a module the zoo imports first: let the zoo check it
    check_algo_and_env(algo, None if _option(args, "--gym-packages") else _option(args, "--env"))
    if _option(args, "-conf", "--conf-file") is None and algo is not None:
        conf = default_conf_file(algo, _option(args, "--env"))
        if conf is not None:
            args += ["--conf-file", str(conf)]
    with _argv([prog, *args]):
        rl_zoo3.train.train()


# ---------------------------------------------------------------------- evaluation
def evaluate_model(
    model: BaseAlgorithm,
    env: VecEnv,
    n_episodes: int = 10,
    deterministic: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """
    Returns of ``model`` over ``n_episodes`` episodes of ``env``, with the env's action masks when the model takes them.

    :param model: a trained model
    :param env: a Monitor-wrapped VecEnv (with ``VecNormalize`` statistics loaded if the model was trained with them)
    :param n_episodes: number of episodes
    :param deterministic: deterministic actions
    :param progress: show a progress bar over episodes (tqdm)
    :return: ``{"mean_return", "std_return", "min_return", "max_return", "mean_length", "n_episodes",
        "returns", "lengths", "masked"}``
    """
    masked = uses_action_masks(model, env)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_episodes, desc="evaluating", unit="episode")

    def on_step(local_vars: dict[str, Any], _globals: dict[str, Any]) -> None:
        if bar is not None and local_vars.get("done"):
            bar.update(1)

    try:
        returns, lengths = evaluate_policy(
            model,  # type: ignore[arg-type]
            env,
            n_eval_episodes=n_episodes,
            deterministic=deterministic,
            return_episode_rewards=True,
            callback=on_step,
            use_masking=masked,
        )
    finally:
        if bar is not None:
            bar.close()
    returns_arr = np.asarray(returns, dtype=float)
    return {
        "mean_return": float(returns_arr.mean()),
        "std_return": float(returns_arr.std()),
        "min_return": float(returns_arr.min()),
        "max_return": float(returns_arr.max()),
        "mean_length": float(np.mean(lengths)),
        "n_episodes": len(returns),
        "returns": [round(float(r), 4) for r in returns],
        "lengths": [int(n) for n in lengths],
        "masked": masked,
    }


def evaluation_parser(prog: str = "sb3-causal evaluate") -> argparse.ArgumentParser:
    """Arguments of :func:`evaluate` (the zoo's ``enjoy`` ones that apply to scoring a model)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Load a model trained by the zoo launcher (or any saved zip) and report its returns. "
        "Maskable agents are evaluated with the env's action masks.",
    )
    parser.add_argument("--algo", required=True, help=f"algorithm the model was trained with, e.g. {list(ZOO_ALGOS)}")
    parser.add_argument("--env", required=True, help="environment id, e.g. FaultAlarmRL-v0")
    parser.add_argument("-f", "--folder", default="logs", help="the zoo's log folder (train's -f)")
    parser.add_argument("--exp-id", type=int, default=0, help="experiment id (0: latest)")
    parser.add_argument("--model", default=None, help="a model zip to load instead of the log folder's")
    parser.add_argument("--load-best", action="store_true", help="the best model of the run's evaluations")
    parser.add_argument("--n-episodes", type=int, default=10, help="episodes to evaluate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the evaluation env")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of the deterministic ones")
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    return parser


def evaluate(argv: Sequence[str] | None = None, prog: str = "sb3-causal evaluate") -> dict[str, Any]:
    """
    Evaluate a trained model: ``--algo``/``--env``/``-f``/``--exp-id`` find it as the zoo's ``enjoy`` does (or
    ``--model`` names the zip); the run's saved env kwargs, env wrapper and VecNormalize statistics are used.
    Prints a summary and one JSON line; returns the figures of :func:`evaluate_model` plus ``model_path``.

    :param argv: command-line arguments (default: ``sys.argv[1:]``)
    :param prog: program name shown in ``--help``
    """
    register()
    args = evaluation_parser(prog).parse_args(argv)
    check_algo_and_env(args.algo, args.env)
    stats_dir = None
    if args.model is not None:
        model_path = args.model
        if not os.path.isfile(model_path):
            raise ZooUsageError(f"--model {model_path}: no such file")
        candidate = Path(model_path).parent / args.env
        stats_dir = str(candidate) if candidate.is_dir() else None
    else:
        try:
            _, model_path, log_path = get_model_path(args.exp_id, args.folder, args.algo, args.env, args.load_best)
        except (AssertionError, ValueError) as exc:
            raise ZooUsageError(
                f"no trained {args.algo} model for {args.env} under {args.folder!r} (exp id {args.exp_id}): {exc}"
            ) from exc
        stats_dir = os.path.join(log_path, args.env)
    hyperparams, stats_path = get_saved_hyperparams(stats_dir, test_mode=True) if stats_dir else ({}, None)
    env_kwargs = dict(hyperparams.pop("env_kwargs", None) or {})
    saved_args = Path(stats_dir or "", "args.yml")
    if stats_dir and saved_args.is_file():
        loaded = yaml.load(saved_args.read_text(), Loader=yaml.UnsafeLoader) or {}
        env_kwargs.update(loaded.get("env_kwargs") or {})
    set_random_seed(args.seed)
    env = create_test_env(
        args.env,
        n_envs=1,
        stats_path=stats_path,
        seed=args.seed,
        should_render=False,
        hyperparams=hyperparams,
        env_kwargs=env_kwargs,
    )
    algo_class = ALGOS[args.algo]
    kwargs: dict[str, Any] = {"seed": args.seed}
    if issubclass(algo_class, OffPolicyAlgorithm):
        kwargs["buffer_size"] = 1  # no replay memory is needed to act
    custom_objects = {"learning_rate": 0.0, "lr_schedule": lambda _: 0.0, "clip_range": lambda _: 0.0}
    model = algo_class.load(model_path, custom_objects=custom_objects, device=args.device, **kwargs)
    try:
        result = evaluate_model(
            model,
            env,
            args.n_episodes,
            deterministic=not args.stochastic,
            progress=not args.no_progress and not args.json and sys.stderr.isatty(),
        )
    finally:
        env.close()
    result = {"model_path": str(model_path), "algo": args.algo, "env": args.env, **result}
    if not args.json:
        print(
            f"{args.algo} on {args.env} ({model_path}): mean return {result['mean_return']:.3f} "
            f"+/- {result['std_return']:.3f} over {result['n_episodes']} episodes, mean length "
            f"{result['mean_length']:.1f}{' (with action masks)' if result['masked'] else ''}"
        )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    try:
        train()
    except ZooUsageError as error:
        sys.exit(f"error: {error}")
