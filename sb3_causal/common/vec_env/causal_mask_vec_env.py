"""The VecEnv wrapper through which sb3-contrib's MaskablePPO acts with a mask provider's masks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, unwrap_vec_normalize
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

__all__ = ["CausalMaskVecEnv", "MasksFn"]

MasksFn = Callable[[Any, "np.ndarray | None"], np.ndarray]


class CausalMaskVecEnv(VecEnvWrapper):
    """Answers ``env_method("action_masks")`` with the agent's masks for the observations it last returned.

    sb3-contrib's MaskablePPO reads its masks once per step with ``get_action_masks(env)`` (that is,
    ``env_method("action_masks")``), acts with them and stores them in its rollout buffer. Wrapping its
    VecEnv in this class makes the mask it acts with, and stores, ``masks_fn(raw_obs, env_masks)``: the
    provider's mask of the current observations AND the env's own ``action_masks()`` when it has one.
    The masks are computed once per observation (the first time they are asked for after a ``reset`` or
    ``step``) and cached, so every caller of that step sees the same array.

    :param venv: the VecEnv to wrap (may contain a ``VecNormalize``: masks see its original observations)
    :param masks_fn: ``(raw observations (n_envs, *obs_shape), env masks or None) -> (n_envs, n_actions) bool``
    """

    def __init__(self, venv: VecEnv, masks_fn: MasksFn) -> None:
        super().__init__(venv)
        self.masks_fn = masks_fn
        self._obs: Any = None
        self._masks: np.ndarray | None = None
        self._env_has_masks = venv.has_attr("action_masks")
        self._vec_normalize = unwrap_vec_normalize(venv)  # the wrapped chain is fixed: looked up once

    def reset(self) -> Any:
        self._obs, self._masks = self.venv.reset(), None
        return self._obs

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        self._obs, self._masks = obs, None
        return obs, rewards, dones, infos

    def current_masks(self) -> np.ndarray:
        """The masks of the current observations of all envs, ``(n_envs, n_actions)`` bool."""
        if self._masks is None:
            if self._obs is None:
                raise RuntimeError(f"{type(self).__name__}: reset() the env before asking for action masks")
            vec_normalize = self._vec_normalize
            raw = vec_normalize.get_original_obs() if vec_normalize is not None else self._obs
            env_masks = np.asarray(self.venv.env_method("action_masks"), dtype=bool) if self._env_has_masks else None
            self._masks = self.masks_fn(raw, env_masks)
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
