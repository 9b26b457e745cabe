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

Networks: each run trains on ``FaultAlarmRL-v0`` with one ``--model-seeds`` network (``model_seed``
of the default alarm model). ``model_seed`` 0 is the network the defaults above were tuned on, so the
default reports on 1, 2 and 3; every (model seed, training seed) pair is one run per agent.

Evaluation: after training, each agent plays ``--eval-episodes`` episodes of its network with the
deterministic policy and the masks ``predict`` applies (``predict(obs, deterministic=True,
action_masks=env.action_masks())`` for the maskable and causal agents, the call sb3-contrib's
``evaluate_policy`` makes; the causal agents' ``predict`` adds the causal mask of the current graph,
without eta lifts; no epsilon; PPO and DQN get no mask). The root-cause oracle plays the same episodes
(the same network and reset seeds), and ``eval_fraction_of_oracle`` is the agent's mean evaluation
return divided by the oracle's, per run, then averaged. The training return (mean return of the
episodes that end in the last 10% of training steps, eta lifts and epsilon still on) is kept as its own
column.

Figures (PNG, in ``--out``): training return, steps per episode and mean active alarms per episode
(means over runs, binned over env steps), and the causal agents' graph F1 over training (with the
paper's Table 1 F1 of 0.84 and THP's 0.638). Summary per algorithm: evaluation return and its fraction
of the oracle's, training return over the last 10% of steps, env steps until the 20-episode running
mean training return first reaches each ``--thresholds`` value (default -2 and 0; median over runs, a
run that never reaches it counts as the whole budget, and ``reached_*`` says how many did), the
speed-up against MaskablePPO, and the final graph F1. It is printed as a table and as one JSON line
(also ``summary.json``; every episode in ``runs.json``).

Overhead (``--overhead-steps``): CausalMaskablePPO against MaskablePPO, and with ``--overhead-agents ppo dqn``
also CausalDQN against MaskableDQN (initial graph THP, or ``--overhead-init random``), with *identical*
settings, back-to-back pairs in one process (the order alternating), timed in CPU time (``time.process_time``:
other jobs on the machine do not count). Per pair: the ratio of CPU time per env step (``cpu_ratio``), the
same without the CPU time inside the env's step/reset (``agent_cpu_ratio``: the agents act differently, so
their episodes cost the env differently), and twin + causal machinery over twin (``machinery_ratio``); the
median and range over repeats, and the machinery's microseconds per step: the mask, recording transitions, the
learner's ``observe`` and its graph ``update``. ``--overhead-only`` runs just this. ``--fingerprint STEPS``
prints hashes of the masks, graphs and learner statistics of a fixed run, to compare two implementations (run
the script with ``PYTHONPATH`` at each checkout).

    python benchmarks/fault_alarm_agents.py --quick   # 5 agents x model seeds 1, 2 x 5000 steps, 10 eval episodes
    python benchmarks/fault_alarm_agents.py           # 9 agents x model seeds 1, 2, 3 x 15000 steps, 20 eval episodes
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym
import numpy as np
import torch as th
from _timing import TimedEnv, play_episodes  # benchmarks/ is on sys.path when a script runs
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
EVAL_SEED = 10_000  # evaluation episode i resets with seed EVAL_SEED + i (agents and oracle alike)

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


def make_env(algo: type, seed: int, model_seed: int) -> gym.Env:
    env = Monitor(gym.make(ENV_ID, model_seed=model_seed))
    if issubclass(algo, MaskableDQN):
        env = RecordTerminalActionMask(env)
    env.reset(seed=seed)
    return env


def play(
    act: Callable[[gym.Env, np.ndarray], int], model_seed: int, n_episodes: int, first_seed: int
) -> tuple[list[float], list[int]]:
    """Returns and lengths of ``n_episodes`` episodes of network ``model_seed``, reset with seeds
    ``first_seed + i``, acting ``act(env, obs)``."""
    return play_episodes(gym.make(ENV_ID, model_seed=model_seed), act, n_episodes, first_seed)


