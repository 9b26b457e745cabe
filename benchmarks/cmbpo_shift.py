"""SAC vs MBPO vs C-MBPO on SpuriousCorrelation-v0, evaluated in distribution and under near / far shift,
with the ablation that separates C-MBPO's two ingredients.

C-MBPO differs from MBPO in two ways: its world model is factorised along a learned causal graph, and (with
``policy_inputs="reward_ancestors"``, its default here) its policy sees only the observation entries that are
causal ancestors of the reward under that graph. The second is an observation mask that the C-MBPO paper does
not have. The methods form a 3 x 2 grid, world model x policy inputs, so each ingredient gets its own column:

============  ======================================  ==========================================
world model   policy sees every entry (``"all"``)     policy sees the learned reward ancestors
============  ======================================  ==========================================
none (SAC)    ``sac``                                 ``sac_mask``
MBPO's        ``mbpo``                                ``mbpo_mask``
causal        ``cmbpo_all``                           ``cmbpo``
============  ======================================  ==========================================

The masked variants learn the mask exactly as C-MBPO does (PC on the real buffer every
``structure_update_freq`` steps, ``reward_ancestor_states`` of the graph): ``sac_mask`` is C-MBPO's trainer
with the world model switched off (one SAC update per env step, every batch real), ``mbpo_mask`` is C-MBPO's
trainer with MBPO's world model (one ensemble on all of ``(s, a)`` predicting every target) whatever the
graph says. Each method gets the same env budget and seeds. Every ``--eval-every`` env steps the
deterministic policy is evaluated in distribution (the learning curves, saved as a PNG); at the end it is
evaluated with ``shift="none"``, ``"near"`` and ``"far"``. The last line printed is one JSON object::

    {"sac": {"id": .., "near": .., "far": ..}, "mbpo": {...}, ..., "per_seed": {method: {"id": [..], ...}},
     "reward_parents": {method: [...]}, "policy_inputs": {method: [[..], ..]}, "seeds": [..], "env_steps": ..,
     "seconds": .., ...}

(returns are means over seeds and evaluation episodes; ``reward_parents`` is each structure-learning method's
final graph's parents of ``r``, the union over seeds; ``policy_inputs`` the entries each seed's final policy
sees; ``steps_to_sac_final`` says when each method's mean curve first reached 95% of SAC's final
in-distribution return, null if never).

    python benchmarks/cmbpo_shift.py --quick                      # 2000 env steps per method
    python benchmarks/cmbpo_shift.py --first-seed 2 --seeds 2     # 10000 env steps per method, 10 eval episodes
    python benchmarks/cmbpo_shift.py --methods sac,mbpo,cmbpo     # the original three-way comparison
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
from sb3_causal.graph import CausalGraph
from sb3_causal.mbrl import CMBPO, MBPO
from sb3_causal.mbrl.dynamics import FactorSpec
from sb3_causal.mbrl.structure import complete_local_graph

ENV_ID = "SpuriousCorrelation-v0"
SHIFTS = {"id": "none", "near": "near", "far": "far"}
METHODS = ("sac", "sac_mask", "mbpo", "mbpo_mask", "cmbpo_all", "cmbpo")
LABELS = {
    "sac": "SAC",
    "sac_mask": "SAC + mask",
    "mbpo": "MBPO",
    "mbpo_mask": "MBPO + mask",
    "cmbpo_all": "C-MBPO (all inputs)",
    "cmbpo": "C-MBPO",
}


class MaskedSAC(CMBPO):
    """Ablation: SAC with C-MBPO's learned reward-ancestor input mask and no world model.

    The structure is learned and the mask applied exactly as in ``CMBPO``; the world model is never fitted
    and no rollouts are made, so the model buffer stays empty and every SAC batch is real data.
    """

    def _fit_model(self) -> None:
        pass

    def _model_rollouts(self) -> None:
        pass


class MaskedMBPO(CMBPO):
    """Ablation: MBPO's world model (one ensemble on all of ``(s, a)`` for every target, whatever the learned
    graph says) with C-MBPO's learned reward-ancestor input mask. Use with ``factorise=False``."""

    def _factor_specs(self, graph: CausalGraph) -> list[FactorSpec]:
        return super()._factor_specs(complete_local_graph(self.state_names, self.action_names))


