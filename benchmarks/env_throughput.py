"""FaultAlarmRL-v0 throughput and policy statistics.

Steps per second of the simulator for four policies (do nothing, uniform random over all 900
actions, random over active alarms, the root-cause oracle), single env and a vectorised set, with
mean episode length and return per policy and how episodes end. Ends with one JSON line.

    python benchmarks/env_throughput.py [--episodes 100] [--n-envs 8] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

import sb3_causal  # noqa: F401  (registers the envs)
from sb3_causal_envs import FaultAlarmEnv

POLICIES = ("nothing", "uniform", "active", "oracle")


def choose(policy: str, env: FaultAlarmEnv, rng: np.random.Generator) -> int:
    if policy == "oracle":
        return env.oracle_action()
    if policy == "uniform":
        return int(rng.integers(env.action_space.n))
    mask = env.action_masks()
    if policy == "active":
        return int(rng.choice(np.flatnonzero(mask)))
    return int(np.argmin(mask))  # "nothing": treat a pair with no alarm


def single_env(policy: str, episodes: int, seed: int) -> dict[str, float]:
    env = FaultAlarmEnv()
    rng = np.random.default_rng(seed)
    lengths, returns, ends = [], [], {"cleared": 0, "alarm_cap": 0, "truncated": 0}
    steps = 0
    start = time.perf_counter()
    for ep in range(episodes):
        env.reset(seed=seed + ep)
        done, total, n = False, 0.0, 0
        while not done:
            _, r, term, trunc, info = env.step(choose(policy, env, rng))
            total, n, done = total + r, n + 1, term or trunc
        steps += n
        lengths.append(n)
        returns.append(total)
        if info["alarms"] == 0:
            ends["cleared"] += 1
        elif info["alarms"] > env.model.alarm_cap:
            ends["alarm_cap"] += 1
        else:
            ends["truncated"] += 1
    seconds = time.perf_counter() - start
    return {
        "steps_per_s": steps / seconds,
        "mean_length": float(np.mean(lengths)),
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        **{f"end_{k}": v / episodes for k, v in ends.items()},
    }


def vectorised(policy: str, n_envs: int, n_steps: int, seed: int, subproc: bool) -> float:
    """Steps/s of a VecEnv set (auto-reset) under ``policy`` (per-env action choice included)."""
    vec_cls = SubprocVecEnv if subproc else DummyVecEnv
    venv = make_vec_env(
        "FaultAlarmRL-v0", n_envs=n_envs, seed=seed, vec_env_cls=vec_cls, env_kwargs={"render_mode": None}
    )
    rng = np.random.default_rng(seed)
    venv.reset()
    start = time.perf_counter()
    for _ in range(n_steps // n_envs):
        if policy == "oracle":
            actions = np.array(venv.env_method("oracle_action"))
        else:
            masks = np.stack(venv.env_method("action_masks"))
            actions = np.array([rng.choice(np.flatnonzero(m)) for m in masks])
        venv.step(actions)
    seconds = time.perf_counter() - start
    venv.close()
    return (n_steps // n_envs) * n_envs / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=100, help="episodes per policy (single env)")
    parser.add_argument("--n-envs", type=int, default=8, help="envs in the vectorised set")
    parser.add_argument("--vec-steps", type=int, default=8000, help="total steps for each vectorised run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    results: dict[str, dict[str, float]] = {}
    print(f"{'policy':<8} {'steps/s':>9} {'length':>7} {'return':>8} {'cleared':>8} {'cap':>5} {'trunc':>6}")
    for policy in POLICIES:
        r = single_env(policy, args.episodes, args.seed)
        results[policy] = r
        print(
            f"{policy:<8} {r['steps_per_s']:>9.0f} {r['mean_length']:>7.1f} {r['mean_return']:>8.2f} "
            f"{r['end_cleared']:>8.2f} {r['end_alarm_cap']:>5.2f} {r['end_truncated']:>6.2f}"
        )
    vec = {
        f"dummy{args.n_envs}_active": vectorised("active", args.n_envs, args.vec_steps, args.seed, subproc=False),
        f"dummy{args.n_envs}_oracle": vectorised("oracle", args.n_envs, args.vec_steps, args.seed, subproc=False),
        "subproc2_active": vectorised("active", 2, args.vec_steps, args.seed, subproc=True),
    }
    for name, sps in vec.items():
        print(f"vectorised {name:<16} {sps:>9.0f} steps/s")
    print(
        json.dumps(
            {
                "benchmark": "env_throughput",
                "episodes": args.episodes,
                "seed": args.seed,
                "python": platform.python_version(),
                "single": results,
                "vectorised_steps_per_s": vec,
            }
        )
    )


if __name__ == "__main__":
    main()