def policy_action(model: Any) -> Callable[[gym.Env, np.ndarray], int]:
    """The deterministic action of ``model`` under the masks its ``predict`` applies (the env's validity mask
    for the maskable and causal agents, as sb3-contrib's ``evaluate_policy`` passes it; none for PPO/DQN)."""
    masked = isinstance(model, (MaskablePPO, MaskableDQN))

    def act(env: gym.Env, obs: np.ndarray) -> int:
        masks = env.unwrapped.action_masks() if masked else None
        kwargs = {"action_masks": masks} if masked else {}
        action, _ = model.predict(obs, deterministic=True, **kwargs)
        return int(action)

    return act


def oracle_action(env: gym.Env, obs: np.ndarray) -> int:
    """The root-cause oracle (hidden state): a reference, not an agent."""
    return env.unwrapped.oracle_action()


def run_agent(job: tuple[str, int, int, int, int]) -> dict[str, Any]:
    """Train one agent for ``steps`` env steps on network ``model_seed``, then evaluate it; returns its
    training episodes, evaluation returns, F1 curve and wall time."""
    name, model_seed, seed, steps, eval_episodes = job
    th.set_num_threads(1)
    algo, policy, kwargs = AGENTS[name]
    kwargs = {**kwargs, **NET}
    if algo in (CausalMaskablePPO, CausalDQN) and "initial_graph" not in kwargs:
        kwargs["initial_graph"] = "thp"
        kwargs["initial_kwargs"] = {"n_events": 2000}
    start = time.perf_counter()
    model = algo(policy, make_env(algo, seed, model_seed), seed=seed, **kwargs)
    recorder = EpisodeRecorder()
    model.learn(steps, callback=recorder)
    seconds = time.perf_counter() - start
    result = {
        "name": name,
        "model_seed": model_seed,
        "seed": seed,
        "steps": steps,
        "seconds": seconds,
        "episodes": recorder.episodes,
        "eval_returns": play(policy_action(model), model_seed, eval_episodes, EVAL_SEED)[0],
    }
    if recorder.f1:
        result["f1"] = recorder.f1
        truth = model.env.get_attr("causal_graph", indices=[0])[0]
        metrics = model.causal_graph.compare(truth)
        result["final_graph"] = {"f1": metrics.f1, "precision": metrics.precision, "recall": metrics.recall}
    print(
        f"  {name:22s} model {model_seed} seed {seed}: {len(recorder.episodes)} episodes in {seconds:.0f}s, "
        f"eval return {np.mean(result['eval_returns']):.2f}",
        flush=True,
    )
    return result


# ---------------------------------------------------------------------- summaries
def steps_to_threshold(episodes: list[tuple], threshold: float, window: int = 20) -> int | None:
    """First env step at which the running mean return of the last ``window`` episodes reaches ``threshold``."""
    returns = [e[1] for e in episodes]
    for i in range(window - 1, len(returns)):
        if np.mean(returns[i - window + 1 : i + 1]) >= threshold:
            return int(episodes[i][0])
    return None


def training_return(episodes: list[tuple], steps: int) -> float:
    """Mean return of the training episodes that end in the last 10% of steps (exploration still on)."""
    late = [e[1] for e in episodes if e[0] > 0.9 * steps]
    return float(np.mean(late)) if late else float("nan")


