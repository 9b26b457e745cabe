"""Q-network policies for :class:`~sb3_causal.algos.maskable_dqn.MaskableDQN`.

Both policies take optional boolean action masks (``True`` = valid): invalid actions get the most
negative finite float as Q-value before any argmax, so a masked greedy action is always valid and
no ``inf``/``NaN`` ever appears (``0 * -inf`` would be ``NaN`` in a terminal target).

- ``MlpPolicy`` (:class:`MaskableDQNPolicy`): SB3's DQN MLP with masks; ``CnnPolicy``
  (:class:`MaskableCnnPolicy`, NatureCNN features) and ``MultiInputPolicy`` (:class:`MaskableMultiInputPolicy`,
  Dict observations), as SB3's DQN has.
- ``DuelingMlpPolicy`` (:class:`DuelingDQNPolicy`): shared trunk, a value and an advantage stream,
  ``Q = V + A - mean(A)``. The mean runs over *all* actions, not only the valid ones: the mask of a
  causal agent changes whenever its graph changes, so a valid-only mean would make ``Q(s, a)`` depend
  on the graph of the moment (and the target net would average over a different set than the online
  net). Subtracting the all-action mean keeps Q a function of the observation alone; it only serves
  identifiability, and a per-state constant never changes which valid action is greedy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
    NatureCNN,
    create_mlp,
)
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn

from sb3_causal.common.maskable.utils import check_action_masks, mask_q_values

__all__ = [
    "DuelingDQNPolicy",
    "DuelingMlpPolicy",
    "MaskableCnnPolicy",
    "MaskableDQNPolicy",
    "MaskableMultiInputPolicy",
    "MaskableQNetwork",
    "MlpPolicy",
]


class MaskableQNetwork(QNetwork):
    """SB3's Q-network whose greedy action skips invalid actions (same constructor as ``QNetwork``)."""

    def _predict(
        self, observation: PyTorchObs, deterministic: bool = True, action_masks: th.Tensor | None = None
    ) -> th.Tensor:
        q_values = mask_q_values(self(observation), action_masks)
        return q_values.argmax(dim=1).reshape(-1)


