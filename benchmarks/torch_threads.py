"""Torch threads for small MLP agents: CausalMaskablePPO, 2,048 steps on FaultAlarmRL-v0, one thread
against torch's default, in separate processes interleaved 1 / default / 1 / default.

    python benchmarks/torch_threads.py

Prints each run, then one JSON line: the runs and the median wall / CPU ratio default / one thread.
"""

import json
import subprocess
import sys
import time

if len(sys.argv) > 1:
    import torch as th

    if sys.argv[1] == "1":
        th.set_num_threads(1)
    from sb3_causal import CausalMaskablePPO

    m = CausalMaskablePPO("MlpPolicy", "FaultAlarmRL-v0", seed=0)
    w, c = time.perf_counter(), time.process_time()
    m.learn(2048)
    print(
        json.dumps({"threads": th.get_num_threads(), "wall": time.perf_counter() - w, "cpu": time.process_time() - c})
    )
    sys.exit()
runs = []
for _rep in range(2):
    for mode in ("1", "default"):
        out = (
            subprocess.run([sys.executable, __file__, mode], capture_output=True, text=True)
            .stdout.strip()
            .splitlines()[-1]
        )
        runs.append(json.loads(out))
        print(runs[-1], flush=True)
one = [r for r in runs if r["threads"] == 1]
default = [r for r in runs if r["threads"] != 1]
print(
    json.dumps(
        {
            "benchmark": "torch_threads",
            "runs": runs,
            "wall_ratio_default_over_one": sorted(d["wall"] / o["wall"] for o, d in zip(one, default))[len(one) // 2],
            "cpu_ratio_default_over_one": sorted(d["cpu"] / o["cpu"] for o, d in zip(one, default))[len(one) // 2],
        }
    )
)
