"""The rl-zoo3 launcher: registration without patches, shipped YAML, short trainings of each algorithm (one in the
default run, the others slow), mask-aware evaluation in training and in Optuna trials, Optuna studies (two workers on
one journal file; SQLite and trial reload, slow), the evaluate entry point and clear one-line errors."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import yaml

pytest.importorskip("rl_zoo3")
optuna = pytest.importorskip("optuna")

import rl_zoo3  # noqa: E402
import rl_zoo3.enjoy  # noqa: E402
import rl_zoo3.exp_manager  # noqa: E402
import rl_zoo3.hyperparams_opt  # noqa: E402
import rl_zoo3.train  # noqa: E402
from sb3_contrib import MaskablePPO  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402

from sb3_causal import zoo  # noqa: E402
from sb3_causal.algos import RecordTerminalActionMask  # noqa: E402
from sb3_causal.graph import CausalGraph  # noqa: E402
from sb3_causal.zoo import manager as zoo_manager  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

ENV = "FaultAlarmRL-v0"

# name -> (env, -n, overrides that make a few hundred steps exercise training, a value the YAML sets)
SHORT_RUNS: dict[str, tuple[str, int, list[str], tuple[str, Any]]] = {
    "causal_ppo": (ENV, 256, [], ("eta", 0.3)),
    "ppo_mask": (ENV, 512, [], ("n_steps", 512)),
    "causal_dqn": (ENV, 256, ["learning_starts:64"], ("eta", 0.2)),
    "causal_d3qn": (ENV, 256, ["learning_starts:64"], ("policy", "DuelingMlpPolicy")),
    "maskable_dqn": (ENV, 256, ["learning_starts:64"], ("train_freq", 5)),
    "cmbpo": (
        "SpuriousCorrelation-v0",
        300,
        [
            "learning_starts:100",
            "structure_update_freq:150",
            "model_train_freq:100",
            "rollout_batch_size:64",
            "gradient_steps:1",
            "rollout_schedule:[100,300,1,2]",
        ],
        ("structure", "pc"),
    ),
    "mbpo": (
        "SpuriousCorrelation-v0",
        300,
        ["learning_starts:100", "model_train_freq:100", "rollout_batch_size:64", "gradient_steps:1"],
        ("real_ratio", 0.05),
    ),
}


def run_dir(logs: Path, algo: str, env: str, exp_id: int = 1) -> Path:
    return logs / algo / f"{env}_{exp_id}"


def test_register_fills_the_zoo_tables_and_rebinds_nothing() -> None:
    zoo_names = (rl_zoo3.exp_manager.EvalCallback, rl_zoo3.exp_manager.TrialEvalCallback)
    manager_class = rl_zoo3.train.ExperimentManager
    zoo.register()
    zoo.register()  # idempotent
    assert rl_zoo3.ALGOS is rl_zoo3.exp_manager.ALGOS is rl_zoo3.train.ALGOS is rl_zoo3.enjoy.ALGOS
    for name, cls in zoo.ZOO_ALGOS.items():
        assert rl_zoo3.ALGOS[name] is cls
        assert name in rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER
        assert name in rl_zoo3.hyperparams_opt.HYPERPARAMS_CONVERTER
    assert rl_zoo3.ALGOS["ppo"] is PPO  # the zoo's own algorithms stay
    # no global patch: the zoo's evaluation callbacks and manager are the zoo's
    assert (rl_zoo3.exp_manager.EvalCallback, rl_zoo3.exp_manager.TrialEvalCallback) == zoo_names
    assert rl_zoo3.exp_manager.EvalCallback.__module__.startswith("stable_baselines3")
    assert rl_zoo3.train.ExperimentManager is manager_class is rl_zoo3.exp_manager.ExperimentManager


def test_train_uses_our_manager_for_the_call_only(tmp_path: Path) -> None:
    conf = tmp_path / "bad.yml"
    conf.write_text(f"{ENV}:\n  n_timesteps: 100\n  policy: MlpPolicy\n  etaa: 0.1\n")
    argv = list(sys.argv)
    with pytest.raises(zoo.HyperparameterError, match="etaa"):  # only CausalExperimentManager checks keys
        zoo.train(["--algo", "causal_ppo", "--env", ENV, "--conf-file", str(conf), "-f", str(tmp_path / "logs")])
    assert rl_zoo3.train.ExperimentManager is rl_zoo3.exp_manager.ExperimentManager
    assert sys.argv == argv


def test_shipped_yaml_covers_every_algorithm_and_has_valid_keys() -> None:
    zoo.register()
    for algo in zoo.ZOO_ALGOS:
        assert (zoo.HYPERPARAMS_DIR / f"{algo}.yml").is_file(), f"no shipped YAML for {algo}"
    files = sorted(zoo.HYPERPARAMS_DIR.glob("*.yml"))
    for path in files:
        algo = path.stem
        assert algo in rl_zoo3.ALGOS, f"{path.name} is for no registered algorithm"
        for env_id, section in yaml.safe_load(path.read_text()).items():
            assert env_id in gym.registry
            zoo.check_hyperparams(algo, dict(section), source=str(path))
    fault_alarm = yaml.safe_load((zoo.HYPERPARAMS_DIR / "causal_ppo.yml").read_text())[ENV]
    assert (fault_alarm["learning_rate"], fault_alarm["n_steps"], fault_alarm["batch_size"]) == (3e-4, 256, 64)
    assert (fault_alarm["eta"], fault_alarm["initial_graph"]) == (0.3, "thp")
    dqn = yaml.safe_load((zoo.HYPERPARAMS_DIR / "causal_dqn.yml").read_text())[ENV]
    assert (dqn["buffer_size"], dqn["train_freq"], dqn["learning_starts"], dqn["eta"]) == (100_000, 5, 512, 0.2)


def test_key_check_accepts_every_yaml_the_zoo_ships() -> None:
    """No false alarms: each section of the zoo's own files passes for its algorithm."""
    zoo.register()
    zoo_dir = Path(rl_zoo3.__file__).parent / "hyperparams"
    checked = 0
    for path in sorted(zoo_dir.glob("*.yml")):
        if path.stem not in rl_zoo3.ALGOS:
            continue  # e.g. her.yml: no algorithm of that name
        for env_id, section in (yaml.safe_load(path.read_text()) or {}).items():
            zoo.check_hyperparams(path.stem, dict(section), source=f"{path.name} [{env_id}]")
            checked += 1
    assert checked > 50


