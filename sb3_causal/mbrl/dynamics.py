"""Factorised world models: probabilistic ensembles of Gaussian MLPs, each fed only its parents.

``GaussianEnsemble`` holds ``n_members`` MLPs as stacked weight tensors ``(members, in, out)``, so a forward
pass is one batched matmul per layer for all members (no Python loop over members or samples). Each
member predicts a diagonal Gaussian (mean, log-variance with learned soft bounds) of its targets and is
trained with the Gaussian negative log-likelihood on its own shuffle of the data; a held-out split picks
each member's best epoch and the ``n_elites`` best members, which are the ones sampled in rollouts.

``FactorisedDynamics`` is the structural causal model: a list of *factors*, each an ensemble predicting
some targets (next-state entries and/or the reward) from a subset of the inputs ``(s, a)``. C-MBPO uses one
factor per target, fed exactly the target's parents; MBPO uses one factor on all of ``(s, a)`` predicting
every target. A next-state entry whose own current value is a parent is predicted as a change
``s'_j - s_j`` (as in MBPO); otherwise ``s'_j`` itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch as th
from torch import nn
from torch.nn import functional as F

__all__ = ["FactorSpec", "FactorisedDynamics", "GaussianEnsemble"]


class GaussianEnsemble(nn.Module):
    """An ensemble of Gaussian MLPs evaluated in one batched pass.

    Inputs and targets are standardised with statistics fitted on the training data (buffers, saved
    with the module).

    :param in_dim: number of inputs (0 is allowed: the members then learn an input-free Gaussian)
    :param out_dim: number of targets
    :param n_members: ensemble size
    :param n_elites: members used for prediction (the best on held-out data)
    :param hidden: hidden layer sizes
    """

    def __init__(
        self, in_dim: int, out_dim: int, n_members: int = 7, n_elites: int = 5, hidden: Sequence[int] = (64, 64)
    ) -> None:
        super().__init__()
        if not 1 <= n_elites <= n_members:
            raise ValueError(f"need 1 <= n_elites <= n_members, got n_elites={n_elites}, n_members={n_members}")
        if out_dim < 1:
            raise ValueError(f"out_dim must be >= 1, got {out_dim}")
        self.in_dim, self.out_dim = in_dim, out_dim
        self.n_members, self.n_elites = n_members, n_elites
        sizes = [in_dim, *hidden, 2 * out_dim]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in itertools.pairwise(sizes):
            w = th.empty(n_members, fan_in, fan_out)
            bound = 1.0 / np.sqrt(max(fan_in, 1))
            nn.init.uniform_(w, -bound, bound)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(th.zeros(n_members, 1, fan_out)))
        self.max_logvar = nn.Parameter(th.full((1, 1, out_dim), 0.5))
        self.min_logvar = nn.Parameter(th.full((1, 1, out_dim), -10.0))
        self.register_buffer("in_mean", th.zeros(in_dim))
        self.register_buffer("in_std", th.ones(in_dim))
        self.register_buffer("out_mean", th.zeros(out_dim))
        self.register_buffer("out_std", th.ones(out_dim))
        self.register_buffer("elites", th.arange(n_elites))
        self.register_buffer("holdout_mse", th.full((n_members,), float("inf")))

    def forward(self, x: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """Mean and log-variance (standardised target units) for inputs ``x`` of shape ``(members, batch, in)``
        (already standardised)."""
        h = x
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = th.baddbmm(b, h, w)
            if k < last:
                h = F.silu(h)
        mean, logvar = h[..., : self.out_dim], h[..., self.out_dim :]
        logvar = self.max_logvar - F.softplus(self.max_logvar - logvar)
        logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)
        return mean, logvar

    def set_normalisation(self, x: th.Tensor, y: th.Tensor) -> None:
        if self.in_dim > 0:
            self.in_mean.copy_(x.mean(0))
            self.in_std.copy_(x.std(0).clamp_min(1e-6) if x.shape[0] > 1 else th.ones_like(self.in_std))
        self.out_mean.copy_(y.mean(0))
        self.out_std.copy_(y.std(0).clamp_min(1e-6) if y.shape[0] > 1 else th.ones_like(self.out_std))

    def fit(
        self,
        x: th.Tensor,
        y: th.Tensor,
        optimizer: th.optim.Optimizer,
        batch_size: int = 256,
        max_epochs: int = 50,
        patience: int = 5,
        holdout_ratio: float = 0.1,
    ) -> dict[str, float]:
        """Train on ``(x, y)`` (raw units) until no member improves its held-out MSE for ``patience`` epochs.

        Each member keeps the weights of its best held-out epoch; the ``n_elites`` best become the elites.
        """
        n = x.shape[0]
        n_hold = min(max(int(n * holdout_ratio), 1), 5000) if n > 1 else 0
        perm = th.randperm(n, device=x.device)
        x_tr, y_tr = x[perm[n_hold:]], y[perm[n_hold:]]
        x_ho, y_ho = x[perm[:n_hold]], y[perm[:n_hold]]
        if n_hold == 0:
            x_ho, y_ho = x_tr, y_tr
        self.set_normalisation(x_tr, y_tr)
        xs_tr, ys_tr = self._norm_in(x_tr), self._norm_out(y_tr)
        xs_ho, ys_ho = self._norm_in(x_ho), self._norm_out(y_ho)
        params = list(self.parameters())
        best = [p.detach().clone() for p in params]
        best_mse = self._holdout_mse(xs_ho, ys_ho)
        n_tr = xs_tr.shape[0]
        stale, epochs, losses = 0, 0, []
        for _ in range(max_epochs):
            epochs += 1
            order = th.argsort(th.rand(self.n_members, n_tr, device=x.device), dim=1)
            for start in range(0, n_tr, batch_size):
                idx = order[:, start : start + batch_size]
                mean, logvar = self(xs_tr[idx])
                nll = (((mean - ys_tr[idx]) ** 2) * th.exp(-logvar) + logvar).mean()
                loss = nll + 0.01 * (self.max_logvar.sum() - self.min_logvar.sum())
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(nll.item())
            mse = self._holdout_mse(xs_ho, ys_ho)
            improved = mse < best_mse - 0.01 * best_mse.abs()
            if improved.any():
                stale = 0
                with th.no_grad():
                    for p, b in zip(params, best):
                        if p.shape[0] == self.n_members:
                            b[improved] = p[improved]
                        else:  # shared log-variance bounds follow the ensemble
                            b.copy_(p)
                best_mse = th.where(improved, mse, best_mse)
            else:
                stale += 1
                if stale >= patience:
                    break
        with th.no_grad():
            for p, b in zip(params, best):
                p.copy_(b)
        self.holdout_mse.copy_(best_mse)
        self.elites.copy_(th.argsort(best_mse)[: self.n_elites])
        elite_mse = best_mse[self.elites].mean().item()
        return {
            "nll": float(np.mean(losses[-max(1, n_tr // batch_size) :])),
            "holdout_mse": elite_mse,
            "epochs": epochs,
        }

    @th.no_grad()
    def sample(self, x: th.Tensor, deterministic: bool = False) -> th.Tensor:
        """One draw per row of ``x`` (raw units, ``(batch, in)``) from a uniformly chosen elite member, or with
        ``deterministic=True`` the mean of the elites' means."""
        xs = self._norm_in(x).unsqueeze(0).expand(self.n_members, -1, -1)
        mean, logvar = self(xs)
        if deterministic:
            out = mean[self.elites].mean(dim=0)
        else:
            pick = self.elites[th.randint(self.n_elites, (x.shape[0],), device=x.device)]
            rows = th.arange(x.shape[0], device=x.device)
            mean, logvar = mean[pick, rows], logvar[pick, rows]
            out = mean + th.randn_like(mean) * th.exp(0.5 * logvar)
        return out * self.out_std + self.out_mean

    @th.no_grad()
    def _holdout_mse(self, xs: th.Tensor, ys: th.Tensor) -> th.Tensor:
        mean, _ = self(xs.unsqueeze(0).expand(self.n_members, -1, -1))
        return ((mean - ys) ** 2).mean(dim=(1, 2))

    def _norm_in(self, x: th.Tensor) -> th.Tensor:
        return (x - self.in_mean) / self.in_std

    def _norm_out(self, y: th.Tensor) -> th.Tensor:
        return (y - self.out_mean) / self.out_std


