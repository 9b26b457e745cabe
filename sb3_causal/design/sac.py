"""SAC with a behaviour-regularised actor for design policies (a departure from CAASL).

:class:`DesignSAC` is SB3's SAC with one change to the actor's objective, the recipe of TD3+BC (Fujimoto & Gu,
2021) applied to SAC: the actor minimises

    ``(ent_coef * log_prob(a_pi | h) - min_k Q_k(h, a_pi)).mean() / q_scale + bc_coef * imitation(h_T, a_T)``

where ``(h_T, a_T)`` is a batch of demonstrations (a teacher's histories and actions,
:class:`~sb3_causal.design.warmstart.TeacherData`), ``imitation`` is
:func:`~sb3_causal.design.warmstart.imitation_loss` (cross-entropy of the target choice plus squared error of
the squashed mean) and ``q_scale`` is ``mean |min_k Q_k|`` over the batch, detached (``normalize_q=True``, as
in TD3+BC, so that ``bc_coef`` does not depend on the scale of the returns). The critics and the entropy
coefficient learn exactly as in SAC. ``bc_coef`` may be annealed linearly to ``bc_coef_final`` over
``bc_anneal_updates`` gradient updates. Without demonstrations it is SAC.

The demonstrations are data, not parameters: they are not saved in the model's zip. Give a path
(``demonstrations="teacher.npz"``, also from a zoo YAML; the path is saved and the file read again at the next
``learn``) or call :meth:`DesignSAC.set_demonstrations`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.utils import polyak_update
from torch.nn import functional as F

from sb3_causal.design.warmstart import TeacherData, imitation_loss

__all__ = ["DesignSAC"]


class DesignSAC(SAC):
    """SAC whose actor loss adds ``bc_coef`` times an imitation loss on demonstrations (see the module docstring).

    :param bc_coef: weight of the imitation loss (TD3+BC's ``1 / alpha``; its ``alpha = 2.5`` gives the
        default 0.4); must be >= 0
    :param bc_coef_final: weight reached after ``bc_anneal_updates`` gradient updates (linear; ``None``: constant)
    :param bc_anneal_updates: length of the linear annealing, in gradient updates counted from the first
    :param normalize_q: divide the SAC actor loss by the batch's detached ``mean |min_k Q_k|`` (TD3+BC)
    :param demonstrations: teacher transitions, or the path of a saved ``TeacherData`` (.npz)
    :param bc_batch_size: demonstrations per gradient update (``None``: SAC's ``batch_size``)
    :param bc_log_std_target: also pull ``log_std`` towards this value on the demonstrations (``None``: leave the
        spread to SAC's entropy term)
    """

    def __init__(
        self,
        policy: Any,
        env: Any,
        bc_coef: float = 0.4,
        bc_coef_final: float | None = None,
        bc_anneal_updates: int = 0,
        normalize_q: bool = True,
        demonstrations: TeacherData | str | None = None,
        bc_batch_size: int | None = None,
        bc_log_std_target: float | None = None,
        **kwargs: Any,
    ) -> None:
        for name, value in (("bc_coef", bc_coef), ("bc_coef_final", bc_coef_final)):
            if value is not None and not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if bc_anneal_updates < 0:
            raise ValueError(f"bc_anneal_updates must be >= 0, got {bc_anneal_updates}")
        if bc_coef_final is not None and bc_anneal_updates == 0:
            raise ValueError("bc_coef_final needs bc_anneal_updates > 0 (the number of updates to reach it)")
        self.bc_coef = float(bc_coef)
        self.bc_coef_final = None if bc_coef_final is None else float(bc_coef_final)
        self.bc_anneal_updates = int(bc_anneal_updates)
        self.normalize_q = bool(normalize_q)
        self.bc_batch_size = bc_batch_size
        self.bc_log_std_target = bc_log_std_target
        self.demonstrations_path = demonstrations if isinstance(demonstrations, str) else None
        self._demo_obs: th.Tensor | None = None
        self._demo_actions: th.Tensor | None = None
        super().__init__(policy, env, **kwargs)
        if isinstance(demonstrations, TeacherData):
            self.set_demonstrations(demonstrations)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_demo_obs", "_demo_actions", "_bc_generator"]

    def set_demonstrations(self, data: TeacherData | str) -> None:
        """Use these teacher transitions (or the ``TeacherData`` saved at this path) for the imitation loss."""
        if isinstance(data, str):
            self.demonstrations_path = data
            data = TeacherData.load(data)
        if len(data) < 1:
            raise ValueError("no demonstrations: the teacher data is empty")
        if data.observations.shape[1:] != self.observation_space.shape:
            raise ValueError(
                f"demonstration histories {data.observations.shape[1:]} do not fit the model's observation space "
                f"{self.observation_space.shape}"
            )
        if data.actions.shape[1:] != self.action_space.shape:
            raise ValueError(
                f"demonstration actions {data.actions.shape[1:]} do not fit the action space {self.action_space.shape}"
            )
        if not (np.all(np.isfinite(data.observations)) and np.all(np.isfinite(data.actions))):
            raise ValueError("the demonstrations contain non-finite values")
        self._demo_obs = th.as_tensor(data.observations, dtype=th.float32, device=self.device)
        self._demo_actions = th.as_tensor(data.actions, dtype=th.float32, device=self.device)
        self._bc_generator = th.Generator().manual_seed(0 if self.seed is None else int(self.seed))

    def current_bc_coef(self) -> float:
        """The imitation weight at the next gradient update (0 without demonstrations)."""
        if self._demo_obs is None:
            return 0.0
        if self.bc_coef_final is None:
            return self.bc_coef
        progress = min(1.0, self._n_updates / self.bc_anneal_updates)
        return self.bc_coef + progress * (self.bc_coef_final - self.bc_coef)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        if self._demo_obs is None and self.demonstrations_path is not None:
            self.set_demonstrations(self.demonstrations_path)
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rate(optimizers)
        actor_moves = any(p.requires_grad for p in self.actor.parameters())  # FreezeActorCallback
        logs: dict[str, list[float]] = {key: [] for key in ("ent_coef", "critic_loss", "actor_loss", "bc_loss")}

        for _ in range(gradient_steps):
            batch = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = batch.discounts if batch.discounts is not None else self.gamma
            if self.use_sde:
                self.actor.reset_noise()
            actions_pi, log_prob = self.actor.action_log_prob(batch.observations)
            log_prob = log_prob.reshape(-1, 1)

            if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                ent_coef = th.exp(self.log_ent_coef.detach())
                assert isinstance(self.target_entropy, float)
                ent_coef_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
                self.ent_coef_optimizer.zero_grad()
                ent_coef_loss.backward()
                self.ent_coef_optimizer.step()
            else:
                ent_coef = self.ent_coef_tensor
            logs["ent_coef"].append(float(ent_coef))

            with th.no_grad():
                next_actions, next_log_prob = self.actor.action_log_prob(batch.next_observations)
                next_q = th.cat(self.critic_target(batch.next_observations, next_actions), dim=1).min(dim=1).values
                next_q = next_q.reshape(-1, 1) - ent_coef * next_log_prob.reshape(-1, 1)
                target_q = batch.rewards + (1 - batch.dones) * discounts * next_q
            critic_loss = 0.5 * sum(F.mse_loss(q, target_q) for q in self.critic(batch.observations, batch.actions))
            assert isinstance(critic_loss, th.Tensor)
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()
            logs["critic_loss"].append(float(critic_loss.detach()))

            if actor_moves:
                min_q_pi = th.cat(self.critic(batch.observations, actions_pi), dim=1).min(dim=1, keepdim=True).values
                actor_loss = (ent_coef * log_prob - min_q_pi).mean()
                if self.normalize_q:
                    actor_loss = actor_loss / min_q_pi.abs().mean().detach().clamp(min=1e-6)
                bc_coef = self.current_bc_coef()
                if bc_coef > 0:
                    assert self._demo_obs is not None and self._demo_actions is not None
                    n_demo = min(self.bc_batch_size or batch_size, len(self._demo_obs))
                    idx = th.randint(len(self._demo_obs), (n_demo,), generator=self._bc_generator)
                    bc_loss = imitation_loss(
                        self.actor, self._demo_obs[idx], self._demo_actions[idx], self.bc_log_std_target
                    )
                    actor_loss = actor_loss + bc_coef * bc_loss
                    logs["bc_loss"].append(float(bc_loss.detach()))
                self.actor.optimizer.zero_grad()
                actor_loss.backward()
                self.actor.optimizer.step()
                logs["actor_loss"].append(float(actor_loss.detach()))

            self._n_updates += 1
            if self._n_updates % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/bc_coef", self.current_bc_coef())
        for key, values in logs.items():
            if values:
                self.logger.record(f"train/{key}", np.mean(values))