class DuelingQNetwork(MaskableQNetwork):
    """Dueling Q-network: ``Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a')`` (mean over all actions).

    :param observation_space: Observation space
    :param action_space: Action space
    :param features_extractor: Features extractor
    :param features_dim: Number of features
    :param net_arch: hidden layers of the shared trunk (default ``[64, 64]``)
    :param activation_fn: Activation function
    :param normalize_images: Whether to normalize images or not, dividing by 255.0
    :param stream_arch: hidden layers of each of the value and advantage streams (default none: one linear layer)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        stream_arch: list[int] | None = None,
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor, features_dim, net_arch, activation_fn, normalize_images
        )
        # QNetwork built a single-head MLP in self.q_net; the dueling network replaces it.
        del self.q_net
        self.stream_arch = [] if stream_arch is None else list(stream_arch)
        trunk_dim = self.net_arch[-1] if self.net_arch else features_dim
        self.trunk = nn.Sequential(*create_mlp(features_dim, -1, self.net_arch, activation_fn))
        self.value_stream = nn.Sequential(*create_mlp(trunk_dim, 1, self.stream_arch, activation_fn))
        self.advantage_stream = nn.Sequential(
            *create_mlp(trunk_dim, int(self.action_space.n), self.stream_arch, activation_fn)
        )

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        """
        Predict the Q-values.

        :param obs: Observation
        :return: the Q-value of every action, ``(batch, n_actions)``
        """
        latent = self.trunk(self.extract_features(obs, self.features_extractor))
        advantages = self.advantage_stream(latent)
        return self.value_stream(latent) + advantages - advantages.mean(dim=1, keepdim=True)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(stream_arch=self.stream_arch)
        return data


class MaskableDQNPolicy(DQNPolicy):
    """DQN policy (Q-network and target network) whose actions honour optional action masks.

    Same parameters as SB3's ``DQNPolicy``; ``forward``, ``_predict`` and ``predict`` take ``action_masks``.
    """

    q_net: MaskableQNetwork
    q_net_target: MaskableQNetwork

    def make_q_net(self) -> MaskableQNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return MaskableQNetwork(**net_args).to(self.device)

    def forward(self, obs: PyTorchObs, deterministic: bool = True, action_masks: th.Tensor | None = None) -> th.Tensor:
        return self._predict(obs, deterministic=deterministic, action_masks=action_masks)

    def _predict(self, obs: PyTorchObs, deterministic: bool = True, action_masks: th.Tensor | None = None) -> th.Tensor:
        return self.q_net._predict(obs, deterministic=deterministic, action_masks=action_masks)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """
        Greedy action among the valid ones.

        :param observation: the input observation (single or vectorized)
        :param state: unused (recurrent policies only)
        :param episode_start: unused (recurrent policies only)
        :param deterministic: unused (the greedy policy is deterministic)
        :param action_masks: ``(n_batch, n_actions)`` bool, ``True`` = valid; ``None``: every action is valid
        :return: the actions and the (unchanged) state
        """
        if action_masks is None:
            return super().predict(observation, state, episode_start, deterministic)
        self.set_training_mode(False)
        obs_tensor, vectorized_env = self.obs_to_tensor(observation)
        n_batch = len(next(iter(obs_tensor.values())) if isinstance(obs_tensor, dict) else obs_tensor)
        masks = check_action_masks(action_masks, n_batch, int(self.action_space.n))
        with th.no_grad():
            actions = self._predict(
                obs_tensor, deterministic=deterministic, action_masks=th.as_tensor(masks, device=self.device)
            )
        actions_np = actions.cpu().numpy().reshape((-1, *self.action_space.shape))
        if not vectorized_env:
            actions_np = actions_np.squeeze(axis=0)
        return actions_np, state


class DuelingDQNPolicy(MaskableDQNPolicy):
    """Masked DQN policy with dueling Q-networks (see :class:`DuelingQNetwork`).

    :param observation_space: Observation space
    :param action_space: Action space
    :param lr_schedule: Learning rate schedule (could be constant)
    :param net_arch: hidden layers of the shared trunk (default ``[64, 64]``)
    :param activation_fn: Activation function
    :param features_extractor_class: Features extractor to use.
    :param features_extractor_kwargs: Keyword arguments to pass to the features extractor.
    :param normalize_images: Whether to normalize images or not, dividing by 255.0
    :param optimizer_class: The optimizer to use, ``th.optim.Adam`` by default
    :param optimizer_kwargs: Additional keyword arguments, excluding the learning rate, to pass to the optimizer
    :param stream_arch: hidden layers of each of the value and advantage streams (default none)
    """

    q_net: DuelingQNetwork
    q_net_target: DuelingQNetwork

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        stream_arch: list[int] | None = None,
    ) -> None:
        # Needed by make_q_net(), which DQNPolicy.__init__ calls.
        self.stream_arch = [] if stream_arch is None else list(stream_arch)
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch,
            activation_fn,
            features_extractor_class,
            features_extractor_kwargs,
            normalize_images,
            optimizer_class,
            optimizer_kwargs,
        )

    def make_q_net(self) -> DuelingQNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return DuelingQNetwork(**net_args, stream_arch=self.stream_arch).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(stream_arch=self.stream_arch)
        return data


class MaskableCnnPolicy(MaskableDQNPolicy):
    """:class:`MaskableDQNPolicy` for image observations: NatureCNN features by default (SB3's DQN ``CnnPolicy``).

    :param features_extractor_class: the features extractor (default ``NatureCNN``); the other parameters
        are :class:`MaskableDQNPolicy`'s
    """

    def __init__(self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN, **kwargs: Any):
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


class MaskableMultiInputPolicy(MaskableDQNPolicy):
    """:class:`MaskableDQNPolicy` for Dict observations: CombinedExtractor by default (SB3's DQN ``MultiInputPolicy``).

    :param features_extractor_class: the features extractor (default ``CombinedExtractor``); the other
        parameters are :class:`MaskableDQNPolicy`'s
    """

    def __init__(
        self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor, **kwargs: Any
    ):
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


MlpPolicy = MaskableDQNPolicy
CnnPolicy = MaskableCnnPolicy
MultiInputPolicy = MaskableMultiInputPolicy
DuelingMlpPolicy = DuelingDQNPolicy
