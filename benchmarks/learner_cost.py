"""Per-transition CPU cost of the online learner against main's implementation, interleaved.

Collects FaultAlarmRL transitions under random-over-active treatments once, then times
``observe`` + ``update`` of this branch's :class:`OnlineCausalLearner` and of the learner module of
a reference checkout (``--reference``, default /work/main), alternately (A/B/A/B), in CPU time.
Both get the hop reach declared (2) so that the same work is compared. Ends with one JSON line.

    python benchmarks/learner_cost.py --steps 5000 --repeats 3
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from sb3_causal.discovery.online import OnlineCausalLearner
from sb3_causal_envs import FaultAlarmEnv


def load_reference(path: str):
    source = os.path.join(path, "sb3_causal/discovery/online.py")
    spec = importlib.util.spec_from_file_location("reference_online", source)
    module = importlib.util.module_from_spec(spec)
    sys.modules["reference_online"] = module
    spec.loader.exec_module(module)
    return module.OnlineCausalLearner


def collect(env: FaultAlarmEnv, n_steps: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    o, a, n = [], [], []
    for _ in range(n_steps):
        action = int(rng.choice(np.flatnonzero(env.action_masks())))
        nxt, _, term, trunc, _ = env.step(action)
        o.append(obs)
        a.append(action)
        n.append(nxt)
        obs = env.reset()[0] if term or trunc else nxt
    return np.array(o), np.array(a), np.array(n)


def run(cls, layout, data, update_every: int) -> float:
    obs, actions, next_obs = data
    learner = cls(layout)
    start = time.process_time()
    for lo in range(0, len(actions), update_every):
        part = slice(lo, lo + update_every)
        learner.observe(obs[part], actions[part], next_obs[part])
        learner.update()
    return (time.process_time() - start) / len(actions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--update-every", type=int, default=1000)
    parser.add_argument("--reference", default="/work/main")
    parser.add_argument("--quick", action="store_true", help="1000 steps, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = 1000, 1
    env = FaultAlarmEnv(model_seed=0)
    layout = dataclasses.replace(env.causal_variables, n_hops=2)
    data = collect(env, args.steps, seed=0)
    reference = load_reference(args.reference)
    ours, theirs = [], []
    for r in range(args.repeats):
        theirs.append(run(reference, layout, data, args.update_every))
        ours.append(run(OnlineCausalLearner, layout, data, args.update_every))
        print(f"repeat {r}: reference {1e6 * theirs[-1]:.0f} us, this branch {1e6 * ours[-1]:.0f} us per transition")
    ratio = float(np.median(np.array(ours) / np.array(theirs)))
    print(
        json.dumps(
            {
                "benchmark": "learner_cost",
                "steps": args.steps,
                "reference_us_per_transition": 1e6 * float(np.median(theirs)),
                "us_per_transition": 1e6 * float(np.median(ours)),
                "ratio": ratio,
            }
        )
    )


if __name__ == "__main__":
    main()
