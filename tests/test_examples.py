"""Every example runs as written, with a small budget (the examples are scripts; run in-process to save imports).

The default run parses every example's arguments and trains the quickstart; the other trainings are slow
(`pytest -m slow tests/test_examples.py`)."""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> str:
    path = EXAMPLES / name
    monkeypatch.setattr(sys, "argv", [str(path), *args])
    runpy.run_path(str(path), run_name="__main__")
    return capsys.readouterr().out


def f1_of(out: str) -> float:
    match = re.search(r"F1 ([0-9.]+)", out)
    assert match, out
    return float(match.group(1))


def test_every_example_is_tested() -> None:
    tested = {"quickstart.py", "existing_ppo_project.py", "custom_factored_env.py", "cmbpo_under_shift.py"}
    tested |= {"zoo_from_yaml.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_every_example_imports_and_parses_its_arguments(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    if name == "zoo_from_yaml.py":
        pytest.importorskip("rl_zoo3")
    with pytest.raises(SystemExit) as info:
        run_example(name, ["--help"], monkeypatch, capsys)
    assert info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_quickstart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    out = run_example("quickstart.py", ["--steps", "512", "--out", str(tmp_path / "graph.png")], monkeypatch, capsys)
    assert 0.0 <= f1_of(out) <= 1.0
    assert (tmp_path / "graph.png").stat().st_size > 0


@pytest.mark.slow
def test_existing_ppo_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    out = run_example("existing_ppo_project.py", ["--steps", "1024", "--out", str(tmp_path)], monkeypatch, capsys)
    assert "PPO's last evaluation: mean return" in out
    assert 0.0 <= f1_of(out) <= 1.0
    from sb3_causal import CausalGraph

    graph = CausalGraph.load(tmp_path / "graph.json")
    assert graph.n_variables == 18
    assert (tmp_path / "ppo.zip").is_file() and list((tmp_path / "checkpoints").glob("*.zip"))


@pytest.mark.slow
def test_custom_factored_env(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    out = run_example("custom_factored_env.py", ["--steps", "2048", "--seed", "0"], monkeypatch, capsys)
    # the action map routes each fix to its variable: the 4-edge graph is found from 2048 interventions
    assert f1_of(out) >= 0.85, out
    assert "the agent would" in out


@pytest.mark.slow
def test_cmbpo_under_shift(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    out = run_example("cmbpo_under_shift.py", ["--steps", "400", "--episodes", "1"], monkeypatch, capsys)
    returns = re.search(r"C-MBPO returns: \{'none': (-?[0-9.]+), 'near': (-?[0-9.]+), 'far': (-?[0-9.]+)\}", out)
    assert returns, out
    assert "parents of the reward" in out


@pytest.mark.slow
def test_zoo_from_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("rl_zoo3")
    out = run_example("zoo_from_yaml.py", ["--steps", "512", "--logs", str(tmp_path)], monkeypatch, capsys)
    assert (tmp_path / "causal_ppo" / "FaultAlarmRL-v0_1" / "FaultAlarmRL-v0.zip").is_file()
    assert "mean return" in out and "(with action masks)" in out
    assert 0.0 <= f1_of(out) <= 1.0
    assert (tmp_path / "graph.dot").read_text().startswith("digraph")
    assert (tmp_path / "graph.png").stat().st_size > 0
