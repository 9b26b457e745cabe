"""Plain vs counterfactual vs causal bandit agents on Greedy Casino and three other confounded tables.

Every agent is the user-facing class of ``sb3_causal.bandits``, run once on a ``ConfoundedBanditVectorEnv``
of ``--seeds`` independent copies (its statistics hold one bandit per copy), for ``--rounds`` rounds per
copy. All agents on a table see the same env seed, hence the same confounder and payoff draws (common random
numbers). Causal TS also gets ``--obs-rounds`` observational rounds per copy (the player following its
intuition, from an env with another seed), not counted in its regret: the paper's setting.

Per agent and table: mean reward per round and cumulative regret at the last round, each with a 95% t
interval over the copies. Regret is the public reference's definition, ``T * V* - sum of rewards`` with
``V*`` the intuition-conditioned optimum (0.45 on Greedy Casino); the pseudo-regret (sum over rounds of
``max_a E[Y_a | x_t] - E[Y_a_t | x_t]``, no reward noise) is given beside it. Regret curves (mean and 95%
band) go to one PNG. Defaults are not tuned: UCB's alpha = 2 (UCB1, also the reference's value), Beta(1, 1)
priors. The last line printed is one JSON object::

    {"tables": {"greedy_casino": {"optimal_value": .., "agents": {"ucb": {"mean_reward": [m, lo, hi],
     "regret": [m, lo, hi], "pseudo_regret": [m, lo, hi], "cpu_seconds": ..}, ...}, "ranking_holds": ..}, ...},
     "targets": {...}, "seeds": .., "rounds": .., ...}

    python benchmarks/causal_bandits.py --quick     # 20 copies x 2000 rounds: seconds
    python benchmarks/causal_bandits.py             # 100 copies x 10000 rounds, 4 tables: about 1-2 minutes
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from stable_baselines3.common.callbacks import BaseCallback

from sb3_causal.bandits import (
    UCB,
    BanditAgent,
    CausalThompsonSampling,
    CounterfactualThompsonSampling,
    CounterfactualUCB,
    ThompsonSampling,
    record_observational,
)
from sb3_causal_envs.bandits import TABLES, ConfoundedBanditVectorEnv

PLAIN = ("ucb", "ts")
COUNTERFACTUAL = ("ctf_ucb", "ctf_ts", "causal_ts")
REFERENCE_REGRET = 123.0  # CausalAILab's counterfactual UCB on Greedy Casino, 10,000 rounds, one seed


class RewardTrace(BaseCallback):
    """Keeps every round's rewards, shape ``(rounds, n_copies)``."""

    def __init__(self, rounds: int, n_copies: int) -> None:
        super().__init__()
        self.rewards = np.zeros((rounds, n_copies))
        self.pseudo_regret = np.zeros(n_copies)
        self.round = 0

    def _on_step(self) -> bool:
        self.rewards[self.round] = self.locals["rewards"]
        self.pseudo_regret += self.locals["infos"]["regret"]
        self.round += 1
        return True


def t_interval(samples: np.ndarray) -> list[float]:
    """Mean and 95% t interval over the copies."""
    mean = float(samples.mean())
    half = float(stats.t.ppf(0.975, len(samples) - 1) * samples.std(ddof=1) / np.sqrt(len(samples)))
    return [round(value, 4) for value in (mean, mean - half, mean + half)]


def make_agent(name: str, env: ConfoundedBanditVectorEnv, table: str, seed: int, obs_rounds: int) -> BanditAgent:
    if name == "ucb":
        return UCB(env, seed=seed)
    if name == "ts":
        return ThompsonSampling(env, seed=seed)
    if name == "ctf_ucb":
        return CounterfactualUCB(env, seed=seed)
    if name == "ctf_ts":
        return CounterfactualThompsonSampling(env, seed=seed)
    if name == "causal_ts":
        log_env = ConfoundedBanditVectorEnv(num_envs=env.num_envs, table=table)
        data = record_observational(log_env, obs_rounds, seed=seed + 10_000)
        return CausalThompsonSampling(env, observational_data=data, seed=seed)
    raise ValueError(f"unknown agent {name!r}")


