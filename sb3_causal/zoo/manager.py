"""The zoo's ``ExperimentManager`` for our algorithms, and :func:`train` (rl-zoo3's ``train`` with it).

:class:`CausalExperimentManager` is rl-zoo3's manager plus:

* mask-aware evaluation: ``create_callbacks`` builds :class:`~sb3_causal.zoo.evaluate.ZooEvalCallback` and,
  for a model whose ``predict`` takes action masks, ``objective`` (one Optuna trial) builds
  :class:`~sb3_causal.zoo.evaluate.ZooTrialEvalCallback`; the zoo builds both inline, so these two methods are
  where they are swapped. No name of the zoo is rebound;
* clear errors: a missing or unreadable ``--conf-file``, a YAML without a section for ``--env``, a key the
  algorithm's constructor does not take or a non-integer value for an ``int`` argument, each naming where it
  came from (the YAML file or ``-params``);
* :class:`~sb3_causal.algos.RecordTerminalActionMask` around each env of a masked DQN (so truncated episodes
  bootstrap with their own terminal masks).

:func:`train` runs the zoo's own ``train`` (its arguments: ``--algo``, ``--env``, ``-n``, ``-f``, ``--seed``,
``-conf/--conf-file``, ``-optimize``, ``--n-trials``, ``--storage``, ``--study-name``, ...) with this manager.
Without ``--conf-file`` it reads ``sb3_causal/hyperparams/<algo>.yml`` for our algorithms, and for the zoo's own
algorithms too when that file has a section for ``--env`` (e.g. ``ppo`` on ``FaultAlarmRL-v0``).
"""

from __future__ import annotations

import difflib
import inspect
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gymnasium as gym
import optuna
import rl_zoo3.train
import yaml
from rl_zoo3.callbacks import SaveVecNormalizeCallback
from rl_zoo3.exp_manager import ExperimentManager
from rl_zoo3.hyperparams_opt import HYPERPARAMS_SAMPLER
from rl_zoo3.utils import ALGOS, get_callback_list
from sb3_contrib.common.maskable.utils import is_masking_supported
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import is_wrapped

from sb3_causal.algos import MaskableDQN, RecordTerminalActionMask
from sb3_causal.zoo.evaluate import ZooEvalCallback, ZooTrialEvalCallback, predict_takes_masks
from sb3_causal.zoo.register import (
    HYPERPARAMS_DIR,
    ZOO_ALGOS,
    HyperparameterError,
    check_algo_and_env,
    register,
)

__all__ = [
    "SET_BY_ZOO",
    "ZOO_KEYS",
    "CausalExperimentManager",
    "check_hyperparams",
    "constructor_parameters",
    "default_conf_file",
    "read_conf_file",
    "train",
]

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

#: where ``-params key:value`` overrides come from (named in errors)
PARAMS_SOURCE = "-params (--hyperparams)"


# ---------------------------------------------------------------------- hyperparameter checks
def constructor_parameters(algo_class: type[BaseAlgorithm]) -> dict[str, inspect.Parameter]:
    """The keyword arguments ``algo_class(...)`` accepts (``**kwargs`` followed up to the base class taking them)."""
    parameters: dict[str, inspect.Parameter] = {}
    for cls in algo_class.__mro__:
        if "__init__" not in vars(cls):
            continue
        signature = inspect.signature(cls.__init__).parameters.values()
        for p in signature:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in SET_BY_ZOO:
                parameters.setdefault(p.name, p)
        if not any(p.kind is p.VAR_KEYWORD for p in signature):
            break
    return parameters


def _is_int_annotation(annotation: Any) -> bool:
    return annotation is int or annotation == "int"