def test_default_conf_file() -> None:
    assert zoo.default_conf_file("causal_ppo") == zoo.HYPERPARAMS_DIR / "causal_ppo.yml"
    assert zoo.default_conf_file("ppo", ENV) == zoo.HYPERPARAMS_DIR / "ppo.yml"
    assert zoo.default_conf_file("ppo", "CartPole-v1") is None  # the zoo's own ppo.yml
    assert zoo.default_conf_file("a2c", ENV) is None


def test_unknown_yaml_key_is_a_clear_error(tmp_path: Path) -> None:
    conf = tmp_path / "bad.yml"
    conf.write_text(f"{ENV}:\n  n_timesteps: 100\n  policy: MlpPolicy\n  learning_rte: 0.001\n")
    with pytest.raises(zoo.HyperparameterError, match=r"'learning_rte' \(did you mean 'learning_rate'\?\)") as info:
        zoo.train(["--algo", "causal_ppo", "--env", ENV, "--conf-file", str(conf), "-f", str(tmp_path / "logs")])
    assert "bad.yml" in str(info.value) and "Valid keys" in str(info.value) and "eta" in str(info.value)
    with pytest.raises(zoo.HyperparameterError, match="'k_top'"):  # --hyperparams overrides are checked too
        zoo.train(["--algo", "causal_ppo", "--env", ENV, "-params", "k_top:3", "-f", str(tmp_path / "logs")])
    with pytest.raises(zoo.HyperparameterError, match="set by the zoo launcher"):
        zoo.train(["--algo", "causal_ppo", "--env", ENV, "-params", "seed:3", "-f", str(tmp_path / "logs")])


def test_unknown_algo_env_and_section_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(zoo.ZooUsageError, match="did you mean 'causal_ppo'"):
        zoo.train(["--algo", "causal_pop", "--env", ENV])
    with pytest.raises(zoo.ZooUsageError, match="did you mean 'FaultAlarmRL-v0'"):
        zoo.train(["--algo", "causal_ppo", "--env", "FaultAlarmRL-v1"])
    with pytest.raises(zoo.HyperparameterError, match="no section for CartPole-v1"):
        zoo.train(["--algo", "causal_ppo", "--env", "CartPole-v1", "-f", str(tmp_path / "logs")])


def test_params_errors_name_params_not_the_yaml(tmp_path: Path) -> None:
    args = ["--algo", "causal_ppo", "--env", ENV, "-f", str(tmp_path / "logs")]
    with pytest.raises(zoo.HyperparameterError, match="etaa") as info:
        zoo.train([*args, "-params", "etaa:0.2"])
    assert str(info.value).startswith("-params") and "causal_ppo.yml" not in str(info.value)
    with pytest.raises(zoo.HyperparameterError, match=r"^-params.*graph_update_freq must be an integer.*got 0\.5$"):
        zoo.train([*args, "-params", "graph_update_freq:0.5"])
    conf = tmp_path / "mine.yml"
    conf.write_text(f"{ENV}:\n  n_timesteps: 100\n  policy: MlpPolicy\n  graph_update_freq: 0.5\n")
    with pytest.raises(zoo.HyperparameterError, match=r"mine\.yml \[FaultAlarmRL-v0\].*graph_update_freq.*0\.5"):
        zoo.train([*args, "--conf-file", str(conf)])
    zoo.check_hyperparams("causal_ppo", {"graph_update_freq": 500.0, "n_steps": 256})  # integral floats are ints


def test_conf_file_errors_are_clear(tmp_path: Path) -> None:
    args = ["--algo", "causal_ppo", "--env", ENV, "-f", str(tmp_path / "logs"), "--conf-file"]
    with pytest.raises(zoo.HyperparameterError, match=r"--conf-file .*missing\.yml: no such file"):
        zoo.train([*args, str(tmp_path / "missing.yml")])
    broken = tmp_path / "broken.yml"
    broken.write_text(f"{ENV}:\n  policy: MlpPolicy\n  n_steps: [128\n")
    with pytest.raises(zoo.HyperparameterError, match=r"broken\.yml: invalid YAML \(line \d+, column \d+\)"):
        zoo.train([*args, str(broken)])
    flat = tmp_path / "flat.yml"
    flat.write_text("n_steps: 128\npolicy: MlpPolicy\n")
    with pytest.raises(zoo.HyperparameterError, match="expected a mapping of env ids"):
        zoo.train([*args, str(flat)])


def test_module_main_reports_usage_errors_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sb3_causal.zoo.__main__ import main

    argv = ["python -m sb3_causal.zoo", "--algo", "causal_ppo", "--env", ENV, "--conf-file", str(tmp_path / "x.yml")]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as info:
        main()
    assert str(info.value) == f"error: --conf-file {tmp_path / 'x.yml'}: no such file"


def test_module_main_without_the_zoo_extra_names_the_install_command() -> None:
    """A base install (no optuna / rl-zoo3): one line naming the extra, no traceback."""
    code = (
        "import sys, runpy; sys.modules['optuna'] = sys.modules['rl_zoo3'] = None; "
        "sys.argv = ['python -m sb3_causal.zoo', '--algo', 'causal_ppo']; "
        "runpy.run_module('sb3_causal.zoo', run_name='__main__', alter_sys=True)"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "envs"), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        'error: the zoo launcher needs the zoo extra (rl-zoo3, optuna missing): pip install "sb3-causal[zoo]"'
    ]


def _manager(tmp_path: Path, algo: str, **kwargs: Any) -> zoo.CausalExperimentManager:
    zoo.register()
    return zoo.CausalExperimentManager(
        args=argparse.Namespace(),
        algo=algo,
        env_id=ENV,
        log_folder=str(tmp_path),
        config=str(zoo.HYPERPARAMS_DIR / f"{algo}.yml"),
        **kwargs,
    )


def test_create_callbacks_evaluates_with_masks_and_keeps_the_zoo_callbacks(tmp_path: Path) -> None:
    small = {"n_steps": 64, "batch_size": 64, "n_epochs": 1}
    manager = _manager(tmp_path, "ppo_mask", n_timesteps=64, eval_freq=50, save_freq=50, n_eval_episodes=1)
    manager.custom_hyperparams = small
    model, _ = manager.setup_experiment()
    evaluations = [c for c in manager.callbacks if isinstance(c, zoo.ZooEvalCallback)]
    assert len(evaluations) == 1
    kinds = sorted(type(c).__name__ for c in manager.callbacks)
    assert kinds == ["CheckpointCallback", "ZooEvalCallback"]  # the zoo's checkpoints stay, no second evaluation
    assert evaluations[0].eval_freq == 50 and evaluations[0].n_eval_episodes == 1
    model.learn(64, callback=manager.callbacks)
    assert evaluations[0].use_masking and np.isfinite(evaluations[0].last_mean_reward)


def test_optuna_objective_evaluates_with_masks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[zoo.ZooTrialEvalCallback] = []

    class Recorded(zoo.ZooTrialEvalCallback):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(zoo_manager, "ZooTrialEvalCallback", Recorded)
    manager = _manager(
        tmp_path, "ppo_mask", n_timesteps=128, optimize_hyperparameters=True, n_evaluations=1, n_eval_episodes=2
    )
    assert manager.setup_experiment() is None
    study = optuna.create_study(direction="maximize")
    small = {"learning_rate": 3e-4, "n_steps": 128, "batch_size": 64, "n_epochs": 5, "gamma": 0.99}
    study.enqueue_trial({**small, "gae_lambda": 0.95, "clip_range": 0.2, "ent_coef": 1e-4, "net_arch": "small"})
    value = manager.objective(study.ask())
    assert len(built) == 1 and built[0].use_masking and value == built[0].last_mean_reward
    assert built[0].eval_idx == 1 and np.isfinite(value)
    # a model without masks: the zoo's own objective, unchanged
    monkeypatch.setattr(rl_zoo3.exp_manager.ExperimentManager, "objective", lambda self, trial: -7.0)
    assert _manager(tmp_path, "ppo").objective(study.ask()) == -7.0
    assert len(built) == 1


@pytest.mark.parametrize(
    "algo", [a if a == "causal_ppo" else pytest.param(a, marks=pytest.mark.slow) for a in SHORT_RUNS]
)
def test_short_training_from_shipped_yaml(algo: str, tmp_path: Path) -> None:
    env_id, steps, overrides, (key, value) = SHORT_RUNS[algo]
    logs = tmp_path / "logs"
    args = ["--algo", algo, "--env", env_id, "-n", str(steps), "--seed", "0", "-f", str(logs)]
    args += ["--eval-freq", str(steps), "--eval-episodes", "1", "--num-threads", "1", "--verbose", "0"]
    if overrides:
        args += ["-params", *overrides]
    zoo.train(args)
    run = run_dir(logs, algo, env_id)
    assert (run / f"{env_id}.zip").is_file()
    config = dict(yaml.load((run / env_id / "config.yml").read_text(), Loader=yaml.UnsafeLoader))
    assert config[key] == value  # read from sb3_causal/hyperparams/<algo>.yml
    assert (run / env_id / "args.yml").is_file()
    evaluations = np.load(run / "evaluations.npz")
    assert evaluations["timesteps"].tolist() == [steps]
    assert np.isfinite(evaluations["results"]).all()
    off_policy = ("causal_dqn", "causal_d3qn", "maskable_dqn", "cmbpo", "mbpo")
    model = zoo.ZOO_ALGOS[algo].load(run / f"{env_id}.zip", buffer_size=1) if algo in off_policy else None
    if algo == "cmbpo":
        assert isinstance(model.causal_graph, CausalGraph)
        assert model.structure_history, "C-MBPO learned no structure in the run"
    if algo in ("causal_dqn", "causal_d3qn", "maskable_dqn"):
        assert model.num_timesteps >= steps and model._n_updates > 0  # train_freq 5 rounds up
    if algo == "causal_ppo":  # the evaluate entry point finds the run and scores it with masks
        result = zoo.evaluate(["--algo", algo, "--env", env_id, "-f", str(logs), "--n-episodes", "1", "--json"])
        assert result["masked"] and result["n_episodes"] == 1 and result["model_path"] == str(run / f"{env_id}.zip")


def test_masked_dqn_envs_record_terminal_masks(tmp_path: Path) -> None:
    zoo.register()
    manager = zoo.CausalExperimentManager(
        args=argparse.Namespace(),
        algo="maskable_dqn",
        env_id=ENV,
        log_folder=str(tmp_path),
        n_timesteps=10,
        eval_freq=-1,
        config=str(zoo.HYPERPARAMS_DIR / "maskable_dqn.yml"),
    )
    hyperparams, _ = manager.read_hyperparameters()
    _, env_wrapper, _, _ = manager._preprocess_hyperparams(hyperparams)
    wrapped = env_wrapper(gym.make(ENV))
    assert isinstance(wrapped, RecordTerminalActionMask)


class InvalidActionCounter(gym.Wrapper):
    """Counts actions outside the env's action mask."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.invalid = 0
        self.actions = 0

    def step(self, action: Any) -> Any:
        mask = self.env.get_wrapper_attr("action_masks")()
        self.actions += 1
        self.invalid += int(not mask[int(action)])
        return self.env.step(action)


@pytest.mark.parametrize("trial", [False, True], ids=["eval", "optuna_trial"])
@pytest.mark.parametrize("algo_class, masked", [(MaskablePPO, True), (PPO, False)])
def test_zoo_eval_callback_evaluates_with_masks_when_the_model_takes_them(
    algo_class: type, masked: bool, trial: bool
) -> None:
    eval_env = make_vec_env(ENV, n_envs=1, seed=1, wrapper_class=InvalidActionCounter)
    if trial:
        optuna_trial = optuna.create_study(direction="maximize").ask()
        callback = zoo.ZooTrialEvalCallback(eval_env, optuna_trial, n_eval_episodes=2, eval_freq=64)
    else:
        callback = zoo.ZooEvalCallback(eval_env, n_eval_episodes=2, eval_freq=64, deterministic=True)
    model = algo_class("MlpPolicy", ENV, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(64, callback=callback)
    counter = eval_env.envs[0].get_wrapper_attr("invalid"), eval_env.envs[0].get_wrapper_attr("actions")
    assert callback.use_masking is masked
    assert counter[1] > 0 and np.isfinite(callback.last_mean_reward)
    if trial:  # the Optuna trial received the evaluation as an intermediate value
        assert optuna_trial.storage.get_trial(optuna_trial._trial_id).intermediate_values == {
            1: callback.last_mean_reward
        }
    if masked:
        assert counter[0] == 0
    else:  # an untrained PPO picks pairs without alarms: what the zoo's plain evaluation would score
        assert counter[0] > 0


def test_uses_action_masks() -> None:
    masked_env = make_vec_env(ENV, n_envs=1)
    plain_env = make_vec_env("SpuriousCorrelation-v0", n_envs=1)
    model = MaskablePPO("MlpPolicy", masked_env, n_steps=32, device="cpu")
    assert zoo.uses_action_masks(model, masked_env)
    assert not zoo.uses_action_masks(PPO("MlpPolicy", masked_env, n_steps=32, device="cpu"), masked_env)
    assert not zoo.uses_action_masks(model, plain_env)


@pytest.mark.slow
def test_optuna_two_trials_sqlite_and_reload_a_trial(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    logs = tmp_path / "logs"
    common = ["--algo", "causal_ppo", "--env", ENV, "-f", str(logs), "--num-threads", "1", "--seed", "0"]
    zoo.train(
        [
            *common,
            "-optimize",
            "--n-trials",
            "2",
            "--storage",
            storage,
            "--study-name",
            "causal_ppo_test",
            "-n",
            "256",
            "--n-evaluations",
            "1",
            "--eval-episodes",
            "2",
            "--sampler",
            "random",
            "--pruner",
            "none",
            "--no-optim-plots",
            "--verbose",
            "0",
            "-params",
            "initial_graph:'random'",
        ]
    )
    study = optuna.load_study(study_name="causal_ppo_test", storage=storage)
    trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trials) == 2
    for trial in trials:
        assert np.isfinite(trial.value)
        assert {"k", "eta", "graph_update_freq", "learning_rate", "n_steps", "net_arch"} <= set(trial.params)
    reports = list((logs / "causal_ppo").glob("report_*.csv"))
    assert reports
    # train with a stored trial's hyperparameters (the zoo's --trial-id; id 0 is ignored by the zoo, use 1)
    trial_args = ["-n", "64", "--eval-freq", "-1", "--storage", storage, "--study-name", "causal_ppo_test"]
    zoo.train([*common, *trial_args, "--trial-id", "1", "--verbose", "0"])
    config = dict(yaml.load((run_dir(logs, "causal_ppo", ENV, 2) / ENV / "config.yml").read_text(), yaml.UnsafeLoader))
    assert config["eta"] == pytest.approx(study.trials[1].params["eta"])
    assert config["k"] == study.trials[1].params["k"]


@pytest.mark.slow
def test_evaluate_reports_returns_of_a_zoo_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = tmp_path / "logs"
    zoo.train(["--algo", "ppo_mask", "--env", ENV, "-n", "512", "--seed", "0", "-f", str(logs), "--verbose", "0"])
    capsys.readouterr()
    result = zoo.evaluate(
        ["--algo", "ppo_mask", "--env", ENV, "-f", str(logs), "--n-episodes", "3", "--no-progress", "--seed", "1"]
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert json.loads(out[-1]) == result
    assert result["masked"] and result["n_episodes"] == 3 and len(result["returns"]) == 3
    assert result["mean_return"] == pytest.approx(np.mean(result["returns"]), abs=1e-3)
    assert result["model_path"].endswith(f"ppo_mask/{ENV}_1/{ENV}.zip")
    with pytest.raises(zoo.ZooUsageError, match="no trained ppo_mask model"):
        zoo.evaluate(["--algo", "ppo_mask", "--env", ENV, "-f", str(tmp_path / "nothing"), "--json"])


# ---------------------------------------------------------------------- distributed tuning on one journal file
JOURNAL_ARGS = ["--algo", "maskable_dqn", "--env", ENV, "-optimize", "--sampler", "random", "--pruner", "none"]
# 64 steps < learning_starts (512): a trial is env steps and one evaluation episode, no gradient step
JOURNAL_ARGS += ["-n", "64", "--n-evaluations", "1", "--eval-episodes", "1", "--no-optim-plots", "--verbose", "0"]


def _journal_worker(storage: str, logs: str, seed: int, n_trials: int) -> None:
    shared = ["--storage", storage, "--study-name", "shared", "--n-trials", str(n_trials)]
    zoo.train([*JOURNAL_ARGS, *shared, "--seed", str(seed), "-f", logs, "--num-threads", "1"])


def _check_journal_study(storage: str, n_expected: int) -> list[optuna.trial.FrozenTrial]:
    backend = optuna.storages.journal.JournalFileBackend(storage)
    study = optuna.load_study(study_name="shared", storage=optuna.storages.JournalStorage(backend))
    trials = study.trials
    assert len(trials) == n_expected  # none lost
    assert sorted(t.number for t in trials) == list(range(n_expected))  # none duplicated
    assert len({t._trial_id for t in trials}) == n_expected
    assert all(t.state == optuna.trial.TrialState.COMPLETE and np.isfinite(t.value) for t in trials)
    return trials


def test_two_workers_share_one_journal_file(tmp_path: Path) -> None:
    """The distributed path: two processes tune one study through one JournalStorage file at the same time."""
    storage = str(tmp_path / "study.log")
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_journal_worker, args=(storage, str(tmp_path / f"logs{i}"), i, 2)) for i in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [w.exitcode for w in workers] == [0, 0]
    trials = _check_journal_study(storage, 4)
    assert {"learning_rate", "train_freq", "net_arch"} <= set(trials[0].params)


@pytest.mark.slow
def test_two_launcher_processes_share_one_journal_file(tmp_path: Path) -> None:
    """The same with two `python -m sb3_causal.zoo` processes (causal_ppo, its own sampler), 3 trials each."""
    storage = str(tmp_path / "study.log")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "envs"), os.environ.get("PYTHONPATH", "")]),
    }
    args = ["--algo", "causal_ppo", "--env", ENV, "-optimize", "--sampler", "random", "--pruner", "none", "-n", "256"]
    args += ["--n-evaluations", "1", "--eval-episodes", "1", "--no-optim-plots", "--verbose", "0", "--num-threads", "1"]
    args += ["--storage", storage, "--study-name", "shared", "--n-trials", "3", "-params", "initial_graph:'random'"]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "sb3_causal.zoo", *args, "--seed", str(i), "-f", str(tmp_path / f"logs{i}")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    errors = [p.communicate(timeout=1200)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], errors
    trials = _check_journal_study(storage, 6)
    assert {"k", "eta", "graph_update_freq"} <= set(trials[0].params)
