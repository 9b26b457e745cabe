"""CEE (seed 004): PPO vs PPO under a CEE mask vs NPM on the redundant-action maze and MiniGrid UnlockPickup.

Per env and seed: phase 1 pre-trains a :class:`~sb3_causal.masks.CEEMask` on uniform-random exploration
(``*_pretrain`` env steps); phase 2 trains three sb3-contrib MaskablePPO agents with the same
hyperparameters and seed: ``ppo`` (no mask: every action allowed), ``cee`` (the mask's clusters, the best
member of each kept) and ``npm`` (the paper's NPM baseline: the same clusters, one random member per
cluster and step), the last two through :class:`~sb3_causal.masks.MaskProviderVecEnv`. Every agent gets
the same *total* env steps: PPO learns for ``*_steps + *_pretrain`` steps, CEE and NPM for ``*_steps``
after the pre-training, and every curve and figure counts the pre-training steps in CEE's and NPM's env
steps (their records start at ``*_pretrain``).

Figures:

* maze (``RedundantMaze-v0``, 64 actions): the reduction against the env's true per-cell equivalence
  classes over every free cell (``maze_classes_exact``: every cell's clusters equal its classes and each
  class keeps one action; pair precision/recall; ``maze_actions_kept_fraction`` vs the true minimum);
  return curves; ``steps_to_ppo_final``: per agent, the total env steps at which its running mean return
  (last 20 episodes) first reaches PPO's final return (PPO's mean over the episodes of its last
  ``0.2 * maze_steps`` env steps, averaged over seeds); None where it never does (counted as the budget,
  a lower bound, in ``steps_to_ppo_final_ci``); ``steps_fraction_of_ppo``: an agent's mean over PPO's mean
  (the target: CEE <= 1/3);
* MiniGrid (``UnlockPickupFixed-v0``, grid observation, the authors' PPO hyperparameters): ``success_rate``
  per agent (episodes with a positive reward, over the last ``0.2 * minigrid_steps`` env steps and over the
  whole run), per seed, and success-rate curves; ``minigrid_solution_masked_steps``: the steps of a known
  solution of the layout that each seed's mask forbids (empty: the solution stays open);
* ``mask_overhead_ratio``: CPU seconds per env step of PPO under the CEE mask over plain PPO on the maze,
  after pre-training, in interleaved chunks (PPO, CEE, CEE, PPO, ...); ``mask_only_overhead_ratio``:
  1 + the CPU time inside the mask's calls per env step over PPO's (see :func:`overhead`);
* ``--atari``: one Atari game (RAM observations, full 18-action set) end to end on a tiny budget.

Aggregates are means over seeds with 95% percentile-bootstrap confidence intervals (over seeds; our own
few lines: ``rliable`` fails to import here, its ``arch`` dependency breaks on the installed pandas).
Budgets are far below the paper's (maze 2M pre-training steps, MiniGrid 5M + 500k per run): see the
``budget`` entry. Seed 0 was used while developing the defaults; the reported seeds start at 1.

    python benchmarks/cee.py --quick [--out-dir cee_figures] [--atari] [--envs maze minigrid] [--jobs 3]

``--jobs N`` runs N seeds at once in worker processes (``cpu_seconds`` includes theirs).

Prints progress, saves curves as PNG, ends with one JSON line of figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from sb3_contrib import MaskablePPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv

import sb3_causal  # noqa: F401  (registers the envs)
from sb3_causal.masks import CEEMask, MaskProviderVecEnv
from sb3_causal_envs.maze import RedundantActionMaze
from sb3_causal_envs.minigrid_cee import solution_masked_steps

AGENTS = ("ppo", "cee", "npm")
# PPO hyperparameters, the same for the three agents of an env. MiniGrid: the authors' (SB3's PPO defaults and
# ent_coef 0.2, their pureppo/maskppo configs), with their 2048-step rollout split over our 4 envs (512 each)
PPO_KWARGS: dict[str, dict[str, Any]] = {
    "maze": dict(n_steps=128, batch_size=128, n_epochs=4, learning_rate=3e-4, ent_coef=0.01),
    "minigrid": dict(n_steps=512, batch_size=64, n_epochs=10, learning_rate=3e-4, ent_coef=0.2),
    "atari": dict(n_steps=128, batch_size=256, n_epochs=4, learning_rate=2.5e-4, clip_range=0.1, ent_coef=0.01),
}
# CEE mask arguments of the benchmark (the rest are CEEMask's defaults: epsilon 0.5, tau 0.8, T 1, as the paper)
MASK_KWARGS: dict[str, Any] = {}


@dataclass
class Episodes:
    """Finished episodes of one run: total env steps at each episode's end and its return (plain lists)."""

    steps: list[int]
    returns: list[float]


