"""The ``sb3-causal`` command line: ``train``, ``evaluate``, ``graph`` and ``bench``.

    sb3-causal train --algo causal_ppo --env FaultAlarmRL-v0 -n 20000     # the zoo launcher (sb3_causal.zoo)
    sb3-causal evaluate --algo causal_ppo --env FaultAlarmRL-v0             # returns of the latest run
    sb3-causal graph logs/causal_ppo/FaultAlarmRL-v0_1/FaultAlarmRL-v0.zip --env FaultAlarmRL-v0 --png g.png
    sb3-causal bench structure_learning --steps 5000                       # a script of benchmarks/

``train`` and ``evaluate`` need the ``zoo`` extra (rl-zoo3, optuna); ``graph`` and ``bench`` do not.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["CliError", "find_benchmarks", "load_graph", "main"]


class CliError(Exception):
    """A usage error the command line reports in one line (exit status 2)."""


# ---------------------------------------------------------------------- graph
def load_graph(path: str | Path) -> Any:
    """
    The causal graph saved in ``path``: a model zip of a causal agent (``causal_graph.json`` entry) or of C-MBPO
    (its ``causal_graph_json`` attribute), or a graph JSON file (``CausalGraph.save``).

    :param path: model zip or graph JSON
    :return: a :class:`~sb3_causal.graph.CausalGraph`
    :raises CliError: when the file does not exist or holds no causal graph
    """
    from sb3_causal.common.save_util import GRAPH_ENTRY
    from sb3_causal.graph import CausalGraph

    path = Path(path)
    if not path.is_file():
        raise CliError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        try:
            return CausalGraph.load(path)
        except (ValueError, KeyError, TypeError) as exc:
            raise CliError(f"{path}: neither a model zip nor a CausalGraph JSON file ({exc})") from exc
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        if GRAPH_ENTRY in names:
            return CausalGraph.from_json(archive.read(GRAPH_ENTRY).decode("utf-8"))
        if "data" in names:
            data = json.loads(archive.read("data"))
            if isinstance(data.get("causal_graph_json"), str) and data["causal_graph_json"]:
                return CausalGraph.from_json(data["causal_graph_json"])
    raise CliError(
        f"{path}: this model zip holds no causal graph (no {GRAPH_ENTRY} entry, no C-MBPO graph). Models of "
        "CausalMaskablePPO, CausalDQN and CMBPO carry theirs; for another algorithm trained with "
        "CausalGraphCallback, save callback.graph.save('graph.json') and pass that file"
    )


def _truth(env_id: str) -> Any:
    import gymnasium as gym

    import sb3_causal  # noqa: F401  (registers the envs)

    if env_id not in gym.registry:
        import difflib

        close = difflib.get_close_matches(env_id, list(gym.registry), n=1)
        raise CliError(f"unknown --env {env_id!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    env = gym.make(env_id)
    try:
        truth = getattr(env.unwrapped, "causal_graph", None)
    finally:
        env.close()
    if truth is None:
        raise CliError(f"{env_id} does not expose its true graph (no causal_graph attribute): drop --env")
    return truth


def graph_command(args: argparse.Namespace) -> int:
    graph = _load_graph_or_fail(args.model)
    truth = _truth(args.env) if args.env else None
    metrics = None
    if truth is not None:
        try:
            metrics = graph.compare(truth)
        except ValueError as exc:
            raise CliError(f"the graph in {args.model} and {args.env}'s true graph: {exc}") from exc
    true_edges = set(truth.edges) if truth is not None else set()
    summary: dict[str, Any] = {"model": str(args.model), "n_variables": graph.n_variables, "n_edges": graph.n_edges}
    if not args.json:
        print(f"{args.model}: {graph.n_edges} edges over {graph.n_variables} variables")
        order = {v: i for i, v in enumerate(graph.causal_order())}
        for cause, effect in sorted(graph.edges, key=lambda e: (order[e[0]], order[e[1]])):
            mark = "" if truth is None else ("  ok" if (cause, effect) in true_edges else "  extra")
            print(f"  {cause} -> {effect}{mark}")
        if truth is not None:
            missing = [e for e in truth.edges if e not in set(graph.edges)]
            if missing:
                print(f"  missing ({len(missing)}): " + ", ".join(f"{u} -> {v}" for u, v in missing))
    if metrics is not None:
        summary.update({"env": args.env, **metrics.as_dict(), "shd": metrics.shd, "n_true_edges": metrics.n_true_edges})
        if not args.json:
            print(
                f"against {args.env}'s true graph ({metrics.n_true_edges} edges): F1 {metrics.f1:.3f}  precision "
                f"{metrics.precision:.3f}  recall {metrics.recall:.3f}  SHD {metrics.shd}"
            )
    for output in (args.dot, args.png, args.save_json):
        if output:
            Path(output).parent.mkdir(parents=True, exist_ok=True)
    if args.dot:
        Path(args.dot).write_text(graph.to_dot(truth=truth) + "\n")
        summary["dot"] = str(args.dot)
    if args.png:
        try:
            graph.plot(args.png, truth=truth)
        except ImportError as exc:
            raise CliError(str(exc)) from exc
        summary["png"] = str(args.png)
    if args.save_json:
        graph.save(args.save_json)
        summary["graph_json"] = str(args.save_json)
    if not args.json:
        for key in ("dot", "png", "graph_json"):
            if key in summary:
                print(f"wrote {summary[key]}")
    else:
        summary["edges"] = [list(e) for e in graph.edges]
        print(json.dumps(summary))
    return 0


def _load_graph_or_fail(path: str) -> Any:
    try:
        return load_graph(path)
    except (ValueError, zipfile.BadZipFile) as exc:  # CyclicGraphError, bad JSON / UTF-8 are ValueErrors
        raise CliError(f"{path}: the saved graph is corrupt ({exc})") from exc


# ---------------------------------------------------------------------- bench
def find_benchmarks(directory: str | Path | None = None) -> Path:
    """
    The folder of the benchmark scripts: ``directory``, else ``./benchmarks``, else the source checkout's.

    :raises CliError: when there is none (benchmarks ship with the source, not the wheel)
    """
    candidates = (
        [Path(directory)]
        if directory
        else [Path.cwd() / "benchmarks", Path(__file__).resolve().parents[1] / "benchmarks"]
    )
    for candidate in candidates:
        if candidate.is_dir() and any(candidate.glob("*.py")):
            return candidate
    raise CliError(
        f"no benchmarks folder found (looked in {', '.join(str(c) for c in candidates)}): the benchmark scripts "
        "live in the source checkout (git clone the repository), or pass --dir"
    )


def bench_command(args: argparse.Namespace, script_args: Sequence[str]) -> int:
    folder = find_benchmarks(args.dir)
    scripts = sorted(p.stem for p in folder.glob("*.py") if not p.name.startswith("_"))
    if args.list or not args.name:
        print(f"benchmarks in {folder}:")
        for name in scripts:
            print(f"  {name}")
        print("run one with: sb3-causal bench NAME [its arguments]; NAME --help shows them")
        return 0 if args.list else 2
    name = args.name.removesuffix(".py")
    if name not in scripts:
        import difflib

        close = difflib.get_close_matches(name, scripts, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise CliError(f"unknown benchmark {name!r}{hint}; available: {', '.join(scripts)}")
    command = [sys.executable, str(folder / f"{name}.py"), *script_args]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1")}
    print(f"$ {' '.join(command)}", flush=True)
    start = time.perf_counter()
    last_line = ""
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=folder.parent) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            if line.strip():
                last_line = line.strip()
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        print(f"benchmark {name} failed (exit status {process.returncode}) after {seconds:.1f} s", file=sys.stderr)
        return process.returncode
    print(f"benchmark {name} finished in {seconds:.1f} s", file=sys.stderr)
    if args.json_out:
        try:
            result = json.loads(last_line)
        except json.JSONDecodeError as exc:
            raise CliError(f"benchmark {name}'s last line is not JSON, nothing written to {args.json_out}") from exc
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json_out}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------- main
def _with_progress_bar(train_args: list[str]) -> list[str]:
    """Add the zoo's ``-P`` (a tqdm/rich progress bar) to a training run shown on a terminal."""
    if "-P" in train_args or "--progress" in train_args or not sys.stdout.isatty():
        return train_args
    if any(a in train_args for a in ("-optimize", "--optimize-hyperparameters", "-h", "--help")):
        return train_args
    try:
        import rich  # noqa: F401
        import tqdm  # noqa: F401
    except ImportError:
        return train_args
    return [*train_args, "-P"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sb3-causal",
        description="Online causal RL for Stable-Baselines3: train (rl-zoo3 launcher), evaluate, inspect learned "
        "graphs, run benchmarks. `sb3-causal COMMAND --help` shows each command's arguments.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.add_parser(
        "train",
        add_help=False,
        help="train (or tune with -optimize) an algorithm from zoo-format YAML; rl-zoo3's train arguments",
    )
    commands.add_parser("evaluate", add_help=False, help="load a trained model and report its returns (mask-aware)")
    graph = commands.add_parser(
        "graph",
        help="show a saved model's learned causal graph: edges, F1 against an env's true graph, PNG/DOT",
        description="Show the causal graph saved in a model zip (CausalMaskablePPO, CausalDQN, CMBPO) or a graph "
        "JSON file, compare it with an env's true graph, draw it.",
    )
    graph.add_argument("model", help="model zip or CausalGraph JSON file")
    graph.add_argument("--env", help="env whose true graph to compare with, e.g. FaultAlarmRL-v0")
    graph.add_argument(
        "--png",
        help="write a drawing here (needs matplotlib; with --env: right/extra/missing edges); folders are created",
    )
    graph.add_argument("--dot", help="write Graphviz DOT here (with --env: edges coloured as in the PNG)")
    graph.add_argument("--save-json", help="write the graph as CausalGraph JSON here")
    graph.add_argument("--json", action="store_true", help="print one JSON line instead of the text summary")
    bench = commands.add_parser(
        "bench",
        help="run a benchmark script of benchmarks/ (its arguments follow its name)",
        description="Run benchmarks/NAME.py with the remaining arguments; the script's last line is its JSON result.",
    )
    bench.add_argument("name", nargs="?", help="benchmark name (omit, or --list, to list them)")
    bench.add_argument("--list", action="store_true", help="list the benchmarks")
    bench.add_argument("--dir", help="benchmarks folder (default: ./benchmarks, then the source checkout's)")
    bench.add_argument("--json-out", help="also write the script's JSON result to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """
    Entry point of the ``sb3-causal`` console script.

    :param argv: arguments (default: ``sys.argv[1:]``)
    :return: exit status
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] in ("train", "evaluate"):
        args, rest = argparse.Namespace(command=argv[0]), argv[1:]
    else:
        args, rest = parser.parse_known_args(argv)
        if rest and args.command != "bench":
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        if args.command in ("train", "evaluate"):
            from sb3_causal import zoo

            try:
                zoo.require_zoo_extra()
            except ImportError as exc:
                raise CliError(str(exc)) from exc
            try:
                if args.command == "train":
                    zoo.train(_with_progress_bar(rest), prog="sb3-causal train")
                else:
                    zoo.evaluate(rest, prog="sb3-causal evaluate")
            except zoo.ZooUsageError as exc:
                raise CliError(str(exc)) from exc
            return 0
        if args.command == "graph":
            return graph_command(args)
        return bench_command(args, rest)
    except CliError as exc:
        print(f"sb3-causal {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
