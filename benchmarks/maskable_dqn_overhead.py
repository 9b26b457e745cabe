"""Training steps/s of MaskableDQN vs SB3's DQN on FaultAlarmRL-v0 (Discrete(900), 1800-float observations).

Same hyperparameters, seed and env for both; runs alternate (DQN, MaskableDQN, DQN, ...) so load from
other processes hits both alike, and the median of the repeats is reported. Two regimes:
``train``: DQN's usual loop (one gradient step every 4 env steps after a warm-up);
``act``: collection only (``gradient_steps=0``), where the per-step masking cost is least diluted.
``causal_target``: CausalDQN's TD target recomputes the causal part of the next-state masks at sample time
(current graph, no lifts, AND the stored env masks): CPU seconds of that recomputation per sampled batch
against one whole gradient step on the same batch, interleaved.
The two agents act differently (DQN also treats pairs without alarms), so the env's own step cost
differs between them; besides the end-to-end ("total") figures, the "agent" figures leave out the
time spent inside the env's ``step``/``reset`` (reading the masks still counts as agent time).

    python benchmarks/maskable_dqn_overhead.py [--steps 2000] [--repeats 3] [--quick]

Prints a table, then one JSON line of figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import gymnasium as gym
import torch as th
from _timing import TimedEnv  # benchmarks/ is on sys.path when a script runs
from stable_baselines3 import DQN

import sb3_causal  # noqa: F401  (registers FaultAlarmRL-v0)
from sb3_causal.algos import CausalDQN, MaskableDQN


def steps_per_second(algo: type[DQN], steps: int, regime: str, seed: int) -> tuple[float, float]:
    """Steps/s end to end, and steps/s of the agent side alone (time inside the env's step/reset removed)."""
    kwargs: dict[str, Any] = dict(
        learning_starts=200,
        buffer_size=10_000,
        batch_size=32,
        train_freq=4,
        gradient_steps=1 if regime == "train" else 0,
        exploration_fraction=0.5,
        policy_kwargs=dict(net_arch=[64, 64]),
        seed=seed,
        device="cpu",
    )
    env = TimedEnv(gym.make("FaultAlarmRL-v0"))
    model = algo("MlpPolicy", env, **kwargs)
    env.seconds = 0.0
    start = time.perf_counter()
    model.learn(steps)
    elapsed = time.perf_counter() - start
    return steps / elapsed, steps / (elapsed - env.seconds)


def causal_target_cost(batches: int, batch_size: int = 64) -> dict[str, float]:
    """CPU seconds per batch: the target-mask recomputation vs a whole gradient step (interleaved)."""
    model = CausalDQN("MlpPolicy", "FaultAlarmRL-v0", learning_starts=500, buffer_size=5000, seed=0)
    model.learn(1000)
    mask_seconds, step_seconds = 0.0, 0.0
    for _ in range(batches):
        batch = model.replay_buffer.sample(batch_size)
        start = time.process_time()
        model._next_action_masks(batch)
        mask_seconds += time.process_time() - start
        start = time.process_time()
        model.train(gradient_steps=1, batch_size=batch_size)
        step_seconds += time.process_time() - start
    return {
        "target_mask_ms_per_batch": round(1000 * mask_seconds / batches, 3),
        "gradient_step_ms": round(1000 * step_seconds / batches, 3),
        "target_mask_share_of_step": round(mask_seconds / step_seconds, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="500 steps, 1 repeat, 50 target batches")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = 500, 1
    th.set_num_threads(args.threads)

    figures: dict[str, Any] = {"steps": args.steps, "repeats": args.repeats, "threads": args.threads}
    for regime in ("train", "act"):
        runs: dict[str, list[tuple[float, float]]] = {"DQN": [], "MaskableDQN": []}
        for rep in range(args.repeats):
            for name, algo in (("DQN", DQN), ("MaskableDQN", MaskableDQN)):
                runs[name].append(steps_per_second(algo, args.steps, regime, seed=rep))
        for part, label in ((0, "total"), (1, "agent")):
            dqn = statistics.median(r[part] for r in runs["DQN"])
            masked = statistics.median(r[part] for r in runs["MaskableDQN"])
            print(
                f"{regime:5s} {label:5s}  DQN {dqn:7.1f} steps/s   MaskableDQN {masked:7.1f} steps/s   "
                f"ratio {masked / dqn:.3f}"
            )
            figures[f"{regime}_{label}_dqn_steps_per_s"] = round(dqn, 1)
            figures[f"{regime}_{label}_maskable_dqn_steps_per_s"] = round(masked, 1)
            figures[f"{regime}_{label}_ratio"] = round(masked / dqn, 3)
    cost = causal_target_cost(50 if args.quick else 300)
    print(f"causal target masks: {cost}")
    figures["causal_target"] = cost
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
