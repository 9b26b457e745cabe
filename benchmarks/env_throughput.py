"""FaultAlarmRL-v0 throughput, scale and policy statistics, as ratios to an earlier implementation.

Sections (all speeds in CPU time, ``time.process_time``):

1. policies: steps/s of one env on the default network for four policies (do nothing, uniform random
   over all 900 actions, random over active alarms, the root-cause oracle), this implementation and
   the baseline interleaved episode block by episode block (A/B/A/B), and their ratio; this env's
   episode statistics next to the authors' simulator (shared/reference/fault_alarm_rl.md).
2. sizes: build time (model, env and first reset), memory (tracemalloc peak during the build, and what
   stays allocated) and steps/s under random-over-active at 50, 500 and 5,000 devices
   (``AlarmModel.default(n_devices=...)``); the baseline where it builds in reasonable time, stepping
   interleaved with this implementation in blocks of 500 steps.
3. vectorised: steps/s of a DummyVecEnv / SubprocVecEnv set (this implementation only).
4. thp: THP's F1 on a simulator log and on a historical-style log (``density=3``, integer timestamps).

The baseline is an earlier ``sb3_causal_envs`` copied at run time, from git (``--baseline git:REF``,
default ``git:73479ff``: main before issue 13) or from a package folder, and imported under another
module name; no copy is kept. Both implementations run the same ``AlarmModel`` parameters. Ends with
one JSON line.

    python benchmarks/env_throughput.py [--quick] [--episodes 100] [--baseline git:73479ff] [--policies-only]
    python benchmarks/env_throughput.py --identical 150 --baseline git:b6ccc6d  # same seeded episodes?
    python benchmarks/env_throughput.py --profile nothing --episodes 300 --baseline git:b6ccc6d  # where time goes
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

import sb3_causal  # noqa: F401  (registers the envs)
from sb3_causal.discovery.initial import initial_graph
from sb3_causal_envs import AlarmModel, FaultAlarmEnv

POLICIES = ("nothing", "uniform", "active", "oracle")
# The authors' simulator on their own parameters (shared/reference/fault_alarm_rl.md):
# mean episode length and mean return per policy.
AUTHORS = {"nothing": (54.4, -19.8), "uniform": (60.4, -22.9), "active": (68.7, -34.8), "oracle": (8.0, 1.1)}
REPO = Path(__file__).resolve().parents[1]
BASELINE_PACKAGE = "_baseline_sb3_causal_envs"


def load_baseline(spec: str) -> tuple[ModuleType, ModuleType]:
    """Import an earlier ``sb3_causal_envs`` (``git:REF`` or a package folder) under another name;
    return its ``fault_alarm`` and ``alarm_model`` modules."""
    root = Path(tempfile.mkdtemp(prefix="sb3c_env_baseline_"))
    package = root / BASELINE_PACKAGE
    if spec.startswith("git:"):
        ref = spec[4:]
        listing = ["git", "-C", str(REPO), "ls-tree", "-r", "--name-only", ref, "envs/sb3_causal_envs"]
        found = subprocess.run(listing, capture_output=True, text=True)
        files = found.stdout.split()
        if found.returncode or not files:
            raise ValueError(
                f"baseline {spec!r}: no envs/sb3_causal_envs at git ref {ref!r} in {REPO} "
                f"({found.stderr.strip() or 'empty'}); pass --baseline git:REF or a package folder"
            )
        sources = {
            Path(f).relative_to("envs/sb3_causal_envs"): subprocess.run(
                ["git", "-C", str(REPO), "show", f"{ref}:{f}"], capture_output=True, check=True
            ).stdout
            for f in files
        }
    else:
        folder = Path(spec)
        if not (folder / "fault_alarm.py").is_file():
            raise ValueError(f"{spec!r} is not an sb3_causal_envs package folder (no fault_alarm.py)")
        sources = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    for rel, data in sources.items():
        if rel.suffix == ".py":
            data = data.replace(b"sb3_causal_envs", BASELINE_PACKAGE.encode())
        (package / rel).parent.mkdir(parents=True, exist_ok=True)
        (package / rel).write_bytes(data)
    (package / "__init__.py").write_text("")  # no env registration: only the two modules are used
    sys.path.insert(0, str(root))
    return (
        importlib.import_module(f"{BASELINE_PACKAGE}.fault_alarm"),
        importlib.import_module(f"{BASELINE_PACKAGE}.alarm_model"),
    )


def make_env(impl: tuple[ModuleType, ModuleType] | None, model: AlarmModel) -> Any:
    """This implementation's env (``impl=None``) or the baseline's, on the same model parameters."""
    if impl is None:
        return FaultAlarmEnv(model=model)
    fault_alarm, alarm_model = impl
    return fault_alarm.FaultAlarmEnv(model=alarm_model.AlarmModel.from_dict(model.to_dict()))


def choose(policy: str, env: Any, rng: np.random.Generator) -> int:
    if policy == "oracle":
        return env.oracle_action()
    if policy == "uniform":
        return int(rng.integers(env.action_space.n))
    mask = env.action_masks()
    if policy == "active":
        active = mask.nonzero()[0]
        return int(active[rng.integers(active.size)])  # rng.choice(active)'s draw, without its ~15 us of overhead
    return int(mask.argmin())  # "nothing": treat a pair with no alarm


def run_episodes(env: Any, policy: str, seeds: range) -> dict[str, Any]:
    """Play one episode per seed; CPU seconds, steps and per-episode statistics."""
    rng = np.random.default_rng(seeds.start)
    lengths, returns, ends = [], [], []
    steps = 0
    start = time.process_time()
    for seed in seeds:
        env.reset(seed=seed)
        done, total, n = False, 0.0, 0
        while not done:
            _, r, term, trunc, info = env.step(choose(policy, env, rng))
            total, n, done = total + r, n + 1, term or trunc
        steps += n
        lengths.append(n)
        returns.append(total)
        ends.append("cleared" if info["alarms"] == 0 else "alarm_cap" if term else "truncated")
    seconds = time.process_time() - start
    return {"seconds": seconds, "steps": steps, "lengths": lengths, "returns": returns, "ends": ends}


def policies_section(baseline: tuple[ModuleType, ModuleType], episodes: int, block: int, seed: int) -> dict:
    """Both implementations on the same episodes, interleaved block by block (order alternating)."""
    model = AlarmModel.default(0)
    envs = {"new": make_env(None, model), "baseline": make_env(baseline, model)}
    out: dict[str, dict[str, Any]] = {}
    print(f"{'policy':<8} {'new st/s':>9} {'base st/s':>9} {'ratio':>6} {'length':>15} {'return':>17} ends (new)")
    for policy in POLICIES:
        seconds = {"new": 0.0, "baseline": 0.0}
        steps = {"new": 0, "baseline": 0}
        lengths, returns, ends = [], [], []
        for b, lo in enumerate(range(0, episodes, block)):
            seeds = range(seed + lo, seed + min(lo + block, episodes))
            for name in ("new", "baseline") if b % 2 == 0 else ("baseline", "new"):
                r = run_episodes(envs[name], policy, seeds)
                seconds[name] += r["seconds"]
                steps[name] += r["steps"]
                if name == "new":
                    lengths += r["lengths"]
                    returns += r["returns"]
                    ends += r["ends"]
        sps = {name: steps[name] / seconds[name] for name in seconds}
        share = {k: ends.count(k) / len(ends) for k in ("cleared", "alarm_cap", "truncated")}
        ref_len, ref_ret = AUTHORS[policy]
        out[policy] = {
            "steps_per_s": sps["new"],
            "baseline_steps_per_s": sps["baseline"],
            "ratio": sps["new"] / sps["baseline"],
            "mean_length": float(np.mean(lengths)),
            "sem_length": float(np.std(lengths) / np.sqrt(len(lengths))),
            "mean_return": float(np.mean(returns)),
            "std_return": float(np.std(returns)),
            "authors_length": ref_len,
            "authors_return": ref_ret,
            **{f"end_{k}": v for k, v in share.items()},
        }
        o = out[policy]
        print(
            f"{policy:<8} {sps['new']:>9.0f} {sps['baseline']:>9.0f} {o['ratio']:>6.2f} "
            f"{o['mean_length']:>6.1f} [{ref_len:>5.1f}] {o['mean_return']:>7.2f} [{ref_ret:>6.1f}] "
            f"cleared {share['cleared']:.2f} cap {share['alarm_cap']:.2f} limit {share['truncated']:.2f}",
            flush=True,
        )
    return out


def episodes_digest(env: Any, policy: str, n_episodes: int) -> str:
    """SHA-256 (first 12 hex digits) of seeded episodes 0..n-1 under ``policy``: every observation,
    reward, end flag, info and action mask."""
    digest = hashlib.sha256()
    rng = np.random.default_rng(0)
    for seed in range(n_episodes):
        obs, info = env.reset(seed=seed)
        digest.update(obs.tobytes() + repr(sorted(info.items())).encode())
        done = False
        while not done:
            obs, reward, term, trunc, info = env.step(choose(policy, env, rng))
            digest.update(obs.tobytes() + repr((reward, term, trunc, sorted(info.items()))).encode())
            digest.update(env.action_masks().tobytes())
            done = term or trunc
    return digest.hexdigest()[:12]


def identical_section(baseline: tuple[ModuleType, ModuleType], n_episodes: int) -> dict[str, bool]:
    """Whether both implementations play the same seeded episodes, per policy, on the default network and
    with ``pair_cap=2`` (the cap binds often), in both observation modes."""
    fault_alarm, alarm_model = baseline
    out = {}
    for name, overrides in (("default", {}), ("pair_cap2", {"pair_cap": 2})):
        model = AlarmModel.default(0, **overrides)
        for obs_mode in ("age", "absolute_time"):
            for policy in POLICIES:
                new = FaultAlarmEnv(model=model, obs_mode=obs_mode)
                old = fault_alarm.FaultAlarmEnv(
                    model=alarm_model.AlarmModel.from_dict(model.to_dict()), obs_mode=obs_mode
                )
                same = episodes_digest(new, policy, n_episodes) == episodes_digest(old, policy, n_episodes)
                out[f"{name}/{obs_mode}/{policy}"] = same
                print(f"{name:<9} {obs_mode:<13} {policy:<8} {'identical' if same else 'DIFFERENT'}", flush=True)
    return out


def profile_section(
    impl: tuple[ModuleType, ModuleType] | None, policy: str, episodes: int, interval: float = 0.001
) -> dict[str, float]:
    """Where a policy's episodes spend their CPU time: the stack is sampled every ``interval`` CPU seconds
    (SIGPROF) and each simulator/env function on it counted once (inclusive shares; POSIX only)."""
    import signal
    from collections import Counter

    env = make_env(impl, AlarmModel.default(0))
    source = Path(sys.modules[type(env).__module__].__file__).resolve()
    hits: Counter[str] = Counter()
    samples = 0

    def sample(signum: int, frame: Any) -> None:
        nonlocal samples
        samples += 1
        seen = set()
        while frame is not None:
            if Path(frame.f_code.co_filename).resolve() == source and frame.f_code.co_name not in seen:
                seen.add(frame.f_code.co_name)
                hits[frame.f_code.co_name] += 1
            frame = frame.f_back

    previous = signal.signal(signal.SIGPROF, sample)
    signal.setitimer(signal.ITIMER_PROF, interval, interval)
    try:
        run_episodes(env, policy, range(episodes))
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, previous)
    shares = {name: count / max(samples, 1) for name, count in hits.most_common()}
    print(f"{samples} samples; inclusive share of CPU time per function of {source.name}:")
    for name, share in shares.items():
        if share >= 0.01:
            print(f"  {100 * share:5.1f}% {name}")
    return shares


def build(impl: tuple[ModuleType, ModuleType] | None, n_devices: int) -> tuple[Any, float]:
    """Model, env and first reset; CPU seconds."""
    start = time.process_time()
    env = make_env(impl, AlarmModel.default(0, n_devices=n_devices))
    env.reset(seed=0)
    return env, time.process_time() - start


def size_build(impl: tuple[ModuleType, ModuleType] | None, n_devices: int) -> tuple[Any, dict[str, float]]:
    """Build an env of ``n_devices``: memory (tracemalloc peak during a build, and what stays) and CPU
    seconds (a second build, without tracemalloc's overhead)."""
    tracemalloc.start()
    env, _ = build(impl, n_devices)
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del env
    env, build_s = build(impl, n_devices)
    return env, {"build_s": build_s, "peak_mb": peak / 1e6, "retained_mb": retained / 1e6}


def step_block(env: Any, rng: np.random.Generator, n_steps: int) -> float:
    """CPU seconds of ``n_steps`` steps under random-over-active (resetting at episode ends)."""
    start = time.process_time()
    for _ in range(n_steps):
        _, _, term, trunc, _ = env.step(choose("active", env, rng))
        if term or trunc:
            env.reset()
    return time.process_time() - start


def sizes_section(
    baseline: tuple[ModuleType, ModuleType], sizes: list[int], baseline_max: int, n_steps: int, block: int = 500
) -> dict:
    """Per size: build time and memory of each implementation, then steps/s with the two stepping in
    interleaved blocks of ``block`` steps (order alternating)."""
    out: dict[str, dict[str, Any]] = {}
    print(f"{'devices':>7} {'impl':<8} {'build s':>8} {'peak MB':>8} {'kept MB':>8} {'steps/s':>8}")
    for n in sizes:
        impls: dict[str, tuple[ModuleType, ModuleType] | None] = {"new": None}
        if n <= baseline_max:
            impls["baseline"] = baseline
        envs, rows = {}, {}
        for name, impl in impls.items():
            envs[name], rows[name] = size_build(impl, n)
        rngs = {name: np.random.default_rng(0) for name in impls}
        seconds = dict.fromkeys(impls, 0.0)
        n_blocks = max(1, n_steps // block)
        for b in range(n_blocks):
            for name in list(impls) if b % 2 == 0 else list(impls)[::-1]:
                seconds[name] += step_block(envs[name], rngs[name], block)
        for name, r in rows.items():
            r["steps_per_s"] = n_blocks * block / seconds[name]
            print(
                f"{n:>7} {name:<8} {r['build_s']:>8.2f} {r['peak_mb']:>8.1f} {r['retained_mb']:>8.1f} "
                f"{r['steps_per_s']:>8.0f}",
                flush=True,
            )
        if "baseline" in rows:
            rows["build_speedup"] = rows["baseline"]["build_s"] / rows["new"]["build_s"]
            rows["step_ratio"] = rows["new"]["steps_per_s"] / rows["baseline"]["steps_per_s"]
            print(f"{n:>7} ratio    steps/s new / baseline {rows['step_ratio']:.2f}", flush=True)
        out[str(n)] = rows
    return out


def vectorised(policy: str, n_envs: int, n_steps: int, seed: int, subproc: bool) -> float:
    """Steps/s (wall clock: the work spans processes) of a VecEnv set under ``policy``."""
    vec_cls = SubprocVecEnv if subproc else DummyVecEnv
    venv = make_vec_env(
        "FaultAlarmRL-v0", n_envs=n_envs, seed=seed, vec_env_cls=vec_cls, env_kwargs={"render_mode": None}
    )
    rng = np.random.default_rng(seed)
    venv.reset()
    start = time.perf_counter()
    for _ in range(n_steps // n_envs):
        if policy == "oracle":
            actions = np.array(venv.env_method("oracle_action"))
        else:
            masks = np.stack(venv.env_method("action_masks"))
            actions = np.array([rng.choice(np.flatnonzero(m)) for m in masks])
        venv.step(actions)
    seconds = time.perf_counter() - start
    venv.close()
    return (n_steps // n_envs) * n_envs / seconds


def thp_section(model_seeds: list[int], log_seeds: list[int], n_events: int) -> dict:
    """THP (library defaults) on a simulator log and on a historical-style log of the same events."""
    styles = {"simulator": {}, "historical": {"density": 3.0, "time_resolution": 1.0}}
    scores: dict[str, list[dict[str, float]]] = {name: [] for name in styles}
    for model_seed in model_seeds:
        env = FaultAlarmEnv(model_seed=model_seed)
        truth = env.causal_graph
        for log_seed in log_seeds:
            for name, options in styles.items():
                log = env.record_alarm_log(n_events, seed=log_seed, **options)
                start = time.process_time()
                graph = initial_graph("thp", list(env.model.type_names), alarm_log=log)
                metrics = graph.compare(truth).as_dict()
                metrics["seconds"] = time.process_time() - start
                metrics["tied_gaps"] = float(np.mean(np.diff(log.times) == 0))
                scores[name].append(metrics)
    out = {}
    for name, runs in scores.items():
        mean = {k: float(np.mean([r[k] for r in runs])) for k in ("f1", "precision", "recall", "seconds", "tied_gaps")}
        mean["f1_std"] = float(np.std([r["f1"] for r in runs]))
        out[name] = mean
        print(
            f"THP on {name:<10} log: F1 {mean['f1']:.3f} +- {mean['f1_std']:.3f}  precision {mean['precision']:.3f}  "
            f"recall {mean['recall']:.3f}  tied gaps {mean['tied_gaps']:.2f}  {mean['seconds']:.2f} s/fit",
            flush=True,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few episodes, sizes 50 and 500, one THP log")
    parser.add_argument("--episodes", type=int, default=100, help="episodes per policy (single env)")
    parser.add_argument("--block", type=int, default=10, help="episodes per interleaved A/B block")
    parser.add_argument("--baseline", default="git:73479ff", help="git:REF or an sb3_causal_envs folder")
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500, 5000], help="devices per size row")
    parser.add_argument("--baseline-max-devices", type=int, default=500, help="largest size run on the baseline")
    parser.add_argument("--size-steps", type=int, default=3000, help="steps per size row")
    parser.add_argument("--n-envs", type=int, default=8, help="envs in the vectorised set")
    parser.add_argument("--vec-steps", type=int, default=8000, help="total steps for each vectorised run")
    parser.add_argument("--thp-events", type=int, default=2000, help="events per THP log")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--policies-only", action="store_true", help="only the policies section (speed A/B)")
    parser.add_argument(
        "--identical",
        type=int,
        default=0,
        metavar="N",
        help="only check that both implementations play the same N seeded episodes per policy and setting",
    )
    parser.add_argument(
        "--profile",
        choices=POLICIES,
        help="only profile this policy's episodes (--episodes of them), this implementation and the baseline",
    )
    args = parser.parse_args()
    if args.quick:
        args.episodes, args.block = min(args.episodes, 10), min(args.block, 5)
        args.sizes, args.baseline_max_devices, args.size_steps = [50, 500], 50, 500
        args.vec_steps = min(args.vec_steps, 800)
    baseline = load_baseline(args.baseline)
    if args.profile:
        result = {}
        for name, impl in (("new", None), ("baseline", baseline)):
            print(f"== profile of {args.profile}, {args.episodes} episodes, {name} ==")
            result[name] = profile_section(impl, args.profile, args.episodes)
        print(json.dumps({"benchmark": "env_throughput", "baseline": args.baseline, "profile": result}))
        return
    if args.identical:
        print(f"== same seeded episodes as {args.baseline}? {args.identical} per policy and setting ==")
        same = identical_section(baseline, args.identical)
        print(json.dumps({"benchmark": "env_throughput", "baseline": args.baseline, "identical": same}))
        if not all(same.values()):
            sys.exit(1)
        return

    print(f"== policies, default network, {args.episodes} episodes each; [authors' simulator] ==")
    policies = policies_section(baseline, args.episodes, args.block, args.seed)
    summary = {
        "benchmark": "env_throughput",
        "episodes": args.episodes,
        "seed": args.seed,
        "baseline": args.baseline,
        "python": platform.python_version(),
        "single": policies,
    }
    if args.policies_only:
        print(json.dumps(summary))
        return
    print("== sizes (random over active alarms) ==")
    sizes = sizes_section(baseline, args.sizes, args.baseline_max_devices, args.size_steps)
    vec = {
        f"dummy{args.n_envs}_active": vectorised("active", args.n_envs, args.vec_steps, args.seed, subproc=False),
        f"dummy{args.n_envs}_oracle": vectorised("oracle", args.n_envs, args.vec_steps, args.seed, subproc=False),
        "subproc2_active": vectorised("active", 2, args.vec_steps, args.seed, subproc=True),
    }
    for name, sps in vec.items():
        print(f"vectorised {name:<16} {sps:>9.0f} steps/s (wall clock)")
    thp = thp_section([2] if args.quick else [2, 3, 4], [0] if args.quick else [0, 1, 2], args.thp_events)
    print(json.dumps({**summary, "sizes": sizes, "vectorised_steps_per_s": vec, "thp": thp}))


if __name__ == "__main__":
    main()
