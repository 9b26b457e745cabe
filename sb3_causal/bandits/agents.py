"""Bandit agents: UCB and Thompson sampling, plain (ignore the intuition) or counterfactual (condition on it),
and causal Thompson sampling seeded with observational data (Bareinboim, Forney & Pearl, NeurIPS 2015).

In a confounded bandit the intuition ``X`` carries information about the unobserved confounder, so the
best arm depends on it: ``E[Y_a | X = x]`` (the payoff of arm ``a`` for a player whose intuition is ``x``)
is what to maximise. Plain agents estimate ``E[Y | do(a)]`` and cannot beat the best fixed arm; the
counterfactual agents keep one estimate per (intuition, arm) cell and reach the intuition-conditioned
optimum. Causal TS additionally starts from observational rounds (the player following its intuition,
which measure the intuitive arm's cell ``E[Y_x | X = x]`` for free) and damps the arm those data argue
against.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv

from sb3_causal.bandits.base import BanditAgent
from sb3_causal.bandits.recorder import ObservationalData

__all__ = [
    "UCB",
    "CausalThompsonSampling",
    "CounterfactualThompsonSampling",
    "CounterfactualUCB",
    "ThompsonSampling",
]


def _empirical_mean(successes: np.ndarray, pulls: np.ndarray) -> np.ndarray:
    return np.divide(successes, pulls, out=np.zeros_like(successes), where=pulls > 0)


class UCB(BanditAgent):
    """UCB1 (Auer et al., 2002): play ``argmax_a mean_a + sqrt(alpha * ln t / n_a)``, each arm once first.

    ``t`` counts the rounds of the context. With ``deterministic=True`` ``predict`` plays the best mean.

    :param env: see :class:`BanditAgent`
    :param alpha: exploration coefficient (2.0: UCB1)
    :param condition_on_intuition: one UCB per intuition (``CounterfactualUCB``)
    :param seed: see :class:`BanditAgent`
    :param verbose: see :class:`BanditAgent`
    :param tensorboard_log: see :class:`BanditAgent`
    """

    _hyperparameter_names: ClassVar[tuple[str, ...]] = ("alpha", "condition_on_intuition")

    def __init__(
        self,
        env: gym.Env | VectorEnv | str | None = None,
        *,
        alpha: float = 2.0,
        condition_on_intuition: bool = False,
        seed: int | None = None,
        verbose: int = 0,
        tensorboard_log: str | None = None,
    ) -> None:
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)
        super().__init__(
            env,
            condition_on_intuition=condition_on_intuition,
            seed=seed,
            verbose=verbose,
            tensorboard_log=tensorboard_log,
        )

    def _arm_scores(self, bandits: np.ndarray, contexts: np.ndarray, intuitions: np.ndarray, deterministic: bool):
        pulls = self.pulls[bandits, contexts]
        mean = _empirical_mean(self.successes[bandits, contexts], pulls)
        if deterministic:
            return np.where(pulls > 0, mean, -np.inf)
        rounds = pulls.sum(axis=1, keepdims=True)
        bonus = np.sqrt(self.alpha * np.log(np.maximum(rounds, 1.0)) / np.maximum(pulls, 1.0))
        return np.where(pulls > 0, mean + bonus, np.inf)


class CounterfactualUCB(UCB):
    """Counterfactual UCB: UCB1 over (intuition, arm) cells, i.e. one UCB per intuition value.

    Parameters as :class:`UCB` (``condition_on_intuition`` is always true).
    """

    _hyperparameter_names: ClassVar[tuple[str, ...]] = ("alpha",)

    def __init__(
        self,
        env: gym.Env | VectorEnv | str | None = None,
        *,
        alpha: float = 2.0,
        seed: int | None = None,
        verbose: int = 0,
        tensorboard_log: str | None = None,
    ) -> None:
        super().__init__(
            env, alpha=alpha, condition_on_intuition=True, seed=seed, verbose=verbose, tensorboard_log=tensorboard_log
        )


class ThompsonSampling(BanditAgent):
    """Beta-Bernoulli Thompson sampling: play the arm with the highest draw from its ``Beta`` posterior.

    With ``deterministic=True`` ``predict`` plays the highest posterior mean.

    :param env: see :class:`BanditAgent`
    :param prior_successes: ``a`` of the ``Beta(a, b)`` prior of every cell
    :param prior_failures: ``b`` of the prior
    :param condition_on_intuition: one posterior per intuition (``CounterfactualThompsonSampling``)
    :param seed: see :class:`BanditAgent`
    :param verbose: see :class:`BanditAgent`
    :param tensorboard_log: see :class:`BanditAgent`
    """

    _hyperparameter_names: ClassVar[tuple[str, ...]] = ("prior_successes", "prior_failures", "condition_on_intuition")

    def __init__(
        self,
        env: gym.Env | VectorEnv | str | None = None,
        *,
        prior_successes: float = 1.0,
        prior_failures: float = 1.0,
        condition_on_intuition: bool = False,
        seed: int | None = None,
        verbose: int = 0,
        tensorboard_log: str | None = None,
    ) -> None:
        if not (prior_successes > 0 and prior_failures > 0):
            raise ValueError(f"the Beta prior needs a, b > 0, got {prior_successes}, {prior_failures}")
        self.prior_successes = float(prior_successes)
        self.prior_failures = float(prior_failures)
        super().__init__(
            env,
            condition_on_intuition=condition_on_intuition,
            seed=seed,
            verbose=verbose,
            tensorboard_log=tensorboard_log,
        )

    def _posterior(self, bandits: np.ndarray, contexts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``Beta(a, b)`` parameters of the cells, ``(m, n_arms)`` each."""
        successes = self.successes[bandits, contexts]
        return self.prior_successes + successes, self.prior_failures + self.pulls[bandits, contexts] - successes

    def _arm_scores(self, bandits: np.ndarray, contexts: np.ndarray, intuitions: np.ndarray, deterministic: bool):
        a, b = self._posterior(bandits, contexts)
        return a / (a + b) if deterministic else self.rng.beta(a, b)


class CounterfactualThompsonSampling(ThompsonSampling):
    """Counterfactual Thompson sampling: Thompson sampling over (intuition, arm) cells.

    Parameters as :class:`ThompsonSampling` (``condition_on_intuition`` is always true).
    """

    _hyperparameter_names: ClassVar[tuple[str, ...]] = ("prior_successes", "prior_failures")

    def __init__(
        self,
        env: gym.Env | VectorEnv | str | None = None,
        *,
        prior_successes: float = 1.0,
        prior_failures: float = 1.0,
        seed: int | None = None,
        verbose: int = 0,
        tensorboard_log: str | None = None,
    ) -> None:
        super().__init__(
            env,
            prior_successes=prior_successes,
            prior_failures=prior_failures,
            condition_on_intuition=True,
            seed=seed,
            verbose=verbose,
            tensorboard_log=tensorboard_log,
        )


class CausalThompsonSampling(CounterfactualThompsonSampling):
    """Causal Thompson sampling (TS^C; Bareinboim, Forney & Pearl, 2015): counterfactual TS whose cells start
    from observational data, with the paper's weighting of the arm the data argue against.

    1. Seed: the observational rounds of intuition ``x`` (the player followed it) are added to the cell
       ``(x, x)``, whose counterfactual payoff ``E[Y_x | X = x]`` equals the observational ``E[Y | X = x]``.
    2. Weight: each round, ``Q1`` = the best posterior mean of a counter-intuitive cell ``(x, a != x)``,
       ``Q2`` = the observational ``E[Y | X = x]``; the draw of the intuitive arm (if ``Q1 > Q2``) or of the
       counter-intuitive arms (otherwise) is multiplied by ``1 - |Q1 - Q2|``. (With two arms this is the
       paper's rule; with more, the counter-intuitive arms are weighted together.) No data for ``x``: no
       weighting.

    Needs intuitions that are arms (observation and action spaces of the same size).

    :param env: see :class:`BanditAgent`
    :param observational_data: the observational log (``record_observational``), one shared by all copies
        ``(n_arms, n_arms)`` or one per copy ``(n_envs, n_arms, n_arms)``
    :param weighting: apply step 2 (``False``: seeding only)
    :param prior_successes: ``a`` of the ``Beta(a, b)`` prior of every cell, before the seed
    :param prior_failures: ``b`` of the prior
    :param seed: see :class:`BanditAgent`
    :param verbose: see :class:`BanditAgent`
    :param tensorboard_log: see :class:`BanditAgent`
    """

    _hyperparameter_names: ClassVar[tuple[str, ...]] = ("prior_successes", "prior_failures", "weighting")
    _extra_arrays: ClassVar[tuple[str, ...]] = ("observational_successes", "observational_pulls")

    def __init__(
        self,
        env: gym.Env | VectorEnv | str | None = None,
        *,
        observational_data: ObservationalData,
        weighting: bool = True,
        prior_successes: float = 1.0,
        prior_failures: float = 1.0,
        seed: int | None = None,
        verbose: int = 0,
        tensorboard_log: str | None = None,
    ) -> None:
        if not isinstance(observational_data, ObservationalData):
            raise TypeError(
                "observational_data must be an ObservationalData (see record_observational); without data use "
                f"CounterfactualThompsonSampling. Got {type(observational_data).__name__}"
            )
        self.observational_data = observational_data
        self.weighting = bool(weighting)
        self.observational_successes = np.zeros((0, 0, 0))
        self.observational_pulls = np.zeros((0, 0, 0))
        super().__init__(
            env,
            prior_successes=prior_successes,
            prior_failures=prior_failures,
            seed=seed,
            verbose=verbose,
            tensorboard_log=tensorboard_log,
        )

    def _on_spaces_known(self) -> None:
        if self.n_intuitions != self.n_arms:
            raise ValueError(
                f"causal Thompson sampling needs intuitions that are arms; the env has {self.n_intuitions} "
                f"intuition values and {self.n_arms} arms"
            )
        data = self.observational_data
        cell_shape = (self.n_arms, self.n_arms)
        if data.pulls.shape[-2:] != cell_shape or (data.pulls.ndim == 3 and data.pulls.shape[0] != self.n_envs):
            raise ValueError(
                f"observational_data has shape {data.pulls.shape}; this env needs {cell_shape} or "
                f"({self.n_envs}, {self.n_arms}, {self.n_arms})"
            )
        shape = (self.n_envs, *cell_shape)
        self.observational_successes = np.broadcast_to(data.successes, shape).copy()
        self.observational_pulls = np.broadcast_to(data.pulls, shape).copy()

    @classmethod
    def _load_kwargs(cls, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        data = ObservationalData(arrays["observational_successes"], arrays["observational_pulls"])
        return {"observational_data": data}

    def _posterior(self, bandits: np.ndarray, contexts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b = super()._posterior(bandits, contexts)
        seed_successes = self.observational_successes[bandits, contexts]
        return a + seed_successes, b + self.observational_pulls[bandits, contexts] - seed_successes

    def _arm_scores(self, bandits: np.ndarray, contexts: np.ndarray, intuitions: np.ndarray, deterministic: bool):
        a, b = self._posterior(bandits, contexts)
        means = a / (a + b)
        if deterministic:
            return means
        draws = self.rng.beta(a, b)
        if not self.weighting:
            return draws
        intuitive = np.arange(self.n_arms)[None, :] == intuitions[:, None]
        q1 = np.where(intuitive, -np.inf, means).max(axis=1)  # best counter-intuitive cell
        obs_pulls = self.observational_pulls[bandits, intuitions].sum(axis=1)
        obs_successes = self.observational_successes[bandits, intuitions].sum(axis=1)
        has_data = obs_pulls > 0
        q2 = np.divide(obs_successes, obs_pulls, out=np.zeros_like(obs_pulls), where=has_data)  # E[Y | X = x]
        weight = np.where(has_data, 1.0 - np.abs(q1 - q2), 1.0)
        damped = np.where((q1 > q2)[:, None], intuitive, ~intuitive)
        return np.where(damped, draws * weight[:, None], draws)
