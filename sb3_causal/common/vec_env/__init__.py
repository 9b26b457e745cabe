"""VecEnv wrappers of the causal algorithms."""

from sb3_causal.common.vec_env.causal_mask_vec_env import CausalMaskVecEnv

__all__ = ["CausalMaskVecEnv"]