def check_hyperparams(algo: str, hyperparams: dict[str, Any], source: str = "the hyperparameters") -> None:
    """
    Raise a :class:`HyperparameterError` naming every key of ``hyperparams`` that neither the zoo nor ``algo``'s
    constructor takes (with the valid keys), or a fractional value for an argument typed ``int``.

    :param algo: the zoo name of the algorithm (a key of ``rl_zoo3.ALGOS``)
    :param hyperparams: one env section of a zoo YAML file, or the ``-params`` overrides
    :param source: where the keys come from (for the message)
    """
    algo_class = ALGOS[algo]
    parameters = constructor_parameters(algo_class)
    clashing = sorted(k for k in hyperparams if k in SET_BY_ZOO)
    if clashing:
        raise HyperparameterError(
            f"{source}: {clashing} are set by the zoo launcher itself (use --seed, --device, --verbose, "
            "-tb on the command line instead), remove them"
        )
    unknown = sorted(k for k in hyperparams if k not in parameters and k not in ZOO_KEYS)
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, sorted(parameters.keys() | ZOO_KEYS), n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise HyperparameterError(
            f"{source}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(hints)} for --algo {algo} "
            f"({algo_class.__name__}). Valid keys: {', '.join(sorted(parameters))}; "
            f"zoo keys: {', '.join(sorted(ZOO_KEYS))}"
        )
    for key, value in hyperparams.items():
        parameter = parameters.get(key)
        fractional = isinstance(value, float) and not value.is_integer()
        if parameter is not None and fractional and _is_int_annotation(parameter.annotation):
            raise HyperparameterError(
                f"{source}: {key} must be an integer for --algo {algo} ({algo_class.__name__}), got {value!r}"
            )


