"""benchmarks/structure_grid.py: the runs it lists, resuming from its JSONL file, and its table (against a
stand-in benchmark script, so no learner runs here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FAKE_BENCHMARK = """
import json, sys
argv = sys.argv[1:]
arg = lambda name: argv[argv.index(name) + 1]
seed = int(arg("--model-seed"))
with open(sys.argv[0] + ".calls", "a") as f:
    f.write(" ".join(argv) + "\\n")
if seed == 9:
    sys.exit("model seed 9 fails")
print("step 1000: F1 ...")
print(json.dumps({
    "benchmark": "structure_learning", "env": arg("--family") + "-n" + arg("--n-variables"),
    "driver": arg("--driver"), "chooser": "uniform", "treatments": "valid", "init": "empty",
    "steps": int(arg("--steps")), "seed": int(arg("--seed")), "learner_kwargs": {}, "model_seed": seed,
    "f1": seed / 10, "precision": 1.0, "recall": seed / 20, "fpr_non_ancestor_t_gt_1.96": [seed / 100, 0.5],
    "min_treated_per_variable": seed, "max_treated_per_variable": 10 * seed, "seconds": 0.0,
}))
"""


@pytest.fixture(scope="module")
def grid_module():
    spec = importlib.util.spec_from_file_location("structure_grid", ROOT / "benchmarks" / "structure_grid.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_grid_runs_resumes_and_tabulates(grid_module, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "fake.py"
    script.write_text(FAKE_BENCHMARK)
    out = tmp_path / "grid.jsonl"
    base = ["--script", str(script), "--out", str(out), "--families", "gaussian", "--n-variables", "8", "20"]
    base += ["--drivers", "ppo", "--steps", "100", "--jobs", "2"]

    assert grid_module.main([*base, "--model-seeds", "2", "4", "--dry-run"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 4 and all(line.startswith("todo") for line in listed)
    assert not (tmp_path / "fake.py.calls").exists()  # a dry run runs nothing

    assert grid_module.main([*base, "--model-seeds", "2", "4"]) == 0
    assert len(grid_module.load(out)) == 4
    # a second call over a larger grid runs only the new points; seed 9's failure is reported, not recorded
    assert grid_module.main([*base, "--model-seeds", "2", "4", "6", "9"]) == 1
    calls = (tmp_path / "fake.py.calls").read_text().splitlines()
    assert len(calls) == 8 and sum("--model-seed 9" in c for c in calls) == 2
    assert "model seed 9 fails" in capsys.readouterr().err
    records = grid_module.load(out)
    assert sorted(r["model_seed"] for r in records) == [2, 2, 4, 4, 6, 6]
    assert all(r["argv"][r["argv"].index("--model-seed") + 1] == str(r["model_seed"]) for r in records)

    assert grid_module.main([*base, "--model-seeds", "2", "4", "6", "--dry-run"]) == 0
    assert all(line.startswith("done") for line in capsys.readouterr().out.splitlines())

    table = grid_module.tables(records).splitlines()
    assert len(table) == 4  # header, separator, one row per env (n = 8 and 20)
    row = next(line for line in table if line.startswith("| gaussian-n8 "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:7] == ["gaussian-n8", "ppo", "100", "2 4 6", "0.200 0.400 0.600", "0.400", "0.200"]
    assert cells[7] == "1.00/0.10 1.00/0.20 1.00/0.30"
    assert cells[8] == "0.040 / 0.500"  # the non-ancestor share per channel, averaged over the seeds
    assert cells[9] == "2-20 4-40 6-60"


def test_last_json_line_skips_progress_lines(grid_module) -> None:
    assert grid_module.last_json_line('step 1\n{"f1": 1.0}\n{not json\n') == {"f1": 1.0}
    assert grid_module.last_json_line("no result\n") is None
