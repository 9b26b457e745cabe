"""CausalMaskablePPO 2048 steps on FaultAlarmRL-v0: torch threads 1 vs the default, interleaved A/B/A/B."""

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
print(json.dumps(runs))
