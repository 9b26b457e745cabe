"""An rl-baselines3-zoo run from YAML: train, evaluate (mask-aware) and look at the learned graph.

The zoo reads hyperparameters from a YAML file with one section per env. This example writes its own
file (the shipped ``sb3_causal/hyperparams/causal_ppo.yml`` with a smaller budget and a random initial
graph), trains ``causal_ppo`` through the zoo launcher exactly as the command line would::

    python -m sb3_causal.zoo --algo causal_ppo --env FaultAlarmRL-v0 --conf-file my.yml -f logs --seed 0

then evaluates the saved model with the env's action masks (``sb3-causal evaluate``) and prints its causal
graph against the true one, with a picture (``sb3-causal graph``). Needs the ``zoo`` extra.

    python examples/zoo_from_yaml.py [--steps 4096] [--seed 0] [--logs runs/zoo]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import yaml

from sb3_causal import cli, zoo

ENV = "FaultAlarmRL-v0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4096, help="training steps (the YAML's n_timesteps)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--logs", type=Path, default=Path("runs/zoo"), help="the zoo's log folder")
    args = parser.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)

    # 1. a YAML of our own: the shipped section, edited
    shipped = yaml.safe_load((zoo.HYPERPARAMS_DIR / "causal_ppo.yml").read_text())[ENV]
    section = {**shipped, "n_timesteps": args.steps, "initial_graph": "random", "graph_update_freq": 1024}
    conf = args.logs / "causal_ppo_small.yml"
    conf.write_text(yaml.safe_dump({ENV: section}, sort_keys=False))
    print(f"wrote {conf}:\n{conf.read_text()}")

    # 2. train through the zoo launcher (the zoo's own train(); evaluation every --eval-freq steps uses masks)
    common = ["--algo", "causal_ppo", "--env", ENV, "-f", str(args.logs)]
    run = ["--conf-file", str(conf), "--seed", str(args.seed), "--eval-freq", str(args.steps // 2)]
    zoo.train([*common, *run, "--eval-episodes", "3", "--num-threads", "1", "--verbose", "0"])

    # 3. evaluate the latest run's model, 5 episodes, with the env's action masks
    result = zoo.evaluate([*common, "--n-episodes", "5", "--seed", str(args.seed), "--no-progress"])

    # 4. its causal graph against FaultAlarmRL's true graph, as text, DOT and a picture
    drawings = ["--dot", str(args.logs / "graph.dot"), "--png", str(args.logs / "graph.png")]
    cli.main(["graph", result["model_path"], "--env", ENV, *drawings])


if __name__ == "__main__":
    main()