# the two ablations override C-MBPO internals: fail at import, not silently, if those are renamed
for _cls, _hooks in ((MaskedSAC, ("_fit_model", "_model_rollouts")), (MaskedMBPO, ("_factor_specs",))):
    _missing = [h for h in _hooks if not hasattr(CMBPO, h)]
    if _missing:
        raise ImportError(f"{_cls.__name__} overrides CMBPO.{_missing}, which CMBPO no longer has")


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
    structure: dict[str, Any] = dict(structure_update_freq=args.structure_update_freq, **common)
    if method == "sac_mask":
        return MaskedSAC("MlpPolicy", env, gradient_steps=1, rollout_batch_size=1, **structure)
    model_based: dict[str, Any] = dict(
        gradient_steps=args.g,
        model_train_freq=args.model_train_freq,
        rollout_batch_size=args.rollout_batch_size,
        rollout_schedule=(args.learning_starts, args.steps, 1, args.max_rollout_length),
        **structure,
    )
    if method == "mbpo":
        return MBPO("MlpPolicy", env, **model_based)
    if method == "mbpo_mask":
        return MaskedMBPO("MlpPolicy", env, factorise=False, policy_inputs="reward_ancestors", **model_based)
    inputs = "all" if method == "cmbpo_all" else "reward_ancestors"
    return CMBPO("MlpPolicy", env, policy_inputs=inputs, **model_based)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=1, help="seeds per method")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds are first_seed, first_seed + 1, ...")
    parser.add_argument("--quick", action="store_true", help="small budget: 2000 env steps per method")
    parser.add_argument("--steps", type=int, default=None, help="env steps per method (default 10000, quick 2000)")
    parser.add_argument("--g", type=int, default=None, help="SAC updates per env step of the model-based methods")
    parser.add_argument("--eval-episodes", type=int, default=None, help="episodes per final evaluation")
    parser.add_argument("--plot", type=Path, default=Path("cmbpo_shift.png"), help="learning-curve PNG")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {','.join(METHODS)}")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        parser.error(f"unknown methods {unknown}; choose from {list(METHODS)}")
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
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    finals: dict[str, dict[str, list[float]]] = {m: {k: [] for k in SHIFTS} for m in methods}
    curves: dict[str, list[list[float]]] = {m: [] for m in methods}
    curve_steps: list[int] = []
    reward_parents: dict[str, set[str]] = {}
    policy_inputs: dict[str, list[list[str]]] = {}
    for seed in seeds:
        for method in methods:
            t0 = time.perf_counter()
            model = make_model(method, seed, args)
            curve = CurveCallback(args.eval_every, max(1, args.eval_episodes // 2), seed)
            model.learn(args.steps, callback=curve)
            curves[method].append(curve.returns)
            curve_steps = curve.steps
            for key, shift in SHIFTS.items():
                finals[method][key].append(evaluate(model, shift, args.eval_episodes, 1000 * (seed + 1)))
            summary = {k: round(v[-1], 2) for k, v in finals[method].items()}
            print(f"seed {seed} {method}: {summary} ({time.perf_counter() - t0:.0f}s)", flush=True)
            print(f"  curve {dict(zip(curve.steps, np.round(curve.returns, 2).tolist()))}", flush=True)
            if isinstance(model, CMBPO) and model.structure_history:  # MBPO has a fixed (complete) graph
                reward_parents.setdefault(method, set()).update(model.reward_parents)
                seen = [s for s, keep in zip(model.state_names, model.policy_mask) if keep]
                policy_inputs.setdefault(method, []).append(seen)
                history = [(h["step"], [c for c, e in h["edges"] if e == "r"]) for h in model.structure_history]
                print(f"  reward parents over training (step, parents): {history}; policy sees {seen}", flush=True)

    result: dict[str, Any] = {m: {k: round(float(np.mean(v)), 2) for k, v in finals[m].items()} for m in methods}
    result["per_seed"] = {m: {k: [round(x, 2) for x in v] for k, v in finals[m].items()} for m in methods}
    if "sac" in methods:
        sac_final = float(np.mean([c[-1] for c in curves["sac"]]))
        result["steps_to_sac_final"] = {}
        for m in methods:
            mean_curve = np.mean(curves[m], axis=0)
            reached = np.flatnonzero(mean_curve >= sac_final - 0.05 * abs(sac_final))
            result["steps_to_sac_final"][m] = int(curve_steps[reached[0]]) if reached.size else None
    result["reward_parents"] = {m: sorted(v) for m, v in reward_parents.items()}
    result["policy_inputs"] = policy_inputs
    result["seeds"] = seeds
    result["env_steps"] = args.steps
    result["eval_episodes"] = args.eval_episodes
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
        masked = method.endswith("_mask") or method == "cmbpo"
        ax.plot(steps, mean, label=LABELS[method], linestyle="-" if masked else "--")
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
