"""Mask-aware evaluation: the zoo's evaluation callbacks with action masks, and scoring a trained model.

rl-zoo3 evaluates with SB3's ``EvalCallback`` (and, under Optuna, its ``TrialEvalCallback``), which call
``predict`` without masks: a maskable agent would be scored on actions it never takes. The callbacks here are
sb3-contrib's ``MaskableEvalCallback`` with ``use_masking`` decided when training starts by
:func:`uses_action_masks`; for a model without masks they evaluate exactly as the zoo does.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml
from rl_zoo3.callbacks import TrialEvalCallback
from rl_zoo3.utils import ALGOS, create_test_env, get_model_path, get_saved_hyperparams
from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback
from sb3_contrib.common.maskable.evaluation import evaluate_policy
from sb3_contrib.common.maskable.utils import is_masking_supported
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnv

from sb3_causal.zoo.register import ZOO_ALGOS, ZooUsageError, check_algo_and_env, register

__all__ = [
    "ZooEvalCallback",
    "ZooTrialEvalCallback",
    "evaluate",
    "evaluate_model",
    "evaluation_parser",
    "predict_takes_masks",
    "uses_action_masks",
]


def predict_takes_masks(algo_class: type[BaseAlgorithm]) -> bool:
    """True when ``algo_class.predict`` takes ``action_masks`` (sb3-contrib's maskable signature)."""
    return "action_masks" in inspect.signature(algo_class.predict).parameters


def uses_action_masks(model: BaseAlgorithm, env: VecEnv | gym.Env) -> bool:
    """True when ``model.predict`` takes ``action_masks`` and ``env`` has ``action_masks()``."""
    return predict_takes_masks(type(model)) and is_masking_supported(env)


class ZooEvalCallback(MaskableEvalCallback):
    """
    The zoo's evaluation callback, mask-aware: sb3-contrib's ``MaskableEvalCallback`` with ``use_masking``
    decided when training starts by :func:`uses_action_masks`.

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
