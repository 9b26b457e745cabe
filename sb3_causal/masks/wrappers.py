"""Acting under any :class:`~sb3_causal.masks.base.MaskProvider` with an unmodified masked agent.

sb3-contrib's MaskablePPO (and its ``MaskableEvalCallback`` / ``evaluate_policy``) read masks once per
step with ``env_method("action_masks")``, act with them and store them in the rollout buffer.
:class:`MaskProviderVecEnv` answers that call with the provider's masks of the observations the VecEnv
last returned (AND the env's own ``action_masks()`` when it has one), computed once per step and cached,
so the mask the agent acts with is the mask it stores::

    from sb3_contrib import MaskablePPO
    from sb3_causal.masks import CEEMask, MaskProviderVecEnv

    mask = CEEMask(env.observation_space, env.action_space).pretrain(env, 50_000)
    model = MaskablePPO("MlpPolicy", MaskProviderVecEnv(venv, mask))
"""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from sb3_causal.common.vec_env.causal_mask_vec_env import CausalMaskVecEnv
from sb3_causal.masks.base import MaskProvider

__all__ = ["MaskProviderVecEnv"]


class MaskProviderVecEnv(CausalMaskVecEnv):
    """A VecEnv whose ``action_masks()`` are a mask provider's masks of its current observations.

    The caching, VecNormalize handling and ``env_method("action_masks")`` answer are
    :class:`~sb3_causal.common.vec_env.CausalMaskVecEnv`'s (the wrapper the causal algorithms act through);
    this class only binds it to a provider.

    :param venv: the VecEnv to wrap (may contain a ``VecNormalize``: the provider sees its original
        observations)
    :param provider: the mask provider (e.g. a pre-trained :class:`~sb3_causal.masks.CEEMask`)
    :param explore: passed to the provider (True while training; False for evaluation envs)
    :param record: keep every mask served in :attr:`served_masks` (tests and diagnostics)
    """

    def __init__(self, venv: VecEnv, provider: MaskProvider, explore: bool = True, record: bool = False) -> None:
        if not isinstance(provider, MaskProvider):
            raise TypeError(
                "provider must implement the MaskProvider interface: __call__(observations, env_masks, *, explore) "
                f"and update_graph(graph); got {type(provider).__name__}"
            )
        self.provider = provider
        self.explore = bool(explore)
        self.record = bool(record)
        #: the masks served, one (n_envs, n_actions) array per step, when ``record`` is set
        self.served_masks: list[np.ndarray] = []
        super().__init__(venv, self._provider_masks)

    def _provider_masks(self, raw_obs: np.ndarray, env_masks: np.ndarray | None) -> np.ndarray:
        masks = np.asarray(self.provider(np.asarray(raw_obs), env_masks, explore=self.explore), dtype=bool)
        if self.record:
            self.served_masks.append(masks.copy())
        return masks
