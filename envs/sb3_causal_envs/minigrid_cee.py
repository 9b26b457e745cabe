"""MiniGrid UnlockPickup as the CEE paper runs it: one fixed layout, a fully observed grid (needs ``minigrid``).

The paper (seed 004) trains on ``MiniGrid-UnlockPickup-v0`` (room size 6, 288 steps, reward
``1 - 0.9 t / T`` on picking up the box, 7 actions) with a single layout (seed 0), observed as a full
RGB render at 8 pixels per tile. :func:`make_unlock_pickup` builds that env from the ``minigrid``
package (the optional extra ``cee``: ``pip install sb3-causal[cee]``):

* every ``reset`` uses ``layout_seed``, whatever seed the caller passes, so the layout (rooms, door,
  key, box, agent start) never changes;
* ``obs="rgb"``: the paper's observation, the full grid rendered as a ``(48, 88, 3)`` uint8 image;
* ``obs="grid"``: the full grid's symbolic encoding (object, colour, state per cell; the agent's
  direction in its cell's state) scaled to [0, 1] and flattened, ``(198,)`` float32: the same
  information as the render in 30 times fewer inputs, for small CPU budgets.

Registered as ``UnlockPickupFixed-v0``. :data:`SOLUTION_LAYOUT_0` is a shortest known solution of layout 0
(to check that a mask leaves a way to the box open: :func:`solution_masked_steps`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

__all__ = [
    "SOLUTION_LAYOUT_0",
    "FixedLayoutReset",
    "FullGridObservation",
    "make_unlock_pickup",
    "solution_masked_steps",
]

#: a solution of layout 0 (minigrid 3.x; actions 0 left, 1 right, 2 forward, 3 pickup, 4 drop, 5 toggle, 6 done):
#: face the key, pick it up, walk to the door, open it, drop the key, walk to the box, pick it up (18 steps)
SOLUTION_LAYOUT_0 = (1, 3, 2, 1, 2, 0, 5, 0, 4, 1, 2, 2, 2, 2, 0, 2, 2, 3)

# the largest value of each channel of MiniGrid's encoding: object index, colour index, state
_ENCODING_MAX = np.array([10.0, 5.0, 3.0], dtype=np.float32)


class FixedLayoutReset(gym.Wrapper):
    """Resets the wrapped env with ``layout_seed`` every time (one fixed layout for the whole run).

    :param env: the env
    :param layout_seed: the seed of every reset
    """

    def __init__(self, env: gym.Env, layout_seed: int = 0) -> None:
        super().__init__(env)
        self.layout_seed = int(layout_seed)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        return self.env.reset(seed=self.layout_seed, options=options)


class FullGridObservation(gym.ObservationWrapper):
    """MiniGrid's fully observed symbolic grid, scaled to [0, 1] per channel and flattened (float32).

    :param env: a MiniGrid env (unwrapped observations: a dict with ``"image"``)
    """

    def __init__(self, env: gym.Env) -> None:
        from minigrid.wrappers import FullyObsWrapper

        super().__init__(FullyObsWrapper(env))
        shape = self.env.observation_space["image"].shape
        self.observation_space = spaces.Box(0.0, 1.0, shape=(int(np.prod(shape)),), dtype=np.float32)

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        return (observation["image"].astype(np.float32) / _ENCODING_MAX).reshape(-1)


def make_unlock_pickup(
    obs: str = "grid", layout_seed: int = 0, render_mode: str | None = None, **kwargs: Any
) -> gym.Env:
    """``MiniGrid-UnlockPickup-v0`` with a fixed layout and a full observation (see the module doc).

    :param obs: ``"grid"`` (symbolic, flat float32) or ``"rgb"`` (the paper's ``(48, 88, 3)`` render)
    :param layout_seed: the seed of every reset
    :param render_mode: passed to MiniGrid
    :param kwargs: more MiniGrid arguments (e.g. ``max_steps``)
    :raises ImportError: when ``minigrid`` is not installed
    """
    if obs not in ("grid", "rgb"):
        raise ValueError(f"obs must be 'grid' or 'rgb', got {obs!r}")
    try:
        import minigrid
        from minigrid.wrappers import ImgObsWrapper, RGBImgObsWrapper
    except ImportError as exc:
        raise ImportError(
            "UnlockPickupFixed-v0 needs the minigrid package: pip install 'sb3-causal[cee]' (or pip install minigrid)"
        ) from exc
    gym.register_envs(minigrid)
    env = gym.make("MiniGrid-UnlockPickup-v0", render_mode=render_mode, **kwargs).unwrapped
    env = ImgObsWrapper(RGBImgObsWrapper(env, tile_size=8)) if obs == "rgb" else FullGridObservation(env)
    return FixedLayoutReset(env, layout_seed)  # MiniGrid truncates at its own max_steps


def solution_masked_steps(
    mask: Any, actions: tuple[int, ...] = SOLUTION_LAYOUT_0, layout_seed: int = 0
) -> list[tuple[int, int]]:
    """The steps of a known solution that ``mask`` forbids: ``[(step index, action), ...]`` (empty: the
    solution stays open).

    :param mask: a mask provider (``mask(observations, env_masks) -> (batch, 7)`` bool), for the ``"grid"``
        observation
    :param actions: the solution (default: :data:`SOLUTION_LAYOUT_0`)
    :param layout_seed: its layout
    :raises ValueError: when the actions do not solve the layout (a changed ``minigrid`` layout generator)
    """
    env = make_unlock_pickup(layout_seed=layout_seed)
    obs, _ = env.reset()
    masked, reward = [], 0.0
    for k, action in enumerate(actions):
        if not bool(mask(obs[None], None)[0, action]):
            masked.append((k, int(action)))
        obs, reward, terminated, _, _ = env.step(action)
    if not (terminated and reward > 0):
        raise ValueError(f"the actions do not solve layout {layout_seed} of UnlockPickup (reward {reward})")
    return masked
