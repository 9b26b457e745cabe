"""CausalDQN: MaskableDQN acting and bootstrapping with the causal mask of its online-learned graph.

``double_q=True`` gives double DQN and ``"DuelingMlpPolicy"`` a dueling network: together the paper's
Causal D3QN. The causal mask enters through MaskableDQN's one mask hook,
:meth:`~sb3_causal.algos.maskable_dqn.MaskableDQN._get_action_masks`, so it masks the random and
epsilon actions and the greedy argmax (with ``eta`` lifts while acting), and the TD target's max: there
the causal part is recomputed at sample time from the current graph without lifts, AND the env mask
stored with the transition, so the target maxes over the actions greedy acting would choose among now.

Lifted rows can be the randomised part of the design (``lift_actions``). The learner compares the rows an
action treated with the rows it did not; under the causal mask the agent treats a variable only where the
graph makes it a root-cause candidate (no active ancestor within reach), so treated rows are systematically
different states from the control rows, and the effect statistics pick up that difference (false ancestor
relations between variables with a common cause, true effects masked). With ``lift_actions="random"`` a
lifted row's action is drawn uniformly among the actions the lift allows (the env's valid ones, or the
chooser's), whatever the state: those treatments are chosen as random-over-active ones are, and dilute the
state-selected ones. ``"greedy"`` (default) acts epsilon-greedily there too (the paper's lift: only the mask
is lifted). On FaultAlarmRL random lifts raised the graph's F1 at 20k steps (tuning networks 0, 1, 7-9:
0.849 -> 0.870; report networks 2-6: 0.831 -> 0.868) at a cost of 0.22 in training return, with twice the
false ancestor relations before pruning on the report networks (30 -> 59); the agents' published figures
use the paper's lift, so it stays the default (README, "FaultAlarmRL, interventions chosen by an agent").
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule

from sb3_causal.algos.causal_base import DEFAULT_UPDATE_FREQ, CausalAlgorithmMixin
from sb3_causal.algos.dqn_policies import MaskableDQNPolicy
from sb3_causal.algos.maskable_dqn import MaskableDQN
from sb3_causal.common.maskable.buffers import MaskableDictReplayBuffer, MaskableReplayBuffer
from sb3_causal.common.maskable.utils import sample_valid_actions
from sb3_causal.discovery.choosers import InterventionChooser
from sb3_causal.graph import CausalGraph
from sb3_causal.masks import MaskProvider
from sb3_causal.masks.causal import DEFAULT_ACTIVITY_THRESHOLD, DEFAULT_K
from sb3_causal.variables import CausalVariables

__all__ = ["DEFAULT_LIFT_ACTIONS", "LIFT_ACTIONS", "CausalDQN"]

#: how a lifted (exploratory) row picks its action: uniformly among the lift's allowed actions, or epsilon-greedily
LIFT_ACTIONS = ("random", "greedy")
DEFAULT_LIFT_ACTIONS = "greedy"

SelfCausalDQN = TypeVar("SelfCausalDQN", bound="CausalDQN")


class CausalDQN(CausalAlgorithmMixin, MaskableDQN):
    """
    MaskableDQN with a causal action mask and online causal structure learning (the paper's Causal DQN / D3QN).

    Defaults follow the paper's Table B3 for Causal DQN / D3QN: learning rate 3e-4, buffer 100000,
    minibatch 64, gamma 0.99, a 2 x 128 MLP, an update every 5 steps (``train_freq=5``), 512 random
    warm-up steps (``learning_starts``), epsilon-greedy 0.1 throughout (``exploration_initial_eps =
    exploration_final_eps = 0.1``), ``eta = 0.2``. The table gives no target-network period; 500 steps.

    The mask (see :mod:`sb3_causal.masks`): the ``k`` most upstream active (unit, variable) pairs of the
    current graph, mapped to their actions, AND the env's ``action_masks()``; with probability ``eta``
    per env and step only the env mask applies (with ``lift_actions="random"`` the step's action is then
    drawn uniformly among the valid ones, see the module doc); an empty AND falls back to the env mask.
    Warm-up and epsilon actions are drawn among the masked actions too. ``predict`` applies the causal mask (no
    ``eta`` lifts) AND any ``action_masks`` the caller passes: the causal mask is part of the policy, so
    sb3-contrib's ``evaluate_policy(use_masking=False)`` drops only the env's masks, not the causal one.

    :param policy: ``"MlpPolicy"``, ``"CnnPolicy"``, ``"MultiInputPolicy"`` or ``"DuelingMlpPolicy"`` (or a
        MaskableDQNPolicy class); image and Dict observations need a ``layout`` over their entries or a mask
        provider with ``uses_graph = False``
    :param env: the env (or its gymnasium id); Discrete actions that map onto causal variables
    :param k: number of top causal candidates the mask keeps per state
    :param eta: probability of lifting the causal mask per env and step
    :param initial_graph: a :class:`CausalGraph` or a method of :func:`~sb3_causal.discovery.initial.initial_graph`
    :param initial_kwargs: data and options of the initial method
    :param layout: how observations and actions map onto causal variables (default: from the env)
    :param learner_kwargs: keyword arguments of :class:`~sb3_causal.discovery.online.OnlineCausalLearner`
    :param graph_update_freq: env steps between graph updates
    :param mask_provider: another :class:`~sb3_causal.masks.MaskProvider` instead of the causal mask
    :param activity_threshold: a state value is active when its absolute value exceeds this
    :param chooser: which interventions an eta-lifted (exploratory) step may take, e.g.
        :class:`~sb3_causal.discovery.choosers.LeastEvidenceChooser` (variables with the least evidence first);
        None: every env-valid action (the paper's lift). Used by the default causal mask only
    :param lift_actions: how an eta-lifted row picks its action while training: ``"greedy"`` (default)
        epsilon-greedily, as in an unlifted row (the paper's lift); ``"random"`` uniformly among the actions the
        lift allows, whatever the state, so the structure learner gets treatments that the state did not select
        (see the module doc). Applies to a provider that reports its lifted rows (``last_lifted``, as
        :class:`~sb3_causal.masks.CausalMask` does); warm-up steps are random either way
    :param double_q: double-DQN targets (with ``"DuelingMlpPolicy"``: D3QN)
    :param policy_kwargs: policy keyword arguments (default ``net_arch=[128, 128]``)
    :param seed: seed of the networks, the env, the initial graph and the mask's eta draws

    The other parameters are :class:`~sb3_causal.algos.maskable_dqn.MaskableDQN`'s.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = MaskableDQN.policy_aliases

    def __init__(
        self,
        policy: str | type[MaskableDQNPolicy],
        env: GymEnv | str,
        k: int = DEFAULT_K,
        eta: float = 0.2,
        initial_graph: str | CausalGraph = "empty",
        initial_kwargs: dict[str, Any] | None = None,
        layout: CausalVariables | None = None,
        learner_kwargs: dict[str, Any] | None = None,
        graph_update_freq: int = DEFAULT_UPDATE_FREQ,
        mask_provider: MaskProvider | None = None,
        activity_threshold: float = DEFAULT_ACTIVITY_THRESHOLD,
        chooser: InterventionChooser | None = None,
        lift_actions: str = DEFAULT_LIFT_ACTIONS,
        learning_rate: float | Schedule = 3e-4,
        buffer_size: int = 100_000,
        learning_starts: int = 512,
        batch_size: int = 64,
        tau: float = 1.0,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 5,
        gradient_steps: int = 1,
        replay_buffer_class: type[MaskableReplayBuffer | MaskableDictReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        target_update_interval: int = 500,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 0.1,
        exploration_final_eps: float = 0.1,
        max_grad_norm: float = 10,
        double_q: bool = False,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        if lift_actions not in LIFT_ACTIONS:
            raise ValueError(f"lift_actions must be one of {LIFT_ACTIONS}, got {lift_actions!r}")
        self.lift_actions = lift_actions
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            n_steps=n_steps,
            target_update_interval=target_update_interval,
            exploration_fraction=exploration_fraction,
            exploration_initial_eps=exploration_initial_eps,
            exploration_final_eps=exploration_final_eps,
            max_grad_norm=max_grad_norm,
            double_q=double_q,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs={"net_arch": [128, 128]} if policy_kwargs is None else policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        self._init_causal(
            k=k,
            eta=eta,
            layout=layout,
            initial_graph=initial_graph,
            initial_kwargs=initial_kwargs,
            learner_kwargs=learner_kwargs,
            graph_update_freq=graph_update_freq,
            mask_provider=mask_provider,
            activity_threshold=activity_threshold,
            chooser=chooser,
            check_env=_init_setup_model,
        )
        if _init_setup_model:
            self._setup_model()

    def _get_action_masks(
        self, observations: np.ndarray | dict[str, np.ndarray], env_action_masks: np.ndarray | None, explore: bool
    ) -> np.ndarray:
        """The provider's masks AND the env's: with ``eta`` lifts while acting, without for the TD target."""
        return self._causal_masks(observations, env_action_masks, explore=explore)

    def random_action_rows(self) -> np.ndarray | None:
        """``(n_envs,)`` bool: the rows whose action this step is drawn uniformly among their valid actions
        because the mask was lifted there (``lift_actions="random"``); None when there are none to report
        (``"greedy"``, or a provider that does not report its lifts). Valid after the step's acting masks
        were computed (``_current_masks``)."""
        if self.lift_actions != "random":
            return None
        lifted = getattr(self.mask_provider, "last_lifted", None)
        if lifted is None or lifted.shape != (self.n_envs,):
            return None
        return lifted

    def _sample_action(
        self, learning_starts: int, action_noise: Any = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """MaskableDQN's epsilon-greedy step, with the lifted rows' actions drawn at random (``lift_actions``)."""
        _, masks = self._current_masks()  # (computes the lifts of this step)
        lifted = self.random_action_rows()
        if masks is None or lifted is None or not lifted.any() or self.num_timesteps < learning_starts:
            return super()._sample_action(learning_starts, action_noise, n_envs)
        rng = self.action_space.np_random
        if lifted.all():
            action = sample_valid_actions(masks, rng)
        else:
            action = self._masked_epsilon_greedy(self._last_obs, masks, deterministic=False)  # type: ignore[arg-type]
            action[lifted] = sample_valid_actions(masks[lifted], rng)
        return action, action

    def learn(
        self: SelfCausalDQN,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "CausalDQN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfCausalDQN:
        return super().learn(
            total_timesteps=total_timesteps,
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )
