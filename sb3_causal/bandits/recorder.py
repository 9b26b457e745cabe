"""Observational ("see") data of a confounded bandit: what a player following its intuition experiences.

Causal Thompson sampling starts from it: under the natural policy the arm played *is* the intuition, so
the rounds of intuition ``x`` measure ``E[Y | X = x] = E[Y_x | X = x]``, the payoff of the intuitive arm
among players with that intuition (consistency), a counterfactual quantity that no experiment can show.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv

from sb3_causal.bandits.base import BanditEnvBatch

__all__ = ["ObservationalData", "record_observational"]


@dataclass(frozen=True)
class ObservationalData:
    """Reward sums and counts per (intuition, arm) cell of logged rounds.

    :param successes: ``(n_intuitions, n_arms)``, or ``(n_envs, n_intuitions, n_arms)`` for one log per
        bandit copy: the sum of rewards (in [0, 1]) of the rounds in each cell
    :param pulls: same shape: the number of rounds in each cell
    """

    successes: np.ndarray
    pulls: np.ndarray

    def __post_init__(self) -> None:
        successes = np.asarray(self.successes, dtype=np.float64)
        pulls = np.asarray(self.pulls, dtype=np.float64)
        if successes.shape != pulls.shape or successes.ndim not in (2, 3):
            raise ValueError(
                "successes and pulls must have the same shape, (n_intuitions, n_arms) or (n_envs, n_intuitions, "
                f"n_arms); got {successes.shape} and {pulls.shape}"
            )
        if np.any(successes < 0) or np.any(successes > pulls):
            raise ValueError("observational data needs 0 <= successes <= pulls in every cell (rewards in [0, 1])")
        object.__setattr__(self, "successes", successes)
        object.__setattr__(self, "pulls", pulls)

    @classmethod
    def from_log(cls, intuitions: np.ndarray, arms: np.ndarray, rewards: np.ndarray, n_arms: int) -> ObservationalData:
        """Cells from a log of rounds (one bandit): the intuition seen, the arm played, the reward in [0, 1].

        :param n_arms: number of arms (and of intuition values)
        """
        intuitions, arms, rewards = (np.asarray(v).reshape(-1) for v in (intuitions, arms, rewards))
        if not intuitions.shape == arms.shape == rewards.shape:
            raise ValueError(f"log columns differ in length: {intuitions.shape}, {arms.shape}, {rewards.shape}")
        for name, column in (("intuitions", intuitions), ("arms", arms)):
            if column.size and (column.min() < 0 or column.max() >= n_arms):
                raise ValueError(f"{name} must lie in [0, {n_arms})")
        if rewards.size and (rewards.min() < 0 or rewards.max() > 1):
            raise ValueError("rewards must lie in [0, 1]")
        successes = np.zeros((n_arms, n_arms))
        pulls = np.zeros((n_arms, n_arms))
        np.add.at(successes, (intuitions, arms), rewards)
        np.add.at(pulls, (intuitions, arms), 1.0)
        return cls(successes, pulls)

    @property
    def payoff_given_intuition(self) -> np.ndarray:
        """``E[Y | X = x]`` per intuition (``nan`` where there is no data); shape ``(..., n_intuitions)``."""
        total = self.pulls.sum(axis=-1)
        return np.divide(self.successes.sum(axis=-1), total, out=np.full(total.shape, np.nan), where=total > 0)


def record_observational(env: gym.Env | VectorEnv | str, n_rounds: int, seed: int | None = None) -> ObservationalData:
    """Play ``n_rounds`` rounds per copy of ``env`` following the intuition (arm = intuition) and count them.

    :param env: a confounded bandit (single or vector env, or id); its intuitions must be arm indices
    :param n_rounds: rounds per copy
    :param seed: seed of the env's reset
    :return: one log per copy, shape ``(num_envs, n_arms, n_arms)``
    """
    if n_rounds < 1:
        raise ValueError(f"n_rounds must be >= 1, got {n_rounds}")
    batch = BanditEnvBatch(env)
    if batch.n_contexts != batch.n_arms:
        raise ValueError(
            f"observational data follows the intuition, so intuitions must be arms: the env has {batch.n_contexts} "
            f"intuition values and {batch.n_arms} arms"
        )
    shape = (batch.num_envs, batch.n_arms, batch.n_arms)
    successes, pulls = np.zeros(shape), np.zeros(shape)
    copies = np.arange(batch.num_envs)
    intuitions = batch.reset(seed=seed)
    for _ in range(n_rounds):
        next_intuitions, rewards, valid, _ = batch.step(intuitions)
        np.add.at(successes, (copies[valid], intuitions[valid], intuitions[valid]), rewards[valid])
        np.add.at(pulls, (copies[valid], intuitions[valid], intuitions[valid]), 1.0)
        intuitions = next_intuitions
    return ObservationalData(successes, pulls)