@dataclass(frozen=True)
class FactorSpec:
    """One factor of the world model.

    :param targets: target indices, ``0..n_states-1`` for next-state entries and ``n_states`` for the reward
    :param inputs: indices into ``concat(s, a)`` of the inputs (the targets' parents)
    """

    targets: tuple[int, ...]
    inputs: tuple[int, ...]


class FactorisedDynamics(nn.Module):
    """``p(s', r | s, a)`` as a product of factors ``p(targets | inputs)``, each a ``GaussianEnsemble``.

    :param n_states: size of the state (flat observation)
    :param n_actions: size of the action
    :param factors: the factors; together they must predict every next-state entry and the reward once
    :param n_members: ensemble size of each factor
    :param n_elites: elites of each factor
    :param hidden: hidden layer sizes of each member
    :param learning_rate: Adam learning rate
    :param weight_decay: Adam weight decay
    """

    def __init__(
        self,
        n_states: int,
        n_actions: int,
        factors: Sequence[FactorSpec],
        n_members: int = 7,
        n_elites: int = 5,
        hidden: Sequence[int] = (64, 64),
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-5,
    ) -> None:
        super().__init__()
        self.n_states, self.n_actions = n_states, n_actions
        self.n_members, self.n_elites, self.hidden = n_members, n_elites, tuple(hidden)
        self.learning_rate, self.weight_decay = learning_rate, weight_decay
        self.specs: list[FactorSpec] = []
        self.factors = nn.ModuleList()
        self._optimizers: list[th.optim.Optimizer] = []
        self.set_factors(factors)

    def set_factors(self, factors: Sequence[FactorSpec]) -> list[bool]:
        """Replace the factor list; a factor whose spec is unchanged keeps its trained ensemble.

        :return: for each new factor, whether it was (re)built untrained
        """
        factors = [FactorSpec(tuple(int(t) for t in f.targets), tuple(int(i) for i in f.inputs)) for f in factors]
        covered = sorted(t for f in factors for t in f.targets)
        if covered != list(range(self.n_states + 1)):
            raise ValueError(f"factors must predict each of the {self.n_states + 1} targets exactly once: {factors}")
        n_in = self.n_states + self.n_actions
        for f in factors:
            if any(not 0 <= i < n_in for i in f.inputs) or len(set(f.inputs)) != len(f.inputs):
                raise ValueError(f"factor inputs must be distinct indices in [0, {n_in}): {f}")
        old = dict(zip(self.specs, zip(self.factors, self._optimizers)))
        modules, optimizers, rebuilt = [], [], []
        for f in factors:
            if f in old:
                module, opt = old[f]
            else:
                module = GaussianEnsemble(len(f.inputs), len(f.targets), self.n_members, self.n_elites, self.hidden)
                module.to(next(self.parameters()).device if len(self.factors) else "cpu")
                opt = th.optim.Adam(module.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
            modules.append(module)
            optimizers.append(opt)
            rebuilt.append(f not in old)
        self.specs = factors
        self.factors = nn.ModuleList(modules)
        self._optimizers = optimizers
        return rebuilt

    def _delta(self, spec: FactorSpec) -> list[bool]:
        """Which targets of a factor are predicted as a change from their current value."""
        return [t < self.n_states and t in spec.inputs for t in spec.targets]

    def _targets(self, spec: FactorSpec, obs: th.Tensor, next_obs: th.Tensor, rew: th.Tensor) -> th.Tensor:
        full = th.cat([next_obs, rew.reshape(-1, 1)], dim=1)[:, list(spec.targets)]
        base = th.cat([obs, th.zeros_like(rew).reshape(-1, 1)], dim=1)[:, list(spec.targets)]
        return full - base * th.tensor(self._delta(spec), dtype=full.dtype, device=full.device)

    def fit(
        self,
        obs: th.Tensor,
        actions: th.Tensor,
        next_obs: th.Tensor,
        rewards: th.Tensor,
        batch_size: int = 256,
        max_epochs: int = 50,
        patience: int = 5,
        holdout_ratio: float = 0.1,
    ) -> list[dict[str, float]]:
        """Fit every factor on real transitions (raw units); returns one metrics dict per factor."""
        inputs = th.cat([obs, actions], dim=1)
        metrics = []
        for spec, module, opt in zip(self.specs, self.factors, self._optimizers):
            y = self._targets(spec, obs, next_obs, rewards)
            metrics.append(
                module.fit(inputs[:, list(spec.inputs)], y, opt, batch_size, max_epochs, patience, holdout_ratio)
            )
        return metrics

    @th.no_grad()
    def step(self, obs: th.Tensor, actions: th.Tensor, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor]:
        """Sample ``(next_obs, reward)`` for a batch of states and actions (raw units)."""
        inputs = th.cat([obs, actions], dim=1)
        out = th.zeros(obs.shape[0], self.n_states + 1, dtype=obs.dtype, device=obs.device)
        for spec, module in zip(self.specs, self.factors):
            pred = module.sample(inputs[:, list(spec.inputs)], deterministic)
            base = th.cat([obs, th.zeros_like(obs[:, :1])], dim=1)[:, list(spec.targets)]
            delta = th.tensor(self._delta(spec), dtype=obs.dtype, device=obs.device)
            out[:, list(spec.targets)] = pred + base * delta
        return out[:, : self.n_states], out[:, self.n_states]
