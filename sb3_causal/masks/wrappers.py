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

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, unwrap_vec_normalize
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from sb3_causal.masks.base import MaskProvider

__all__ = ["MaskProviderVecEnv"]


class MaskProviderVecEnv(VecEnvWrapper):
    """A VecEnv whose ``action_masks()`` are a mask provider's masks of its current observations.

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
        super().__init__(venv)
        self.provider = provider
        self.explore = bool(explore)
        self.record = bool(record)
        #: the masks served, one (n_envs, n_actions) array per step, when ``record`` is set
        self.served_masks: list[np.ndarray] = []
        self._obs: Any = None
        self._masks: np.ndarray | None = None
        self._env_has_masks = venv.has_attr("action_masks")

    def reset(self) -> Any:
        self._obs, self._masks = self.venv.reset(), None
        return self._obs

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        self._obs, self._masks = obs, None
        return obs, rewards, dones, infos

    def current_masks(self) -> np.ndarray:
        """The masks of the current observations of all envs, ``(n_envs, n_actions)`` bool (cached per step)."""
        if self._masks is None:
            if self._obs is None:
                raise RuntimeError("MaskProviderVecEnv: reset() the env before asking for action masks")
            vec_normalize = unwrap_vec_normalize(self.venv)
            raw = vec_normalize.get_original_obs() if vec_normalize is not None else self._obs
            env_masks = np.stack(self.venv.env_method("action_masks")).astype(bool) if self._env_has_masks else None
            self._masks = np.asarray(self.provider(np.asarray(raw), env_masks, explore=self.explore), dtype=bool)
            if self.record:
                self.served_masks.append(self._masks.copy())
        return self._masks

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        if method_name == "action_masks" and not method_args and not method_kwargs:
            masks = self.current_masks()
            return [masks[i] for i in self._get_indices(indices)]
        return self.venv.env_method(method_name, *method_args, indices=indices, **method_kwargs)

    def has_attr(self, attr_name: str) -> bool:
        return attr_name == "action_masks" or self.venv.has_attr(attr_name)
