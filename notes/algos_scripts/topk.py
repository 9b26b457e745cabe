"""How often CausalGraph.top_k_active (the paper's TopK) would keep other variables than CausalMask (single unit)."""

import json

import numpy as np

from sb3_causal.masks import CausalMask
from tests.toy_envs import LinearCascadeEnv, PoissonCascadeEnv

out = {}
for name, env in [("poisson", PoissonCascadeEnv()), ("linear", LinearCascadeEnv())]:
    layout, graph = env.causal_variables, env.causal_graph
    obs = []
    o, _ = env.reset(seed=0)
    for _ in range(3000):
        obs.append(o)
        o, _, te, tr, _ = env.step(env.action_space.sample())
        if te or tr:
            o, _ = env.reset()
    obs = np.array(obs)
    for k in (1, 2, 3):
        mask = CausalMask(layout, graph, k=k, eta=0.0)
        kept = mask.causal_pairs(obs)
        diff = 0
        for b in range(len(obs)):
            active = [graph.variables[i] for i in np.flatnonzero(np.abs(obs[b]) > 0)]
            top = set(graph.top_k_active(active, k)) if active else set()
            ours = {graph.variables[i] for i in np.flatnonzero(kept[b])}
            diff += top != ours
        out[f"{name}_k{k}"] = round(diff / len(obs), 4)
print(json.dumps({"topk_vs_causalmask_disagreement": out}))
