"""The rl-zoo3 launcher: registration, shipped YAML, short trainings of each algorithm, mask-aware evaluation,
a two-trial Optuna study on SQLite, the evaluate entry point and clear errors."""

from __future__ import annotations

import argparse
import json
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


def test_register_fills_the_zoo_tables_in_place() -> None:
    zoo.register()
    zoo.register()  # idempotent
    assert rl_zoo3.ALGOS is rl_zoo3.exp_manager.ALGOS is rl_zoo3.train.ALGOS is rl_zoo3.enjoy.ALGOS
    for name, cls in zoo.ZOO_ALGOS.items():
        assert rl_zoo3.ALGOS[name] is cls
        assert name in rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER
        assert name in rl_zoo3.hyperparams_opt.HYPERPARAMS_CONVERTER
    assert rl_zoo3.ALGOS["ppo"] is PPO  # the zoo's own algorithms stay
    assert rl_zoo3.exp_manager.EvalCallback is zoo.ZooEvalCallback
    assert rl_zoo3.exp_manager.TrialEvalCallback is zoo.ZooTrialEvalCallback
    assert rl_zoo3.train.ExperimentManager is zoo.CausalExperimentManager


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


@pytest.mark.parametrize("algo", list(SHORT_RUNS))
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
