"""Warm start of a SAC design policy from the greedy information-gain chooser (a departure from CAASL).

CAASL trains its SAC policy from scratch on millions of episodes. On two CPU cores that is out of reach, so
this module offers an optional warm start, in three parts:

1. :func:`collect_teacher_episodes` runs a teacher on ``CausalDesign-v0`` and records its transitions. The
   teacher :func:`information_gain_action` intervenes on the one variable of largest expected information
   gain (:func:`~sb3_causal.design.chooser.information_gain`) with value ``+value_scale`` (a fixed sign, so
   that the imitated value is well defined; the priors are symmetric in sign).
2. :func:`behaviour_clone` fits the SAC actor to the teacher's actions: a cross-entropy over the target
   entries (which variable) plus a squared error between ``tanh(mean)`` and the teacher action (so that the
   deterministic action intervenes on exactly one variable), and a squared error pulling ``log_std`` to
   ``log_std_target`` (a narrow, still stochastic policy for SAC to start from).
3. :func:`prefill_replay_buffer` puts the teacher's transitions into SAC's replay buffer, and
   :class:`FreezeActorCallback` keeps the actor fixed for the first SAC updates, so that the critics learn
   the cloned policy's values before its gradient moves the actor.

Everything is optional: ``SAC(DesignSACPolicy, env)`` alone is the paper's method. To keep imitating the teacher
while SAC trains, use :class:`~sb3_causal.design.DesignSAC` (its actor loss adds :func:`imitation_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.sac.policies import Actor

from sb3_causal.design.chooser import information_gain

__all__ = [
    "FreezeActorCallback",
    "TeacherData",
    "behaviour_clone",
    "collect_teacher_episodes",
    "imitation_loss",
    "information_gain_action",
    "prefill_replay_buffer",
]


def information_gain_action(env, rng: np.random.Generator, n_outcomes: int = 3) -> np.ndarray:
    """The greedy information-gain action of a ``CausalDesignEnv``: one target, value ``+value_scale``.

    :return: ``(2 d,)`` action: ``+1`` at the chosen target, ``-1`` at the other targets, ``+1`` for every value
    """
    d = env.n_variables
    gains = information_gain(
        env.posterior, *env.data, rng, n_outcomes=n_outcomes, value_scale=env.value_scale, current=env.last_posterior
    )
    action = np.concatenate([-np.ones(d), np.ones(d)])
    action[int(np.argmax(gains))] = 1.0
    return action


@dataclass
class TeacherData:
    """Transitions of teacher episodes (``n`` rows each): what behaviour cloning and the replay buffer take."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    dones: np.ndarray

    def save(self, path: str) -> None:
        np.savez_compressed(path, **self.__dict__)

    @classmethod
    def load(cls, path: str) -> TeacherData:
        with np.load(path) as f:
            return cls(**{key: f[key] for key in cls.__dataclass_fields__})

    def __len__(self) -> int:
        return len(self.actions)


def collect_teacher_episodes(env, n_episodes: int, seed: int, n_outcomes: int = 3) -> TeacherData:
    """Run :func:`information_gain_action` for ``n_episodes`` episodes (env seeds ``seed, seed + 1, ...``)."""
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    rows: dict[str, list[np.ndarray]] = {key: [] for key in TeacherData.__dataclass_fields__}
    for i in range(n_episodes):
        obs, _ = env.reset(seed=seed + i)
        rng = np.random.default_rng(seed + i)
        done = False
        while not done:
            action = information_gain_action(env, rng, n_outcomes)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
            for key, value in zip(rows, (obs, action, reward, next_obs, terminated)):
                rows[key].append(np.asarray(value))
            obs = next_obs
    return TeacherData(**{key: np.stack(values) for key, values in rows.items()})


def imitation_loss(
    actor: Actor, observations: th.Tensor, actions: th.Tensor, log_std_target: float | None = None
) -> th.Tensor:
    """How far ``actor`` is from single-target teacher ``actions`` on ``observations`` (a batch).

    The cross-entropy of the target means (as logits over the variables) against the teacher's target, plus the
    mean squared error between ``tanh(mean)`` and the teacher's action; with ``log_std_target``, plus the mean
    squared error between ``log_std`` and it.
    """
    d = actions.shape[1] // 2
    mean, log_std, _ = actor.get_action_dist_params(observations)
    loss = th.nn.functional.cross_entropy(mean[:, :d], actions[:, :d].argmax(dim=1))
    loss = loss + ((th.tanh(mean) - actions) ** 2).mean()
    if log_std_target is not None:
        loss = loss + ((log_std - log_std_target) ** 2).mean()
    return loss


def behaviour_clone(
    model: SAC,
    data: TeacherData,
    n_updates: int = 2000,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    log_std_target: float = -2.0,
    seed: int = 0,
) -> list[float]:
    """Fit ``model``'s actor to the teacher's actions (see the module docstring); return the loss per update."""
    if len(data) < 1:
        raise ValueError("no teacher transitions to clone")
    actor = model.actor
    if data.observations.shape[1:] != model.observation_space.shape:
        raise ValueError(
            f"teacher observations {data.observations.shape[1:]} do not fit the model's {model.observation_space.shape}"
        )
    obs = th.as_tensor(data.observations, dtype=th.float32, device=model.device)
    act = th.as_tensor(data.actions, dtype=th.float32, device=model.device)
    optimizer = th.optim.Adam(actor.parameters(), lr=learning_rate)
    generator = th.Generator().manual_seed(seed)
    losses = []
    actor.train()
    for _ in range(n_updates):
        idx = th.randint(len(data), (min(batch_size, len(data)),), generator=generator)
        loss = imitation_loss(actor, obs[idx], act[idx], log_std_target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def prefill_replay_buffer(model: SAC, data: TeacherData) -> None:
    """Add the teacher's transitions to ``model.replay_buffer`` (single-env buffer)."""
    if model.n_envs != 1:
        raise ValueError(f"prefill_replay_buffer takes a single-env model, got n_envs={model.n_envs}")
    for i in range(len(data)):
        model.replay_buffer.add(
            data.observations[i : i + 1],
            data.next_observations[i : i + 1],
            data.actions[i : i + 1],
            data.rewards[i : i + 1],
            data.dones[i : i + 1],
            [{}],
        )


class FreezeActorCallback(BaseCallback):
    """Keep the actor's parameters fixed (no gradient) until ``n_steps`` env steps, then release them.

    The critics and the entropy coefficient still learn; only the actor's update has no effect. The SAC update
    that follows env step ``n_steps`` is the first to move the actor.
    """

    def __init__(self, n_steps: int, verbose: int = 0) -> None:
        super().__init__(verbose)
        if n_steps < 0:
            raise ValueError(f"n_steps must be >= 0, got {n_steps}")
        self.n_steps = int(n_steps)
        self.frozen = False

    def _set(self, frozen: bool) -> None:
        self.model.actor.requires_grad_(not frozen)
        self.frozen = frozen

    def _on_training_start(self) -> None:
        self._set(self.num_timesteps < self.n_steps)

    def _on_step(self) -> bool:
        if self.frozen and self.num_timesteps >= self.n_steps:
            self._set(False)
        return True
