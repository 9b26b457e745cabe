"""Online structure learning on FaultAlarmRL from random interventions (no RL).

Runs FaultAlarmRL-v0 with random-over-active treatments (every treatment is an intervention),
feeds the transitions to an :class:`OnlineCausalLearner` every ``--update-every`` steps as the
callback would, and tracks F1 / precision / recall / SHD of the learned 18-type graph against the
truth. Ends with one JSON line (``f1``, ``precision``, ``recall``, ``shd``, ``initial_f1``,
``seconds``, ...) and writes the F1 curve as a PNG.

    python benchmarks/structure_learning.py --init random --steps 20000 --seed 0
    python benchmarks/structure_learning.py --init thp --events 2000 --steps 20000 --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: BLAS threads only contend

import numpy as np

from sb3_causal.discovery import INITIAL_METHODS, OnlineCausalLearner, initial_graph
from sb3_causal_envs import FaultAlarmEnv


def observational_states(env: FaultAlarmEnv, n_steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """States of ``n_steps`` untreated steps (treating an empty pair), with episode starts."""
    layout = env.causal_variables
    obs, _ = env.reset(seed=seed)
    states, starts = [], []
    start = True
    for _ in range(n_steps):
        states.append(layout.values(obs))
        starts.append(start)
        obs, _, term, trunc, _ = env.step(int(np.argmin(env.action_masks())))
        start = term or trunc
        if start:
            obs, _ = env.reset()
    return np.array(states), np.array(starts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init", default="random", choices=INITIAL_METHODS)
    parser.add_argument("--steps", type=int, default=20_000, help="env steps of random interventions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--update-every", type=int, default=1000)
    parser.add_argument("--events", type=int, default=2000, help="observational alarm events for --init thp")
    parser.add_argument("--obs-steps", type=int, default=2000, help="untreated steps for --init pc/ges/pcmci")
    parser.add_argument("--model-seed", type=int, default=0, help="seed of the default FaultAlarmRL network")
    parser.add_argument("--png", default="benchmarks/results/structure_learning_{init}_s{seed}.png")
    args = parser.parse_args()

    env = FaultAlarmEnv(model_seed=args.model_seed)
    truth = env.causal_graph
    layout = env.causal_variables
    names = layout.names

    start = time.perf_counter()
    if args.init == "thp":
        log = env.record_alarm_log(args.events, seed=args.seed)
        init = initial_graph("thp", names, alarm_log=log)
    elif args.init in ("pc", "ges", "pcmci"):
        states, starts = observational_states(env, args.obs_steps, args.seed)
        init = initial_graph(args.init, names, states=states, episode_starts=starts, layout=layout)
    else:
        init = initial_graph(args.init, names, seed=args.seed)
    initial_seconds = time.perf_counter() - start
    initial_metrics = init.compare(truth)
    print(f"initial graph ({args.init}): {init.n_edges} edges, F1 {initial_metrics.f1:.3f} in {initial_seconds:.1f}s")

    learner = OnlineCausalLearner(layout, init)
    rng = np.random.default_rng(args.seed)
    obs, _ = env.reset(seed=args.seed)
    batch: tuple[list, list, list] = ([], [], [])
    curve: list[dict[str, float]] = [{"step": 0, **initial_metrics.as_dict()}]
    observe_seconds, update_seconds = 0.0, []
    first_090 = None
    for step in range(1, args.steps + 1):
        action = int(rng.choice(np.flatnonzero(env.action_masks())))
        next_obs, _, term, trunc, _ = env.step(action)
        batch[0].append(obs)
        batch[1].append(action)
        batch[2].append(next_obs)
        obs = env.reset()[0] if term or trunc else next_obs
        if step % args.update_every == 0 or step == args.steps:
            t0 = time.perf_counter()
            learner.observe(np.array(batch[0]), np.array(batch[1]), np.array(batch[2]))
            t1 = time.perf_counter()
            graph = learner.update()
            dt = time.perf_counter() - t1
            observe_seconds += t1 - t0
            update_seconds.append(dt)
            batch = ([], [], [])
            m = graph.compare(truth)
            curve.append({"step": step, **m.as_dict()})
            if first_090 is None and m.f1 >= 0.9:
                first_090 = step
            print(
                f"step {step:>6}: F1 {m.f1:.3f} precision {m.precision:.3f} recall {m.recall:.3f} "
                f"SHD {m.shd:>3} edges {m.n_edges:>3} (update {dt * 1000:.0f} ms)",
                flush=True,
            )
    seconds = time.perf_counter() - start
    final = curve[-1]

    png = Path(args.png.format(init=args.init, seed=args.seed))
    png.parent.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [c["step"] for c in curve]
    for key in ("f1", "precision", "recall"):
        ax.plot(steps, [c[key] for c in curve], label=key)
    ax.axhline(0.841, color="grey", linestyle="--", label="paper Causal PPO F1 (0.841)")
    ax.set_xlabel("env steps (random interventions)")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"FaultAlarmRL structure learning, init={args.init}, seed={args.seed}")
    ax.legend(loc="lower right")
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)

    print(
        json.dumps(
            {
                "benchmark": "structure_learning",
                "init": args.init,
                "seed": args.seed,
                "model_seed": args.model_seed,
                "steps": args.steps,
                "f1": final["f1"],
                "precision": final["precision"],
                "recall": final["recall"],
                "shd": final["shd"],
                "n_edges": final["n_edges"],
                "initial_f1": initial_metrics.f1,
                "initial_seconds": initial_seconds,
                "first_step_f1_ge_0.9": first_090,
                "observe_us_per_transition": 1e6 * observe_seconds / args.steps,
                "last_update_seconds": update_seconds[-1],
                "max_update_seconds": max(update_seconds),
                "seconds": seconds,
                "f1_curve": [[c["step"], round(c["f1"], 4)] for c in curve],
                "png": str(png),
            }
        )
    )


if __name__ == "__main__":
    main()