class EpisodeLog(BaseCallback):
    """Records (env steps so far, episode return) of every finished episode.

    :param offset: env steps spent before this run (CEE's pre-training), added to every record
    """

    def __init__(self, offset: int = 0) -> None:
        super().__init__()
        self.offset = int(offset)
        self.steps: list[int] = []
        self.returns: list[float] = []

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                self.steps.append(self.offset + self.num_timesteps)
                self.returns.append(float(info["episode"]["r"]))
        return True


def bootstrap_ci(values: list[float], rng: np.random.Generator, n: int = 2000) -> list[float]:
    """Mean and 95% percentile-bootstrap interval of the mean over seeds."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if x.size == 0:
        return [float("nan")] * 3
    means = rng.choice(x, size=(n, x.size)).mean(axis=1)
    return [float(x.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def running_mean(log: Episodes, window: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """(env steps, mean return of the last ``window`` episodes) at each finished episode."""
    r = np.asarray(log.returns, dtype=float)
    c = np.concatenate([[0.0], np.cumsum(r)])
    idx = np.arange(1, r.size + 1)
    lo = np.maximum(idx - window, 0)
    return np.asarray(log.steps), (c[idx] - c[lo]) / np.maximum(idx - lo, 1)


def final_value(log: Episodes, total: int, window: int, fraction: float = 0.2, success: bool = False) -> float:
    """Mean return (or success rate) of the episodes that ended in the last ``fraction * window`` env steps
    before ``total`` (total env steps, pre-training counted)."""
    steps, r = np.asarray(log.steps), np.asarray(log.returns)
    last = r[steps > total - fraction * window]
    if last.size == 0:
        return float("nan")
    return float((last > 0).mean() if success else last.mean())


def pretrain(env_id: str, env_kwargs: dict, steps: int, seed: int, **mask_kwargs: Any) -> tuple[CEEMask, float]:
    venv = make_vec_env(env_id, n_envs=4, seed=seed, env_kwargs=env_kwargs)
    mask = CEEMask(venv.observation_space, venv.action_space, seed=seed, **mask_kwargs)
    start = time.process_time()
    with warnings.catch_warnings(record=True) as caught:  # a detected collapse is reported, not hidden
        warnings.simplefilter("always")
        mask.pretrain(venv, steps, seed=seed)
    for w in caught:
        print(f"[{env_id} seed {seed}] WARNING: {w.message}", flush=True)
    return mask, time.process_time() - start


def npm_twin(mask: CEEMask) -> CEEMask:
    twin = CEEMask.from_config({**mask.get_config(), "keep": "random"})
    twin.load_state_dict(mask.state_dict())
    return twin


def make_agent(agent: str, venv: VecEnv, mask: CEEMask, seed: int, env: str) -> MaskablePPO:
    if agent == "cee":
        venv = MaskProviderVecEnv(venv, mask)
    elif agent == "npm":
        venv = MaskProviderVecEnv(venv, npm_twin(mask))
    else:  # plain PPO: every action allowed (MaskablePPO with an all-true mask is PPO)
        venv = MaskProviderVecEnv(venv, _AllowAll(int(venv.action_space.n)))
    return MaskablePPO("MlpPolicy", venv, seed=seed, device="cpu", **PPO_KWARGS[env])


class _AllowAll:
    """A provider allowing every env-valid action: plain PPO through the same code path as the masked agents."""

    uses_graph = False

    def __init__(self, n_actions: int) -> None:
        self.n_actions = n_actions

    def __call__(self, observations: np.ndarray, env_masks: np.ndarray | None, *, explore: bool = True) -> np.ndarray:
        n = observations.shape[0]
        return np.ones((n, self.n_actions), dtype=bool) if env_masks is None else env_masks

    def update_graph(self, graph: Any) -> None:
        raise TypeError("no graph")


def reduction_quality(mask: CEEMask, env: RedundantActionMaze) -> dict[str, Any]:
    cells = env.free_cells()
    obs = np.stack([env.observation(c) for c in cells])
    clusters, masks = mask.clusters(obs), mask(obs, None)
    tp = fp = fn = 0
    exact_cells = 0
    n_classes = []
    for k, cell in enumerate(cells):
        true_id = np.empty(env.n_actions, dtype=int)
        classes = env.equivalence_classes(cell)
        for c, members in enumerate(classes):
            true_id[members] = c
        n_classes.append(len(classes))
        same_true = true_id[:, None] == true_id[None, :]
        same_pred = clusters[k][:, None] == clusters[k][None, :]
        upper = np.triu(np.ones_like(same_true), 1)
        tp += int((same_true & same_pred & upper).sum())
        fp += int((~same_true & same_pred & upper).sum())
        fn += int((same_true & ~same_pred & upper).sum())
        one_each = all(masks[k, members].sum() == 1 for members in classes)
        exact_cells += int(bool((same_true == same_pred).all()) and one_each)
    return {
        "exact": exact_cells == len(cells),
        "exact_cells_fraction": exact_cells / len(cells),
        "pair_precision": tp / max(tp + fp, 1),
        "pair_recall": tp / max(tp + fn, 1),
        "kept_fraction": float(masks.sum(axis=1).mean() / env.n_actions),
        "true_min_fraction": float(np.mean(n_classes) / env.n_actions),
    }


def run_seed(
    name: str, env_id: str, env_kwargs: dict, pre_kwargs: dict, steps: int, pre_steps: int, seed: int
) -> dict[str, Any]:
    """One seed: pre-train a mask, then the three agents at equal total env steps (``steps + pre_steps``)."""
    th.set_num_threads(1)
    th.manual_seed(seed)
    mask, cpu = pretrain(env_id, {**env_kwargs, **pre_kwargs}, pre_steps, seed, **MASK_KWARGS)
    out: dict[str, Any] = {"pre_cpu": cpu, "pre_log": mask.pretrain_log[-1], "logs": {}}
    print(f"[{name} seed {seed}] pre-training {pre_steps} steps ({cpu:.0f} s CPU): {out['pre_log']}", flush=True)
    if name == "maze":
        out["quality"] = reduction_quality(mask, RedundantActionMaze(**env_kwargs))
        print(f"[{name} seed {seed}] reduction: {out['quality']}", flush=True)
    else:  # does the mask leave the known solution of the layout open?
        out["quality"] = {"solution_masked_steps": solution_masked_steps(mask)}
        print(f"[{name} seed {seed}] solution steps masked (step, action): {out['quality']}", flush=True)
    for agent in AGENTS:
        venv = make_vec_env(env_id, n_envs=4, seed=seed, env_kwargs=env_kwargs)
        model = make_agent(agent, venv, mask, seed, name)
        log = EpisodeLog(offset=0 if agent == "ppo" else pre_steps)
        start = time.process_time()
        mask.reset_stats()
        model.learn(steps + pre_steps if agent == "ppo" else steps, callback=log)
        out["logs"][agent] = Episodes(log.steps, log.returns)
        if agent == "cee":  # mean number of actions the mask allowed over the states met in training
            out["kept"] = mask.n_allowed / max(mask.n_rows, 1)
        fin = final_value(out["logs"][agent], steps + pre_steps, steps, success=name == "minigrid")
        what = "success" if name == "minigrid" else "return"
        print(
            f"[{name} seed {seed}] {agent}: {len(log.returns)} episodes, final {what} "
            f"{fin:.3f} ({time.process_time() - start:.0f} s CPU)",
            flush=True,
        )
    out["mask"] = mask if name == "maze" else None  # the maze's small mask serves the overhead measurement
    return out


def run_env(
    name: str,
    env_id: str,
    env_kwargs: dict,
    pre_kwargs: dict,
    steps: int,
    pre_steps: int,
    seeds: list[int],
    jobs: int = 1,
) -> dict[str, Any]:
    """Per seed (``jobs`` seeds at a time, in worker processes when > 1): :func:`run_seed`.

    PPO learns for ``steps + pre_steps`` env steps; CEE and NPM for ``steps`` after the ``pre_steps`` of
    pre-training, their episode records shifted by ``pre_steps``: every curve and figure is in total env steps.
    """
    args = [(name, env_id, env_kwargs, pre_kwargs, steps, pre_steps, seed) for seed in seeds]
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(min(jobs, len(seeds))) as pool:
            runs = pool.starmap(run_seed, args)
    else:
        runs = [run_seed(*a) for a in args]
    return {
        "logs": {a: [r["logs"][a] for r in runs] for a in AGENTS},
        "quality": [r["quality"] for r in runs],
        "pre_cpu": [r["pre_cpu"] for r in runs],
        "pre_logs": [r["pre_log"] for r in runs],
        "masks": [r["mask"] for r in runs],
        "kept": [r["kept"] for r in runs],
    }


def steps_to_reach(log: Episodes, target: float, window: int = 20) -> int | None:
    """Env steps at which the mean return of the last ``window`` episodes first reaches ``target`` (None: never)."""
    steps, mean = running_mean(log, window)
    hit = np.flatnonzero(mean[window - 1 :] >= target) + window - 1
    return int(steps[hit[0]]) if hit.size and np.isfinite(target) else None


def binned_success(log: Episodes, edges: np.ndarray) -> np.ndarray:
    """Per bin ``(edges[k-1], edges[k]]`` of env steps (the first from 0): the fraction of the episodes ending
    in it with a positive reward (NaN: none ended)."""
    steps, r = np.asarray(log.steps), np.asarray(log.returns)
    lower = np.concatenate([[0], edges[:-1]])
    out = np.full(edges.shape, np.nan)
    for k, (lo, hi) in enumerate(zip(lower, edges, strict=True)):
        inside = (steps > lo) & (steps <= hi)
        if inside.any():
            out[k] = float((r[inside] > 0).mean())
    return out


def plot(results: dict[str, dict], out_dir: str, steps: dict[str, int]) -> list[str]:
    """Running-mean return curves per env in total env steps (CEE's and NPM's start after pre-training)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for name, res in results.items():
        fig, ax = plt.subplots(figsize=(6, 4))
        success = name == "minigrid"
        grid = np.linspace(0, steps[name], 21 if success else 41)[1:]
        for agent in AGENTS:
            curves = []
            for log in res["logs"][agent]:
                if success:  # fraction of the episodes ending in each bin of env steps that succeeded
                    curves.append(binned_success(log, grid))
                    continue
                s, m = running_mean(log)
                curves.append(np.interp(grid, s, m, left=np.nan) if s.size else np.full_like(grid, np.nan))
            curves = np.asarray(curves)
            ax.plot(grid, np.nanmean(curves, axis=0), label=agent)
            ax.fill_between(grid, np.nanmin(curves, axis=0), np.nanmax(curves, axis=0), alpha=0.2)
        ax.set_xlabel("total env steps (CEE / NPM: pre-training included)")
        ax.set_ylabel("success rate per bin of env steps" if success else "episode return (running mean of 20)")
        ax.set_title(f"{name}: mean over seeds, band = min/max")
        ax.legend()
        path = f"{out_dir}/cee_{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


class _Timed:
    """A provider that passes another's masks through and sums the CPU time spent computing them."""

    uses_graph = False

    def __init__(self, provider: CEEMask) -> None:
        self.provider = provider
        self.cpu = 0.0

    def __call__(self, observations: np.ndarray, env_masks: np.ndarray | None, *, explore: bool = True) -> np.ndarray:
        start = time.process_time()
        masks = self.provider(observations, env_masks, explore=explore)
        self.cpu += time.process_time() - start
        return masks

    def update_graph(self, graph: Any) -> None:
        raise TypeError("no graph")


def overhead(mask: CEEMask, chunk: int, repeats: int, seed: int) -> dict[str, Any]:
    """CPU seconds per env step, CEE over PPO, on the maze after pre-training: chunks of ``learn`` interleaved
    A/B/B/A (PPO, CEE, CEE, PPO, ...); the ratio of the summed CPU times and the per-pair ratios.

    The end-to-end ratio also contains what acting under the mask changes besides the mask (CEE's agent
    reaches the goal sooner: more, shorter episodes, each with its reset and bookkeeping), so the mask's
    own cost is measured too: the CPU time inside the mask calls during CEE's chunks, per env step, over
    PPO's CPU time per env step (``mask_only_ratio`` = 1 + that).
    """
    timed = _Timed(mask)
    models = {}
    for agent in ("ppo", "cee"):
        venv = make_vec_env("RedundantMaze-v0", n_envs=4, seed=seed)
        if agent == "cee":  # CEE's mask, through a timer
            venv = MaskProviderVecEnv(venv, timed)
            models[agent] = MaskablePPO("MlpPolicy", venv, seed=seed, device="cpu", **PPO_KWARGS["maze"])
        else:
            models[agent] = make_agent(agent, venv, mask, seed, "maze")
        models[agent].learn(PPO_KWARGS["maze"]["n_steps"] * 4)  # warm-up
    timed.cpu = 0.0
    cpu = {"ppo": [], "cee": []}
    for r in range(repeats):
        for agent in ("ppo", "cee") if r % 2 == 0 else ("cee", "ppo"):
            start = time.process_time()
            models[agent].learn(chunk, reset_num_timesteps=False)
            cpu[agent].append(time.process_time() - start)
    pairs = np.asarray(cpu["cee"]) / np.asarray(cpu["ppo"])
    return {
        "ratio": float(sum(cpu["cee"]) / sum(cpu["ppo"])),
        "pair_ratios": [round(float(x), 4) for x in pairs],
        "mask_only_ratio": 1.0 + timed.cpu / sum(cpu["ppo"]),
        "mask_cpu_us_per_env_step": 1e6 * timed.cpu / (chunk * repeats),
        "ppo_cpu_us_per_env_step": 1e6 * sum(cpu["ppo"]) / (chunk * repeats),
    }


