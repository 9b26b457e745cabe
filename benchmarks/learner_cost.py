"""Per-transition CPU cost of the online learner against main's implementation, interleaved.

Collects FaultAlarmRL transitions under random-over-active treatments once, then times
``observe`` + ``update`` of this branch's :class:`OnlineCausalLearner` and of the learner module of
a reference checkout (``--reference``, default /work/main), alternately (A/B/A/B), in CPU time.
Both get the same hop reach: declared (``--n-hops 2``, default) or chosen from data (``--n-hops data``,
FaultAlarmRL's own layout: the first 2,000 transitions are buffered, the reach chosen, then replayed).
Reports microseconds per transition of ``observe`` and of ``update`` (amortised over ``--update-every``
transitions), and the per-repeat ratios this branch / reference with their median and range. Also checks
that both learners end with the same statistics (every array of ``state_dict``, the hop scores) and the
same graph: ``identical`` (bit for bit), else the largest relative difference. Ends with one JSON line.

In one process the two learners share the memory allocator: pages one of them frees, the next one
reuses without the OS zeroing them again, which hides part of what fresh temporaries cost. With
``--processes`` every timed run is a fresh process instead (one learner over the data, as in a training
run; reference and this branch alternate which goes first); the statistics are then compared in-process.

    python benchmarks/learner_cost.py --steps 5000 --repeats 3
    python benchmarks/learner_cost.py --steps 4000 --repeats 4 --processes
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
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


def run(cls, layout, data, update_every: int) -> tuple[float, float, object]:
    """CPU seconds per transition of ``observe`` and of ``update``, and the learner."""
    obs, actions, next_obs = data
    learner = cls(layout)
    observe = update = 0.0
    for lo in range(0, len(actions), update_every):
        part = slice(lo, lo + update_every)
        start = time.process_time()
        learner.observe(obs[part], actions[part], next_obs[part])
        observe += time.process_time() - start
        start = time.process_time()
        learner.update()
        update += time.process_time() - start
    return observe / len(actions), update / len(actions), learner


def _flat(state: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in state.items():
        out.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: value})
    return out


def compare(ours, theirs) -> dict[str, object]:
    """Whether two learners hold the same statistics and graph: bit for bit, else the largest relative difference."""
    a, b = _flat(ours.state_dict()), _flat(theirs.state_dict())
    a.update({f"hop_scores.{k}": v for k, v in ours.hop_scores.items()})
    b.update({f"hop_scores.{k}": v for k, v in theirs.hop_scores.items()})
    if a.keys() != b.keys():
        return {"identical": False, "keys": sorted(a.keys() ^ b.keys())}
    worst, differ = 0.0, []
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, str) or isinstance(y, str):
            same = x == y
        else:
            x, y = np.asarray(x), np.asarray(y)
            same = x.shape == y.shape and np.array_equal(x, y)
            if not same and x.shape == y.shape:
                scale = np.maximum(np.abs(x), np.abs(y)).max()
                worst = max(worst, float(np.abs(x - y).max() / scale) if scale else 0.0)
        if not same:
            differ.append(key)
    return {"identical": not differ, "differ": differ, "max_relative_difference": worst}


def spread(values: list[float]) -> dict[str, object]:
    return {"median": round(float(np.median(values)), 3), "range": [round(min(values), 3), round(max(values), 3)]}


def _layout(n_hops: str):
    env = FaultAlarmEnv(model_seed=0)
    return env, dataclasses.replace(env.causal_variables, n_hops=None if n_hops == "data" else int(n_hops))


def _in_fresh_process(which: str, data_path: str, args: argparse.Namespace) -> tuple[float, float]:
    """CPU seconds per transition of ``observe`` and ``update`` of one learner run in a new process."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", which, "--data", data_path]
    command += ["--reference", args.reference, "--n-hops", args.n_hops, "--update-every", str(args.update_every)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    observe, update = json.loads(out.stdout.strip().splitlines()[-1])
    return observe, update


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--update-every", type=int, default=1000)
    parser.add_argument("--reference", default="/work/main")
    parser.add_argument(
        "--n-hops", default="2", help="hop reach of both learners: an int, or 'data' (chosen from data)"
    )
    parser.add_argument("--quick", action="store_true", help="1000 steps, 1 repeat")
    parser.add_argument("--processes", action="store_true", help="time every run in a fresh process (see above)")
    parser.add_argument("--worker", choices=("reference", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = 1000, 1
    env, layout = _layout(args.n_hops)
    reference = load_reference(args.reference)
    if args.worker:  # one timed run in this fresh process, on the transitions of --data
        with np.load(args.data) as saved:
            data = (saved["obs"], saved["actions"], saved["next_obs"])
        cls = reference if args.worker == "reference" else OnlineCausalLearner
        print(json.dumps(run(cls, layout, data, args.update_every)[:2]))
        return
    data = collect(env, args.steps, seed=0)
    ours, theirs, checks = [], [], []
    if args.processes:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "transitions.npz")
            np.savez(path, obs=data[0], actions=data[1], next_obs=data[2])
            for r in range(args.repeats):
                order = ("reference", "ours") if r % 2 == 0 else ("ours", "reference")
                timed = {which: _in_fresh_process(which, path, args) for which in order}
                theirs.append(timed["reference"])
                ours.append(timed["ours"])
        checks.append(
            compare(
                run(OnlineCausalLearner, layout, data, args.update_every)[2],
                run(reference, layout, data, args.update_every)[2],
            )
        )
    else:
        for cls in (reference, OnlineCausalLearner):  # one untimed warm-up run each (first-touch memory, hop choice)
            run(cls, layout, data, args.update_every)
    for _ in range(0 if args.processes else args.repeats):
        *cost, theirs_learner = run(reference, layout, data, args.update_every)
        theirs.append(tuple(cost))
        *cost, ours_learner = run(OnlineCausalLearner, layout, data, args.update_every)
        ours.append(tuple(cost))
        checks.append(compare(ours_learner, theirs_learner))
    for r, (t, o) in enumerate(zip(theirs, ours)):
        print(
            f"repeat {r}: observe / update per transition: reference {1e6 * t[0]:.0f} / {1e6 * t[1]:.0f} us, "
            f"this branch {1e6 * o[0]:.0f} / {1e6 * o[1]:.0f} us",
            flush=True,
        )
    record: dict[str, object] = {"benchmark": "learner_cost", "steps": args.steps, "n_hops": args.n_hops}
    record["processes"] = "fresh per run" if args.processes else "one, warmed up"
    for i, name in enumerate(("observe", "update")):
        record[f"reference_{name}_us_per_transition"] = spread([1e6 * t[i] for t in theirs])
        record[f"{name}_us_per_transition"] = spread([1e6 * t[i] for t in ours])
    record["reference_us_per_transition"] = spread([1e6 * sum(t) for t in theirs])
    record["us_per_transition"] = spread([1e6 * sum(t) for t in ours])
    record["ratio"] = spread([sum(o) / sum(t) for o, t in zip(ours, theirs)])
    record["observe_ratio"] = spread([o[0] / t[0] for o, t in zip(ours, theirs)])
    record["statistics_identical"] = all(c["identical"] for c in checks)
    record["statistics"] = checks[-1]
    print(json.dumps(record))


if __name__ == "__main__":
    main()