def run_table(table: str, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    optimum = TABLES[table].optimal_value
    result: dict[str, Any] = {"optimal_value": optimum, "agents": {}}
    curves = {}
    for name in (*PLAIN, *COUNTERFACTUAL):
        env = ConfoundedBanditVectorEnv(num_envs=args.seeds, table=table, max_rounds=args.rounds)
        start = time.process_time()
        agent = make_agent(name, env, table, args.seed, args.obs_rounds)
        trace = RewardTrace(args.rounds, args.seeds)
        agent.learn(args.seeds * args.rounds, callback=trace)
        cpu = time.process_time() - start
        regret_curve = optimum * np.arange(1, args.rounds + 1)[:, None] - np.cumsum(trace.rewards, axis=0)
        curves[name] = regret_curve
        figures = {
            "mean_reward": t_interval(trace.rewards.mean(axis=0)),
            "regret": t_interval(regret_curve[-1]),
            "pseudo_regret": t_interval(trace.pseudo_regret),
            "cpu_seconds": round(cpu, 2),
        }
        result["agents"][name] = figures
        print(
            f"{table:14s} {name:10s} reward {figures['mean_reward'][0]:.4f}  regret {figures['regret'][0]:8.1f} "
            f"[{figures['regret'][1]:.1f}, {figures['regret'][2]:.1f}]  pseudo {figures['pseudo_regret'][0]:8.1f}"
            f"  cpu {cpu:.1f}s",
            flush=True,
        )
    worst_counterfactual = max(result["agents"][name]["regret"][2] for name in COUNTERFACTUAL)
    best_plain = min(result["agents"][name]["regret"][1] for name in PLAIN)
    result["ranking_holds"] = bool(worst_counterfactual < best_plain)  # CIs separate
    result["ranking"] = sorted(result["agents"], key=lambda name: result["agents"][name]["regret"][0])
    return result, curves


def plot(curves: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.5 * len(curves), 3.8), squeeze=False)
    for ax, (table, by_agent) in zip(axes[0], curves.items()):
        for name, curve in by_agent.items():
            mean = curve.mean(axis=1)
            half = stats.t.ppf(0.975, curve.shape[1] - 1) * curve.std(axis=1, ddof=1) / np.sqrt(curve.shape[1])
            rounds = np.arange(1, len(mean) + 1)
            ax.plot(rounds, mean, label=name, linestyle={"ucb": ":", "ts": "--"}.get(name, "-"))
            ax.fill_between(rounds, mean - half, mean + half, alpha=0.2)
        ax.set_title(table)
        ax.set_xlabel("round")
        ax.set_yscale("symlog", linthresh=10)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("cumulative regret (T V* - sum of rewards)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 copies x 2000 rounds")
    parser.add_argument("--seeds", type=int, default=None, help="independent copies per agent (default 100)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per copy (default 10000)")
    parser.add_argument("--obs-rounds", type=int, default=1000, help="observational rounds per copy for causal TS")
    parser.add_argument("--tables", default=",".join(TABLES), help="comma-separated table names")
    parser.add_argument("--seed", type=int, default=0, help="env and agent seed")
    parser.add_argument("--plot", default="causal_bandits_regret.png", help="PNG of the regret curves ('' for none)")
    args = parser.parse_args()
    args.seeds = args.seeds or (20 if args.quick else 100)
    args.rounds = args.rounds or (2000 if args.quick else 10_000)

    start = time.time()
    tables, curves = {}, {}
    for table in args.tables.split(","):
        tables[table], curves[table] = run_table(table, args)
    if args.plot:
        plot(curves, Path(args.plot))
        print(f"regret curves: {args.plot}", flush=True)

    targets: dict[str, Any] = {}
    if "greedy_casino" in tables:
        agents = tables["greedy_casino"]["agents"]
        targets["greedy_casino_counterfactual_regret_le_123"] = {
            name: agents[name]["regret"][0] <= REFERENCE_REGRET for name in COUNTERFACTUAL
        }
        targets["greedy_casino_plain_regret_gt_1000"] = {name: agents[name]["regret"][0] > 1000 for name in PLAIN}
    targets["ranking_holds"] = {table: result["ranking_holds"] for table, result in tables.items()}
    result = {
        "tables": tables,
        "targets": targets,
        "seeds": args.seeds,
        "rounds": args.rounds,
        "obs_rounds": args.obs_rounds,
        "seed": args.seed,
        "seconds": round(time.time() - start, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
