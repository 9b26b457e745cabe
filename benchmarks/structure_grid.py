"""Run ``structure_learning.py`` over a grid of envs, drivers and model seeds; print markdown tables.

Every grid point is one ``structure_learning.py`` run in its own process (under ``nice``, one torch
thread); its final JSON line, together with the command-line arguments it was run with (``argv``), is
appended to a JSONL file. A run whose ``argv`` is already in the file is skipped, so an interrupted
grid resumes where it stopped, and grids written to the same file accumulate. A failed run is reported
and not recorded (the next call retries it).

The tables have one row per (env, driver, steps, ...) over the model seeds found in the file: F1 per
seed, mean and min, precision / recall per seed, the share of non-ancestor pairs with |t| > 1.96 per
statistic channel averaged over the seeds (the learner's channels: mean / second moment, then on
single-unit layouts conditional mean / conditional second moment; nominal 0.05), and the treatments
per variable, min-max per seed.

Model seeds 0-1 (and 7-9 on FaultAlarmRL) tuned the learner's defaults: report on 2-6.

    python benchmarks/structure_grid.py --drivers ppo --families gaussian0 gaussian poisson --n-variables 8 20
    python benchmarks/structure_grid.py --envs FaultAlarmRL-v0 --drivers ppo dqn --jobs 2
    python benchmarks/structure_grid.py --interventions random shift --model-seeds 4 5 6 --dry-run
    python benchmarks/structure_grid.py --table-only  # the tables of everything in the file
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SCRIPT = HERE / "structure_learning.py"
DEFAULT_OUT = HERE / "results" / "structure_grid.jsonl"
FACTORED = "FactoredSCM-v0"


def grid(args: argparse.Namespace) -> list[list[str]]:
    """The ``structure_learning.py`` arguments of every grid point (FaultAlarmRL has no family, size or
    intervention kind: one point per driver and seed)."""
    runs = []
    for env in args.envs:
        for driver in args.drivers:
            if env == FACTORED:
                variants = [
                    ["--family", family, "--n-variables", str(n), "--intervention", intervention]
                    for family in args.families
                    for n in args.n_variables
                    for intervention in args.interventions
                ]
            else:
                variants = [[]]
            for variant in variants:
                for model_seed in args.model_seeds:
                    runs.append(
                        [
                            "--env",
                            env,
                            *variant,
                            "--driver",
                            driver,
                            "--steps",
                            str(args.steps),
                            "--seed",
                            str(args.seed),
                            "--model-seed",
                            str(model_seed),
                            *args.extra,
                        ]
                    )
    return runs


def load(path: Path) -> list[dict]:
    """The records of a JSONL file (none if it does not exist)."""
    if not path.exists():
        return []
    with path.open() as f:
        return [json.loads(line) for line in f if line.strip()]


def last_json_line(stdout: str) -> dict | None:
    """The last line of a run's output that is a JSON object (the benchmark's result), if any."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def run_one(argv: list[str], script: Path, nice: int) -> tuple[dict | None, str]:
    """One benchmark run in a subprocess: its JSON result (None on failure) and the tail of its stderr."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = ["nice", "-n", str(nice), sys.executable, str(script), *argv]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    result = last_json_line(done.stdout) if done.returncode == 0 else None
    return result, done.stderr[-2000:]


def run_grid(runs: list[list[str]], out: Path, script: Path, jobs: int, nice: int) -> int:
    """Run the points not yet in ``out``, ``jobs`` at a time, appending each result as it ends.
    Returns the number of failed runs."""
    done = {tuple(record["argv"]) for record in load(out)}
    todo = [argv for argv in runs if tuple(argv) not in done]
    print(f"{len(runs)} runs, {len(runs) - len(todo)} already in {out}, {len(todo)} to run", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    failures = 0

    def work(argv: list[str]) -> None:
        nonlocal failures
        result, stderr = run_one(argv, script, nice)
        with lock:
            if result is None:
                failures += 1
                print(f"FAILED: {' '.join(argv)}\n{stderr}", file=sys.stderr, flush=True)
                return
            with out.open("a") as f:
                f.write(json.dumps({"argv": argv, **result}) + "\n")
            print(f"f1 {result['f1']:.3f} in {result['seconds']:.0f}s: {' '.join(argv)}", flush=True)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(work, todo))
    return failures


GROUP_KEYS = ("env", "driver", "chooser", "treatments", "init", "steps", "seed", "learner_kwargs")


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values)


def tables(records: list[dict]) -> str:
    """Markdown table: one row per setting (records equal in GROUP_KEYS), its model seeds in order.
    A seed run twice with the same setting counts once (the last record)."""
    groups: dict[str, dict[int, dict]] = {}
    for record in records:
        key = json.dumps([record.get(k) for k in GROUP_KEYS])
        groups.setdefault(key, {})[record["model_seed"]] = record
    header = (
        "| env | driver | steps | model seeds | F1 per seed | mean | min | P / R per seed "
        "| non-ancestor \\|t\\| > 1.96, per channel | treatments per variable, min-max per seed |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    rows = []
    for key in sorted(groups):
        by_seed = [groups[key][s] for s in sorted(groups[key])]
        first = by_seed[0]
        f1 = [r["f1"] for r in by_seed]
        shares = [r["fpr_non_ancestor_t_gt_1.96"] for r in by_seed if r.get("fpr_non_ancestor_t_gt_1.96")]
        channels = " / ".join(f"{mean(c):.3f}" for c in zip(*shares)) if shares else "-"
        driver = first["driver"] + ("" if first.get("chooser", "uniform") == "uniform" else f" ({first['chooser']})")
        seeds = " ".join(str(r["model_seed"]) for r in by_seed)
        pr = " ".join(f"{r['precision']:.2f}/{r['recall']:.2f}" for r in by_seed)
        treated = " ".join(f"{r['min_treated_per_variable']}-{r['max_treated_per_variable']}" for r in by_seed)
        rows.append(
            f"| {first['env']} | {driver} | {first['steps']} | {seeds} | {' '.join(f'{v:.3f}' for v in f1)} "
            f"| {mean(f1):.3f} | {min(f1):.3f} | {pr} | {channels} | {treated} |"
        )
    return "\n".join([header, *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=[FACTORED], choices=[FACTORED, "FaultAlarmRL-v0"])
    parser.add_argument("--families", nargs="+", default=["gaussian0", "gaussian", "poisson"], help="factored env")
    parser.add_argument("--n-variables", nargs="+", type=int, default=[8, 20], help="factored env")
    parser.add_argument("--interventions", nargs="+", default=["zero"], help="factored env: zero, random, shift")
    parser.add_argument("--drivers", nargs="+", default=["random"], choices=["random", "ppo", "dqn", "causal_dqn"])
    parser.add_argument("--model-seeds", nargs="+", type=int, default=[2, 3, 4, 5, 6], help="default: report seeds")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0, help="driver seed (the same for every run)")
    parser.add_argument(
        "--extra", nargs=argparse.REMAINDER, default=[], help="passed on to every run (last option: takes the rest)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time")
    parser.add_argument("--nice", type=int, default=5, help="niceness of each run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSONL of results (appended; resumable)")
    parser.add_argument("--script", type=Path, default=DEFAULT_SCRIPT, help="the benchmark each run calls")
    parser.add_argument("--dry-run", action="store_true", help="list the runs (and which are done), run nothing")
    parser.add_argument("--table-only", action="store_true", help="print the tables of every record in --out")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")

    failures = 0
    if not args.table_only:
        runs = grid(args)
        if args.dry_run:
            done = {tuple(record["argv"]) for record in load(args.out)}
            for run in runs:
                print(("done  " if tuple(run) in done else "todo  ") + " ".join(run))
            return 0
        failures = run_grid(runs, args.out, args.script, args.jobs, args.nice)
    records = load(args.out)
    if not args.table_only:  # the tables of this grid only
        wanted = {tuple(run) for run in grid(args)}
        records = [r for r in records if tuple(r["argv"]) in wanted]
    print(tables(records) if records else f"no records in {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
