"""The seed paper's Figure 3 on FaultAlarmRL-v0: causal agents against their non-causal twins.

Agents (equal env-step budgets, several seeds, Table B3 hyper-parameters where SB3 has the knob):

- causal: Causal PPO (THP initial graph), Causal PPO (random initial graph), Causal DQN (THP),
  Causal D3QN (THP; double-Q + dueling);
- baselines: PPO (SB3, no mask), MaskablePPO (the env's mask), DQN (SB3, no mask), MaskableDQN (env
  mask), D3QN (MaskableDQN, env mask, double-Q + dueling);
- the oracle (treat a root-cause alarm first, hidden state) as a reference line.

Shared settings: learning rate 3e-4, gamma 0.99, 2 x 128 MLPs, minibatch 64. PPO family: 10 epochs per
update, an update every 512 steps (PPO, MaskablePPO) or 256 (Causal PPO), as in Table B3. DQN family:
buffer 100000, an update every 5 steps, 512 random warm-up steps, epsilon 0.1, target net every 500
steps. Causal agents: k = 5, eta 0.3 (PPO) / 0.2 (DQN), a graph update every 1000 env steps; THP on
2000 observational alarm events (the paper's figure) recorded from the env.

Figures (PNG, in ``--out``): training return, steps per episode and mean active alarms per episode
(means over seeds, binned over env steps), and the causal agents' graph F1 over training (with the
paper's Table 1 F1 of 0.84 and THP's 0.638). Summary per algorithm: mean training return over the last
10% of steps, env steps until the 20-episode running mean return first reaches each ``--thresholds``
value (default -2 and 0; median over seeds, a seed that never reaches it counts as the whole budget,
and ``reached_*`` says how many did), the speed-up against MaskablePPO, and the final graph F1. It is
printed as a table and as one JSON line (also ``summary.json``; every episode in ``runs.json``).

Overhead (``--overhead-steps``): CausalMaskablePPO (THP) against MaskablePPO with *identical* PPO
settings, runs alternating so other load on the machine hits both alike; the median wall time per env
step of each, their ratio (and the ratio of each back-to-back pair), the same ratios without the time
spent inside the env's step/reset (the agents act differently, so their episodes cost the env
differently), and the causal mask's microseconds per step. ``--overhead-only`` runs just this.

    python benchmarks/fault_alarm_agents.py --quick   # a few minutes: 2 seeds x 5000 steps, 5 agents
    python benchmarks/fault_alarm_agents.py           # 9 agents x 3 seeds x 15000 steps (~35 min on 2 loaded cores)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym
import numpy as np
import torch as th
from _timing import TimedEnv  # benchmarks/ is on sys.path when a script runs
from sb3_contrib import MaskablePPO
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor

import sb3_causal  # noqa: F401  (registers FaultAlarmRL-v0)
from sb3_causal.algos import CausalDQN, CausalMaskablePPO, MaskableDQN, RecordTerminalActionMask

ENV_ID = "FaultAlarmRL-v0"
PAPER_F1 = 0.841  # Table 1, Causal PPO (THP init)
PAPER_THP_F1 = 0.638

PPO_COMMON = {"learning_rate": 3e-4, "batch_size": 64, "n_epochs": 10, "gamma": 0.99}
DQN_COMMON = {
    "learning_rate": 3e-4,
    "buffer_size": 100_000,
    "batch_size": 64,
    "gamma": 0.99,
    "train_freq": 5,
    "learning_starts": 512,
    "exploration_initial_eps": 0.1,
    "exploration_final_eps": 0.1,
    "target_update_interval": 500,
}
NET = {"policy_kwargs": {"net_arch": [128, 128]}}
CAUSAL = {"k": 5, "graph_update_freq": 1000}

#: name -> (class, policy, keyword arguments); every agent gets ``seed`` and a Monitor-wrapped env
AGENTS: dict[str, tuple[type, str, dict[str, Any]]] = {
    "Causal PPO (THP)": (CausalMaskablePPO, "MlpPolicy", {**PPO_COMMON, "n_steps": 256, "eta": 0.3, **CAUSAL}),
    "Causal PPO (random)": (
        CausalMaskablePPO,
        "MlpPolicy",
        {**PPO_COMMON, "n_steps": 256, "eta": 0.3, "initial_graph": "random", **CAUSAL},
    ),
    "Causal DQN (THP)": (CausalDQN, "MlpPolicy", {**DQN_COMMON, "eta": 0.2, **CAUSAL}),
    "Causal D3QN (THP)": (CausalDQN, "DuelingMlpPolicy", {**DQN_COMMON, "eta": 0.2, "double_q": True, **CAUSAL}),
    "PPO": (PPO, "MlpPolicy", {**PPO_COMMON, "n_steps": 512}),
    "MaskablePPO": (MaskablePPO, "MlpPolicy", {**PPO_COMMON, "n_steps": 512}),
    "DQN": (DQN, "MlpPolicy", DQN_COMMON),
    "MaskableDQN": (MaskableDQN, "MlpPolicy", DQN_COMMON),
    "D3QN": (MaskableDQN, "DuelingMlpPolicy", {**DQN_COMMON, "double_q": True}),
}
QUICK_AGENTS = ["Causal PPO (THP)", "Causal PPO (random)", "Causal DQN (THP)", "MaskablePPO", "MaskableDQN"]


class EpisodeRecorder(BaseCallback):
    """Per finished episode: env step, return, length and mean active alarms; per graph update: F1."""

    def __init__(self) -> None:
        super().__init__()
        self.episodes: list[tuple[int, float, int, float]] = []
        self.f1: list[tuple[int, float]] = []
        self._alarm_sum = 0.0

    def _on_training_start(self) -> None:
        callback = getattr(self.model, "graph_callback", None)
        if callback is not None:
            truth = self.training_env.get_attr("causal_graph", indices=[0])[0]
            self.f1.append((0, self.model.causal_graph.compare(truth).f1))
            callback.on_update.append(lambda g: self.f1.append((self.num_timesteps, g.compare(truth).f1)))

    def _on_step(self) -> bool:
        info = self.locals["infos"][0]
        self._alarm_sum += info.get("alarms", 0)
        episode = info.get("episode")
        if episode is not None:
            length = int(episode["l"])
            self.episodes.append((self.num_timesteps, float(episode["r"]), length, self._alarm_sum / max(length, 1)))
            self._alarm_sum = 0.0
        return True


def make_env(algo: type, seed: int) -> gym.Env:
    env = Monitor(gym.make(ENV_ID))
    if issubclass(algo, MaskableDQN):
        env = RecordTerminalActionMask(env)
    env.reset(seed=seed)
    return env


def run_agent(job: tuple[str, int, int]) -> dict[str, Any]:
    """Train one agent for ``steps`` env steps; returns its episodes, F1 curve and wall time."""
    name, seed, steps = job
    th.set_num_threads(1)
    algo, policy, kwargs = AGENTS[name]
    kwargs = {**kwargs, **NET}
    if algo in (CausalMaskablePPO, CausalDQN) and "initial_graph" not in kwargs:
        kwargs["initial_graph"] = "thp"
        kwargs["initial_kwargs"] = {"n_events": 2000}
    start = time.perf_counter()
    model = algo(policy, make_env(algo, seed), seed=seed, **kwargs)
    recorder = EpisodeRecorder()
    model.learn(steps, callback=recorder)
    seconds = time.perf_counter() - start
    result = {"name": name, "seed": seed, "steps": steps, "seconds": seconds, "episodes": recorder.episodes}
    if recorder.f1:
        result["f1"] = recorder.f1
        truth = model.env.get_attr("causal_graph", indices=[0])[0]
        metrics = model.causal_graph.compare(truth)
        result["final_graph"] = {"f1": metrics.f1, "precision": metrics.precision, "recall": metrics.recall}
    print(f"  {name:22s} seed {seed}: {len(recorder.episodes)} episodes in {seconds:.0f}s", flush=True)
    return result


def run_oracle(n_episodes: int, seed: int) -> dict[str, float]:
    env = gym.make(ENV_ID)
    base = env.unwrapped
    returns, lengths = [], []
    for ep in range(n_episodes):
        env.reset(seed=seed + ep)
        total, done, n = 0.0, False, 0
        while not done:
            _, reward, terminated, truncated, _ = env.step(base.oracle_action())
            total, n, done = total + reward, n + 1, terminated or truncated
        returns.append(total)
        lengths.append(n)
    return {"return": float(np.mean(returns)), "length": float(np.mean(lengths))}


# ---------------------------------------------------------------------- summaries
def steps_to_threshold(episodes: list[tuple], threshold: float, window: int = 20) -> int | None:
    """First env step at which the running mean return of the last ``window`` episodes reaches ``threshold``."""
    returns = [e[1] for e in episodes]
    for i in range(window - 1, len(returns)):
        if np.mean(returns[i - window + 1 : i + 1]) >= threshold:
            return int(episodes[i][0])
    return None


def final_return(episodes: list[tuple], steps: int) -> float:
    late = [e[1] for e in episodes if e[0] > 0.9 * steps]
    return float(np.mean(late)) if late else float("nan")


def summarise(results: list[dict[str, Any]], thresholds: list[float], steps: int) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in dict.fromkeys(r["name"] for r in results):
        runs = [r for r in results if r["name"] == name]
        entry: dict[str, Any] = {
            "final_return": round(float(np.mean([final_return(r["episodes"], steps) for r in runs])), 3),
            "final_return_per_seed": [round(final_return(r["episodes"], steps), 3) for r in runs],
        }
        for threshold in thresholds:
            reached = [steps_to_threshold(r["episodes"], threshold) for r in runs]
            entry[f"steps_to_{threshold:g}"] = int(statistics.median([s if s is not None else steps for s in reached]))
            entry[f"reached_{threshold:g}"] = f"{sum(s is not None for s in reached)}/{len(runs)}"
            entry[f"steps_to_{threshold:g}_per_seed"] = reached
        entry["seconds_per_1k_steps"] = round(float(np.mean([1000 * r["seconds"] / r["steps"] for r in runs])), 2)
        if "final_graph" in runs[0]:
            entry["final_f1"] = round(float(np.mean([r["final_graph"]["f1"] for r in runs])), 3)
            entry["final_precision"] = round(float(np.mean([r["final_graph"]["precision"] for r in runs])), 3)
            entry["final_recall"] = round(float(np.mean([r["final_graph"]["recall"] for r in runs])), 3)
            entry["initial_f1"] = round(float(np.mean([r["f1"][0][1] for r in runs])), 3)
        summary[name] = entry
    return summary


def binned(results: list[dict[str, Any]], column: int, steps: int, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds of the per-bin mean of an episode column, bins over env steps."""
    edges = np.linspace(0, steps, n_bins + 1)
    per_seed = []
    for r in results:
        ep = np.array(r["episodes"], dtype=np.float64).reshape(-1, 4)
        idx = np.digitize(ep[:, 0], edges) - 1
        per_seed.append([ep[idx == b, column].mean() if (idx == b).any() else np.nan for b in range(n_bins)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a bin without episodes in every seed stays NaN
        return (edges[:-1] + edges[1:]) / 2, np.nanmean(np.array(per_seed), axis=0)


def plot(results: list[dict[str, Any]], oracle: dict[str, float], steps: int, out: Path, threshold: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["name"] for r in results))
    n_bins = 20
    panels = [
        (1, "training return", "return_curves.png", oracle["return"]),
        (2, "steps per episode", "steps_per_episode.png", oracle["length"]),
        (3, "mean active alarms per step", "alarms_per_episode.png", None),
    ]
    for column, label, filename, reference in panels:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name in names:
            x, y = binned([r for r in results if r["name"] == name], column, steps, n_bins)
            ax.plot(x, y, label=name, linestyle="-" if name.startswith("Causal") else "--")
        if reference is not None:
            ax.axhline(reference, color="black", linewidth=1, label="oracle")
        if column == 1:
            ax.axhline(threshold, color="grey", linestyle=":", linewidth=1, label=f"threshold {threshold}")
        ax.set_xlabel("env steps")
        ax.set_ylabel(label)
        ax.set_title(f"FaultAlarmRL-v0: {label} (mean over seeds)")
        ax.legend(fontsize=7)
        fig.savefig(out / filename, dpi=120, bbox_inches="tight")
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in names:
        runs = [r for r in results if r["name"] == name and "f1" in r]
        if not runs:
            continue
        grid = np.linspace(0, steps, 41)
        curves = [np.interp(grid, *np.array(r["f1"]).T) for r in runs]
        ax.plot(grid, np.mean(curves, axis=0), label=name)
    ax.axhline(PAPER_F1, color="black", linewidth=1, label=f"paper Table 1 ({PAPER_F1})")
    ax.axhline(PAPER_THP_F1, color="grey", linestyle=":", linewidth=1, label=f"paper THP ({PAPER_THP_F1})")
    ax.set_xlabel("env steps")
    ax.set_ylabel("graph F1 (alarm types)")
    ax.set_ylim(0, 1)
    ax.set_title("graph F1 over training (mean over seeds)")
    ax.legend(fontsize=7)
    fig.savefig(out / "graph_f1.png", dpi=120, bbox_inches="tight")
    plt.close(fig)


# ---------------------------------------------------------------------- overhead
def timed_run(causal: bool, steps: int, seed: int) -> dict[str, float]:
    th.set_num_threads(1)
    env = TimedEnv(Monitor(gym.make(ENV_ID)))
    kwargs = {**PPO_COMMON, "n_steps": 256, **NET, "seed": seed}
    if causal:
        model = CausalMaskablePPO("MlpPolicy", env, eta=0.3, initial_graph="thp", **CAUSAL, **kwargs)
        _ = model.causal_graph  # the initial graph (THP, ~1 s) is set-up cost, not per-step cost
        mask_seconds = [0.0]
        provider = model.mask_provider
        assert provider is not None

        def timed_provider(obs: np.ndarray, env_masks: Any, *, explore: bool = True) -> np.ndarray:
            start = time.perf_counter()
            out = provider(obs, env_masks, explore=explore)
            mask_seconds[0] += time.perf_counter() - start
            return out

        timed_provider.update_graph = provider.update_graph  # type: ignore[attr-defined]
        model.mask_provider = timed_provider  # type: ignore[assignment]
    else:
        model = MaskablePPO("MlpPolicy", env, **kwargs)
    start = time.perf_counter()
    model.learn(steps)
    total = time.perf_counter() - start
    n = model.num_timesteps  # whole rollouts: may exceed ``steps``
    out = {"per_step_ms": 1000 * total / n, "agent_per_step_ms": 1000 * (total - env.seconds) / n}
    if causal:
        out["mask_us_per_step"] = 1e6 * mask_seconds[0] / n
        learner = model.causal_learner
        out["graph_updates"] = learner.n_updates
    return out


def overhead(steps: int, repeats: int) -> dict[str, Any]:
    runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for rep in range(repeats):
        for causal in (False, True):
            runs[causal].append(timed_run(causal, steps, seed=100 + rep))
            print(f"  overhead repeat {rep} {'causal' if causal else 'maskable'}: {runs[causal][-1]}", flush=True)

    def median(causal: bool, key: str) -> float:
        return float(statistics.median(r[key] for r in runs[causal]))

    def paired(key: str) -> list[float]:  # repeat by repeat: the two runs ran back to back
        return [round(c[key] / m[key], 3) for c, m in zip(runs[True], runs[False])]

    return {
        "steps": steps,
        "repeats": repeats,
        "maskable_ppo_ms_per_step": round(median(False, "per_step_ms"), 3),
        "causal_ppo_ms_per_step": round(median(True, "per_step_ms"), 3),
        "wall_ratio": round(median(True, "per_step_ms") / median(False, "per_step_ms"), 3),
        "agent_side_ratio": round(median(True, "agent_per_step_ms") / median(False, "agent_per_step_ms"), 3),
        "paired_wall_ratios": paired("per_step_ms"),
        "paired_agent_side_ratios": paired("agent_per_step_ms"),
        "mask_us_per_step": round(median(True, "mask_us_per_step"), 1),
    }


# ---------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 seeds x 5000 steps, 5 agents, short overhead check")
    parser.add_argument("--steps", type=int, default=15_000, help="env steps per run")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per agent")
    parser.add_argument("--agents", nargs="*", default=None, help=f"subset of: {list(AGENTS)}")
    parser.add_argument(
        "--thresholds", type=float, nargs="+", default=[-2.0, 0.0], help="return thresholds (the first is plotted)"
    )
    parser.add_argument("--overhead-steps", type=int, default=4096, help="steps per overhead run (0: skip)")
    parser.add_argument("--overhead-repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="parallel training processes")
    parser.add_argument("--overhead-only", action="store_true", help="only the side-by-side overhead measurement")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/fault_alarm_agents"))
    args = parser.parse_args()
    agents = args.agents or list(AGENTS)
    if args.quick:
        args.steps, args.seeds, args.overhead_steps, args.overhead_repeats = 5000, 2, 2048, 1
        agents = args.agents or QUICK_AGENTS
    unknown = sorted(set(agents) - set(AGENTS))
    if unknown:
        parser.error(f"unknown agents {unknown}; choose from {list(AGENTS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if args.overhead_only:
        print("overhead: CausalMaskablePPO vs MaskablePPO, identical PPO settings", flush=True)
        measured = overhead(args.overhead_steps, args.overhead_repeats)
        print(json.dumps({"benchmark": "fault_alarm_agents", "overhead": measured}))
        return

    jobs = [(name, seed, args.steps) for seed in range(args.seeds) for name in agents]
    print(f"{len(jobs)} training runs of {args.steps} steps on {args.jobs} process(es)", flush=True)
    if args.jobs > 1:
        with mp.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.map(run_agent, jobs, chunksize=1)
    else:
        results = [run_agent(job) for job in jobs]
    oracle = run_oracle(50, seed=10_000)
    summary = summarise(results, args.thresholds, args.steps)
    plot(results, oracle, args.steps, args.out, args.thresholds[0])
    (args.out / "runs.json").write_text(json.dumps(results))

    record: dict[str, Any] = {
        "benchmark": "fault_alarm_agents",
        "steps": args.steps,
        "seeds": args.seeds,
        "thresholds": args.thresholds,
        "oracle": oracle,
        "agents": summary,
    }
    if "MaskablePPO" in summary:
        record["speedup_vs_maskable_ppo"] = {
            f"{t:g}": {
                name: round(summary["MaskablePPO"][f"steps_to_{t:g}"] / max(entry[f"steps_to_{t:g}"], 1), 2)
                for name, entry in summary.items()
            }
            for t in args.thresholds
        }
    if args.overhead_steps > 0:
        print("overhead: CausalMaskablePPO vs MaskablePPO, identical PPO settings", flush=True)
        record["overhead"] = overhead(args.overhead_steps, args.overhead_repeats)
    record["wall_seconds"] = round(time.perf_counter() - start, 1)

    print(f"\noracle: return {oracle['return']:.2f}, {oracle['length']:.1f} steps per episode")
    t0 = f"{args.thresholds[0]:g}"
    print(f"{'agent':22s} {'final return':>12s} {'steps to ' + t0:>12s} {'reached':>8s} {'final F1':>8s} {'s/1k':>6s}")
    for name, e in summary.items():
        f1 = f"{e['final_f1']:.3f}" if "final_f1" in e else "-"
        print(
            f"{name:22s} {e['final_return']:12.2f} {e['steps_to_' + t0]:12d} {e['reached_' + t0]:>8s} "
            f"{f1:>8s} {e['seconds_per_1k_steps']:6.1f}"
        )
    line = json.dumps(record)
    (args.out / "summary.json").write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