def summarise(
    results: list[dict[str, Any]], oracle: dict[int, dict[str, float]], thresholds: list[float], steps: int
) -> dict[str, Any]:
    """Per agent: evaluation return and its fraction of the oracle's, training return, steps to thresholds, F1.
    ``oracle`` maps each model seed to the oracle's mean return on the evaluation episodes."""
    summary: dict[str, Any] = {}
    for name in dict.fromkeys(r["name"] for r in results):
        runs = [r for r in results if r["name"] == name]
        evals = [float(np.mean(r["eval_returns"])) for r in runs]
        fractions = [e / oracle[r["model_seed"]]["return"] for e, r in zip(evals, runs)]
        entry: dict[str, Any] = {
            "runs": [[r["model_seed"], r["seed"]] for r in runs],
            "eval_return": round(float(np.mean(evals)), 3),
            "eval_fraction_of_oracle": round(float(np.mean(fractions)), 3),
            "eval_return_per_run": [round(e, 3) for e in evals],
            "eval_fraction_per_run": [round(f, 3) for f in fractions],
            "training_return": round(float(np.mean([training_return(r["episodes"], steps) for r in runs])), 3),
            "training_return_per_run": [round(training_return(r["episodes"], steps), 3) for r in runs],
        }
        for threshold in thresholds:
            reached = [steps_to_threshold(r["episodes"], threshold) for r in runs]
            entry[f"steps_to_{threshold:g}"] = int(statistics.median([s if s is not None else steps for s in reached]))
            entry[f"reached_{threshold:g}"] = f"{sum(s is not None for s in reached)}/{len(runs)}"
            entry[f"steps_to_{threshold:g}_per_run"] = reached
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
#: agent -> (causal class, its non-causal twin, shared settings, causal-only settings)
OVERHEAD_PAIRS: dict[str, tuple[type, type, dict[str, Any], dict[str, Any]]] = {
    "ppo": (CausalMaskablePPO, MaskablePPO, {**PPO_COMMON, "n_steps": 256}, {"eta": 0.3}),
    "dqn": (CausalDQN, MaskableDQN, DQN_COMMON, {"eta": 0.2}),
}
_MACHINERY = ("mask", "record", "observe", "update")  # what the causal agent adds per step (see timed_run)


