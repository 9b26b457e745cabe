"""Behaviour fingerprint of the causal agents: graph + actions after a short seeded run."""

import hashlib
import json
import sys

import gymnasium as gym
import numpy as np
import torch as th

import sb3_causal  # noqa: F401
from sb3_causal.algos import CausalDQN, CausalMaskablePPO

th.set_num_threads(1)
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
out = {}
env = gym.make("FaultAlarmRL-v0")
obs_set = []
o, _ = env.reset(seed=123)
for _t in range(50):
    obs_set.append(o)
    o, *_ = env.step(env.action_space.sample())
obs_set = np.array(obs_set)
for name, cls, kw in [
    ("ppo", CausalMaskablePPO, {}),
    ("dqn", CausalDQN, {}),
    ("d3qn", CausalDQN, {"double_q": True, "policy": "DuelingMlpPolicy"}),
]:
    policy = kw.pop("policy", "MlpPolicy")
    m = cls(policy, "FaultAlarmRL-v0", seed=0, graph_update_freq=500, **kw)
    m.learn(steps)
    edges = sorted(m.causal_graph.edges)
    acts, _ = m.predict(obs_set, deterministic=True)
    p = th.nn.utils.parameters_to_vector(m.policy.parameters()).detach().numpy()
    out[name] = {
        "edges": len(edges),
        "edges_hash": hashlib.md5(str(edges).encode()).hexdigest()[:8],
        "actions_hash": hashlib.md5(acts.tobytes()).hexdigest()[:8],
        "param_sum": float(p.sum()),
        "n_updates": m.causal_learner.n_updates,
    }
    print(name, out[name], flush=True)
print(json.dumps(out))
