"""Add online causal structure learning to an SB3 PPO project you already have: one callback.

The training code below is plain Stable-Baselines3 (PPO, an EvalCallback, a checkpoint). The only
sb3-causal lines are the import and ``CausalGraphCallback`` in the callback list: PPO's actions on
FaultAlarmRL are treatments (interventions), and the callback turns them into a causal graph of the 18
alarm types, logged as ``causal/*`` (F1 too, since the env knows its true graph) next to PPO's own keys.
The graph is saved as JSON; ``sb3-causal graph <file> --env FaultAlarmRL-v0`` shows it afterwards.

    python examples/existing_ppo_project.py [--steps 10000] [--seed 0] [--out runs/existing_ppo]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import gymnasium as gym
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback
from stable_baselines3.common.monitor import Monitor

import sb3_causal  # noqa: F401  (registers FaultAlarmRL-v0)
from sb3_causal import CausalGraphCallback


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10_000, help="PPO training steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/existing_ppo"), help="output folder")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)

    # --- the project as it was: PPO, an evaluation callback, checkpoints ---
    env = gym.make("FaultAlarmRL-v0")
    eval_env = Monitor(gym.make("FaultAlarmRL-v0"))
    callbacks = [
        EvalCallback(eval_env, eval_freq=max(args.steps // 4, 512), n_eval_episodes=3, verbose=0),
        CheckpointCallback(save_freq=max(args.steps // 2, 512), save_path=str(args.out / "checkpoints")),
    ]
    model = PPO("MlpPolicy", env, n_steps=512, batch_size=64, seed=args.seed, verbose=0)

    # --- the one addition: learn the causal graph from PPO's own actions ---
    graph_callback = CausalGraphCallback(initial_graph="random", seed=args.seed, update_freq=2000, verbose=1)
    model.learn(args.steps, callback=[*callbacks, graph_callback])

    graph = graph_callback.graph
    truth = env.unwrapped.causal_graph
    metrics = graph.compare(truth)
    print(f"PPO's last evaluation: mean return {callbacks[0].last_mean_reward:.2f}")
    print(f"learned {graph.n_edges} edges (true graph: {truth.n_edges}); F1 {metrics.f1:.3f}, SHD {metrics.shd}")
    graph_file = args.out / "graph.json"
    graph.save(graph_file)
    model.save(args.out / "ppo")
    print(f"wrote {graph_file}; see it with: sb3-causal graph {graph_file} --env FaultAlarmRL-v0")


if __name__ == "__main__":
    main()