def _timed(function: Callable[..., Any], totals: dict[str, float], key: str) -> Callable[..., Any]:
    """``function`` adding its CPU seconds to ``totals[key]``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            totals[key] += time.process_time() - start

    return wrapper


def timed_run(agent: str, causal: bool, steps: int, seed: int, init: str = "thp") -> dict[str, float]:
    """CPU time per env step of one training run (``time.process_time``: the process's own CPU, not the
    other jobs on the machine), in total, inside the env, and (causal agent) in each piece of the causal
    machinery: the mask (``mask``, acting and the DQN's TD targets), recording transitions in the graph
    callback (``record``), the learner's ``observe`` and its graph ``update``. ``init``: the causal agent's
    initial graph (``"thp"`` or ``"random"``)."""
    th.set_num_threads(1)
    causal_cls, twin, settings, causal_settings = OVERHEAD_PAIRS[agent]
    algo = causal_cls if causal else twin
    env: gym.Env = TimedEnv(Monitor(gym.make(ENV_ID)), clock=time.process_time)
    timed_env = env
    if issubclass(algo, MaskableDQN):
        env = RecordTerminalActionMask(env)
    kwargs = {**settings, **NET, "seed": seed}
    totals = dict.fromkeys(_MACHINERY, 0.0)
    if causal:
        model = algo("MlpPolicy", env, initial_graph=init, **causal_settings, **CAUSAL, **kwargs)
        learner = model.causal_learner  # the initial graph (THP, ~1 s) is set-up cost, not per-step cost
        provider = model.mask_provider
        assert provider is not None and model.graph_callback is not None
        timed_provider = _timed(provider, totals, "mask")
        timed_provider.update_graph = provider.update_graph  # type: ignore[attr-defined]
        model.mask_provider = timed_provider  # type: ignore[assignment]
        callback = model.graph_callback
        callback._on_step = _timed(callback._on_step, totals, "record")  # type: ignore[method-assign]
        learner.observe = _timed(learner.observe, totals, "observe")  # type: ignore[method-assign]
        learner.update = _timed(learner.update, totals, "update")  # type: ignore[method-assign]
    else:
        model = algo("MlpPolicy", env, **kwargs)
    totals["train"] = 0.0
    model.train = _timed(model.train, totals, "train")  # type: ignore[method-assign]
    start = time.process_time()
    model.learn(steps)
    total = time.process_time() - start
    n = model.num_timesteps  # whole rollouts: may exceed ``steps``
    out = {
        "cpu_ms_per_step": 1000 * total / n,
        "agent_cpu_ms_per_step": 1000 * (total - timed_env.seconds) / n,
        "env_cpu_ms_per_step": 1000 * timed_env.seconds / n,
        "train_cpu_ms_per_step": 1000 * totals.pop("train") / n,  # gradient steps (PPO epochs, DQN updates)
    }
    if causal:
        totals["record"] -= totals["observe"] + totals["update"]  # flush() runs inside the callback's step
        for key, seconds in totals.items():
            out[f"{key}_us_per_step"] = 1e6 * seconds / n
        out["machinery_us_per_step"] = sum(out[f"{key}_us_per_step"] for key in _MACHINERY)
        out["graph_updates"] = learner.n_updates
        out["update_ms"] = 1000 * totals["update"] / max(learner.n_updates, 1)
    return out


def _spread_of(values: list[float]) -> dict[str, Any]:
    return {
        "median": round(float(statistics.median(values)), 3),
        "range": [round(min(values), 3), round(max(values), 3)],
        "per_repeat": [round(v, 3) for v in values],
    }


def overhead(steps: int, repeats: int, agents: list[str], init: str = "thp") -> dict[str, Any]:
    """Causal agent (initial graph ``init``) vs its twin, ``repeats`` back-to-back pairs in this process (the
    order alternating, so warm-up and load hit both alike); CPU-time ratios per pair, their median and range."""
    report: dict[str, Any] = {"steps": steps, "repeats": repeats, "init": init}
    for agent in agents:
        pairs = []
        for rep in range(repeats):
            order = (False, True) if rep % 2 == 0 else (True, False)
            pair = {causal: timed_run(agent, causal, steps, seed=100 + rep, init=init) for causal in order}
            pairs.append(pair)
            for causal in order:
                name = "causal" if causal else "twin"
                print(f"  overhead {agent} repeat {rep} {name}: {json.dumps(pair[causal])}", flush=True)
        causal_runs = [p[True] for p in pairs]
        twin_runs = [p[False] for p in pairs]
        entry: dict[str, Any] = {
            "twin_cpu_ms_per_step": _spread_of([r["cpu_ms_per_step"] for r in twin_runs]),
            "causal_cpu_ms_per_step": _spread_of([r["cpu_ms_per_step"] for r in causal_runs]),
            # the whole run, env included (the agents act differently, so their episodes cost the env differently)
            "cpu_ratio": _spread_of(
                [c["cpu_ms_per_step"] / t["cpu_ms_per_step"] for c, t in zip(causal_runs, twin_runs)]
            ),
            # without the CPU time inside the env's step / reset
            "agent_cpu_ratio": _spread_of(
                [c["agent_cpu_ms_per_step"] / t["agent_cpu_ms_per_step"] for c, t in zip(causal_runs, twin_runs)]
            ),
            # twin + the causal machinery, over twin: the cost the machinery adds at equal env and network work
            "machinery_ratio": _spread_of(
                [1 + c["machinery_us_per_step"] / (1000 * t["cpu_ms_per_step"]) for c, t in zip(causal_runs, twin_runs)]
            ),
        }
        for key in (*_MACHINERY, "machinery"):
            entry[f"{key}_us_per_step"] = _spread_of([r[f"{key}_us_per_step"] for r in causal_runs])
        entry["update_ms"] = _spread_of([r["update_ms"] for r in causal_runs])
        for key in ("env_cpu_ms_per_step", "train_cpu_ms_per_step"):
            entry[f"twin_{key}"] = _spread_of([r[key] for r in twin_runs])
            entry[f"causal_{key}"] = _spread_of([r[key] for r in causal_runs])
        report[agent] = entry
    return report


def fingerprint(agent: str, steps: int) -> dict[str, Any]:
    """Hashes of a small fixed causal run (random initial graph, a graph update every 500 steps, seed 3): every
    mask the provider returned, every learned graph, and the learner's statistics. Run this script with
    ``PYTHONPATH`` at two checkouts: equal hashes mean the two implementations act and learn identically."""
    import hashlib

    th.set_num_threads(1)
    causal_cls, twin, _, _ = OVERHEAD_PAIRS[agent]
    env: gym.Env = Monitor(gym.make(ENV_ID))
    if issubclass(twin, MaskableDQN):
        env = RecordTerminalActionMask(env)
        model = causal_cls("MlpPolicy", env, initial_graph="random", graph_update_freq=500, learning_starts=200, seed=3)
    else:
        model = causal_cls("MlpPolicy", env, initial_graph="random", graph_update_freq=500, n_steps=256, seed=3)
    learner, provider = model.causal_learner, model.mask_provider
    masks, graphs = hashlib.sha256(), hashlib.sha256()
    calls = [0]

    def recorded(obs: np.ndarray, env_masks: Any, *, explore: bool = True) -> np.ndarray:
        out = provider(obs, env_masks, explore=explore)
        masks.update(np.ascontiguousarray(out).tobytes() + bytes([explore]))
        calls[0] += 1
        return out

    recorded.update_graph = provider.update_graph  # type: ignore[attr-defined]
    model.mask_provider = recorded  # type: ignore[assignment]
    model.graph_callback.on_update.append(lambda g: graphs.update(g.to_json().encode()))
    model.learn(steps)
    state = learner.state_dict()
    stats = hashlib.sha256()
    for key in ("gram", "gram_intervened", "n_rows_intervened"):
        stats.update(np.ascontiguousarray(state[key]).tobytes())
    for part in ("treated", "control"):
        for _, value in sorted(state[part].items()):
            stats.update(np.ascontiguousarray(value).tobytes())
    return {
        "masks": masks.hexdigest()[:16],
        "mask_calls": calls[0],
        "graphs": graphs.hexdigest()[:16],
        "graph_updates": learner.n_updates,
        "statistics": stats.hexdigest()[:16],
        "n_hops": learner.n_hops,
    }


# ---------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="model seeds 1 2 x 5000 steps, 5 agents, 10 eval episodes, short overhead"
    )
    parser.add_argument("--steps", type=int, default=None, help="env steps per run (default 15000, quick 5000)")
    parser.add_argument(
        "--model-seeds",
        type=int,
        nargs="+",
        default=None,
        help="networks to train and evaluate on (default 1 2 3; 0 is the network the defaults were tuned on)",
    )
    parser.add_argument("--seeds", type=int, default=1, help="training seeds 0, 1, ... per model seed and agent")
    parser.add_argument("--eval-episodes", type=int, default=None, help="evaluation episodes per run (default 20)")
    parser.add_argument("--agents", nargs="*", default=None, help=f"subset of: {list(AGENTS)}")
    parser.add_argument(
        "--thresholds", type=float, nargs="+", default=[-2.0, 0.0], help="return thresholds (the first is plotted)"
    )
    parser.add_argument(
        "--overhead-steps", type=int, default=None, help="steps per overhead run (default 4096, quick 2048; 0: skip)"
    )
    parser.add_argument("--overhead-repeats", type=int, default=None, help="overhead pairs (default 3, quick 1)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel training processes")
    parser.add_argument("--overhead-only", action="store_true", help="only the side-by-side overhead measurement")
    parser.add_argument(
        "--overhead-agents",
        nargs="+",
        choices=list(OVERHEAD_PAIRS),
        default=["ppo"],
        help="causal agents the overhead compares with their twins (ppo: MaskablePPO, dqn: MaskableDQN)",
    )
    parser.add_argument(
        "--overhead-init",
        choices=("thp", "random"),
        default="thp",
        help="the causal agents' initial graph in the overhead runs (THP: its ~1 s fit is set-up, not timed)",
    )
    parser.add_argument(
        "--fingerprint",
        type=int,
        default=0,
        metavar="STEPS",
        help="only print hashes of a fixed STEPS-step run per --overhead-agents (masks, graphs, learner statistics)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/fault_alarm_agents"))
    args = parser.parse_args()
    # --quick changes the defaults only: a flag given explicitly wins
    agents = args.agents or (QUICK_AGENTS if args.quick else list(AGENTS))
    args.steps = args.steps or (5000 if args.quick else 15_000)
    args.overhead_steps = (2048 if args.quick else 4096) if args.overhead_steps is None else args.overhead_steps
    args.overhead_repeats = args.overhead_repeats or (1 if args.quick else 3)
    args.model_seeds = args.model_seeds or ([1, 2] if args.quick else [1, 2, 3])
    args.eval_episodes = args.eval_episodes or (10 if args.quick else 20)
    unknown = sorted(set(agents) - set(AGENTS))
    if unknown:
        parser.error(f"unknown agents {unknown}; choose from {list(AGENTS)}")
    if args.seeds < 1 or args.eval_episodes < 1 or args.steps < 1:
        parser.error("--seeds, --eval-episodes and --steps must be >= 1")
    if args.fingerprint > 0:
        prints = {agent: fingerprint(agent, args.fingerprint) for agent in args.overhead_agents}
        print(json.dumps({"benchmark": "fault_alarm_agents", "fingerprint": prints}))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if args.overhead_only:
        print("overhead: causal agents vs their twins, identical settings, CPU time", flush=True)
        measured = overhead(args.overhead_steps, args.overhead_repeats, args.overhead_agents, args.overhead_init)
        print(json.dumps({"benchmark": "fault_alarm_agents", "overhead": measured}))
        return

    # the oracle on each network's evaluation episodes (the same reset seeds the agents are evaluated on)
    oracle: dict[int, dict[str, float]] = {}
    for model_seed in args.model_seeds:
        returns, lengths = play(oracle_action, model_seed, args.eval_episodes, EVAL_SEED)
        oracle[model_seed] = {"return": round(float(np.mean(returns)), 3), "length": round(float(np.mean(lengths)), 2)}
        if oracle[model_seed]["return"] <= 0:
            parser.error(
                f"the oracle's return on model seed {model_seed} is not positive: a fraction of it is meaningless"
            )
    print(f"oracle on the evaluation episodes: {oracle}", flush=True)

    jobs = [
        (name, model_seed, seed, args.steps, args.eval_episodes)
        for model_seed in args.model_seeds
        for seed in range(args.seeds)
        for name in agents
    ]
    print(f"{len(jobs)} training runs of {args.steps} steps on {args.jobs} process(es)", flush=True)
    if args.jobs > 1:
        with mp.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.map(run_agent, jobs, chunksize=1)
    else:
        results = [run_agent(job) for job in jobs]
    summary = summarise(results, oracle, args.thresholds, args.steps)
    reference = {k: float(np.mean([o[k] for o in oracle.values()])) for k in ("return", "length")}
    plot(results, reference, args.steps, args.out, args.thresholds[0])
    (args.out / "runs.json").write_text(json.dumps(results))

    record: dict[str, Any] = {
        "benchmark": "fault_alarm_agents",
        "steps": args.steps,
        "model_seeds": args.model_seeds,
        "seeds": args.seeds,
        "eval_episodes": args.eval_episodes,
        "eval_seeds": [EVAL_SEED, EVAL_SEED + args.eval_episodes - 1],
        "thresholds": args.thresholds,
        "oracle": {str(k): v for k, v in oracle.items()},
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
        print("overhead: causal agents vs their twins, identical settings, CPU time", flush=True)
        record["overhead"] = overhead(
            args.overhead_steps, args.overhead_repeats, args.overhead_agents, args.overhead_init
        )
    record["wall_seconds"] = round(time.perf_counter() - start, 1)

    print(f"\noracle on the evaluation episodes: return {reference['return']:.2f}, {reference['length']:.1f} steps")
    t0 = f"{args.thresholds[0]:g}"
    print(
        f"{'agent':22s} {'eval return':>11s} {'of oracle':>9s} {'train return':>12s} {'steps to ' + t0:>12s} "
        f"{'reached':>8s} {'final F1':>8s} {'s/1k':>6s}"
    )
    for name, e in summary.items():
        f1 = f"{e['final_f1']:.3f}" if "final_f1" in e else "-"
        print(
            f"{name:22s} {e['eval_return']:11.2f} {e['eval_fraction_of_oracle']:9.3f} {e['training_return']:12.2f} "
            f"{e['steps_to_' + t0]:12d} {e['reached_' + t0]:>8s} {f1:>8s} {e['seconds_per_1k_steps']:6.1f}"
        )
    line = json.dumps(record)
    (args.out / "summary.json").write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
