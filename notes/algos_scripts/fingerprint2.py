"""Fingerprint where behaviour must be unchanged: CausalMaskablePPO with a final flush, masked MaskableDQN."""

import hashlib
import json
import sys

import gymnasium as gym
import numpy as np
import torch as th

import sb3_causal  # noqa: F401
from sb3_causal.algos import CausalMaskablePPO, MaskableDQN

th.set_num_threads(1)
flush = sys.argv[1] == "flush"
env = gym.make("FaultAlarmRL-v0")
obs_set = []
o, _ = env.reset(seed=123)
for _t in range(50):
    obs_set.append(o)
    o, *_ = env.step(env.action_space.sample())
obs_set = np.array(obs_set)
out = {}
m = CausalMaskablePPO("MlpPolicy", "FaultAlarmRL-v0", seed=0, graph_update_freq=500)
m.learn(3000)
if flush and m.graph_callback.n_pending:
    m.graph_callback.flush()
acts, _ = m.predict(obs_set, deterministic=True)
out["ppo"] = {
    "edges_hash": hashlib.md5(str(sorted(m.causal_graph.edges)).encode()).hexdigest()[:8],
    "actions_hash": hashlib.md5(acts.tobytes()).hexdigest()[:8],
    "n_updates": m.causal_learner.n_updates,
}
print(out, flush=True)
m = MaskableDQN("MlpPolicy", "FaultAlarmRL-v0", seed=0, learning_starts=500, buffer_size=5000, batch_size=32)
m.learn(3000)
am = np.stack([np.asarray(env.unwrapped.action_masks()) for _ in range(1)])
p = th.nn.utils.parameters_to_vector(m.policy.parameters()).detach().numpy()
out["mdqn"] = {
    "actions_hash": hashlib.md5(m.replay_buffer.actions[:3000].tobytes()).hexdigest()[:8],
    "param_sum": float(p.sum()),
    "masks_hash": hashlib.md5(m.replay_buffer.packed_next_action_masks[:3000].tobytes()).hexdigest()[:8],
}
print(json.dumps(out))
