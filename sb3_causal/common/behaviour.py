"""The behaviour policy's probability of every action, at the step an SB3 algorithm just took.

The online learner can weight its control rows by the odds of treatment
(``OnlineCausalLearner(propensity_weighting=True)``), which removes the bias of a policy whose choice of
intervention depends on the state. In RL that propensity is not estimated: it is the acting policy's
own distribution. :func:`behaviour_probabilities` reads it from the model and the locals of
``collect_rollouts`` that a callback sees in ``_on_step`` (the step's action was drawn from
``model._last_obs``, which SB3 replaces only after the callback ran):

* **On-policy, categorical** (PPO, A2C, MaskablePPO, CausalMaskablePPO): the policy's distribution at the
  step's ``obs_tensor``, under the step's ``action_masks`` when the algorithm acted with masks (for
  CausalMaskablePPO the causal masks, lifted rows included: a lift is a coin independent of the outcome,
  so conditioning on it keeps the weights valid). One extra forward pass per step.
* **Epsilon-greedy** (DQN, QR-DQN, MaskableDQN, CausalDQN): ``eps`` spread uniformly over the actions an
  exploratory draw picks from (all actions; the acting masks' valid ones for the masked DQNs; those an
  intervention chooser allows when ``CausalGraphCallback(chooser=...)`` draws them) plus ``1 - eps`` on the
  greedy action; ``eps = 1`` during the ``learning_starts`` warm-up and in the rows a CausalDQN lifted with
  ``lift_actions="random"`` (its ``random_action_rows``). One extra greedy forward pass.

Other algorithms (continuous actions, multi-discrete, SAC) are refused by :func:`check_behaviour_supported`
with an error that says so.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

__all__ = ["behaviour_probabilities", "check_behaviour_supported"]


def _is_epsilon_greedy(model: BaseAlgorithm) -> bool:
    return isinstance(model, OffPolicyAlgorithm) and hasattr(model, "exploration_rate")


def check_behaviour_supported(model: BaseAlgorithm) -> None:
    """Raise a ``ValueError`` naming the problem when :func:`behaviour_probabilities` cannot serve ``model``."""
    name = type(model).__name__
    if not isinstance(model.action_space, spaces.Discrete) or int(model.action_space.start) != 0:
        raise ValueError(
            f"propensity weighting needs the acting policy's probability of every action, computed for a Discrete "
            f"action space starting at 0; {name} has {model.action_space}"
        )
    if isinstance(model, OnPolicyAlgorithm):
        extra = list(inspect.signature(model.policy.get_distribution).parameters.values())[1:]
        if any(p.default is inspect.Parameter.empty for p in extra):  # e.g. a recurrent policy's LSTM states
            raise ValueError(
                f"propensity weighting: {name}'s policy needs more than the observation for its action "
                f"distribution (get_distribution takes {[p.name for p in extra]}); feed the learner yourself with "
                "learner.observe(obs, actions, next_obs, action_probs)"
            )
    elif not _is_epsilon_greedy(model):
        raise ValueError(
            "propensity weighting needs the acting policy's probability of every action: CausalGraphCallback "
            "computes it for on-policy algorithms with a categorical policy (PPO, A2C, MaskablePPO) and for "
            f"epsilon-greedy ones (DQN, QR-DQN, MaskableDQN); {name} is neither. Feed the learner yourself with "
            "learner.observe(obs, actions, next_obs, action_probs)"
        )


def behaviour_probabilities(model: BaseAlgorithm, step_locals: dict[str, Any]) -> np.ndarray:
    """``(n_envs, n_actions)`` float64: each action's probability under the policy that acted this step.

    :param model: the algorithm (after :func:`check_behaviour_supported`)
    :param step_locals: the ``collect_rollouts`` locals of the step (a callback's ``self.locals``)
    """
    if isinstance(model, OnPolicyAlgorithm):
        obs_tensor = step_locals["obs_tensor"]
        masks = step_locals.get("action_masks")
        with th.no_grad():
            if masks is not None:
                dist = model.policy.get_distribution(obs_tensor, action_masks=masks)  # type: ignore[call-arg]
            else:
                dist = model.policy.get_distribution(obs_tensor)
            probs = dist.distribution.probs  # type: ignore[union-attr]
        return probs.cpu().numpy().astype(np.float64)
    return _epsilon_greedy_probabilities(model)


def _epsilon_greedy_probabilities(model: Any) -> np.ndarray:
    n_envs, n_actions = model.n_envs, int(model.action_space.n)
    from sb3_causal.callbacks import ChooserActionSpace  # (the callback imports this module)

    acting = model._current_masks()[1] if hasattr(model, "_current_masks") else None  # masked DQNs: cached
    space = model.action_space
    # the actions an exploratory draw picks from
    if acting is not None:  # MaskableDQN, CausalDQN: uniform among the acting masks' valid actions
        explore = np.asarray(acting, dtype=bool)
        if isinstance(space, ChooserActionSpace):  # ... that the chooser allows (its sample_valid_actions)
            explore = space.allowed(explore)
    elif isinstance(space, ChooserActionSpace):  # DQN's space.sample() with a chooser: the step's pool
        explore = np.broadcast_to(space.step_pool(), (n_envs, n_actions))
    else:
        explore = np.ones((n_envs, n_actions), dtype=bool)
    probs = explore / explore.sum(axis=1, keepdims=True)
    # num_timesteps already counts this step's transitions
    warm_up = model.num_timesteps - n_envs < model.learning_starts
    eps = np.full(n_envs, 1.0 if warm_up else float(model.exploration_rate))
    random_rows = getattr(model, "random_action_rows", None)  # CausalDQN: lifted rows act at random
    if random_rows is not None and (rows := random_rows()) is not None:
        eps[rows] = 1.0
    if (eps < 1.0).any():
        kwargs = {} if acting is None else {"action_masks": acting}
        greedy, _ = model.policy.predict(model._last_obs, deterministic=True, **kwargs)
        probs *= eps[:, None]
        probs[np.arange(n_envs), np.asarray(greedy).reshape(-1)] += 1.0 - eps
    return probs