def run_atari(game: str, pre_steps: int, steps: int, seed: int) -> dict[str, Any]:
    import ale_py

    gym.register_envs(ale_py)

    def make() -> gym.Env:
        env = gym.make(game, obs_type="ram", full_action_space=True)
        space = gym.spaces.Box(0.0, 1.0, env.observation_space.shape, np.float32)
        return gym.wrappers.TransformObservation(env, lambda o: (o / 255.0).astype(np.float32), space)

    venv = make_vec_env(make, n_envs=4, seed=seed)
    mask = CEEMask(venv.observation_space, venv.action_space, seed=seed, **MASK_KWARGS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mask.pretrain(venv, pre_steps, seed=seed)
    out_warnings = [str(w.message) for w in caught]
    for message in out_warnings:
        print(f"[atari {game}] WARNING: {message}", flush=True)
    out: dict[str, Any] = {"game": game, "pretrain_steps": pre_steps, "steps": steps}
    out["pretrain_last"] = mask.pretrain_log[-1]
    out["pretrain_warnings"] = out_warnings
    for agent in ("ppo", "cee"):
        model = make_agent(agent, make_vec_env(make, n_envs=4, seed=seed), mask, seed, "atari")
        log = EpisodeLog()
        mask.reset_stats()
        model.learn(steps, callback=log)
        if agent == "cee":
            out["cee_actions_allowed_in_training"] = mask.n_allowed / max(mask.n_rows, 1)
        out[f"{agent}_mean_return"] = float(np.mean(log.returns)) if log.returns else None
        out[f"{agent}_episodes"] = len(log.returns)
        print(f"[atari {game}] {agent}: {len(log.returns)} episodes, mean return {out[f'{agent}_mean_return']}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small budgets (the figures in the README's table)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--envs", nargs="+", default=["maze", "minigrid"], choices=["maze", "minigrid"])
    parser.add_argument("--maze-steps", type=int, default=None)
    parser.add_argument("--maze-pretrain", type=int, default=None)
    parser.add_argument("--minigrid-steps", type=int, default=None)
    parser.add_argument("--minigrid-pretrain", type=int, default=None)
    parser.add_argument("--out-dir", default=".")
    parser.add_argument("--atari", action="store_true", help="also run one Atari game (ale-py) on a tiny budget")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at once, in worker processes")
    args = parser.parse_args()
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)  # before the runs, not after them
    th.set_num_threads(1)
    budget = {
        "maze_steps": args.maze_steps or (20_000 if args.quick else 100_000),
        "maze_pretrain": args.maze_pretrain or 16_000,
        "minigrid_steps": args.minigrid_steps or (4_000 if args.quick else 80_000),
        "minigrid_pretrain": args.minigrid_pretrain or (6_000 if args.quick else 20_000),
    }
    print(f"budget: {budget}, seeds {args.seeds}", flush=True)
    rng = np.random.default_rng(0)
    wall_start, cpu_start = time.time(), time.process_time()
    specs = {
        "maze": ("RedundantMaze-v0", {}, {"random_start": True}),
        "minigrid": ("UnlockPickupFixed-v0", {}, {}),
    }
    results = {
        name: run_env(name, *specs[name], budget[f"{name}_steps"], budget[f"{name}_pretrain"], args.seeds, args.jobs)
        for name in args.envs
    }
    totals = {name: budget[f"{name}_steps"] + budget[f"{name}_pretrain"] for name in results}
    figures: dict[str, Any] = {"budget": budget, "seeds": args.seeds, "envs": args.envs}
    if "maze" in results:
        figures.update(maze_figures(results["maze"], budget, rng))
    if "minigrid" in results:
        mg, window = results["minigrid"], budget["minigrid_steps"]
        figures["success_rate"] = {
            a: bootstrap_ci([final_value(log, totals["minigrid"], window, success=True) for log in mg["logs"][a]], rng)
            for a in AGENTS
        }
        figures["success_rate_whole_run"] = {
            a: bootstrap_ci(
                [final_value(log, totals["minigrid"], totals["minigrid"], 1.0, success=True) for log in mg["logs"][a]],
                rng,
            )
            for a in AGENTS
        }
        figures["success_rate_per_seed"] = {
            a: [final_value(log, totals["minigrid"], window, success=True) for log in mg["logs"][a]] for a in AGENTS
        }
        figures["successes"] = {a: [int((np.asarray(log.returns) > 0).sum()) for log in mg["logs"][a]] for a in AGENTS}
        figures["episodes"] = {a: [len(log.returns) for log in mg["logs"][a]] for a in AGENTS}
        figures["minigrid_solution_masked_steps"] = [q["solution_masked_steps"] for q in mg["quality"]]
        figures["minigrid_pretrain_last"] = mg["pre_logs"]
    figures["cee_actions_allowed_in_training"] = {k: bootstrap_ci(v["kept"], rng) for k, v in results.items()}
    figures["pretrain_cpu_seconds"] = {k: float(np.mean(v["pre_cpu"])) for k, v in results.items()}
    if "maze" in results:
        cost = overhead(results["maze"]["masks"][0], 2048 if args.quick else 8192, 6, args.seeds[0])
        figures["mask_overhead_ratio"] = cost["ratio"]
        figures["mask_overhead_pair_ratios"] = cost["pair_ratios"]
        figures["mask_only_overhead_ratio"] = cost["mask_only_ratio"]
        figures["mask_cpu_us_per_env_step"] = cost["mask_cpu_us_per_env_step"]
        figures["ppo_cpu_us_per_env_step"] = cost["ppo_cpu_us_per_env_step"]
        print(f"mask overhead (CPU per env step, CEE / PPO): {cost}", flush=True)
    if args.atari:
        figures["atari"] = run_atari("ALE/Breakout-v5", 2000, 4000 if args.quick else 20_000, args.seeds[0])
    figures["plots"] = plot(results, args.out_dir, totals)
    figures["wall_seconds"] = time.time() - wall_start
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the worker processes of --jobs
    figures["cpu_seconds"] = time.process_time() - cpu_start + children.ru_utime + children.ru_stime
    print(json.dumps(figures))


