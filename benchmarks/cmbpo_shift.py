"""SAC vs MBPO vs C-MBPO on SpuriousCorrelation-v0, evaluated in distribution and under near / far shift.

Each method gets the same env budget and seeds. Every ``--eval-every`` env steps the deterministic policy is
evaluated in distribution (the learning curves, saved as a PNG); at the end it is evaluated with
``shift="none"``, ``"near"`` and ``"far"``. The last line printed is one JSON object::

    {"sac": {"id": .., "near": .., "far": ..}, "mbpo": {...}, "cmbpo": {...}, "reward_parents": [...],
     "env_steps": .., "seconds": .., ...}

(returns are means over seeds and evaluation episodes; ``reward_parents`` is C-MBPO's final graph's
parents of ``r``, the union over seeds; ``steps_to_sac_final`` says when each method's mean curve first
reached 95% of SAC's final in-distribution return, null if never).

    python benchmarks/cmbpo_shift.py --quick            # 2000 env steps per method: a few minutes on 2 cores
    python benchmarks/cmbpo_shift.py --seeds 3          # 10000 env steps per method, 10 eval episodes
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

import sb3_causal  # noqa: F401  (registers SpuriousCorrelation-v0)
from sb3_causal.mbrl import CMBPO, MBPO

ENV_ID = "SpuriousCorrelation-v0"
SHIFTS = {"id": "none", "near": "near", "far": "far"}


def evaluate(model: BaseAlgorithm, shift: str, n_episodes: int, seed: int) -> float:
    """Mean return of the deterministic policy over ``n_episodes`` episodes of the env with ``shift``."""
    env = gym.make(ENV_ID, shift=shift)
    returns = []
    for episode in range(n_episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


class CurveCallback(BaseCallback):
    """Evaluates in distribution every ``every`` env steps (and at step 0 of training)."""

    def __init__(self, every: int, n_episodes: int, seed: int) -> None:
        super().__init__()
        self.every, self.n_episodes, self.seed = every, n_episodes, seed
        self.steps: list[int] = []
        self.returns: list[float] = []

    def _on_step(self) -> bool:
        if self.num_timesteps % self.every == 0:
            self.steps.append(self.num_timesteps)
            self.returns.append(evaluate(self.model, "none", self.n_episodes, 10_000 + self.seed))
        return True


def make_model(method: str, seed: int, args: argparse.Namespace) -> BaseAlgorithm:
    env = gym.make(ENV_ID)
    common: dict[str, Any] = dict(
        seed=seed,
        learning_starts=args.learning_starts,
        batch_size=args.batch_size,
        policy_kwargs=dict(net_arch=[64, 64]),
        verbose=0,
        device="cpu",
    )
    if method == "sac":
        return SAC("MlpPolicy", env, gradient_steps=1, **common)
    model_based: dict[str, Any] = dict(
        gradient_steps=args.g,
        model_train_freq=args.model_train_freq,
        rollout_batch_size=args.rollout_batch_size,
        rollout_schedule=(args.learning_starts, args.steps, 1, args.max_rollout_length),
        structure_update_freq=args.structure_update_freq,
        **common,
    )
    return (MBPO if method == "mbpo" else CMBPO)("MlpPolicy", env, **model_based)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=1, help="seeds per method")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds are first_seed, first_seed + 1, ...")
    parser.add_argument("--quick", action="store_true", help="small budget: a few minutes on 2 cores")
    parser.add_argument("--steps", type=int, default=None, help="env steps per method (default 10000, quick 2000)")
    parser.add_argument("--g", type=int, default=None, help="SAC updates per env step of MBPO/C-MBPO")
    parser.add_argument("--eval-episodes", type=int, default=None, help="episodes per final evaluation")
    parser.add_argument("--plot", type=Path, default=Path("cmbpo_shift.png"), help="learning-curve PNG")
    parser.add_argument("--methods", default="sac,mbpo,cmbpo", help="comma-separated subset")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    args = parser.parse_args()
    th.set_num_threads(args.threads)
    # CPU-sized settings, the same for every method where they apply (batch 128, 64x64 networks)
    args.steps = args.steps or (2000 if args.quick else 10_000)
    args.g = args.g or 5
    args.eval_episodes = args.eval_episodes or (3 if args.quick else 10)
    args.eval_every = 250 if args.quick else 500
    args.learning_starts = 400 if args.quick else 1000
    args.batch_size = 128
    args.model_train_freq = 250
    args.rollout_batch_size = 1000 if args.quick else 2000
    args.max_rollout_length = 3 if args.quick else 5
    args.structure_update_freq = 1000 if args.quick else 2500

    start = time.perf_counter()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    finals: dict[str, dict[str, list[float]]] = {m: {k: [] for k in SHIFTS} for m in methods}
    curves: dict[str, list[list[float]]] = {m: [] for m in methods}
    curve_steps: list[int] = []
    reward_parents: set[str] = set()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for method in methods:
            t0 = time.perf_counter()
            model = make_model(method, seed, args)
            curve = CurveCallback(args.eval_every, max(1, args.eval_episodes // 2), seed)
            model.learn(args.steps, callback=curve)
            curves[method].append(curve.returns)
            curve_steps = curve.steps
            for key, shift in SHIFTS.items():
                finals[method][key].append(evaluate(model, shift, args.eval_episodes, 1000 * (seed + 1)))
            if isinstance(model, CMBPO) and method == "cmbpo":
                reward_parents.update(model.reward_parents)
            summary = {k: round(v[-1], 2) for k, v in finals[method].items()}
            print(f"seed {seed} {method}: {summary} ({time.perf_counter() - t0:.0f}s)", flush=True)
            print(f"  curve {dict(zip(curve.steps, np.round(curve.returns, 2).tolist()))}", flush=True)
            if isinstance(model, CMBPO) and model.structure_history:
                history = [(h["step"], [c for c, e in h["edges"] if e == "r"]) for h in model.structure_history]
                print(f"  reward parents over training (step, parents): {history}", flush=True)

    result: dict[str, Any] = {m: {k: round(float(np.mean(v)), 2) for k, v in finals[m].items()} for m in methods}
    if "sac" in methods:
        sac_final = float(np.mean([c[-1] for c in curves["sac"]]))
        result["steps_to_sac_final"] = {}
        for m in methods:
            mean_curve = np.mean(curves[m], axis=0)
            reached = np.flatnonzero(mean_curve >= sac_final - 0.05 * abs(sac_final))
            result["steps_to_sac_final"][m] = int(curve_steps[reached[0]]) if reached.size else None
    result["reward_parents"] = sorted(reward_parents)
    result["env_steps"] = args.steps
    result["seeds"] = args.seeds
    result["seconds"] = round(time.perf_counter() - start, 1)
    _plot(curves, curve_steps, args.plot)
    print(json.dumps(result))


def _plot(curves: dict[str, list[list[float]]], steps: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method, runs in curves.items():
        data = np.asarray(runs)
        mean = data.mean(axis=0)
        ax.plot(steps, mean, label=method.upper() if method != "cmbpo" else "C-MBPO")
        if data.shape[0] > 1:
            ax.fill_between(steps, data.min(axis=0), data.max(axis=0), alpha=0.2)
    ax.set_xlabel("env steps")
    ax.set_ylabel("return (in distribution)")
    ax.set_title(ENV_ID)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