def read_conf_file(path: str | Path) -> dict[str, Any]:
    """
    The sections of a zoo YAML file, or a :class:`HyperparameterError` naming the file and the problem.

    :param path: a ``.yml`` / ``.yaml`` file
    """
    path = Path(path)
    if not path.is_file():
        raise HyperparameterError(f"--conf-file {path}: no such file")
    try:
        sections = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise HyperparameterError(f"--conf-file {path}: invalid YAML{line}: {problem}") from exc
    if sections is None:
        return {}
    if not isinstance(sections, dict) or not all(isinstance(s, dict) for s in sections.values()):
        raise HyperparameterError(
            f"--conf-file {path}: expected a mapping of env ids to mappings of hyperparameters "
            f"('FaultAlarmRL-v0:' then indented 'key: value' lines), see {HYPERPARAMS_DIR}"
        )
    return sections


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
    return path if env_id in read_conf_file(path) else None


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
    """rl-zoo3's ``ExperimentManager`` with mask-aware evaluation, clear hyperparameter errors and the terminal-mask
    wrapper of masked DQNs (see the module doc). Takes the zoo manager's arguments."""

    def read_hyperparameters(self) -> tuple[dict[str, Any], dict[str, Any]]:
        env_id = self.env_name.gym_id
        if self.config.endswith((".yml", ".yaml")):
            sections = read_conf_file(self.config)
            if env_id not in sections and "default" not in sections and not self._is_atari:
                raise HyperparameterError(
                    f"{self.config} has no section for {env_id} (sections: {list(sections)}). Pass a YAML "
                    f"with one: --conf-file my.yml, where my.yml has a '{env_id}:' section (see "
                    f"{HYPERPARAMS_DIR} for examples), or a 'default:' section"
                )
        elif self.config.endswith(".py") and not os.path.isfile(self.config):
            raise HyperparameterError(f"--conf-file {self.config}: no such file")
        hyperparams, saved = super().read_hyperparameters()
        overrides = dict(self.custom_hyperparams or {})
        from_config = {k: v for k, v in hyperparams.items() if k not in overrides}
        check_hyperparams(self.algo, from_config, source=f"{self.config} [{env_id}]")
        check_hyperparams(self.algo, overrides, source=PARAMS_SOURCE)
        return hyperparams, saved

    def _preprocess_hyperparams(self, hyperparams: dict[str, Any]) -> tuple[dict[str, Any], Any, Any, Any]:
        hyperparams, env_wrapper, callbacks, vec_env_wrapper = super()._preprocess_hyperparams(hyperparams)
        if issubclass(ALGOS[self.algo], MaskableDQN):
            env_wrapper = _record_terminal_mask(env_wrapper)
        return hyperparams, env_wrapper, callbacks, vec_env_wrapper

    def create_callbacks(self) -> None:
        """The zoo's callbacks (progress bar, checkpoints), with :class:`ZooEvalCallback` as the evaluation."""
        eval_freq, self.eval_freq = self.eval_freq, -1
        try:
            super().create_callbacks()  # everything but the evaluation
        finally:
            self.eval_freq = eval_freq
        if self.eval_freq <= 0 or self.optimize_hyperparameters:
            return
        self.eval_freq = max(self.eval_freq // self.n_envs, 1)  # in calls to the callback, as the zoo counts
        if self.verbose > 0:
            print("Creating test environment")
        self.callbacks.append(
            ZooEvalCallback(
                self.create_envs(self.n_eval_envs, eval_env=True),
                callback_on_new_best=SaveVecNormalizeCallback(save_freq=1, save_path=self.params_path),
                best_model_save_path=self.save_path,
                n_eval_episodes=self.n_eval_episodes,
                log_path=self.save_path,
                eval_freq=self.eval_freq,
                deterministic=self.deterministic_eval,
            )
        )

    def objective(self, trial: optuna.Trial) -> float:
        """
        One Optuna trial: train with sampled hyperparameters and return the last mask-aware evaluation (pruned
        when the trial's intermediate evaluations say so, or when the sampled values make training fail).
        The zoo's own objective runs unchanged for a model that takes no action masks.

        :param trial: the Optuna trial
        """
        algo_class = ALGOS[self.algo]
        if not predict_takes_masks(algo_class):
            return super().objective(trial)
        additional_args = {"using_her_replay_buffer": False, "her_kwargs": {}}
        sampled = HYPERPARAMS_SAMPLER[self.algo](trial, self.n_actions, self.n_envs, additional_args)
        env = self.create_envs(self.n_envs, no_log=True)
        # trials are not seeded and stay quiet below verbose 2, as in the zoo
        model = algo_class(
            env=env,
            tensorboard_log=None,
            seed=None,
            verbose=self.verbose if self.verbose >= 2 else 0,
            device=self.device,
            **{**self._hyperparams, **sampled},
        )
        eval_env = self.create_envs(n_envs=self.n_eval_envs, eval_env=True)
        path = None
        if self.optimization_log_path is not None:
            path = os.path.join(self.optimization_log_path, f"trial_{trial.number}")
        evaluation = ZooTrialEvalCallback(
            eval_env,
            trial,
            best_model_save_path=path,
            log_path=path,
            n_eval_episodes=self.n_eval_episodes,
            eval_freq=max(self.n_timesteps // self.n_evaluations // self.n_envs, 1),
            deterministic=self.deterministic_eval,
        )
        callbacks = [*get_callback_list({"callback": self.specified_callbacks}), evaluation]
        try:
            model.learn(self.n_timesteps, callback=callbacks)
        except (AssertionError, ValueError) as exc:  # sampled values that diverge (NaN): pruned, as the zoo does
            print(f"trial {trial.number} failed with {sampled}: {exc}")
            raise optuna.TrialPruned(str(exc)) from exc
        finally:
            env.close()
            eval_env.close()
        if evaluation.is_pruned:
            raise optuna.TrialPruned()
        return evaluation.last_mean_reward


# ---------------------------------------------------------------------- train
@contextmanager
def _zoo_train_with(argv: list[str]) -> Iterator[None]:
    """``sys.argv`` and the manager class of ``rl_zoo3.train`` for one run of the zoo's ``train``, restored after.

    The zoo's ``train()`` parses ``sys.argv`` and builds ``rl_zoo3.train.ExperimentManager`` inline (some 150 lines
    of arguments we would otherwise copy); both are set for the call only, so the zoo is left as it was found.
    """
    saved_argv, saved_manager = sys.argv, rl_zoo3.train.ExperimentManager
    sys.argv, rl_zoo3.train.ExperimentManager = argv, CausalExperimentManager
    try:
        yield
    finally:
        sys.argv, rl_zoo3.train.ExperimentManager = saved_argv, saved_manager


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
    rl-zoo3's ``train`` with our algorithms registered, :class:`CausalExperimentManager`, and our YAML as the
    default ``--conf-file``.

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
    with _zoo_train_with([prog, *args]):
        rl_zoo3.train.train()
