"""The ``sb3-causal`` command line: help, graph on saved models, bench, and one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
import tomllib
from stable_baselines3 import PPO

import sb3_causal  # noqa: F401  (registers the envs)
from sb3_causal import CausalGraph, CausalMaskablePPO, cli
from sb3_causal.mbrl import CMBPO

ROOT = Path(__file__).resolve().parents[1]
ENV = "FaultAlarmRL-v0"


@pytest.fixture(scope="module")
def causal_ppo_zip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CausalGraph]:
    """A CausalMaskablePPO trained for 512 steps (one graph update) and saved."""
    model = CausalMaskablePPO("MlpPolicy", ENV, initial_graph="random", graph_update_freq=500, n_steps=256, seed=0)
    model.learn(512)
    path = tmp_path_factory.mktemp("model") / "causal_ppo.zip"
    model.save(path)
    return path, model.causal_graph


def test_console_script_is_declared() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["sb3-causal"] == "sb3_causal.cli:main"


def test_help_of_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    top = capsys.readouterr().out
    assert all(command in top for command in ("train", "evaluate", "graph", "bench"))
    expected_options = {"graph": "--png", "bench": "--list", "train": "--conf-file", "evaluate": "--exp-id"}
    for command, expected in expected_options.items():
        if command in ("train", "evaluate"):
            pytest.importorskip("rl_zoo3")
        with pytest.raises(SystemExit) as info:
            cli.main([command, "--help"])
        assert info.value.code == 0
        assert expected in capsys.readouterr().out


def test_module_entry_point_runs() -> None:
    executable = shutil.which("sb3-causal")
    command = [executable] if executable else [sys.executable, "-m", "sb3_causal.cli"]
    result = subprocess.run([*command, "bench", "--list"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "structure_learning" in result.stdout


def test_graph_of_a_saved_causal_agent(
    causal_ppo_zip: tuple[Path, CausalGraph], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, learned = causal_ppo_zip
    png, dot, saved = tmp_path / "g.png", tmp_path / "g.dot", tmp_path / "g.json"
    args = ["graph", str(path), "--env", ENV, "--png", str(png), "--dot", str(dot), "--save-json", str(saved)]
    assert cli.main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    truth = gym.make(ENV).unwrapped.causal_graph
    metrics = learned.compare(truth)
    assert summary["n_edges"] == learned.n_edges and summary["n_variables"] == 18
    assert summary["f1"] == pytest.approx(metrics.f1) and summary["shd"] == metrics.shd
    assert sorted(map(tuple, summary["edges"])) == sorted(learned.edges)
    assert png.stat().st_size > 0
    n_missing = sum(e not in set(learned.edges) for e in truth.edges)
    assert dot.read_text().startswith("digraph") and dot.read_text().count("->") == learned.n_edges + n_missing
    assert dot.read_text().count('style="dashed"') == n_missing  # with --env the DOT marks the missing edges
    assert CausalGraph.load(saved) == learned
    # text output: one line per edge, marked against the truth, and the metrics
    assert cli.main(["graph", str(saved), "--env", ENV]) == 0
    text = capsys.readouterr().out
    assert text.count(" ok\n") + text.count(" extra\n") == learned.n_edges
    assert f"F1 {metrics.f1:.3f}" in text


def test_graph_of_a_cmbpo_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = gym.make("SpuriousCorrelation-v0")
    truth = env.unwrapped.causal_graph
    model = CMBPO("MlpPolicy", env, structure=truth, seed=0)
    model.save(tmp_path / "cmbpo.zip")
    assert cli.main(["graph", str(tmp_path / "cmbpo.zip"), "--env", "SpuriousCorrelation-v0", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["f1"] == 1.0 and summary["n_edges"] == truth.n_edges


def test_graph_errors_are_one_line(
    causal_ppo_zip: tuple[Path, CausalGraph], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    PPO("MlpPolicy", "CartPole-v1", n_steps=32, batch_size=32).save(tmp_path / "ppo.zip")
    cases = [
        (["graph", str(tmp_path / "missing.zip")], "no such file"),
        (["graph", str(tmp_path / "ppo.zip")], "holds no causal graph"),
        (["graph", str(causal_ppo_zip[0]), "--env", "CartPole-v1"], "does not expose its true graph"),
        (["graph", str(causal_ppo_zip[0]), "--env", "FaultAlarmRL-v9"], "did you mean 'FaultAlarmRL-v0'"),
        (["graph", str(causal_ppo_zip[0]), "--env", "SpuriousCorrelation-v0"], "different variables"),
    ]
    for args, message in cases:
        assert cli.main(args) == 2
        err = capsys.readouterr().err
        assert message in err and err.startswith("sb3-causal graph: error:") and "Traceback" not in err


def test_train_and_evaluate_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("rl_zoo3")
    assert cli.main(["train", "--algo", "causal_pop", "--env", ENV]) == 2
    assert "did you mean 'causal_ppo'" in capsys.readouterr().err
    bad = tmp_path / "bad.yml"
    bad.write_text(f"{ENV}:\n  n_timesteps: 10\n  policy: MlpPolicy\n  etaa: 0.3\n")
    assert cli.main(["train", "--algo", "causal_ppo", "--env", ENV, "-conf", str(bad), "-f", str(tmp_path)]) == 2
    assert "'etaa' (did you mean 'eta'?)" in capsys.readouterr().err
    assert cli.main(["evaluate", "--algo", "causal_ppo", "--env", ENV, "-f", str(tmp_path / "none")]) == 2
    assert "no trained causal_ppo model" in capsys.readouterr().err


def test_bench_runs_a_script_and_keeps_its_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "benchmarks"
    folder.mkdir()
    (folder / "tiny.py").write_text(
        "import json, sys\nprint('working')\nprint(json.dumps({'benchmark': 'tiny', 'args': sys.argv[1:]}))\n"
    )
    (folder / "broken.py").write_text("raise SystemExit(3)\n")
    out_json = tmp_path / "result.json"
    assert cli.main(["bench", "tiny", "--dir", str(folder), "--json-out", str(out_json), "--n", "5"]) == 0
    assert "working" in capsys.readouterr().out
    assert json.loads(out_json.read_text()) == {"benchmark": "tiny", "args": ["--n", "5"]}
    assert cli.main(["bench", "broken", "--dir", str(folder)]) == 3
    assert cli.main(["bench", "tiyn", "--dir", str(folder)]) == 2
    assert "did you mean 'tiny'" in capsys.readouterr().err
    assert cli.main(["bench", "--list"]) == 0  # the repository's benchmarks/
    listed = capsys.readouterr().out
    scripts = [p for p in (ROOT / "benchmarks").glob("*.py") if not p.name.startswith("_")]
    assert scripts and all(p.stem in listed for p in scripts)
    assert "_timing" not in listed  # shared helpers are not benchmarks


@pytest.mark.slow
def test_bench_runs_a_real_benchmark(tmp_path: Path) -> None:
    out_json = tmp_path / "env.json"
    args = ["bench", "env_throughput", "--json-out", str(out_json), "--episodes", "2", "--n-envs", "2"]
    assert cli.main([*args, "--vec-steps", "200"]) == 0
    assert json.loads(out_json.read_text())["benchmark"] == "env_throughput"


def test_base_install_covers_the_readme_snippet() -> None:
    """`learn(..., progress_bar=True)` needs tqdm and rich, `CausalGraph.plot` matplotlib: all core dependencies."""
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {d.split(">")[0].split("=")[0].split("<")[0].strip().lower() for d in dependencies}
    assert {"tqdm", "rich", "matplotlib"} <= names


def test_graph_png_into_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    graph = CausalGraph(["a", "b", "c"], [("a", "b"), ("b", "c")])
    graph.save(tmp_path / "g.json")
    png, dot = tmp_path / "new" / "figures" / "g.png", tmp_path / "other" / "g.dot"
    assert cli.main(["graph", str(tmp_path / "g.json"), "--png", str(png), "--dot", str(dot)]) == 0
    assert png.stat().st_size > 0 and dot.read_text().count("->") == 2
    assert f"wrote {png}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"variables": 5, "edges": []}, "'variables' must be a list of variable names"),
        ({"variables": ["a", ["b"]], "edges": []}, "'variables' must be a list of variable names"),
        ({"variables": ["a", "b"], "edges": [1]}, "'edges' must be a list of \\[cause, effect\\] pairs"),
        ({"variables": ["a", "b"], "edges": 5}, "'edges' must be a list of \\[cause, effect\\] pairs"),
        ({"variables": ["a", "b"], "edges": [["a", "c"]]}, "unknown variable 'c'"),
        ({"variables": ["a", "b"], "edges": [["a", 7]]}, "variable index 7 out of range"),
    ],
)
def test_graph_json_schema_errors_are_clear(
    fields: dict, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = json.dumps({"format": "sb3-causal/causal-graph", "version": 1, **fields})
    with pytest.raises(ValueError, match=f"^malformed CausalGraph JSON: .*{message}"):
        CausalGraph.from_json(text)
    (tmp_path / "g.json").write_text(text)
    assert cli.main(["graph", str(tmp_path / "g.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sb3-causal graph: error:") and "Traceback" not in err and len(err.splitlines()) == 1


def test_train_without_the_zoo_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sb3_causal import zoo

    monkeypatch.setattr(zoo, "ZOO_EXTRA_MODULES", {"sb3_causal_no_such_module": "optuna"})
    assert cli.main(["train", "--algo", "causal_ppo", "--env", ENV]) == 2
    err = capsys.readouterr().err
    expected = 'the zoo launcher needs the zoo extra (optuna missing): pip install "sb3-causal[zoo]"'
    assert err.strip() == f"sb3-causal train: error: {expected}"
