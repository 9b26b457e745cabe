"""CAASL on CausalDesign-v0: a SAC design policy against the baselines and greedy information gain.

1. ``ms_per_reward``: CPU milliseconds of one exact posterior + reward at d = 10 and d = 15 (histories of
   50 observational + up to 10 interventional rows; mean over repetitions, ``time.process_time``).
2. Training: SB3's SAC with :class:`~sb3_causal.design.DesignSACPolicy`, sized for 2 CPU cores (a 1-layer-pair
   16-wide transformer, batch 32, a few thousand env steps: the paper trains 8 layers on 10^7+ episodes).
3. In-distribution evaluation on held-out SCMs (env seeds ``10_000 + i``, never used in training) of the
   trained policy (``policy``: deterministic, ``tanh`` of the mean; ``policy_stochastic``: sampled), the
   baselines of the authors' code (``observational``: no intervention;
   ``random_zero``: one random target, value 0; ``random_random``: one random target, uniform value), a
   ``random_max`` baseline (one random target, value +-value_scale), ``uniform_action`` (a uniform random
   action: each variable a target with probability 1/2, uniform values; SAC's warm-up) and ``info_gain``
   (greedy expected information gain from the exact posterior, value +-value_scale): return, final
   F1 / SHD / AUPRC of the posterior (edges with marginal > 0.5), each with a 95% normal CI, and paired
   policy-minus-baseline differences with 95% CIs on the same SCMs.
4. Zero-shot: the same policy (both ways of acting) at d = 12 and on shifted priors (scale-free graphs, Gumbel
   noise, weight mean 0.1, shift interventions), against ``random_random`` and ``observational``.
5. Beyond the paper: F1 per step of greedy information gain vs a uniformly random single target on a sparser
   linear-Gaussian problem (d = 10, expected degree 1.5, 20 observational rows, 20 steps).
6. ``--warm-start teacher.npz`` (a departure from the paper): behaviour cloning of the greedy
   information-gain teacher, its transitions in the replay buffer, the actor frozen for ``--freeze-steps``,
   then SAC; ``--save-bc`` keeps the clone for the ablation; ``--relative-targets`` for the policy option.
   ``--bc-coef`` trains :class:`~sb3_causal.design.DesignSAC` (imitation of the teacher in the actor loss) instead
   of SAC; ``--init-actor`` starts from a saved clone; ``--critic-readout``, ``--target-entropy``, ``--ent-coef``,
   ``--learning-starts`` set the options the collapse diagnosis asked for; ``--eval-seed`` / ``--n-eval`` move
   the evaluation to tuning SCMs. ``--describe`` reports what saved actors do; ``--update-cost`` the CPU per
   step of SAC vs DesignSAC.
7. ``--chooser-online SEEDS``: only CausalDQN on FactoredSCM-v0 with uniform eta lifts vs the
   information-gain chooser fed by ``DesignDataCallback`` (the online learner's F1 per graph update).

The last line printed is one JSON object (keys per strategy: ``return``, ``f1``, ``shd``, ``auprc``, each
``{"mean", "ci95", "n"}``; ``ms_per_reward``; ``paired``; ``zero_shot``; ``info_gain_vs_uniform``).

    python benchmarks/caasl.py --quick      # a few minutes on 2 cores (fewer SCMs for the slow parts)
    python benchmarks/caasl.py              # 100 held-out SCMs everywhere, longer training
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback

from sb3_causal.design import (
    DesignSAC,
    DesignSACPolicy,
    design_action,
    edge_metrics,
    expected_correct_entries,
    information_gain,
)
from sb3_causal.design.warmstart import (
    FreezeActorCallback,
    TeacherData,
    behaviour_clone,
    collect_teacher_episodes,
    prefill_replay_buffer,
)
from sb3_causal_envs.causal_design import CausalDesignEnv

EVAL_SEED = 10_000
Strategy = Callable[[CausalDesignEnv, np.ndarray, np.random.Generator], np.ndarray]


def ci(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    half = 1.96 * a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else float("nan")
    return {"mean": round(float(a.mean()), 4), "ci95": round(float(half), 4), "n": len(a)}


def single_target(d: int, j: int, value: float) -> np.ndarray:
    action = -np.ones(2 * d)
    action[j], action[d + j] = 1.0, value
    return action


def strategies(model: SAC | None, n_outcomes: int) -> dict[str, Strategy]:
    def observational(env: CausalDesignEnv, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return -np.ones(2 * env.n_variables)

    def random_zero(env: CausalDesignEnv, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return single_target(env.n_variables, int(rng.integers(env.n_variables)), 0.0)

    def random_random(env: CausalDesignEnv, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return single_target(env.n_variables, int(rng.integers(env.n_variables)), float(rng.uniform(-1, 1)))

    def random_max(env: CausalDesignEnv, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return single_target(env.n_variables, int(rng.integers(env.n_variables)), float(rng.choice((-1.0, 1.0))))

    def uniform_action(env: CausalDesignEnv, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(-1.0, 1.0, size=2 * env.n_variables)  # SAC's warm-up: each node w.p. 1/2

    def info_gain(env: CausalDesignEnv, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        gains = information_gain(
            env.posterior,
            *env.data,
            rng,
            n_outcomes=n_outcomes,
            value_scale=env.value_scale,
            current=env.last_posterior,
        )
        return single_target(env.n_variables, int(np.argmax(gains)), float(rng.choice((-1.0, 1.0))))

    out: dict[str, Strategy] = {
        "observational": observational,
        "random_zero": random_zero,
        "random_random": random_random,
        "random_max": random_max,
        "uniform_action": uniform_action,
        "info_gain": info_gain,
    }
    if model is not None:
        out["policy"] = lambda env, obs, rng: design_action(model.policy, obs, deterministic=True)

        def policy_stochastic(env: CausalDesignEnv, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
            generator = th.Generator().manual_seed(int(rng.integers(2**31)))
            return design_action(model.policy, obs, deterministic=False, generator=generator)

        out["policy_stochastic"] = policy_stochastic
    return out


def run_episodes(strategy: Strategy, env_kwargs: dict[str, Any], n: int, seed0: int) -> dict[str, list[float]]:
    env = CausalDesignEnv(**env_kwargs)
    out: dict[str, list[float]] = {"return": [], "f1": [], "shd": [], "auprc": []}
    for i in range(n):
        obs, _ = env.reset(seed=seed0 + i)
        rng = np.random.default_rng(seed0 + i)
        total, done = 0.0, False
        while not done:
            obs, reward, done, _, _ = env.step(strategy(env, obs, rng))
            total += reward
        metrics = edge_metrics(env.last_posterior.edge_marginals, env.true_adjacency)
        out["return"].append(total)
        for key in ("f1", "shd", "auprc"):
            out[key].append(metrics[key])
    return out


def ms_per_reward(d: int, reps: int) -> float:
    """CPU ms of one reward: the exact posterior of a full history plus the expected-correct score."""
    env = CausalDesignEnv(n_variables=d)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(env.n_steps - 1):  # a full history: interventions spread over several nodes
        env.step(single_target(d, int(rng.integers(d)), float(rng.uniform(-1, 1))))
    data, intervened = env.data
    start = time.process_time()
    for _ in range(reps):
        expected_correct_entries(env.posterior(data, intervened).edge_marginals, env.true_adjacency)
    return 1000 * (time.process_time() - start) / reps


def update_cost(teacher: TeacherData, steps: int = 20, rounds: int = 2) -> dict[str, float]:
    """CPU ms per env step (one SAC update each) of SAC and of DesignSAC with imitation, interleaved A/B/A/B.

    Both at the benchmark's settings (batch 16, d = 10, relative targets, Deep Sets critic), learning from the
    first step; the difference is DesignSAC's extra actor pass on a batch of demonstrations.
    """
    kwargs: dict[str, Any] = {
        "batch_size": 16,
        "learning_starts": 0,
        "buffer_size": 1000,
        "gamma": 0.9,
        "ent_coef": "auto_0.1",
        "seed": 0,
        "policy_kwargs": {
            "net_arch": [32, 32],
            "features_extractor_kwargs": {"embed_dim": 16, "n_layers": 1, "n_heads": 2, "ff_dim": 32},
            "relative_targets": True,
            "critic_readout_arch": [32],
        },
    }
    models = {
        "sac": SAC(DesignSACPolicy, CausalDesignEnv(), **kwargs),
        "design_sac": DesignSAC(DesignSACPolicy, CausalDesignEnv(), demonstrations=teacher, **kwargs),
    }
    cpu = dict.fromkeys(models, 0.0)
    for model in models.values():
        model.learn(5)  # warm-up
    for _ in range(rounds):
        for name, model in models.items():
            start = time.process_time()
            model.learn(steps, reset_num_timesteps=False)
            cpu[name] += time.process_time() - start
    out = {f"{name}_cpu_ms_per_step": round(1000 * value / (steps * rounds), 1) for name, value in cpu.items()}
    out["ratio"] = round(cpu["design_sac"] / cpu["sac"], 3)
    return out


def describe_policy(model: SAC, teacher: TeacherData, n_scms: int = 10, seed0: int = 20_000) -> dict[str, Any]:
    """What a trained actor does: its log-probability and log std on the teacher's histories, and, in the first
    step of ``n_scms`` SCMs (env seeds ``seed0..``), how many targets its deterministic action sets and its values.
    """
    with th.no_grad():
        obs = th.as_tensor(teacher.observations, dtype=th.float32, device=model.device)
        _, log_prob = model.actor.action_log_prob(obs)
        _, log_std, _ = model.actor.get_action_dist_params(obs)
    env, n_targets, values = CausalDesignEnv(), [], []
    for i in range(n_scms):
        obs_i, _ = env.reset(seed=seed0 + i)
        action = design_action(model.policy, obs_i)
        n_targets.append(int((action[: env.n_variables] > 0).sum()))
        values.append(float(np.abs(action[env.n_variables :]).mean()))
    return {
        "mean_log_prob": round(float(log_prob.mean()), 2),
        "mean_log_std": round(float(log_std.mean()), 3),
        "first_step_targets": n_targets,
        "first_step_mean_abs_value": round(float(np.mean(values)), 3),
    }


def train(
    steps: int,
    seed: int,
    teacher: TeacherData | None = None,
    bc_updates: int = 2000,
    freeze_steps: int = 500,
    save_bc: str | None = None,
    checkpoint: tuple[int, str] | None = None,
    relative_targets: bool = False,
    bc_coef: float | None = None,
    bc_coef_final: float | None = None,
    critic_readout: list[int] | None = None,
    init_actor: str | None = None,
    ent_coef: str = "auto_0.1",
    target_entropy: float | None = None,
    learning_starts: int | None = None,
) -> tuple[SAC, float]:
    """SAC on CausalDesign-v0; with ``teacher``: behaviour cloning, a prefilled buffer, a frozen-actor warm-up.

    With ``bc_coef``: :class:`DesignSAC` (imitation of the teacher in the actor loss, annealed linearly to
    ``bc_coef_final`` over the SAC steps if given). ``init_actor``: copy the actor of this saved model (a clone)
    instead of behaviour cloning again.
    """
    extra: dict[str, Any] = {}
    if bc_coef is not None:
        if teacher is None:
            raise SystemExit("--bc-coef needs --warm-start (the teacher's demonstrations)")
        extra = {"bc_coef": bc_coef, "demonstrations": teacher}
        if bc_coef_final is not None:
            extra.update(bc_coef_final=bc_coef_final, bc_anneal_updates=max(steps, 1))
    model = (DesignSAC if bc_coef is not None else SAC)(
        DesignSACPolicy,
        CausalDesignEnv(),
        **extra,
        learning_rate=3e-4,
        buffer_size=max(steps, 1000) + (len(teacher) if teacher is not None else 0),
        learning_starts=learning_starts
        if learning_starts is not None
        else (0 if teacher is not None else min(200, steps // 2)),
        batch_size=16,
        tau=0.005,
        gamma=0.9,
        train_freq=1,
        gradient_steps=1,
        ent_coef=ent_coef if ent_coef.startswith("auto") else float(ent_coef),
        target_entropy="auto" if target_entropy is None else target_entropy,
        seed=seed,
        policy_kwargs={
            "net_arch": [32, 32],
            "features_extractor_kwargs": {"embed_dim": 16, "n_layers": 1, "n_heads": 2, "ff_dim": 32},
            "relative_targets": relative_targets,
            "critic_readout_arch": critic_readout,
        },
    )
    start = time.process_time()
    callbacks: list[BaseCallback] = []
    if checkpoint is not None:
        callbacks.append(CheckpointCallback(checkpoint[0], checkpoint[1], name_prefix="caasl_sac"))
    if teacher is not None:
        if init_actor:
            model.actor.load_state_dict(SAC.load(init_actor).actor.state_dict())
            print(f"actor copied from {init_actor}", flush=True)
        else:
            losses = behaviour_clone(model, teacher, n_updates=bc_updates, seed=seed)
            print(
                f"behaviour cloning: loss {np.mean(losses[:50]):.3f} -> {np.mean(losses[-50:]):.3f} in "
                f"{time.process_time() - start:.0f} s CPU",
                flush=True,
            )
        if save_bc:
            model.save(save_bc)
        prefill_replay_buffer(model, teacher)
        callbacks.append(FreezeActorCallback(freeze_steps))
    if steps > 0:
        model.learn(steps, callback=callbacks)
    return model, time.process_time() - start


def ig_vs_uniform(n_scms: int, n_outcomes: int) -> dict[str, Any]:
    kwargs = {"expected_degree": 1.5, "n_observational": 20, "n_steps": 20}
    curves: dict[str, list[list[float]]] = {"info_gain": [], "uniform": []}
    for i in range(n_scms):
        for name in curves:
            env = CausalDesignEnv(**kwargs)
            env.reset(seed=EVAL_SEED + 5000 + i)
            rng = np.random.default_rng(i)
            f1 = [edge_metrics(env.last_posterior.edge_marginals, env.true_adjacency)["f1"]]
            for _ in range(env.n_steps):
                if name == "info_gain":
                    gains = information_gain(
                        env.posterior, *env.data, rng, n_outcomes=n_outcomes, current=env.last_posterior
                    )
                    j = int(np.argmax(gains))
                else:
                    j = int(rng.integers(env.n_variables))
                env.step(single_target(env.n_variables, j, float(rng.choice((-1.0, 1.0)))))
                f1.append(edge_metrics(env.last_posterior.edge_marginals, env.true_adjacency)["f1"])
            curves[name].append(f1)
    ig, un = np.array(curves["info_gain"]), np.array(curves["uniform"])
    gain_per_scm = (ig[:, 1:] - un[:, 1:]).mean(axis=1)  # mean over the 20 steps of the F1 difference
    return {
        "setting": kwargs,
        "f1_curve_info_gain": np.round(ig.mean(axis=0), 4).tolist(),
        "f1_curve_uniform": np.round(un.mean(axis=0), 4).tolist(),
        "mean_f1_gain_per_step": ci(gain_per_scm.tolist()),
        "final_f1_gain": ci((ig[:, -1] - un[:, -1]).tolist()),
    }


def t_ci(values: list[float]) -> dict[str, float]:
    """Mean and 95% Student-t half-width (for a handful of seeds)."""
    from scipy.stats import t as student_t

    a = np.asarray(values, dtype=np.float64)
    half = student_t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else float("nan")
    return {"mean": round(float(a.mean()), 4), "ci95_t": round(float(half), 4), "n": len(a)}


def chooser_online(
    model_seeds: list[int], steps: int, update_freq: int, refresh_every: int | None = None, n_variables: int = 8
) -> dict[str, Any]:
    """CausalDQN on FactoredSCM-v0 (linear-Gaussian, do(x = 0)): uniform eta lifts vs the information-gain chooser.

    The online learner's F1 against the true graph after every graph update; per model seed, the mean over the
    updates (F1 per step, the area under the curve over the steps) and the final F1; paired differences.
    """
    import gymnasium as gym

    from sb3_causal import CausalDQN
    from sb3_causal.design import DesignDataCallback, InformationGainChooser

    curves: dict[str, list[list[float]]] = {"uniform": [], "info_gain": []}
    cpu: dict[str, float] = {"uniform": 0.0, "info_gain": 0.0}
    for model_seed in model_seeds:
        for name in curves:
            env = gym.make("FactoredSCM-v0", n_variables=n_variables, family="gaussian0", model_seed=model_seed)
            truth = env.unwrapped.causal_graph
            chooser = (
                InformationGainChooser(n_variables, n_outcomes=3, value_scale=0.0, seed=model_seed)
                if name == "info_gain"
                else None
            )
            model = CausalDQN("MlpPolicy", env, graph_update_freq=update_freq, chooser=chooser, seed=model_seed)
            f1: list[float] = []
            model.graph_callback.on_update.append(lambda graph, f1=f1, truth=truth: f1.append(graph.compare(truth).f1))
            start = time.process_time()
            model.learn(
                steps,
                callback=DesignDataCallback(chooser, refresh_every=refresh_every) if chooser is not None else None,
            )
            cpu[name] += time.process_time() - start
            curves[name].append(f1)
            print(f"chooser online: model seed {model_seed} {name}: mean F1 {np.mean(f1):.3f}, final {f1[-1]:.3f}")
    n = min(len(c) for runs in curves.values() for c in runs)
    ig = np.array([c[:n] for c in curves["info_gain"]])
    un = np.array([c[:n] for c in curves["uniform"]])
    return {
        "setting": {
            "env": "FactoredSCM-v0",
            "n_variables": n_variables,
            "family": "gaussian0",
            "intervention": "zero",
            "agent": "CausalDQN (eta 0.2)",
            "steps": steps,
            "graph_update_freq": update_freq,
            "refresh_every": refresh_every,
            "model_seeds": model_seeds,
        },
        "f1_curve_uniform": np.round(un.mean(axis=0), 4).tolist(),
        "f1_curve_info_gain": np.round(ig.mean(axis=0), 4).tolist(),
        "mean_f1_uniform": t_ci(un.mean(axis=1).tolist()),
        "mean_f1_info_gain": t_ci(ig.mean(axis=1).tolist()),
        "mean_f1_gain": t_ci((ig - un).mean(axis=1).tolist()),
        "final_f1_gain": t_ci((ig[:, -1] - un[:, -1]).tolist()),
        "cpu_seconds": {key: round(value, 1) for key, value in cpu.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short training, fewer SCMs for the slow parts")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--train-steps", type=int, default=None)
    parser.add_argument("--save", type=str, default=None, help="save the trained SAC model to this zip")
    parser.add_argument("--load", type=str, default=None, help="evaluate this saved model instead of training")
    parser.add_argument("--strategies", type=str, default=None, help="comma list: evaluate only these strategies")
    parser.add_argument(
        "--warm-start",
        type=str,
        default=None,
        help="teacher transitions (.npz; collected with --teacher-episodes if missing): behaviour cloning, "
        "prefilled buffer, frozen-actor warm-up before SAC (a departure from the paper)",
    )
    parser.add_argument("--teacher-episodes", type=int, default=200, help="info-gain teacher episodes (seeds 0..)")
    parser.add_argument("--bc-updates", type=int, default=2000)
    parser.add_argument("--freeze-steps", type=int, default=500, help="env steps before the actor is released")
    parser.add_argument("--checkpoint-every", type=int, default=0, help="save checkpoints every N env steps")
    parser.add_argument("--checkpoint-dir", type=str, default="logs/caasl_checkpoints")
    parser.add_argument(
        "--relative-targets", action="store_true", help="DesignSACPolicy(relative_targets=True) (not the paper's)"
    )
    parser.add_argument("--save-bc", type=str, default=None, help="save the behaviour-cloned model (before SAC)")
    parser.add_argument(
        "--bc-coef", type=float, default=None, help="DesignSAC: imitation weight in the actor loss (needs --warm-start)"
    )
    parser.add_argument("--bc-coef-final", type=float, default=None, help="anneal --bc-coef linearly to this")
    parser.add_argument(
        "--critic-readout", type=str, default=None, help="comma list: Deep Sets critic readout sizes (default additive)"
    )
    parser.add_argument("--ent-coef", type=str, default="auto_0.1", help="SAC's ent_coef (auto_<init> or a number)")
    parser.add_argument(
        "--target-entropy", type=float, default=None, help="SAC's target entropy (default -2 d, SB3's 'auto')"
    )
    parser.add_argument(
        "--learning-starts",
        type=int,
        default=None,
        help="uniform random env steps before SAC updates (default 0 with --warm-start, else min(200, steps / 2))",
    )
    parser.add_argument(
        "--update-cost", action="store_true", help="with --warm-start: CPU per step of SAC vs DesignSAC, then exit"
    )
    parser.add_argument(
        "--describe", type=str, default=None, help="with --warm-start: describe these saved models (comma list), exit"
    )
    parser.add_argument(
        "--other-model", type=str, default=None, help="also evaluate this saved model as strategy other_model"
    )
    parser.add_argument("--init-actor", type=str, default=None, help="with --warm-start: copy this clone's actor")
    parser.add_argument("--eval-seed", type=int, default=EVAL_SEED, help="first held-out env seed (tune elsewhere)")
    parser.add_argument("--n-eval", type=int, default=100, help="held-out SCMs per strategy")
    parser.add_argument(
        "--chooser-online",
        type=str,
        default=None,
        help="only run CausalDQN on FactoredSCM-v0 with uniform lifts vs the info-gain chooser, on these "
        "comma-separated model seeds",
    )
    parser.add_argument("--chooser-steps", type=int, default=3000)
    parser.add_argument("--chooser-refresh", type=int, default=None, help="recompute the gains every N samples")
    parser.add_argument("--zero-shot", type=str, default=None, help="comma list of zero-shot settings (default all)")
    parser.add_argument("--n-zero-shot", type=int, default=None, help="SCMs per zero-shot setting")
    parser.add_argument("--no-chooser-loop", action="store_true", help="skip the info gain vs uniform loop")
    parser.add_argument("--in-distribution-only", action="store_true", help="skip zero-shot and the chooser loop")
    args = parser.parse_args()
    th.set_num_threads(1)
    t0, cpu0 = time.time(), time.process_time()
    if args.chooser_online:
        seeds = [int(seed) for seed in args.chooser_online.split(",")]
        block = chooser_online(seeds, args.chooser_steps, update_freq=250, refresh_every=args.chooser_refresh)
        print(json.dumps({"chooser_online": block, "wall_seconds": round(time.time() - t0, 1)}))
        return
    quick = args.quick
    n_eval = args.n_eval
    n_ig = min(20, n_eval) if quick else n_eval
    n_shift = args.n_zero_shot or (20 if quick else 100)
    n_beyond = 8 if quick else 40
    n_outcomes = 3
    steps = args.train_steps if args.train_steps is not None else (300 if quick else 4000)
    result: dict[str, Any] = {}

    result["ms_per_reward"] = round(ms_per_reward(10, 20), 2)
    result["ms_per_reward_d15"] = round(ms_per_reward(15, 2 if quick else 5), 1)
    print(f"ms per reward: d=10 {result['ms_per_reward']}, d=15 {result['ms_per_reward_d15']}", flush=True)

    if args.load:
        model, train_cpu = SAC.load(args.load), 0.0
    else:
        teacher = None
        if args.warm_start:
            try:
                teacher = TeacherData.load(args.warm_start)
            except FileNotFoundError:
                start = time.process_time()
                teacher = collect_teacher_episodes(
                    CausalDesignEnv(), args.teacher_episodes, seed=0, n_outcomes=n_outcomes
                )
                teacher.save(args.warm_start)
                result["teacher"] = {
                    "episodes": args.teacher_episodes,
                    "cpu_seconds": round(time.process_time() - start, 1),
                    "return": ci(teacher.rewards.reshape(args.teacher_episodes, -1).sum(axis=1).tolist()),
                }
                print("teacher", result["teacher"], flush=True)
        if args.describe:
            if teacher is None:
                raise SystemExit("--describe needs --warm-start (the teacher's histories)")
            result["describe"] = {path: describe_policy(SAC.load(path), teacher) for path in args.describe.split(",")}
            print(json.dumps(result))
            return
        if args.update_cost:
            if teacher is None:
                raise SystemExit("--update-cost needs --warm-start (DesignSAC's demonstrations)")
            result["update_cost"] = update_cost(teacher)
            print(json.dumps(result))
            return
        model, train_cpu = train(
            steps,
            args.seed,
            teacher,
            args.bc_updates,
            args.freeze_steps,
            args.save_bc,
            (args.checkpoint_every, args.checkpoint_dir) if args.checkpoint_every else None,
            args.relative_targets,
            args.bc_coef,
            args.bc_coef_final,
            [int(x) for x in args.critic_readout.split(",")] if args.critic_readout else None,
            args.init_actor,
            args.ent_coef,
            args.target_entropy,
            args.learning_starts,
        )
        if args.save:
            model.save(args.save)
    result["training"] = {"env_steps": steps if not args.load else None, "cpu_seconds": round(train_cpu, 1)}
    print(f"loaded {args.load}" if args.load else f"trained {steps} steps in {train_cpu:.0f} s CPU", flush=True)

    per_strategy: dict[str, dict[str, list[float]]] = {}
    chosen = strategies(model, n_outcomes)
    if args.other_model:  # e.g. the clone before RL: paired policy-minus-other_model differences on the same SCMs
        other = SAC.load(args.other_model)
        chosen["other_model"] = lambda env, obs, rng: design_action(other.policy, obs, deterministic=True)
    selected = args.strategies.split(",") if args.strategies else list(chosen)
    unknown = sorted(set(selected) - set(chosen))
    if unknown:
        raise SystemExit(f"unknown strategies {unknown}; choose from {list(chosen)}")
    for name in selected:
        strategy = chosen[name]
        n = n_ig if name == "info_gain" else n_eval
        per_strategy[name] = run_episodes(strategy, {}, n, args.eval_seed)
        result[name] = {key: ci(values) for key, values in per_strategy[name].items()}
        print(name, {k: v["mean"] for k, v in result[name].items()}, flush=True)
    result["paired"] = {}
    for policy_name in [name for name in per_strategy if name.startswith("policy")]:
        for name, values in per_strategy.items():
            if name.startswith("policy"):
                continue
            n = len(values["return"])
            result["paired"][f"{policy_name}_minus_{name}"] = {
                key: ci((np.array(per_strategy[policy_name][key][:n]) - np.array(values[key])).tolist())
                for key in ("return", "f1")
            }

    shifted = {
        "d12": {"n_variables": 12},
        "scale_free": {"graph_prior": "sf"},
        "gumbel": {"noise": "gumbel"},
        "weight_mean_0.1": {"weight_mean": 0.1},
        "shift_interventions": {"intervention": "shift"},
    }
    if args.in_distribution_only:
        result["wall_seconds"] = round(time.time() - t0, 1)
        result["cpu_seconds"] = round(time.process_time() - cpu0, 1)
        print(json.dumps(result))
        return
    result["zero_shot"] = {}
    zero_shot = [name for name in ("policy", "policy_stochastic", "random_random", "observational") if name in selected]
    if args.zero_shot:
        shifted = {name: shifted[name] for name in args.zero_shot.split(",")}
    for setting, kwargs in shifted.items():
        runs = {name: run_episodes(chosen[name], kwargs, n_shift, args.eval_seed) for name in zero_shot}
        block: dict[str, Any] = {
            name: {key: ci(values[key]) for key in ("return", "f1")} for name, values in runs.items()
        }
        for name in [name for name in runs if name.startswith("policy")]:
            if "random_random" in runs:
                block[f"{name}_minus_random_random"] = {
                    key: ci((np.array(runs[name][key]) - np.array(runs["random_random"][key])).tolist())
                    for key in ("return", "f1")
                }
        result["zero_shot"][setting] = block
        print(setting, {name: values["return"]["mean"] for name, values in block.items()}, flush=True)

    if not args.no_chooser_loop:
        result["info_gain_vs_uniform"] = ig_vs_uniform(n_beyond, n_outcomes)
        print("info gain vs uniform", result["info_gain_vs_uniform"]["mean_f1_gain_per_step"], flush=True)
    result["quick"] = quick
    result["wall_seconds"] = round(time.time() - t0, 1)
    result["cpu_seconds"] = round(time.process_time() - cpu0, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
