"""``SpuriousCorrelation-v0``: the two-variable test environment of C-MBPO, with a spurious state variable.

The state is ``(X, Z)``, both clipped to [-1, 1] and starting at (-1, -1); the action ``A`` is in [-1, 1].
One step, with independent noises ``eps ~ N(0, 0.01^2)``::

    f_x = X + 0.05 A - 0.005 cos(0.05 X)     (the noise-free update of X)
    X'  = f_x + eps
    Z'  = c * f_x + eps                      (c = 1: none, c = 0: "near" shift do(Z) = 0, c = -1: "far" shift)
    R   = 0.1 (1 - X^2) + eps

The reward's only parent is ``X``; ``Z`` is a child of ``X`` and the parent of nothing, so in training
(``shift="none"``) it is a noisy copy of ``X`` that carries no information the agent needs. A policy or a
world model that leans on ``Z`` works in distribution and breaks when the shift cuts (``near``) or flips
(``far``) the ``X -> Z`` mechanism. Episodes are truncated after 200 steps by the env itself.

Returns of a 200-step episode for a controller steering ``X`` to 0: ~19.2 under every shift; for the same
controller reading ``Z`` instead: ~19.2 in distribution, a few points near, ~0 far; random actions: ~2.5-3.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_causal.graph import CausalGraph

__all__ = ["SHIFTS", "SpuriousCorrelationEnv"]

# shift name -> coefficient c of f_x in Z' = c * f_x + eps
SHIFTS: dict[str, float] = {"none": 1.0, "near": 0.0, "far": -1.0}


class SpuriousCorrelationEnv(gym.Env):
    """Steer ``X`` to 0 while ``Z`` copies ``X`` spuriously (see the module docstring for the equations).

    The observation is ``[X, Z]`` (float32); ``state_names`` and ``action_names`` name its entries for causal
    learners, and ``causal_graph`` is the true local graph of one transition.

    :param shift: mechanism of ``Z`` at this env: ``"none"`` (training), ``"near"`` (``do(Z) = 0``) or
        ``"far"`` (``Z' = -f_x``)
    :param noise_std: standard deviation of the three noises
    :param max_steps: episode length (truncation)
    :param render_mode: ``"ansi"`` renders a text line; any other mode renders nothing
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"]}
    state_names: ClassVar[tuple[str, ...]] = ("X", "Z")
    action_names: ClassVar[tuple[str, ...]] = ("A",)

    def __init__(
        self,
        shift: str = "none",
        noise_std: float = 0.01,
        max_steps: int = 200,
        render_mode: str | None = None,
    ) -> None:
        super().__init__()
        if shift not in SHIFTS:
            raise ValueError(f"shift must be one of {list(SHIFTS)}, got {shift!r}")
        if noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {noise_std}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.shift = shift
        self.noise_std = float(noise_std)
        self.max_steps = int(max_steps)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self._z_coef = SHIFTS[shift]
        self._x = -1.0
        self._z = -1.0
        self._steps = 0
        self._started = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._x, self._z = -1.0, -1.0
        self._steps = 0
        self._started = True
        return self._observation(), {"steps": 0}

    def step(self, action):
        if not self._started:
            raise gym.error.ResetNeeded("call reset() before step() in SpuriousCorrelation-v0")
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.size != 1 or not np.isfinite(a[0]):
            raise ValueError(f"action must be one finite number, got {action!r}")
        a_t = float(np.clip(a[0], -1.0, 1.0))
        eps_x, eps_z, eps_r = self.np_random.normal(0.0, self.noise_std, size=3)
        x = self._x
        reward = 0.1 * (1.0 - x * x) + eps_r
        f_x = x + 0.05 * a_t - 0.005 * np.cos(0.05 * x)
        self._x = float(np.clip(f_x + eps_x, -1.0, 1.0))
        self._z = float(np.clip(self._z_coef * f_x + eps_z, -1.0, 1.0))
        self._steps += 1
        truncated = self._steps >= self.max_steps
        return self._observation(), float(reward), False, truncated, {"steps": self._steps}

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return f"step={self._steps} X={self._x:+.3f} Z={self._z:+.3f} shift={self.shift}"

    @property
    def causal_graph(self) -> CausalGraph:
        """The true local graph of one transition over ``X, Z, A -> X', Z', r`` (shift ``"none"``;
        under ``"near"`` the edges into ``Z'`` are cut)."""
        variables = ["X", "Z", "A", "X'", "Z'", "r"]
        edges = [("X", "X'"), ("A", "X'"), ("X", "r")]
        if self._z_coef != 0.0:
            edges += [("X", "Z'"), ("A", "Z'")]
        return CausalGraph(variables, edges)

    def _observation(self) -> np.ndarray:
        return np.array([self._x, self._z], dtype=np.float32)
