"""Gymnasium registration of the environments shipped in ``sb3_causal_envs``.

The ids map to entry-point strings, so registering imports nothing: the environments package
depends on the library (graph, variables), never the other way round. ``import sb3_causal``
registers them; ``gym.make`` imports an env's module only when it is made.
"""

from __future__ import annotations

import gymnasium as gym

__all__ = ["ENV_IDS", "register_envs"]

# id -> entry point; each env enforces its own step limit, so no TimeLimit wrapper is added.
ENV_IDS = {
    "FaultAlarmRL-v0": "sb3_causal_envs.fault_alarm:FaultAlarmEnv",
    "SpuriousCorrelation-v0": "sb3_causal_envs.spurious:SpuriousCorrelationEnv",
    "GreedyCasino-v0": "sb3_causal_envs.bandits:GreedyCasinoEnv",
    "ConfoundedBandit-v0": "sb3_causal_envs.bandits:ConfoundedBanditEnv",
    "FactoredSCM-v0": "sb3_causal_envs.factored:FactoredSCMEnv",
    "CausalDesign-v0": "sb3_causal_envs.causal_design:CausalDesignEnv",
    "RedundantMaze-v0": "sb3_causal_envs.maze:RedundantActionMaze",
    "UnlockPickupFixed-v0": "sb3_causal_envs.minigrid_cee:make_unlock_pickup",
}
# id -> batched (numpy) implementation for gym.make_vec(..., vectorization_mode="vector_entry_point")
VECTOR_ENTRY_POINTS = {
    "GreedyCasino-v0": "sb3_causal_envs.bandits:GreedyCasinoVectorEnv",
    "ConfoundedBandit-v0": "sb3_causal_envs.bandits:ConfoundedBanditVectorEnv",
}


def register_envs() -> None:
    """Register every environment of ``sb3_causal_envs`` with gymnasium (idempotent)."""
    for env_id, entry_point in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=entry_point,
                vector_entry_point=VECTOR_ENTRY_POINTS.get(env_id),
                disable_env_checker=False,
            )