def maze_figures(maze: dict[str, Any], budget: dict[str, int], rng: np.random.Generator) -> dict[str, Any]:
    """The maze's figures: the reduction against the true classes, final returns, env steps to PPO's final return."""
    total, window = budget["maze_steps"] + budget["maze_pretrain"], budget["maze_steps"]
    ppo_final = float(np.nanmean([final_value(log, total, window) for log in maze["logs"]["ppo"]]))
    steps_to = {a: [steps_to_reach(log, ppo_final) for log in maze["logs"][a]] for a in AGENTS}
    quality = maze["quality"]

    def reached(values: list[int | None]) -> list[float]:  # never reached: censored at the budget (a lower bound)
        return [float(total if v is None else v) for v in values]

    ppo_mean = float(np.mean(reached(steps_to["ppo"])))
    return {
        "maze_classes_exact": all(q["exact"] for q in quality),
        "maze_exact_cells_fraction": bootstrap_ci([q["exact_cells_fraction"] for q in quality], rng),
        "maze_pair_precision": bootstrap_ci([q["pair_precision"] for q in quality], rng),
        "maze_pair_recall": bootstrap_ci([q["pair_recall"] for q in quality], rng),
        "maze_actions_kept_fraction": bootstrap_ci([q["kept_fraction"] for q in quality], rng),
        "maze_true_min_fraction": quality[0]["true_min_fraction"],
        "maze_pretrain_last": maze["pre_logs"],
        "maze_ppo_final_return": ppo_final,
        "maze_final_return": {
            a: bootstrap_ci([final_value(log, total, window) for log in maze["logs"][a]], rng) for a in AGENTS
        },
        # total env steps (CEE's and NPM's include their pre-training) at which the running mean of 20 episodes
        # first reaches PPO's final return; None: never within the budget
        "steps_to_ppo_final": {a: steps_to[a] for a in AGENTS},
        "steps_to_ppo_final_ci": {a: bootstrap_ci(reached(steps_to[a]), rng) for a in AGENTS},
        "steps_to_ppo_final_never": {a: sum(v is None for v in steps_to[a]) for a in AGENTS},
        # the target: CEE's steps over PPO's own steps to its final return (<= 1/3 is met)
        "steps_fraction_of_ppo": {a: float(np.mean(reached(steps_to[a]))) / ppo_mean for a in AGENTS},
    }


if __name__ == "__main__":
    main()
