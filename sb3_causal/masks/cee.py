"""Action-space reduction by causal effect estimation (CEE, seed 004) as a mask provider.

"Reducing Action Space for Deep RL via Causal Effect Estimation" masks the actions whose effect on the
next state duplicates another action's, using two networks trained on exploration data (phase 1,
:meth:`CEEMask.pretrain`):

* an inverse dynamics model (IDM) ``p(a | s, s')``, trained by cross-entropy;
* an N-value network ``N(s, a)[b]``, regressed on ``log p_IDM(b | s, s') - log pi(b | s)`` for every
  action ``b``, where ``s'`` follows ``(s, a)`` and ``pi`` is the policy that *collected* the transition
  (its probabilities are stored with it; uniform over the env-valid actions by default). ``N(s, a)[a]``
  estimates the KL causal effect of ``a`` on ``s'``; ``N(s, a_j)[j] - N(s, a_i)[j]`` the divergence
  between the next-state distributions of ``a_i`` and ``a_j``. One forward pass gives ``N(s, a)`` for
  every ``a`` (an ``|A| x |A|`` head), so a mask costs one small network call per batch of states.

Phase 1 (:meth:`CEEMask.pretrain`) collects the exploration data into a replay buffer (by default each
state's valid actions drawn without replacement, so rare ``(s, a)`` pairs are covered), then
:meth:`CEEMask.fit` trains the IDM over the whole buffer in epochs until its held-out loss stops
improving, and only then the N-network, on targets from the converged IDM. The fit ends with a collapse
check on the held-out data: an IDM no better than the collecting policy, or clusters that throw away
what the IDM knows about the actions, are reported (``UserWarning``) and by default the mask then allows
every env-valid action instead of one per (collapsed) cluster.

The mask of a state ``s`` (phase 2, :meth:`CEEMask.__call__`), per env and per state:

1. ``M = N(s, .)``; effects ``e_i = M[i, i]``; ``SF[i, j] = e_j - M[i, j]``;
2. greedy clustering in index order over the env-valid actions: ``j`` joins the cluster of the first
   unclustered ``i`` when ``max(SF[i, j], SF[j, i]) < epsilon`` (and, with ``split_observed``, when the
   replay buffer never saw ``j`` and a member lead to disjoint next states from this exact state);
3. in a cluster of more than one action, the relative causal effects are ``softmax(e / temperature)``
   over its members; the members whose share is ``>= tau`` are kept; a cluster where no member reaches
   ``tau`` keeps its best member (the highest share; near-ties within ``tie_tolerance`` go to the lowest
   index, so the representative of exact duplicates is stable across states). A singleton always stays.
   No cluster is ever masked entirely (the authors' code masks such a cluster, and can mask everything);
4. the result is ANDed with the env's own mask (:func:`~sb3_causal.masks.base.combine_with_env_masks`).

``keep="random"`` is the paper's NPM baseline: the same clusters, one uniformly random member kept per
cluster and call (the provider's seeded generator).

The authors' code has defects this module does not copy: its mask is averaged over a batch of envs (here:
one mask per state); the ``pi`` of its N target is the live policy (here: the collecting policy's stored
probabilities); a cluster with no member above ``tau`` masks everything (here: its best member stays); an
under-trained IDM silently merges every action into one cluster (here: detected, see :meth:`CEEMask.fit`).
Acting and learning with the same mask is the algorithm's job: :class:`~sb3_causal.masks.wrappers.
MaskProviderVecEnv` makes sb3-contrib's MaskablePPO store exactly the mask it acted with.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv
from torch import nn
from torch.nn import functional as F

from sb3_causal.graph import CausalGraph
from sb3_causal.masks.base import combine_with_env_masks

__all__ = ["CEEMask"]

#: collecting policy: (observations (n_envs, *obs_shape), env masks (n_envs, n_actions) bool) -> probabilities
CollectPolicy = Callable[[np.ndarray, np.ndarray], np.ndarray]

_LOG_EPS = float(np.log(1e-8))  # floor of log p_IDM, as the paper's eps 1e-8


def _mlp(n_in: int, n_out: int, net_arch: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in net_arch:
        layers += [nn.Linear(n_in, width), nn.ReLU()]
        n_in = width
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class CEEMask(nn.Module):
    """CEE's causal-effect action mask: an IDM and an N-value network, pre-trained, then clustered per state.

    See the module doc for the rule. Train it with :meth:`pretrain` before asking for masks.

    :param observation_space: the env's observation space (a ``Box``; flattened, scaled to [0, 1] by its
        bounds when they are finite)
    :param action_space: the env's action space (``Discrete`` only: the paper covers discrete actions)
    :param epsilon: two actions are one cluster when both estimated divergences are below it (> 0)
    :param tau: a cluster member is kept when its relative causal effect reaches it, in (0, 1]
    :param temperature: temperature of the softmax of the relative causal effects (> 0)
    :param keep: ``"effect"`` (CEE: the members reaching ``tau``, else the best) or ``"random"`` (NPM: one
        random member per cluster)
    :param tie_tolerance: shares within this of a cluster's best count as ties (lowest index wins), >= 0
    :param net_arch: hidden layer widths of both networks
    :param learning_rate: Adam learning rate of both networks
    :param batch_size: minibatch size of pre-training
    :param buffer_size: capacity (transitions) of the pre-training replay buffer (every transition collected
        is trained on: a full buffer is fitted before it is overwritten)
    :param validation_fraction: fraction of the stored transitions held out for early stopping and the
        collapse check, in (0, 0.5]
    :param max_epochs: most epochs over the buffer per network and fit
    :param patience: epochs without a better held-out loss before a network's training stops
    :param min_retained: the clusters must keep at least this fraction of the IDM's held-out information
        about the actions, in [0, 1] (see :meth:`fit`); 0 turns that check off
    :param guard: what a detected collapse does (see :meth:`fit`): ``"allow_all"`` (warn, serve every
        env-valid action), ``"warn"`` (warn, keep the clusters) or ``"raise"``
    :param balance_pairs: weigh each training transition by one over the number of stored transitions with the
        same ``(s, s')`` (IDM loss) or the same ``(s, a)`` (N-network loss), so every distinct pair weighs the
        same: the per-pair optimum (the IDM's conditional, the N target) is unchanged, but a rare transition
        (a door that opens only when the key is held) is not drowned by a frequent one (turning in place) and
        learned before early stopping ends the fit. Envs whose states never repeat are unaffected. ``False``:
        every transition weighs the same
    :param split_observed: never put two actions in one cluster in a state where the replay buffer shows them
        leading to disjoint sets of next states (both tried from that exact state): the networks generalise
        over states and can miss a rare effect (the key opening the door, seen a few times in thousands of
        transitions), the data cannot. Only splits clusters (keeps more actions, never fewer); a no-op where
        states do not repeat. The table of such states is saved with the weights
    :param cache_size: states whose masks are memoised (a mask is a function of the state and the env mask
        while the networks are fixed; the memo is cleared when full and when the networks change); 0: none
    :param seed: seed of the networks' initialisation, of pre-training's action and minibatch draws and of
        NPM's draws
    """

    #: CEE needs no causal graph: the causal algorithms build no variable layout or graph learner for it
    uses_graph: ClassVar[bool] = False

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        epsilon: float = 0.5,
        tau: float = 0.8,
        temperature: float = 1.0,
        keep: str = "effect",
        tie_tolerance: float = 0.05,
        net_arch: tuple[int, ...] | list[int] = (128, 64),
        learning_rate: float = 3e-3,
        batch_size: int = 256,
        buffer_size: int = 100_000,
        validation_fraction: float = 0.1,
        max_epochs: int = 200,
        patience: int = 5,
        min_retained: float = 0.5,
        guard: str = "allow_all",
        balance_pairs: bool = True,
        split_observed: bool = True,
        cache_size: int = 100_000,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(action_space, spaces.Discrete):
            raise TypeError(
                "CEEMask needs a Discrete action space (the CEE paper covers discrete actions only), "
                f"got {action_space}"
            )
        if not isinstance(observation_space, spaces.Box):
            raise TypeError(
                f"CEEMask needs a Box observation space (flattened for its networks), got {observation_space}"
            )
        if not 0.0 < float(tau) <= 1.0:
            raise ValueError(
                f"tau (the relative causal effect an action must reach to be kept) must be in (0, 1], got {tau!r}"
            )
        if not float(epsilon) > 0.0:
            raise ValueError(
                f"epsilon (the divergence below which two actions are one cluster) must be > 0, got {epsilon!r}"
            )
        if not float(temperature) > 0.0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        if keep not in ("effect", "random"):
            raise ValueError(f"keep must be 'effect' (CEE) or 'random' (NPM), got {keep!r}")
        if not float(tie_tolerance) >= 0.0:
            raise ValueError(f"tie_tolerance must be >= 0, got {tie_tolerance!r}")
        if not 0.0 < float(validation_fraction) <= 0.5:
            raise ValueError(f"validation_fraction must be in (0, 0.5], got {validation_fraction!r}")
        if max_epochs < 1 or patience < 1:
            raise ValueError(f"max_epochs and patience must be >= 1, got {max_epochs!r}, {patience!r}")
        if not 0.0 <= float(min_retained) <= 1.0:
            raise ValueError(f"min_retained must be in [0, 1], got {min_retained!r}")
        if guard not in ("allow_all", "warn", "raise"):
            raise ValueError(f"guard must be 'allow_all', 'warn' or 'raise', got {guard!r}")
        if len(net_arch) < 1:
            raise ValueError("net_arch needs at least one hidden layer")
        if batch_size < 1 or buffer_size < batch_size:
            raise ValueError(
                f"need 1 <= batch_size <= buffer_size, got batch_size={batch_size}, buffer_size={buffer_size}"
            )
        self.observation_space = observation_space
        self.action_space = action_space
        self.obs_shape = tuple(int(d) for d in observation_space.shape)
        self.obs_dim = int(np.prod(self.obs_shape))
        self.n_actions = int(action_space.n)
        low, high = float(np.min(observation_space.low)), float(np.max(observation_space.high))
        finite = np.isfinite(low) and np.isfinite(high) and high > low
        self._obs_offset, self._obs_scale = (low, 1.0 / (high - low)) if finite else (0.0, 1.0)
        self.epsilon = float(epsilon)
        self.tau = float(tau)
        self.temperature = float(temperature)
        self.keep = keep
        self.tie_tolerance = float(tie_tolerance)
        self.net_arch = tuple(int(w) for w in net_arch)
        self.learning_rate = float(learning_rate)
        self.batch_size = int(batch_size)
        self.buffer_size = int(buffer_size)
        self.validation_fraction = float(validation_fraction)
        self.max_epochs = int(max_epochs)
        self.patience = int(patience)
        self.min_retained = float(min_retained)
        self.guard = guard
        self.balance_pairs = bool(balance_pairs)
        self.split_observed = bool(split_observed)
        #: per repeated state (its flat bytes): the (A, A) pairs of actions seen to lead to disjoint next states
        self._apart: dict[bytes, np.ndarray] = {}
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size!r}")
        self.cache_size = int(cache_size)
        self._cache: dict[bytes, np.ndarray] = {}
        self.seed = seed
        self.rng = np.random.default_rng(seed)

        with th.random.fork_rng(enabled=seed is not None):
            if seed is not None:
                th.manual_seed(seed)
            self.idm = _mlp(2 * self.obs_dim, self.n_actions, self.net_arch)
            # N(s, a)[b] for every a at once: a trunk, then an (a, b) head; training gathers the rows of the taken a
            self.n_trunk = nn.Sequential(*_mlp(self.obs_dim, 1, self.net_arch)[:-1])
            self.n_head = nn.Linear(self.net_arch[-1], self.n_actions**2)
        self.register_buffer("pretrained_steps", th.zeros((), dtype=th.int64))
        #: whether the last fit found the clusters unsupported by the data (saved with the weights)
        self.register_buffer("collapse_detected", th.zeros((), dtype=th.bool))
        self.idm_optimizer = th.optim.Adam(self.idm.parameters(), lr=self.learning_rate)
        self.n_optimizer = th.optim.Adam(self._n_modules().parameters(), lr=self.learning_rate)
        # pre-training replay buffer (not saved: a reloaded mask resumes with a fresh buffer); flat, scaled
        self._buf_obs = np.zeros((self.buffer_size, self.obs_dim), dtype=np.float32)
        self._buf_next = np.zeros((self.buffer_size, self.obs_dim), dtype=np.float32)
        self._buf_action = np.zeros(self.buffer_size, dtype=np.int64)
        self._buf_log_pi = np.zeros((self.buffer_size, self.n_actions), dtype=np.float32)
        self._buf_valid = np.zeros((self.buffer_size, self.n_actions), dtype=bool)
        self._buf_pos = 0
        self._buf_full = False
        #: one dict of figures per fit (:meth:`fit`): losses, accuracies, epochs, the collapse check
        self.pretrain_log: list[dict[str, float]] = []
        self.reset_stats()

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments (:meth:`from_config` rebuilds an untrained twin)."""
        return {
            "observation_space": {
                "shape": list(self.obs_shape),
                "dtype": str(self.observation_space.dtype),
                "low": float(np.min(self.observation_space.low)),
                "high": float(np.max(self.observation_space.high)),
            },
            "n_actions": self.n_actions,
            "epsilon": self.epsilon,
            "tau": self.tau,
            "temperature": self.temperature,
            "keep": self.keep,
            "tie_tolerance": self.tie_tolerance,
            "net_arch": list(self.net_arch),
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "buffer_size": self.buffer_size,
            "validation_fraction": self.validation_fraction,
            "max_epochs": self.max_epochs,
            "patience": self.patience,
            "min_retained": self.min_retained,
            "guard": self.guard,
            "balance_pairs": self.balance_pairs,
            "split_observed": self.split_observed,
            "cache_size": self.cache_size,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CEEMask:
        """Rebuild a mask from :meth:`get_config` (weights follow with ``load_state_dict``)."""
        config = dict(config)
        obs = config.pop("observation_space")
        observation_space = spaces.Box(obs["low"], obs["high"], shape=tuple(obs["shape"]), dtype=np.dtype(obs["dtype"]))
        action_space = spaces.Discrete(config.pop("n_actions"))
        return cls(observation_space, action_space, **config)

    # ------------------------------------------------------------------ networks
    @property
    def is_pretrained(self) -> bool:
        """Whether :meth:`pretrain` has run (saved with the weights)."""
        return int(self.pretrained_steps) > 0

    def _flat(self, observations: Any, what: str = "observations") -> np.ndarray:
        obs = np.asarray(observations)
        if obs.shape[1:] != self.obs_shape:
            raise ValueError(
                f"CEEMask {what} have shape {obs.shape} (batch first), expected (batch, "
                f"{', '.join(map(str, self.obs_shape))}): "
                "the IDM and N-network take the env's observations as they were pre-trained on"
            )
        flat = obs.reshape(obs.shape[0], self.obs_dim).astype(np.float32)
        return ((flat - self._obs_offset) * self._obs_scale).astype(np.float32)

    def n_values(self, observations: np.ndarray) -> np.ndarray:
        """``N(s, a)[b]`` for every state of the batch: ``(batch, n_actions (a), n_actions (b))``."""
        self._check_pretrained()
        return self._n_values_flat(self._flat(observations))

    def _n_values_flat(self, flat: np.ndarray) -> np.ndarray:
        with th.no_grad():
            out = self.n_head(self.n_trunk(th.as_tensor(flat)))
        return out.view(-1, self.n_actions, self.n_actions).numpy()

    def idm_log_probs(self, observations: np.ndarray, next_observations: np.ndarray) -> np.ndarray:
        """``log p_IDM(a | s, s')``, ``(batch, n_actions)``."""
        self._check_pretrained()
        obs = th.as_tensor(self._flat(observations))
        pair = self._idm_input(obs, th.as_tensor(self._flat(next_observations, "next observations")))
        with th.no_grad():
            return F.log_softmax(self.idm(pair), dim=1).numpy()

    def _check_pretrained(self) -> None:
        if not self.pretrained_steps.item():
            raise RuntimeError(
                "CEEMask is not pre-trained: call mask.pretrain(env, n_steps) (phase 1) before asking for masks"
            )

    # ------------------------------------------------------------------ phase 1
    def pretrain(
        self,
        env: gym.Env | VecEnv,
        n_steps: int,
        *,
        policy: CollectPolicy | None = None,
        balanced: bool = True,
        progress_bar: bool = False,
        logger: Logger | None = None,
        seed: int | None = None,
    ) -> CEEMask:
        """Phase 1: collect ``n_steps`` env steps with an exploration policy, then fit the IDM and N-network.

        The transitions go to the replay buffer; when they are collected, :meth:`fit` trains the IDM on the
        whole buffer to convergence, then the N-network on the converged IDM's targets (also whenever
        ``buffer_size`` new transitions arrived, so no data is dropped unused), then checks the result for a
        collapse (see :meth:`fit`). Resumable: calling it again adds data and refits the same networks (the
        env is reset at the start of each call).

        :param env: the env (or VecEnv) the mask will be used on; its ``action_masks()`` are honoured
        :param n_steps: env steps to collect in this call (summed over a VecEnv's envs)
        :param policy: the collecting policy, ``(obs, env_masks) -> (n_envs, n_actions)`` probabilities;
            default uniform over the env-valid actions. Its probabilities are stored and used in the N target.
        :param balanced: with the default policy, draw the actions of each observed state without replacement
            (a shuffled deck of its valid actions per state, refilled when empty; at most ``buffer_size``
            states remembered): every action of a state is tried before one is repeated. The marginal
            probabilities stay uniform (those are stored); only the coverage of rare ``(s, a)`` pairs
            improves. On envs whose states never repeat it is plain uniform sampling.
        :param progress_bar: show a tqdm progress bar of the collection
        :param logger: an SB3 logger to record each fit's figures to (``cee/*``, dumped after each fit)
        :param seed: seed of the env's reset (None: the env's own seeding)
        :return: self
        """
        if n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {n_steps!r}")
        venv = env if isinstance(env, VecEnv) else DummyVecEnv([lambda: env])
        self._check_env(venv)
        self.clear_cache()
        n_envs = venv.num_envs
        has_masks = venv.has_attr("action_masks")
        if seed is not None:
            venv.seed(seed)
        obs = venv.reset()
        bar = None
        if progress_bar:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_steps, desc="CEE pre-training", unit="step")
        done_steps, since_fit = 0, 0
        decks: dict[bytes, list[int]] = {}
        while done_steps < n_steps:
            valid = np.stack(venv.env_method("action_masks")).astype(bool) if has_masks else None
            valid = np.ones((n_envs, self.n_actions), dtype=bool) if valid is None else valid
            if policy is None:
                probs = valid / valid.sum(axis=1, keepdims=True)
                if balanced:
                    actions = self._deck_actions(np.asarray(obs), valid, decks)
            else:
                probs = np.asarray(policy(np.asarray(obs), valid), dtype=np.float64)
                if probs.shape != (n_envs, self.n_actions) or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-4):
                    raise ValueError(f"policy must return (n_envs, n_actions) probabilities, got shape {probs.shape}")
            if policy is not None or not balanced:
                cum = probs.cumsum(axis=1)
                actions = np.minimum((cum < self.rng.random((n_envs, 1)) * cum[:, -1:]).sum(axis=1), self.n_actions - 1)
            new_obs, _, dones, infos = venv.step(actions)
            next_obs = np.array(new_obs, copy=True)
            for i, done in enumerate(dones):
                if done:  # the true successor, never the next episode's first observation
                    next_obs[i] = infos[i]["terminal_observation"]
            self._store(obs, actions, next_obs, probs, valid)
            obs = new_obs
            done_steps += n_envs
            since_fit += n_envs
            self.pretrained_steps += n_envs
            if bar is not None:
                bar.update(n_envs)
            if since_fit >= self.buffer_size and done_steps < n_steps:
                self._fit_and_log(logger, bar)
                since_fit = 0
        self._fit_and_log(logger, bar)
        if bar is not None:
            bar.close()
        return self

    def _deck_actions(self, obs: np.ndarray, valid: np.ndarray, decks: dict[bytes, list[int]]) -> np.ndarray:
        """One action per env, drawn without replacement from its state's deck of valid actions."""
        actions = np.empty(len(obs), dtype=np.int64)
        for i in range(len(obs)):
            key = obs[i].tobytes() + valid[i].tobytes()
            deck = decks.get(key)
            if not deck:
                if len(decks) >= self.buffer_size:
                    decks.clear()
                deck = decks[key] = list(self.rng.permutation(np.flatnonzero(valid[i])))
            actions[i] = deck.pop()
        return actions

    def _fit_and_log(self, logger: Logger | None, bar: Any) -> None:
        record = self.fit()
        if logger is not None:
            for key, value in record.items():
                logger.record(f"cee/{key}", value)
            logger.dump(int(self.pretrained_steps))
        if bar is not None:
            bar.set_postfix(
                idm_val_acc=f"{record['idm_val_accuracy']:.3f}",
                retained=f"{record['cluster_information_retained']:.2f}",
            )

    def fit(self) -> dict[str, float]:
        """Train the IDM, then the N-network, on the replay buffer; check the clusters; return the figures.

        Every ``round(1 / validation_fraction)``-th stored transition is held out. The IDM is trained by
        cross-entropy in epochs of shuffled minibatches until its held-out loss has not improved for
        ``patience`` epochs (at most ``max_epochs``) and its best weights are kept; then the N-network's
        targets are computed once from that IDM and the N-network is trained the same way.

        The collapse check, on the held-out transitions (``s, a, s'``, collecting policy ``pi``):

        * information gain: ``mean(log p_IDM(a | s, s') - log pi(a | s))`` in nats; the IDM is *informative*
          when the gain exceeds three standard errors (an IDM no better than ``pi`` carries no information
          about the actions' effects, and its N values merge every action into one cluster);
        * information retained by the clusters: the same gain for the IDM's probabilities pooled within
          the estimated clusters of ``s`` (``p(C(a)) * pi(a) / pi(C(a))``) over the IDM's own gain. Right
          clusters lose nothing (1, or more when pooling averages out the IDM's noise); clusters that merge
          actions the IDM tells apart lose information (a single cluster: 0).

        When the IDM is not informative or the clusters retain less than ``min_retained``, the mask warns
        (``UserWarning``), sets :attr:`collapse_detected`, and by ``guard``: ``"allow_all"`` serves every
        env-valid action until a later fit passes, ``"warn"`` keeps the clusters, ``"raise"`` raises.

        :return: the figures (also appended to :attr:`pretrain_log`)
        """
        n = self._buffer_len()
        period = max(round(1.0 / self.validation_fraction), 2)
        held = (np.arange(n) % period) == period - 1
        train_idx, val_idx = np.flatnonzero(~held), np.flatnonzero(held)
        if val_idx.size < 1 or train_idx.size < 1:
            raise ValueError(f"fit needs at least {period} transitions (one held out), the buffer has {n}")
        self.clear_cache()
        obs, nxt = th.as_tensor(self._buf_obs[:n]), th.as_tensor(self._buf_next[:n])
        actions = th.as_tensor(self._buf_action[:n])
        log_pi = th.as_tensor(self._buf_log_pi[:n])
        valid = th.as_tensor(self._buf_valid[:n])
        pair = self._idm_input(obs, nxt)

        idm_weight = th.as_tensor(self._pair_weights(self._buf_obs[:n], self._buf_next[:n]))

        def idm_loss(idx: np.ndarray) -> tuple[th.Tensor, th.Tensor]:
            logits = self.idm(pair[idx])
            w = idm_weight[idx]
            loss = (F.cross_entropy(logits, actions[idx], reduction="none") * w).sum() / w.sum()
            return loss, (logits.argmax(dim=1) == actions[idx]).float().mean()

        idm_fit = self._train_until_stale(self.idm, self.idm_optimizer, idm_loss, train_idx, val_idx)
        with th.no_grad():
            log_p = F.log_softmax(self.idm(pair), dim=1)
            target = log_p.clamp_min(_LOG_EPS) - log_pi
        weight = valid.float()  # (n, A): the entries of the N target that count
        n_weight = th.as_tensor(self._pair_weights(self._buf_obs[:n], self._buf_action[:n, None]))[:, None]

        def n_loss(idx: np.ndarray) -> tuple[th.Tensor, th.Tensor]:
            pred = self._n_rows(obs[idx], actions[idx])
            w = weight[idx] * n_weight[idx]
            return (((pred - target[idx]) ** 2) * w).sum() / w.sum(), th.zeros(())

        n_fit = self._train_until_stale(self._n_modules(), self.n_optimizer, n_loss, train_idx, val_idx)
        record = {
            "steps": float(int(self.pretrained_steps)),
            "transitions": float(n),
            "idm_loss": idm_fit["loss"],
            "idm_accuracy": idm_fit["accuracy"],
            "idm_val_loss": idm_fit["val_loss"],
            "idm_val_accuracy": idm_fit["val_accuracy"],
            "idm_epochs": idm_fit["epochs"],
            "n_loss": n_fit["loss"],
            "n_val_loss": n_fit["val_loss"],
            "n_epochs": n_fit["epochs"],
        }
        record.update(self._collapse_check(val_idx, log_p[val_idx].numpy()))
        self.pretrain_log.append(record)
        self.collapse_detected.fill_(bool(record["collapse_detected"]))
        if record["collapse_detected"]:
            message = (
                f"CEEMask: the action clusters are not supported by the data after {int(self.pretrained_steps)} "
                f"pre-training steps (held-out IDM accuracy {record['idm_val_accuracy']:.3f}, "
                f"uniform guess {record['chance_accuracy']:.3f}; information gain {record['idm_information_gain']:.4f} "
                f"nats, informative: {bool(record['idm_informative'])}; clusters retain "
                f"{record['cluster_information_retained']:.2f} of it, {record['clusters_per_state']:.2f} clusters "
                "per state): pre-train longer. "
                + {
                    "allow_all": "The mask allows every env-valid action until a fit passes (guard='allow_all').",
                    "warn": "The clusters are used anyway (guard='warn').",
                    "raise": "",
                }[self.guard]
            )
            if self.guard == "raise":
                raise RuntimeError(message + "(guard='raise')")
            warnings.warn(message, UserWarning, stacklevel=3)
        self._build_apart()
        self.clear_cache()
        return record

    @staticmethod
    def _row_ids(rows: np.ndarray) -> np.ndarray:
        """An id per row of a 2-d array, equal for equal rows."""
        rows = np.ascontiguousarray(rows)
        keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
        return np.unique(keys, return_inverse=True)[1].ravel()

    def _build_apart(self) -> None:
        """The states of the buffer where two tried actions led to disjoint sets of next states."""
        self._apart = {}
        n = self._buffer_len()
        if not self.split_observed or n == 0:
            return
        s_id, t_id = self._row_ids(self._buf_obs[:n]), self._row_ids(self._buf_next[:n])
        first = np.full(int(s_id.max()) + 1, -1, dtype=np.int64)
        first[s_id[::-1]] = np.arange(n)[::-1]  # a buffer row of each state
        triples = np.unique(np.stack([s_id, self._buf_action[:n], t_id], axis=1), axis=0)  # sorted by state
        for group in np.split(triples, np.flatnonzero(np.diff(triples[:, 0])) + 1):
            if np.unique(group[:, 1]).size < 2:
                continue
            outcomes: dict[int, set[int]] = {}
            for action, nxt in group[:, 1:]:
                outcomes.setdefault(int(action), set()).add(int(nxt))
            tried = sorted(outcomes)
            apart = np.zeros((self.n_actions, self.n_actions), dtype=bool)
            for k, i in enumerate(tried):
                for j in tried[k + 1 :]:
                    if not outcomes[i] & outcomes[j]:
                        apart[i, j] = apart[j, i] = True
            if apart.any():
                self._apart[self._buf_obs[first[group[0, 0]]].tobytes()] = apart

    def _apart_rows(self, flat: np.ndarray) -> np.ndarray | None:
        """``(batch, A, A)``: the action pairs seen apart in each (flat) state; None when no state has any."""
        if not self._apart:
            return None
        found = [self._apart.get(row.tobytes()) for row in flat]
        if all(a is None for a in found):
            return None
        empty = np.zeros((self.n_actions, self.n_actions), dtype=bool)
        return np.stack([empty if a is None else a for a in found])

    def get_extra_state(self) -> dict[str, th.Tensor]:
        """The table of states with actions seen apart (saved with the weights, see ``split_observed``)."""
        keys = list(self._apart)
        states = np.frombuffer(b"".join(keys), dtype=np.float32).reshape(len(keys), self.obs_dim)
        apart = np.stack([self._apart[k] for k in keys]) if keys else np.zeros((0, self.n_actions, self.n_actions))
        return {"apart_states": th.as_tensor(states.copy()), "apart": th.as_tensor(apart.astype(bool))}

    def set_extra_state(self, state: dict[str, th.Tensor]) -> None:
        states, apart = state["apart_states"].numpy(), state["apart"].numpy()
        self._apart = {np.ascontiguousarray(states[k]).tobytes(): apart[k].copy() for k in range(len(states))}
        self.clear_cache()

    def _pair_weights(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Per row, one over the number of rows with the same ``(first, second)`` (all ones unless
        ``balance_pairs``): every distinct pair gets the same total weight (float32)."""
        if not self.balance_pairs:
            return np.ones(len(first), dtype=np.float32)
        ids = self._row_ids(np.concatenate([first, second.astype(first.dtype)], axis=1))
        return (1.0 / np.bincount(ids)[ids]).astype(np.float32)

    def _idm_input(self, obs: th.Tensor, next_obs: th.Tensor) -> th.Tensor:
        """The IDM's input: the state and the change it underwent, ``[s, s' - s]``."""
        return th.cat([obs, next_obs - obs], dim=1)

    def _n_modules(self) -> nn.ModuleList:
        return nn.ModuleList([self.n_trunk, self.n_head])

    def _n_rows(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """``N(s, a)[.]`` of the taken actions only: ``(batch, n_actions)``."""
        hidden = self.n_trunk(obs)
        rows = self.n_head.weight.view(self.n_actions, self.n_actions, -1)[actions]  # (B, A, H)
        return th.bmm(rows, hidden.unsqueeze(2)).squeeze(2) + self.n_head.bias.view(self.n_actions, -1)[actions]

    def _train_until_stale(
        self,
        net: nn.Module,
        optimizer: th.optim.Optimizer,
        loss_fn: Callable[[np.ndarray], tuple[th.Tensor, th.Tensor]],
        train_idx: np.ndarray,
        val_idx: np.ndarray,
    ) -> dict[str, float]:
        """Epochs of shuffled minibatches until the held-out loss is stale for ``patience`` epochs; keeps the best."""
        best_loss, best_state, best_acc, stale, epochs = np.inf, None, 0.0, 0, 0
        train_loss, train_acc = np.nan, np.nan
        for _ in range(self.max_epochs):
            order = self.rng.permutation(train_idx)
            losses, accs = [], []
            for start in range(0, order.size, self.batch_size):
                loss, acc = loss_fn(order[start : start + self.batch_size])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
                accs.append(acc.item())
            epochs += 1
            with th.no_grad():
                val_loss, val_acc = (x.item() for x in loss_fn(val_idx))
            if val_loss < best_loss - 1e-4 * max(abs(best_loss), 1.0) or best_state is None:
                best_loss, best_acc, stale = val_loss, val_acc, 0
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
                train_loss, train_acc = float(np.mean(losses)), float(np.mean(accs))
            else:
                stale += 1
                if stale >= self.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        return {
            "loss": train_loss,
            "accuracy": train_acc,
            "val_loss": best_loss,
            "val_accuracy": best_acc,
            "epochs": epochs,
        }

    def _collapse_check(self, val_idx: np.ndarray, log_p: np.ndarray) -> dict[str, float]:
        actions = self._buf_action[val_idx]
        valid = self._buf_valid[val_idx]
        log_pi = self._buf_log_pi[val_idx].astype(np.float64)
        rows = np.arange(val_idx.size)
        log_p = log_p.astype(np.float64)
        gain = log_p[rows, actions] - log_pi[rows, actions]
        se = gain.std(ddof=1) / np.sqrt(gain.size) if gain.size > 1 else np.inf
        informative = bool(gain.mean() > 3.0 * se)
        cluster, _ = self._clusters_and_effects(self._n_values_flat(self._buf_obs[val_idx]), valid)
        same = (cluster[rows, actions][:, None] == cluster) & valid  # members of C(a)
        p, pi = np.exp(log_p), np.exp(log_pi)
        pooled = np.log(np.maximum((p * same).sum(axis=1), 1e-30)) + log_pi[rows, actions]
        pooled -= np.log(np.maximum((pi * same).sum(axis=1), 1e-30))
        pooled_gain = pooled - log_pi[rows, actions]
        retained = float(pooled_gain.mean() / gain.mean()) if gain.mean() > 0 else 0.0
        n_clusters = np.array([np.unique(c[c >= 0]).size for c in cluster])
        collapse = (not informative) or retained < self.min_retained
        return {
            "chance_accuracy": float((1.0 / valid.sum(axis=1)).mean()),
            "idm_information_gain": float(gain.mean()),
            "idm_information_gain_se": float(se),
            "idm_informative": float(informative),
            "cluster_information_retained": retained,
            "clusters_per_state": float(n_clusters.mean()),
            "collapse_detected": float(collapse),
        }

    def _check_env(self, venv: VecEnv) -> None:
        obs_space, act_space = venv.observation_space, venv.action_space
        if not isinstance(act_space, spaces.Discrete) or int(act_space.n) != self.n_actions:
            raise ValueError(f"the env's action space {act_space} does not match the mask's Discrete({self.n_actions})")
        if tuple(obs_space.shape or ()) != self.obs_shape:
            raise ValueError(
                f"the env's observations have shape {obs_space.shape}, the mask's IDM expects {self.obs_shape}"
            )

    def _buffer_len(self) -> int:
        return self.buffer_size if self._buf_full else self._buf_pos

    def _store(
        self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray, probs: np.ndarray, valid: np.ndarray
    ) -> None:
        pos = (self._buf_pos + np.arange(len(actions))) % self.buffer_size
        self._buf_obs[pos], self._buf_next[pos] = self._flat(obs), self._flat(next_obs, "next observations")
        self._buf_action[pos] = actions
        self._buf_log_pi[pos] = np.log(np.maximum(probs, 1e-8))
        self._buf_valid[pos] = valid & (probs > 0)
        self._buf_full = self._buf_full or self._buf_pos + len(actions) >= self.buffer_size
        self._buf_pos = int((self._buf_pos + len(actions)) % self.buffer_size)

    # ------------------------------------------------------------------ phase 2
    def clusters(self, observations: np.ndarray, env_masks: np.ndarray | None = None) -> np.ndarray:
        """The action clusters of each state: ``(batch, n_actions)`` int, each action's cluster id (its first
        member's index), -1 for env-invalid actions."""
        n, valid = self.n_values(observations), self._valid(env_masks, len(observations))
        return self._clusters_and_effects(n, valid, self._apart_rows(self._flat(observations)))[0]

    def _valid(self, env_masks: np.ndarray | None, batch: int) -> np.ndarray:
        if env_masks is None:
            return np.ones((batch, self.n_actions), dtype=bool)
        valid = np.asarray(env_masks, dtype=bool)
        if valid.shape != (batch, self.n_actions):
            raise ValueError(f"env action masks have shape {valid.shape}, expected {(batch, self.n_actions)}")
        return valid

    def _clusters_and_effects(
        self, n: np.ndarray, valid: np.ndarray, apart: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Clusters and effects from N values ``(B, a, b)`` and the valid actions ``(B, A)``; ``apart``
        ``(B, A, A)``: pairs that may not share a cluster (see ``split_observed``)."""
        effects = np.diagonal(n, axis1=1, axis2=2)  # (B, A): N(s, a_i)[i]
        sf = effects[:, None, :] - n  # SF[i, j] = e_j - N(s, a_i)[j]
        close = np.maximum(sf, sf.transpose(0, 2, 1)) < self.epsilon
        if apart is not None:
            close &= ~apart
        cluster = np.full(valid.shape, -1, dtype=np.int64)
        unassigned = valid.copy()
        # greedy in index order: the first unassigned valid action leads a cluster and takes every unassigned
        # valid action close to it (one round per cluster, all states of the batch at once)
        while unassigned.any():
            rows = np.flatnonzero(unassigned.any(axis=1))
            leaders = unassigned[rows].argmax(axis=1)
            joins = unassigned[rows] & close[rows, leaders, :]
            joins[np.arange(rows.size), leaders] = True
            cluster[rows] = np.where(joins, leaders[:, None], cluster[rows])
            unassigned[rows] &= ~joins
        if apart is not None:  # no two members of a cluster seen apart: the same greedy rule, member by member
            for r in np.flatnonzero(apart.any(axis=(1, 2))):
                cluster[r] = -1
                for i in np.flatnonzero(valid[r]):
                    if cluster[r, i] >= 0:
                        continue
                    members = [i]
                    for j in np.flatnonzero(valid[r] & close[r, i] & (cluster[r] < 0)):
                        if j > i and not apart[r, j, members].any():
                            members.append(j)
                    cluster[r, members] = i
        return cluster, effects

    def _keep_by_effect(self, cluster: np.ndarray, effects: np.ndarray) -> np.ndarray:
        member = cluster[:, None, :] == np.arange(self.n_actions)[None, :, None]  # (B, k, a): a is in cluster k
        z = np.where(member, effects[:, None, :] / self.temperature, -np.inf)
        z = z - np.where(member.any(axis=2, keepdims=True), z.max(axis=2, keepdims=True), 0.0)
        weights = np.exp(z)  # 0 outside the cluster
        shares = weights / np.maximum(weights.sum(axis=2, keepdims=True), 1e-30)  # (B, k, a)
        kept = (shares >= self.tau) & member
        best = member & (shares >= shares.max(axis=2, keepdims=True) - self.tie_tolerance)
        first_best = best & (np.cumsum(best, axis=2) == 1)  # lowest index among the (near-)best
        needs_best = member.any(axis=2) & ~kept.any(axis=2)
        kept |= first_best & needs_best[:, :, None]
        return kept.any(axis=1)

    def _keep_random(self, cluster: np.ndarray) -> np.ndarray:
        member = cluster[:, None, :] == np.arange(self.n_actions)[None, :, None]
        scores = np.where(member, self.rng.random(member.shape), -1.0)
        own = np.zeros(cluster.shape, dtype=bool)
        rows, leaders = np.nonzero(member.any(axis=2))
        own[rows, scores[rows, leaders].argmax(axis=1)] = True
        return own

    @staticmethod
    def _keys(observations: np.ndarray, env_masks: np.ndarray | None) -> list[bytes]:
        """The memo keys: each state's bytes, and its env mask's when there is one."""
        rows = np.ascontiguousarray(observations).reshape(len(observations), -1)
        if env_masks is None:
            return [row.tobytes() for row in rows]
        masks = np.ascontiguousarray(env_masks, dtype=bool)
        return [row.tobytes() + mask.tobytes() for row, mask in zip(rows, masks, strict=True)]

    def _cached_rows(self, observations: np.ndarray, valid: np.ndarray, keys: list[bytes]) -> np.ndarray:
        """Per state: the kept actions (``keep="effect"``) or the clusters (``"random"``), memoised by state."""
        obs = np.ascontiguousarray(observations)
        out = np.empty(valid.shape, dtype=bool if self.keep == "effect" else np.int64)
        missing = []
        for i, key in enumerate(keys):
            row = self._cache.get(key)
            if row is None:
                missing.append(i)
            else:
                out[i] = row
        if missing:
            apart = self._apart_rows(self._flat(obs[missing]))
            cluster, effects = self._clusters_and_effects(self.n_values(obs[missing]), valid[missing], apart)
            out[missing] = self._keep_by_effect(cluster, effects) if self.keep == "effect" else cluster
            if len(self._cache) + len(missing) > self.cache_size:
                self._cache.clear()
            if self.cache_size:
                self._cache.update((keys[i], out[i].copy()) for i in missing)
        return out

    def clear_cache(self) -> None:
        """Forget the memoised masks (done whenever the networks change: pretrain, load_state_dict)."""
        self._cache.clear()

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        self.clear_cache()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def __call__(self, observations: np.ndarray, env_masks: np.ndarray | None, *, explore: bool = True) -> np.ndarray:
        """Masks ``(batch, n_actions)``: one kept action per estimated cluster (see the module doc), AND the env's.

        :param observations: raw observations ``(batch, *obs_shape)``
        :param env_masks: the env's ``(batch, n_actions)`` validity masks, or None
        :param explore: unused by CEE (its mask has no exploration); NPM draws its members either way
        """
        self._check_pretrained()
        observations = np.asarray(observations)
        if observations.shape[1:] != self.obs_shape:
            self._flat(observations[:0])  # raises the shape error, before any cache lookup
        if env_masks is not None:
            env_masks = self._valid(env_masks, len(observations))  # shape check
        served = self._served  # a plain array: no nn.Module attribute bookkeeping per call
        if self.guard == "allow_all" and self.collapse_detected.item():
            own = self._valid(env_masks, len(observations))  # clusters not supported by the data (fit warned)
        else:
            keys = self._keys(observations, env_masks)
            if self.keep == "effect" and self.cache_size:  # fast path: every state memoised
                rows = [self._cache.get(key) for key in keys]
                if all(row is not None for row in rows):
                    # kept members of clusters over the env-valid actions: already the final, never empty mask
                    masks = np.array(rows)
                    served[0] += len(masks)
                    served[1] += masks.sum()
                    return masks
            rows = self._cached_rows(observations, self._valid(env_masks, len(observations)), keys)
            own = rows if self.keep == "effect" else self._keep_random(rows)
        masks, fallback = combine_with_env_masks(own, env_masks)
        served[0] += len(masks)
        served[1] += masks.sum()
        served[2] += fallback.sum()
        return masks

    def update_graph(self, graph: CausalGraph) -> None:
        """CEE uses no causal graph (``uses_graph = False``): receiving one is a caller's bug."""
        raise TypeError("CEEMask does not use a causal graph (uses_graph = False): do not pass it graphs")

    def reset_stats(self) -> None:
        """Reset the counters of masks served: rows, allowed actions, rows that fell back to the env mask."""
        self._served = np.zeros(3, dtype=np.int64)  # rows, allowed actions, fallback rows

    @property
    def n_rows(self) -> int:
        """Masks served (rows) since :meth:`reset_stats`."""
        return int(self._served[0])

    @property
    def n_allowed(self) -> int:
        """Allowed actions summed over the masks served since :meth:`reset_stats`."""
        return int(self._served[1])

    @property
    def n_fallback(self) -> int:
        """Rows that fell back to the env mask since :meth:`reset_stats`."""
        return int(self._served[2])

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | io.BufferedIOBase) -> None:
        """Save the config and weights in one torch file (``{"config": ..., "state_dict": ...}``)."""
        th.save({"config": self.get_config(), "state_dict": self.state_dict()}, path)

    @classmethod
    def load(cls, path: str | io.BufferedIOBase) -> CEEMask:
        """Load a mask written by :meth:`save` (tensors and JSON types only: ``weights_only``)."""
        data = th.load(path, weights_only=True)
        mask = cls.from_config(data["config"])
        mask.load_state_dict(data["state_dict"])
        return mask

    def extra_repr(self) -> str:
        return (
            f"n_actions={self.n_actions}, epsilon={self.epsilon}, tau={self.tau}, keep={self.keep!r}, "
            f"pretrained_steps={int(self.pretrained_steps)}"
        )
