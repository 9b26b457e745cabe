"""THP initial graph on FaultAlarmRL: F1 / precision / recall / seconds over log seeds and network seeds.

    python benchmarks/thp_initial.py                                   # THP defaults, 2000 events
    python benchmarks/thp_initial.py --decay 1e-3 --pair-cap 11        # the FaultAlarmRL setting
    python benchmarks/thp_initial.py --events 4000 --model-seeds 0 1 2 3 4 --seeds 0 1 2 3 4

Each run records ``--events`` alarm events with ``env.record_alarm_log(events, seed)`` (no treatment)
and learns the type graph with ``initial_graph("thp", ...)``; the true graph is used only to score.
Prints one row per run, a summary, and ends with one JSON line (means and standard deviations).
Paper (Table 1): THP F1 0.638 +- 0.017, precision 0.775, recall 0.543.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from sb3_causal.discovery.initial import initial_graph
from sb3_causal_envs.fault_alarm import FaultAlarmEnv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000, help="alarm events per log")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="log seeds")
    parser.add_argument("--model-seeds", type=int, nargs="+", default=[2, 3, 4], help="FaultAlarmRL network seeds")
    parser.add_argument("--max-hop", type=int, default=2)
    parser.add_argument("--decay", type=float, default=None, help="exponential kernel rate (default: THP's)")
    parser.add_argument("--pair-cap", type=int, default=None, help="events after which a (device, type) saturates")
    parser.add_argument("--penalty", default=None, help="'bic', 'aic' or a number (default: THP's)")
    args = parser.parse_args()

    options: dict[str, object] = {"max_hop": args.max_hop}
    if args.decay is not None:
        options["decay"] = args.decay
    if args.pair_cap is not None:
        options["pair_cap"] = args.pair_cap
    if args.penalty is not None:
        options["penalty"] = args.penalty if args.penalty in ("bic", "aic") else float(args.penalty)

    rows = []
    print(f"THP on {args.events} events, options {options}")
    print(f"{'network':>7} {'seed':>4} {'edges':>5} {'F1':>6} {'prec':>6} {'recall':>6} {'SHD':>4} {'sec':>6}")
    for model_seed in args.model_seeds:
        env = FaultAlarmEnv(model_seed=model_seed)
        names = list(env.causal_variables.names)
        for seed in args.seeds:
            log = env.record_alarm_log(args.events, seed=seed)
            start = time.perf_counter()
            learned = initial_graph("thp", names, alarm_log=log, seed=seed, **options)
            seconds = time.perf_counter() - start
            m = learned.compare(env.causal_graph)
            rows.append((m.f1, m.precision, m.recall, seconds))
            print(
                f"{model_seed:>7} {seed:>4} {m.n_edges:>5} {m.f1:>6.3f} {m.precision:>6.3f} {m.recall:>6.3f} "
                f"{m.shd:>4} {seconds:>6.2f}"
            )
    r = np.array(rows)
    mean, std = r.mean(axis=0), r.std(axis=0)
    print(
        f"mean over {len(rows)} runs: F1 {mean[0]:.3f} +- {std[0]:.3f}, precision {mean[1]:.3f}, "
        f"recall {mean[2]:.3f}, {mean[3]:.2f} s (paper THP: F1 0.638, precision 0.775, recall 0.543)"
    )
    summary = {
        "benchmark": "thp_initial",
        "events": args.events,
        "options": options,
        "runs": len(rows),
        "f1_mean": round(float(mean[0]), 4),
        "f1_std": round(float(std[0]), 4),
        "precision_mean": round(float(mean[1]), 4),
        "precision_std": round(float(std[1]), 4),
        "recall_mean": round(float(mean[2]), 4),
        "recall_std": round(float(std[2]), 4),
        "seconds_mean": round(float(mean[3]), 3),
        "seconds_max": round(float(r[:, 3].max()), 3),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
