"""A pytest plugin that runs SB3's / sb3-contrib's own tests against sb3-causal's classes (used by test_conformance).

Loaded with ``-p conformance_plugin`` inside an unpacked source distribution of stable-baselines3 or
sb3-contrib. ``SB3_CAUSAL_SUBSTITUTE="DQN=CausalDQN"`` (or ``MaskablePPO=CausalMaskablePPO``, ...) replaces the
upstream class by ours in its package before the test modules import it, and keeps only the tests that
use it (a parametrised test whose parameters hold the class, or a test whose source names it).

``SB3_CAUSAL_NO_LAYOUT=graph_free`` substitutes our envs' side instead of failing where a test's env has no
causal layout (Discrete or image observations): the causal class then gets :class:`EnvMaskOnly`, a mask
provider without a graph (``uses_graph = False``) that passes the env's own masks through, so the rest of
our class (mask wrapper, callbacks, save/load) still meets the upstream test.
"""

from __future__ import annotations

import importlib
import inspect
import os
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import maybe_make_env

import sb3_causal.algos as ours
from sb3_causal.variables import CausalVariables, VariableLayoutError


class EnvMaskOnly(th.nn.Module):
    """A mask provider without a causal graph: the env's masks (all actions when it has none)."""

    uses_graph = False

    def __init__(self, n_actions: int) -> None:
        super().__init__()
        self.n_actions = n_actions

    def get_config(self) -> dict[str, int]:
        return {"n_actions": self.n_actions}

    @classmethod
    def from_config(cls, config: dict[str, int]) -> EnvMaskOnly:
        return cls(**config)

    def forward(self, observations: Any, env_masks: np.ndarray | None, *, explore: bool = True) -> np.ndarray:
        n = len(next(iter(observations.values()))) if isinstance(observations, dict) else len(observations)
        return np.ones((n, self.n_actions), dtype=bool) if env_masks is None else np.asarray(env_masks, dtype=bool)

    def update_graph(self, graph: Any, n_hops: int | None = None) -> None:
        raise AssertionError("never called for a provider with uses_graph = False")


def graph_free_where_no_layout(cls: type) -> type:
    """``cls`` giving an :class:`EnvMaskOnly` provider to envs that have no causal layout."""

    class Substitute(cls):  # type: ignore[misc, valid-type]
        def __init__(self, policy: Any, env: Any, *args: Any, **kwargs: Any) -> None:
            if env is not None and kwargs.get("mask_provider") is None:
                made = maybe_make_env(env, 0)
                try:
                    CausalVariables.from_env(made)
                except VariableLayoutError:
                    if isinstance(made.action_space, spaces.Discrete):  # else our class's own clear error
                        kwargs["mask_provider"] = EnvMaskOnly(int(made.action_space.n))
                env = made
            super().__init__(policy, env, *args, **kwargs)

    Substitute.__name__ = Substitute.__qualname__ = cls.__name__
    return Substitute


#: upstream class name -> the modules that export it
UPSTREAM = {
    "DQN": ("stable_baselines3", "stable_baselines3.dqn", "stable_baselines3.dqn.dqn"),
    "MaskablePPO": ("sb3_contrib", "sb3_contrib.ppo_mask", "sb3_contrib.ppo_mask.ppo_mask"),
}


def pytest_configure(config: Any) -> None:
    name, replacement = os.environ["SB3_CAUSAL_SUBSTITUTE"].split("=")
    cls = getattr(ours, replacement)
    if os.environ.get("SB3_CAUSAL_NO_LAYOUT") == "graph_free" and hasattr(cls, "_init_causal"):
        cls = graph_free_where_no_layout(cls)
    for module_name in UPSTREAM[name]:
        setattr(importlib.import_module(module_name), name, cls)
    config.sb3_causal_substitute = (name, cls)


def _uses(item: Any, name: str, cls: type) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and any(value is cls for value in callspec.params.values()):
        return True
    if callspec is not None and any(isinstance(value, type) for value in callspec.params.values()):
        return False  # parametrised over other algorithm classes
    try:
        return name in inspect.getsource(item.function)
    except (OSError, TypeError):
        return False


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    name, cls = config.sb3_causal_substitute
    kept = [item for item in items if _uses(item, name, cls)]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept
