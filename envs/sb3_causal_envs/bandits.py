"""Bandits with unobserved confounders (Bareinboim, Forney & Pearl, NeurIPS 2015): ``GreedyCasino-v0`` and a family.

Each round an unobserved confounder ``U`` is drawn (``P(U = u) = confounder_probs[u]``); the player sees only
its *intuition* ``X = intuition[u]``, an arm index (the arm its natural impulse urges), pulls an arm ``a`` and
wins ``Y ~ Bernoulli(payoffs[a, u])``. Because ``U`` drives both ``X`` and ``Y``, three payoffs differ:

- observational ("see"): follow the intuition, ``E[Y | a = X]``;
- interventional ("do"): play a fixed arm, ``E[Y | do(a)] = sum_u P(u) payoffs[a, u]``;
- counterfactual ("imagine"): condition on the intuition, ``E[Y_a | X = x] = sum_u P(u | x) payoffs[a, u]``;
  the best policy that sees only ``X`` plays ``argmax_a E[Y_a | X = x]`` and earns ``optimal_value``.

Greedy Casino: ``B, D ~ Bernoulli(0.5)``, ``X = B xor D``, two arms, ``U = (B, D)`` in the order
(0,0), (0,1), (1,0), (1,1); ``P(Y = 1 | a, B, D)`` is .10 .50 .40 .20 for arm 0 and .50 .10 .20 .40 for
arm 1. Following the intuition pays 0.15, either arm under do() 0.30, playing against the intuition 0.45.

The observation is the intuition (``Discrete(n_arms)``). ``info`` carries, for evaluation only (an agent
must not read it to act): ``confounders`` (the factor values of ``U``), ``confounder_index`` (``u``),
``expected_reward`` (``E[Y_a | X = x]`` of the arm played) and ``regret`` (``max_a E[Y_a | X = x]`` minus
it: the per-round pseudo-regret against the best intuition-conditioned policy). Each step is one round;
the returned observation is the next round's intuition; an episode is truncated after ``max_rounds``.

``ConfoundedBanditVectorEnv`` runs a batch of independent copies with numpy (one draw per copy per round),
registered as the ``vector_entry_point`` so ``gym.make_vec(id, n, vectorization_mode="vector_entry_point")``
builds it; it resets finished copies in the same step (``AutoresetMode.SAME_STEP``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

__all__ = [
    "TABLES",
    "ConfoundedBanditEnv",
    "ConfoundedBanditTable",
    "ConfoundedBanditVectorEnv",
    "GreedyCasinoEnv",
    "GreedyCasinoVectorEnv",
]


@dataclass(frozen=True)
class ConfoundedBanditTable:
    """The structural model of a confounded bandit: payoffs, intuition map and confounder distribution.

    :param payoffs: ``(n_arms, n_confounders)`` win probabilities ``P(Y = 1 | do(a), U = u)``, in [0, 1]
    :param intuition: ``(n_confounders,)`` arm urged by each confounder value (``X = intuition[u]``)
    :param confounder_probs: ``(n_confounders,)`` distribution of ``U``; ``None`` for uniform
    :param confounder_values: ``(n_confounders, n_factors)`` factor values of each ``u`` (reported in
        ``info["confounders"]``); ``None`` for ``u`` itself as a single factor
    :param factor_names: names of the factors of ``U`` (documentation only)
    :param name: a short name
    """

    payoffs: np.ndarray
    intuition: np.ndarray
    confounder_probs: np.ndarray | None = None
    confounder_values: np.ndarray | None = None
    factor_names: tuple[str, ...] = ("U",)
    name: str = "custom"
    # derived, filled in __post_init__
    posterior: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        payoffs = np.asarray(self.payoffs, dtype=np.float64)
        if payoffs.ndim != 2 or payoffs.shape[0] < 2 or payoffs.shape[1] < 1:
            raise ValueError(
                f"payoffs must be a 2-D array (n_arms >= 2, n_confounders >= 1), got shape {payoffs.shape}"
            )
        if not np.all(np.isfinite(payoffs)) or payoffs.min() < 0.0 or payoffs.max() > 1.0:
            raise ValueError(
                f"payoffs are win probabilities and must lie in [0, 1]; got min {payoffs.min()}, max {payoffs.max()}"
            )
        n_arms, n_u = payoffs.shape
        intuition = np.asarray(self.intuition)
        if intuition.shape != (n_u,):
            raise ValueError(f"intuition must have shape (n_confounders,) = ({n_u},), got {intuition.shape}")
        if not np.issubdtype(intuition.dtype, np.integer) or intuition.min() < 0 or intuition.max() >= n_arms:
            raise ValueError(f"intuition must hold arm indices in [0, {n_arms}), got {intuition.tolist()}")
        if self.confounder_probs is None:
            probs = np.full(n_u, 1.0 / n_u)
        else:
            probs = np.asarray(self.confounder_probs, dtype=np.float64)
            if probs.shape != (n_u,):
                raise ValueError(f"confounder_probs must have shape ({n_u},), got {probs.shape}")
            if probs.min() < 0 or not np.isclose(probs.sum(), 1.0):
                raise ValueError(f"confounder_probs must be a distribution (>= 0, sum 1), got {probs.tolist()}")
        if self.confounder_values is None:
            values = np.arange(n_u)[:, None]
        else:
            values = np.asarray(self.confounder_values)
            if values.ndim != 2 or values.shape[0] != n_u:
                raise ValueError(f"confounder_values must have shape ({n_u}, n_factors), got {values.shape}")
        x_probs = np.bincount(intuition, weights=probs, minlength=n_arms)
        # P(u | x), zero rows for intuitions that never occur
        posterior = np.zeros((n_arms, n_u))
        posterior[intuition, np.arange(n_u)] = probs
        posterior = np.divide(posterior, x_probs[:, None], out=np.zeros_like(posterior), where=x_probs[:, None] > 0)
        for name, value in (
            ("payoffs", payoffs),
            ("intuition", intuition.astype(np.int64)),
            ("confounder_probs", probs),
            ("confounder_values", values),
            ("posterior", posterior),
        ):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @property
    def n_arms(self) -> int:
        return int(self.payoffs.shape[0])

    @property
    def n_confounders(self) -> int:
        return int(self.payoffs.shape[1])

    @property
    def intuition_probs(self) -> np.ndarray:
        """``P(X = x)`` for each intuition ``x``."""
        return np.bincount(self.intuition, weights=self.confounder_probs, minlength=self.n_arms)

    @property
    def counterfactual_payoffs(self) -> np.ndarray:
        """``(n_intuitions, n_arms)``: ``E[Y_a | X = x]`` (rows of intuitions that never occur are zero)."""
        return self.posterior @ self.payoffs.T

    @property
    def interventional_payoffs(self) -> np.ndarray:
        """``(n_arms,)``: ``E[Y | do(a)]``."""
        return self.payoffs @ self.confounder_probs

    @property
    def observational_value(self) -> float:
        """``E[Y]`` when every round plays its intuition."""
        return float(self.confounder_probs @ self.payoffs[self.intuition, np.arange(self.n_confounders)])

    @property
    def optimal_value(self) -> float:
        """Value of the best policy that sees the intuition only: ``sum_x P(x) max_a E[Y_a | X = x]``."""
        return float(self.intuition_probs @ self.counterfactual_payoffs.max(axis=1))

    def sample_confounders(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw ``size`` confounder indices ``u``."""
        return rng.choice(self.n_confounders, size=size, p=self.confounder_probs)

    def pull(self, rng: np.random.Generator, arms: np.ndarray, confounders: np.ndarray) -> np.ndarray:
        """Rewards (0.0 / 1.0) of pulling ``arms`` in rounds with confounders ``confounders`` (same shape)."""
        return (rng.random(np.shape(arms)) < self.payoffs[arms, confounders]).astype(np.float64)


# Named tables. Greedy Casino is the reference; the other three were designed by one rule: the intuition's
# own arm pays least given the intuition, a counter-intuitive arm pays most, and the arms' do() payoffs stay
# well below the intuition-conditioned optimum, so a bandit that ignores X must lose >= 0.1 per round while
# one that conditions on X can reach the optimum. They vary the arms (2-4), confounder values (4-8), the
# confounder distribution (uniform / skewed) and the per-context gap (0.5 down to 0.15).
_BD = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
TABLES: dict[str, ConfoundedBanditTable] = {
    # observational 0.15, do() 0.30 / 0.30, counterfactual optimum 0.45
    "greedy_casino": ConfoundedBanditTable(
        payoffs=np.array([[0.10, 0.50, 0.40, 0.20], [0.50, 0.10, 0.20, 0.40]]),
        intuition=np.array([0, 1, 1, 0]),
        confounder_values=_BD,
        factor_names=("B", "D"),
        name="greedy_casino",
    ),
    # wide gap (MABUC-style 0.75 / 0.25): observational 0.25, do() 0.50 / 0.50, optimum 0.75
    "wide_gap": ConfoundedBanditTable(
        payoffs=np.array([[0.20, 0.80, 0.70, 0.30], [0.80, 0.20, 0.30, 0.70]]),
        intuition=np.array([0, 1, 1, 0]),
        confounder_values=_BD,
        factor_names=("B", "D"),
        name="wide_gap",
    ),
    # three arms, U = (B in {0,1,2}, D in {0,1}) skewed, X = (B + D) mod 3; given X = x the best arm is
    # x + 1 (mod 3), the intuition x the worst. observational 0.15, do() 0.30 / 0.33 / 0.32, optimum 0.50.
    "three_arms": ConfoundedBanditTable(
        payoffs=np.array(
            [
                # u = (B, D): (0,0) (0,1) (1,0) (1,1) (2,0) (2,1);  X = 0 1 1 2 2 0
                [0.10, 0.35, 0.25, 0.50, 0.50, 0.20],
                [0.50, 0.10, 0.20, 0.30, 0.35, 0.50],
                [0.30, 0.50, 0.50, 0.10, 0.20, 0.25],
            ]
        ),
        intuition=np.array([0, 1, 1, 2, 2, 0]),
        confounder_probs=np.array([0.20, 0.15, 0.20, 0.15, 0.15, 0.15]),
        confounder_values=np.array([[0, 0], [0, 1], [1, 0], [1, 1], [2, 0], [2, 1]]),
        factor_names=("B", "D"),
        name="three_arms",
    ),
    # four arms, eight confounder values U = (B in 0..3, D in {0,1}), X = B; given X = x the best arm is
    # x + 2 (mod 4) at 0.45, the runner-up x + 1 at 0.30 (gap 0.15), the intuition x at 0.10.
    # observational 0.10, do() about 0.28 each, optimum 0.45.
    "four_arms": ConfoundedBanditTable(
        payoffs=np.array(
            [
                # u = (B, D): (0,0) (0,1) (1,0) (1,1) (2,0) (2,1) (3,0) (3,1)
                [0.05, 0.15, 0.25, 0.25, 0.40, 0.50, 0.30, 0.30],
                [0.30, 0.30, 0.05, 0.15, 0.25, 0.25, 0.40, 0.50],
                [0.40, 0.50, 0.30, 0.30, 0.05, 0.15, 0.25, 0.25],
                [0.25, 0.25, 0.40, 0.50, 0.30, 0.30, 0.05, 0.15],
            ]
        ),
        intuition=np.array([0, 0, 1, 1, 2, 2, 3, 3]),
        confounder_values=np.array([[b, d] for b in range(4) for d in range(2)]),
        factor_names=("B", "D"),
        name="four_arms",
    ),
}


def _resolve_table(
    table: str | ConfoundedBanditTable | None,
    payoffs: Any,
    intuition: Any,
    confounder_probs: Any,
) -> ConfoundedBanditTable:
    if payoffs is not None or intuition is not None:
        if table is not None:
            raise ValueError("pass either table= or payoffs=/intuition=, not both")
        if payoffs is None or intuition is None:
            raise ValueError("a custom confounded bandit needs both payoffs= and intuition=")
        return ConfoundedBanditTable(payoffs=payoffs, intuition=intuition, confounder_probs=confounder_probs)
    if confounder_probs is not None:
        raise ValueError("confounder_probs= needs payoffs= and intuition= (a named table fixes its own)")
    if isinstance(table, ConfoundedBanditTable):
        return table
    if table is None:
        raise ValueError(f"pass table= (one of {sorted(TABLES)}) or payoffs= and intuition=")
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; known tables: {sorted(TABLES)}")
    return TABLES[table]


class ConfoundedBanditEnv(gym.Env):
    """A bandit with an unobserved confounder; the observation is the intuition (see the module docstring).

    :param table: a named table (``TABLES``) or a ``ConfoundedBanditTable``; or give the next three instead
    :param payoffs: ``(n_arms, n_confounders)`` win probabilities in [0, 1]
    :param intuition: ``(n_confounders,)`` the arm each confounder value urges
    :param confounder_probs: distribution of the confounder (default uniform)
    :param max_rounds: rounds per episode (truncation); rounds are independent, so it only sets the
        episode statistics' window
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        table: str | ConfoundedBanditTable | None = None,
        payoffs: Any = None,
        intuition: Any = None,
        confounder_probs: Any = None,
        max_rounds: int = 100,
    ) -> None:
        super().__init__()
        if max_rounds < 1:
            raise ValueError(f"max_rounds must be >= 1, got {max_rounds}")
        self.table = _resolve_table(table, payoffs, intuition, confounder_probs)
        self.max_rounds = int(max_rounds)
        self.observation_space = spaces.Discrete(self.table.n_arms)
        self.action_space = spaces.Discrete(self.table.n_arms)
        self._u = 0
        self._rounds = 0
        self._started = False

    def _draw_round(self) -> int:
        self._u = int(self.table.sample_confounders(self.np_random, 1)[0])
        return int(self.table.intuition[self._u])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        self._rounds = 0
        self._started = True
        return self._draw_round(), {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action must be an arm index in [0, {self.table.n_arms}), got {action!r}")
        arm = int(action)
        u = self._u
        x = int(self.table.intuition[u])
        reward = float(self.table.pull(self.np_random, np.array(arm), np.array(u)))
        conditional = self.table.counterfactual_payoffs[x]
        info = {
            "intuition": x,
            "confounder_index": u,
            "confounders": self.table.confounder_values[u].copy(),
            "expected_reward": float(conditional[arm]),
            "regret": float(conditional.max() - conditional[arm]),
        }
        self._rounds += 1
        truncated = self._rounds >= self.max_rounds
        if truncated:
            self._started = False
        return self._draw_round(), reward, False, truncated, info


class GreedyCasinoEnv(ConfoundedBanditEnv):
    """``GreedyCasino-v0``: the reference table of Bareinboim, Forney & Pearl (2015).

    :param max_rounds: rounds per episode (truncation)
    """

    def __init__(self, max_rounds: int = 100) -> None:
        super().__init__(table="greedy_casino", max_rounds=max_rounds)


class ConfoundedBanditVectorEnv(VectorEnv):
    """``num_envs`` independent copies of a confounded bandit, stepped together with numpy.

    Same arguments as :class:`ConfoundedBanditEnv` plus ``num_envs``. ``info`` holds the same keys as the
    single env, as arrays over the copies. The copies run in lockstep, so all truncate together; they are
    reset in the same step (the returned observation is the new episode's first intuition).

    :param num_envs: number of copies
    """

    metadata: ClassVar[dict[str, Any]] = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        table: str | ConfoundedBanditTable | None = None,
        payoffs: Any = None,
        intuition: Any = None,
        confounder_probs: Any = None,
        max_rounds: int = 100,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if max_rounds < 1:
            raise ValueError(f"max_rounds must be >= 1, got {max_rounds}")
        self.table = _resolve_table(table, payoffs, intuition, confounder_probs)
        self.num_envs = int(num_envs)
        self.max_rounds = int(max_rounds)
        self.single_observation_space = spaces.Discrete(self.table.n_arms)
        self.single_action_space = spaces.Discrete(self.table.n_arms)
        self.observation_space = spaces.MultiDiscrete(np.full(self.num_envs, self.table.n_arms))
        self.action_space = spaces.MultiDiscrete(np.full(self.num_envs, self.table.n_arms))
        self._u = np.zeros(self.num_envs, dtype=np.int64)
        self._rounds = 0
        self._started = False

    def _draw_round(self) -> np.ndarray:
        self._u = self.table.sample_confounders(self.np_random, self.num_envs)
        return self.table.intuition[self._u]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        if seed is not None:
            self._np_random, self._np_random_seed = gym.utils.seeding.np_random(seed)
        self._rounds = 0
        self._started = True
        return self._draw_round(), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        arms = np.asarray(actions)
        if arms.shape != (self.num_envs,) or not np.issubdtype(arms.dtype, np.integer):
            raise ValueError(f"actions must be {self.num_envs} integer arm indices, got {arms!r}")
        if arms.min() < 0 or arms.max() >= self.table.n_arms:
            raise ValueError(f"actions must be arm indices in [0, {self.table.n_arms}), got {arms.tolist()}")
        u = self._u
        x = self.table.intuition[u]
        rewards = self.table.pull(self.np_random, arms, u)
        conditional = self.table.counterfactual_payoffs[x]  # (num_envs, n_arms)
        expected = conditional[np.arange(self.num_envs), arms]
        info = {
            "intuition": x,
            "confounder_index": u,
            "confounders": self.table.confounder_values[u],
            "expected_reward": expected,
            "regret": conditional.max(axis=1) - expected,
        }
        self._rounds += 1
        truncated = np.full(self.num_envs, self._rounds >= self.max_rounds)
        if truncated[0]:
            self._rounds = 0
        return self._draw_round(), rewards, np.zeros(self.num_envs, dtype=bool), truncated, info


class GreedyCasinoVectorEnv(ConfoundedBanditVectorEnv):
    """``num_envs`` independent Greedy Casinos (the vector entry point of ``GreedyCasino-v0``).

    :param num_envs: number of copies
    :param max_rounds: rounds per episode (truncation)
    """

    def __init__(self, num_envs: int = 1, max_rounds: int = 100) -> None:
        super().__init__(num_envs=num_envs, table="greedy_casino", max_rounds=max_rounds)
