"""Scale of the variable layout and the online learner: build and learn on U devices x 18 types.

A random connected device topology (a random tree plus ``U / 2`` extra links, like FaultAlarmRL's
50 devices and 50 links), a layout with hop reach 2, then ``--steps`` transitions of sparse random
alarm counts (1% of pairs active, random treatments of active pairs) observed and one graph update.
Reports build and learn CPU seconds and the peak resident memory. Ends with one JSON line.

    python benchmarks/learner_scale.py --devices 500
    python benchmarks/learner_scale.py --devices 5000 --steps 200
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import scipy.sparse as sp

from sb3_causal.discovery.online import OnlineCausalLearner
from sb3_causal.variables import CausalVariables


def random_topology(n_units: int, rng: np.random.Generator) -> np.ndarray:
    parent = np.array([rng.integers(k) for k in range(1, n_units)])
    extra = rng.integers(n_units, size=(n_units // 2, 2))
    rows = np.concatenate([np.arange(1, n_units), extra[:, 0]])
    cols = np.concatenate([parent, extra[:, 1]])
    adj = sp.coo_array((np.ones(rows.size, dtype=bool), (rows, cols)), shape=(n_units, n_units)).toarray()
    adj = adj | adj.T
    np.fill_diagonal(adj, False)
    return adj


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--types", type=int, default=18)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="100 devices, 100 steps")
    args = parser.parse_args()
    if args.quick:
        args.devices, args.steps = 100, 100
    rng = np.random.default_rng(0)
    u, v = args.devices, args.types
    topology = random_topology(u, rng)

    start = time.process_time()
    layout = CausalVariables(
        names=tuple(f"t{k}" for k in range(v)),
        obs_index=np.arange(u * v).reshape(u, v),
        action_target=np.arange(u * v),
        topology=topology,
        n_hops=2,
        intervenes_when_inactive=False,
    )
    learner = OnlineCausalLearner(layout)
    build_seconds = time.process_time() - start
    print(f"{u} devices: layout and learner built in {build_seconds:.2f} s CPU", flush=True)

    obs = (rng.random((args.steps, u * v)) < 0.01).astype(np.float32) * rng.integers(1, 4, (args.steps, u * v))
    next_obs = (rng.random((args.steps, u * v)) < 0.01).astype(np.float32) * rng.integers(1, 4, (args.steps, u * v))
    actions = np.array([rng.choice(np.flatnonzero(row)) if row.any() else 0 for row in obs])
    start = time.process_time()
    learner.observe(obs, actions, next_obs)
    learner.update()
    learn_seconds = time.process_time() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"observed {args.steps} transitions and updated in {learn_seconds:.2f} s CPU; peak memory {peak_gb:.2f} GB")
    print(
        json.dumps(
            {
                "benchmark": "learner_scale",
                "devices": u,
                "types": v,
                "steps": args.steps,
                "build_cpu_seconds": build_seconds,
                "learn_cpu_seconds": learn_seconds,
                "learn_us_per_transition": 1e6 * learn_seconds / args.steps,
                "peak_memory_gb": peak_gb,
            }
        )
    )


if __name__ == "__main__":
    main()
