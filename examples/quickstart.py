"""Quickstart: learn FaultAlarmRL's causal graph online while an agent trains.

A MaskablePPO agent treats alarms on FaultAlarmRL-v0; every treatment is an intervention, and
``CausalGraphCallback`` turns those interventions into a causal graph of the 18 alarm types
(ATT orientation + BIC pruning), logging F1 against the true graph as it goes.

    python examples/quickstart.py [--steps 12000] [--seed 0] [--out graph.png]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import gymnasium as gym
import torch
from sb3_contrib import MaskablePPO

import sb3_causal  # noqa: F401  (registers FaultAlarmRL-v0)
from sb3_causal.callbacks import CausalGraphCallback


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write a PNG of the learned graph here")
    args = parser.parse_args()
    torch.set_num_threads(1)

    env = gym.make("FaultAlarmRL-v0")
    graph_callback = CausalGraphCallback(initial_graph="random", seed=args.seed, update_freq=2000, verbose=1)
    model = MaskablePPO("MlpPolicy", env, n_steps=512, batch_size=64, seed=args.seed, verbose=1)
    model.learn(args.steps, callback=graph_callback)

    graph = graph_callback.graph
    metrics = graph.compare(env.unwrapped.causal_graph)
    print(f"learned graph: {graph.n_edges} edges; true graph: {metrics.n_true_edges} edges")
    print(f"F1 {metrics.f1:.3f}  precision {metrics.precision:.3f}  recall {metrics.recall:.3f}  SHD {metrics.shd}")
    if args.out:
        graph.plot(args.out, truth=env.unwrapped.causal_graph)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
