"""FaultAlarmRL: alarms cascading over a telecom network (event-level topological Hawkes process).

Every alarm is an event that knows its parent. Treating a (device, alarm type) pair removes all
its alarms and their descendants; a persistent root keeps re-triggering its children, so only
treating root causes clears the network. See ``shared/reference/fault_alarm_rl.md`` for the
dynamics this implements and ``AlarmModel`` for its parameters.

The simulator is vectorised over alarms: one step costs a handful of numpy calls per cascade
generation, not a Python loop per alarm.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_causal.graph import CausalGraph
from sb3_causal.variables import CausalVariables
from sb3_causal_envs.alarm_model import AlarmModel

__all__ = ["AlarmLog", "AlarmSimulator", "FaultAlarmEnv"]

OBS_MODES = ("age", "absolute_time")


@dataclass(frozen=True)
class AlarmLog:
    """An observational alarm event log: one row per alarm occurrence."""

    types: np.ndarray  # int64 alarm type index
    times: np.ndarray  # float64 occurrence time, non-decreasing
    devices: np.ndarray  # int64 device index
    type_names: tuple[str, ...]
    topology: np.ndarray  # (n_devices, n_devices) bool
    sequences: np.ndarray | None = None  # int64 index of the independent episode of each event
    pair_limit: int | None = None  # most alarms one (device, type) pair can hold (the simulator's cap)

    def __len__(self) -> int:
        return int(self.types.size)


class AlarmSimulator:
    """The alarm population of one network and its event-level dynamics.

    Alarms are stored as parallel arrays in creation order, so a child always sits after its parent.
    A live alarm's parent is always live (removing an alarm removes its descendants), which keeps
    ``parent`` indices valid through compaction.

    :param model: the network
    :param rng: the only source of randomness
    """

    def __init__(self, model: AlarmModel, rng: np.random.Generator) -> None:
        self.model = model
        self.rng = rng
        v, n = model.n_types, model.n_devices
        self.n_pairs = n * v
        # Propagation targets of every pair p = device * V + type, in CSR form.
        weights = model.hop_weights()  # [h, child_device, parent_device]
        ptr = np.zeros(self.n_pairs + 1, dtype=np.int64)
        tgt_pair: list[np.ndarray] = []
        tgt_rate: list[np.ndarray] = []
        for p in range(self.n_pairs):
            m, t = divmod(p, v)
            rates = weights[:, :, m, None] * model.alpha[:, t, None, :]  # [h, child_device, child_type]
            rate = rates.sum(axis=0)  # each true edge is active at one hop in the default model
            child = np.flatnonzero(rate.ravel() > 0)
            tgt_pair.append(child)
            tgt_rate.append(rate.ravel()[child])
            ptr[p + 1] = ptr[p] + child.size
        self._tgt_ptr = ptr
        self._tgt_pair = np.concatenate(tgt_pair) if tgt_pair else np.zeros(0, np.int64)
        self._tgt_scale = 1.0 / np.concatenate(tgt_rate) if tgt_rate else np.zeros(0)
        self._transient = model.transient.ravel()
        self._root_pairs = np.array([d * v + t for t in model.root_types for d in model.root_devices], dtype=np.int64)
        noise_devices = np.setdiff1d(np.arange(n), model.root_devices)
        noise_types = np.setdiff1d(np.arange(v), model.root_types)
        self._noise_pairs = (noise_devices[:, None] * v + noise_types[None, :]).ravel()
        self._pair_limit = model.pair_cap + 1  # "more than pair_cap" alarms receive no new ones
        self.events: list[tuple[np.ndarray, np.ndarray]] | None = None  # set to a list to log occurrences
        self.clear()

    # ------------------------------------------------------------------ state
    def clear(self) -> None:
        self.time = 0.0
        self.pair = np.zeros(0, dtype=np.int64)
        self.start = np.zeros(0)
        self.end = np.zeros(0)  # inf for persistent alarms
        self.parent = np.zeros(0, dtype=np.int64)  # -1 for a root or noise alarm
        self.is_root = np.zeros(0, dtype=bool)  # a spontaneous alarm on a possible-root pair
        self.counts = np.zeros(self.n_pairs, dtype=np.int64)

    @property
    def n_alarms(self) -> int:
        return int(self.pair.size)

    def reset(self) -> None:
        """Place the initial root alarms, then simulate until enough alarms are active."""
        self.clear()
        m, v = self.model, self.model.n_types
        types = np.resize(np.asarray(m.root_types), m.n_initial_roots)
        devices = self.rng.choice(m.root_devices, size=m.n_initial_roots)
        self._add(devices * v + types, np.zeros(m.n_initial_roots), np.full(m.n_initial_roots, -1), root=True)
        for _ in range(10_000):
            if self.n_alarms >= m.min_initial_alarms:
                return
            self.advance()
        raise RuntimeError(
            f"the alarm model never reached min_initial_alarms={m.min_initial_alarms} active alarms in "
            "10,000 windows; its intensities (alpha, mu) are too low for that setting"
        )

    # ------------------------------------------------------------------ dynamics
    def treat(self, pair: int) -> int:
        """Remove every alarm of ``pair`` and all their descendants; return how many were removed."""
        if self.counts[pair] == 0:
            return 0
        return self._remove(self.pair == pair)

    def advance(self) -> int:
        """Simulate one time window; return the number of alarms that occurred in it."""
        m, rng = self.model, self.rng
        t0 = self.time
        t1 = t0 + m.time_per_step
        n_old = self.n_alarms
        if rng.random() < m.p_new_root:
            p = self._root_pairs[rng.integers(self._root_pairs.size)]
            self._add_spontaneous(p, t0, root=True)
        if self._noise_pairs.size and rng.random() < m.p_noise:
            p = self._noise_pairs[rng.integers(self._noise_pairs.size)]
            self._add_spontaneous(p, t0, root=False)
        parents = np.arange(self.n_alarms)
        while parents.size and self.n_alarms <= m.alarm_cap:
            parents = self._trigger(parents, t0, t1)
        n_new = self.n_alarms - n_old
        expired = self.end <= t1
        if expired.any():
            self._remove(expired)
        self.time = t1
        return n_new

    def _trigger(self, parents: np.ndarray, t0: float, t1: float) -> np.ndarray:
        """Children of ``parents`` that start inside [t0, t1) (and before a transient parent ends)."""
        ptr = self._tgt_ptr
        pp = self.pair[parents]
        lo = ptr[pp]
        n_tgt = ptr[pp + 1] - lo
        total = int(n_tgt.sum())
        if total == 0:
            return parents[:0]
        # Index of every (parent, target) candidate into the CSR arrays.
        first = np.cumsum(n_tgt) - n_tgt
        offs = np.arange(total) - np.repeat(first - lo, n_tgt)
        cand_parent = np.repeat(parents, n_tgt)
        begin = np.maximum(self.start[cand_parent], t0)
        child_start = begin + self.rng.standard_exponential(total) * self._tgt_scale[offs]
        ok = child_start < np.minimum(self.end[cand_parent], t1)
        if not ok.any():
            return parents[:0]
        child_pair = self._tgt_pair[offs[ok]]
        child_start = child_start[ok]
        cand_parent = cand_parent[ok]
        keep = self._under_pair_cap(child_pair, child_start)
        if keep is not None:
            child_pair, child_start, cand_parent = child_pair[keep], child_start[keep], cand_parent[keep]
        n_before = self.n_alarms
        self._add(child_pair, child_start, cand_parent, root=False)
        return np.arange(n_before, self.n_alarms)

    def _under_pair_cap(self, pairs: np.ndarray, starts: np.ndarray) -> np.ndarray | None:
        """Which new alarms fit under the pair cap (earliest first); None when all of them do."""
        room = self._pair_limit - self.counts[pairs]
        if pairs.size == 1 or np.unique(pairs).size == pairs.size:
            return None if (room > 0).all() else room > 0
        order = np.lexsort((starts, pairs))
        sorted_pairs = pairs[order]
        new_group = np.r_[True, sorted_pairs[1:] != sorted_pairs[:-1]]
        group_start = np.maximum.accumulate(np.where(new_group, np.arange(pairs.size), 0))
        rank = np.empty(pairs.size, dtype=np.int64)
        rank[order] = np.arange(pairs.size) - group_start
        keep = rank < room
        return None if keep.all() else keep

    def _add_spontaneous(self, pair: int, t0: float, root: bool) -> None:
        if self.counts[pair] >= self._pair_limit:
            return
        # Start ~ Exp(rate mu[type]) conditioned on falling inside the window (inverse CDF).
        rate = self.model.mu[pair % self.model.n_types]
        width = self.model.time_per_step
        u = self.rng.random()
        offset = -np.log1p(-u * -np.expm1(-rate * width)) / rate
        self._add(np.array([pair]), np.array([t0 + offset]), np.array([-1]), root=root)

    def _add(self, pairs: np.ndarray, starts: np.ndarray, parents: np.ndarray, root: bool) -> None:
        ends = np.full(pairs.size, np.inf)
        transient = self._transient[pairs]
        if transient.any():
            m = self.model
            life = np.maximum(m.transient_min, self.rng.exponential(m.transient_mean, size=int(transient.sum())))
            ends[transient] = starts[transient] + life
        self.pair = np.concatenate([self.pair, pairs])
        self.start = np.concatenate([self.start, starts])
        self.end = np.concatenate([self.end, ends])
        self.parent = np.concatenate([self.parent, parents])
        self.is_root = np.concatenate([self.is_root, np.full(pairs.size, root)])
        self.counts += np.bincount(pairs, minlength=self.n_pairs)
        if self.events is not None:
            self.events.append((pairs.copy(), starts.copy()))

    def _remove(self, dead: np.ndarray) -> int:
        """Remove the marked alarms and all their descendants, then compact the arrays."""
        dead = np.append(dead, False)  # slot -1: the "no parent" sentinel
        parent = self.parent
        while True:  # one pass per generation of descendants
            newly = dead[parent] & ~dead[:-1]
            if not newly.any():
                break
            dead[:-1] |= newly
        keep = ~dead[:-1]
        n_removed = int(keep.size - keep.sum())
        self.counts -= np.bincount(self.pair[~keep], minlength=self.n_pairs)
        new_index = np.cumsum(keep) - 1
        kept_parent = parent[keep]
        self.parent = np.where(kept_parent >= 0, new_index[kept_parent], -1)
        self.pair = self.pair[keep]
        self.start = self.start[keep]
        self.end = self.end[keep]
        self.is_root = self.is_root[keep]
        return n_removed

    # ------------------------------------------------------------------ read-outs
    def oldest_start(self) -> np.ndarray:
        out = np.full(self.n_pairs, np.inf)
        np.minimum.at(out, self.pair, self.start)
        return out

    def latest_start(self) -> np.ndarray:
        out = np.zeros(self.n_pairs)
        np.maximum.at(out, self.pair, self.start)
        return out


class FaultAlarmEnv(gym.Env):
    """``FaultAlarmRL-v0``: treat one (device, alarm type) per step to clear a cascading-alarm network.

    Action ``a`` treats device ``a // n_types``, alarm type ``a % n_types``. The observation is
    ``(n_devices, n_types, 2)`` flattened: per pair, the count of active alarms and a time feature
    (``obs_mode="age"``: ``1 - exp(-age / (10 * time_per_step))`` of the pair's oldest active
    alarm, in [0, 1); ``obs_mode="absolute_time"``: the start time of the pair's latest alarm,
    the authors' encoding).

    :param model: an ``AlarmModel``, its dict, or a path to its JSON; default ``AlarmModel.default(model_seed)``
    :param model_seed: seed of the default network
    :param obs_mode: ``"age"`` or ``"absolute_time"``
    :param reward_decimals: round rewards to this many decimals like the reference (None: no rounding)
    :param render_mode: ``"ansi"`` renders text; any other mode renders nothing
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        model: AlarmModel | dict[str, Any] | str | Path | None = None,
        model_seed: int = 0,
        obs_mode: str = "age",
        reward_decimals: int | None = 2,
        render_mode: str | None = None,
    ) -> None:
        super().__init__()
        self.model = _as_model(model, model_seed)
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")
        # Other render modes are accepted (SB3's make_vec_env asks for "rgb_array"; gymnasium warns)
        # and render() returns None for them.
        self.obs_mode = obs_mode
        self.reward_decimals = reward_decimals
        self.render_mode = render_mode
        m = self.model
        self.n_devices, self.n_types = m.n_devices, m.n_types
        self.action_space = spaces.Discrete(m.n_pairs)
        high = float(m.pair_cap + 1) if obs_mode == "age" else np.inf
        self.observation_space = spaces.Box(0.0, high, shape=(m.n_pairs * 2,), dtype=np.float32)
        self._age_scale = 10.0 * m.time_per_step
        self._causal_graph = m.type_graph
        self._type_rank = self._causal_graph.upstream_rank()
        self._sim: AlarmSimulator | None = None
        self._steps = 0

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if self._sim is None:
            self._sim = AlarmSimulator(self.model, self.np_random)
        self._sim.rng = self.np_random  # a seeded reset replaces np_random
        self._sim.reset()
        self._steps = 0
        return self._observation(), self._info(treated=None, n_removed=0)

    def step(self, action):
        sim = self._require_sim()
        a = int(action)
        if not 0 <= a < self.action_space.n:
            raise ValueError(f"action {action!r} is outside Discrete({self.action_space.n})")
        m = self.model
        m_t = sim.n_alarms - int(sim.counts[a])
        n_removed = sim.treat(a)
        sim.advance()
        self._steps += 1
        m_t1 = sim.n_alarms
        progress = 1.0 if m_t == 0 or m_t1 == 0 else (m_t - m_t1) / m_t
        reward = progress - m.step_penalty * self._steps
        if self.reward_decimals is not None:
            reward = round(reward, self.reward_decimals)
        terminated = m_t1 == 0 or m_t1 > m.alarm_cap
        truncated = not terminated and self._steps >= m.max_steps
        return self._observation(), float(reward), terminated, truncated, self._info(a, n_removed)

    def action_masks(self) -> np.ndarray:
        """Pairs with at least one active alarm (for sb3-contrib's MaskablePPO)."""
        return self._require_sim().counts > 0

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        sim = self._require_sim()
        lines = [f"t={sim.time:.0f} step={self._steps} alarms={sim.n_alarms}"]
        active = np.flatnonzero(sim.counts)
        by_device: dict[int, list[str]] = {}
        for p in active:
            d, t = divmod(int(p), self.n_types)
            by_device.setdefault(d, []).append(f"{self.model.type_names[t]}x{sim.counts[p]}")
        lines += [f"  {self.model.device_names[d]}: {' '.join(items)}" for d, items in sorted(by_device.items())]
        return "\n".join(lines)

    # ------------------------------------------------------------------ ground truth and helpers
    @property
    def causal_graph(self) -> CausalGraph:
        """The true type-level causal graph (a copy)."""
        return self._causal_graph.copy()

    @property
    def topology(self) -> np.ndarray:
        return self.model.topology.copy()

    @property
    def causal_variables(self) -> CausalVariables:
        """Layout for the causal learners: 18 type variables on 50 device units; the state value of
        (device, type) is its alarm count, and action a intervenes on pair a. Treating a pair with no
        alarm does nothing (no intervention). The hop reach of alarm propagation is not declared (the
        simulator's is hidden): the learner chooses it from data."""
        n, v = self.n_devices, self.n_types
        return CausalVariables(
            names=tuple(self.model.type_names),
            obs_index=(np.arange(n * v) * 2).reshape(n, v),
            action_target=np.arange(n * v),
            topology=self.model.topology,
            n_hops=None,
            unit_names=tuple(self.model.device_names),
            intervenes_when_inactive=False,
        )

    def oracle_action(self) -> int:
        """Treat a root cause first: a pair holding a spontaneous (parentless) alarm, the most
        upstream type under the true graph first, then the pair with most alarms. Uses hidden state."""
        sim = self._require_sim()
        if sim.n_alarms == 0:
            raise RuntimeError("oracle_action: no active alarm to treat (the episode is over)")
        spont = np.unique(sim.pair[sim.parent < 0])
        rank = self._type_rank[spont % self.n_types]
        best = np.lexsort((spont, -sim.counts[spont], rank))[0]
        return int(spont[best])

    def record_alarm_log(self, n_events: int, seed: int | None = None) -> AlarmLog:
        """Simulate the network with no treatment and log the first ``n_events`` alarm occurrences.

        Episodes that hit the alarm cap restart (time keeps running), so any length can be logged;
        ``sequences`` tells each event's episode and ``pair_limit`` the per-pair cap, both of which
        an event-sequence learner needs to model the log correctly.
        The env's own episode is not disturbed; ``seed=None`` draws a seed from ``np_random``.
        """
        if n_events < 1:
            raise ValueError(f"n_events must be >= 1, got {n_events}")
        if seed is None:
            seed = int(self.np_random.integers(2**31))
        sim = AlarmSimulator(self.model, np.random.default_rng(seed))
        sim.events = []
        pairs: list[np.ndarray] = []
        times: list[np.ndarray] = []
        episodes: list[np.ndarray] = []
        n_logged, offset, episode = 0, 0.0, 0
        while n_logged < n_events:
            sim.reset()
            while 0 < sim.n_alarms <= self.model.alarm_cap and n_logged + _n_logged(sim) < n_events:
                sim.advance()
            for ev_pairs, ev_starts in sim.events:
                pairs.append(ev_pairs)
                times.append(ev_starts + offset)
                episodes.append(np.full(ev_pairs.size, episode))
                n_logged += ev_pairs.size
            sim.events = []
            offset += sim.time + self.model.time_per_step
            episode += 1
        all_pairs = np.concatenate(pairs)[:n_events]
        all_times = np.concatenate(times)[:n_events]
        all_episodes = np.concatenate(episodes)[:n_events]
        order = np.argsort(all_times, kind="stable")
        return AlarmLog(
            types=(all_pairs % self.n_types)[order],
            times=all_times[order],
            devices=(all_pairs // self.n_types)[order],
            type_names=tuple(self.model.type_names),
            topology=self.model.topology.copy(),
            sequences=all_episodes[order],
            pair_limit=self.model.pair_cap + 1,
        )

    # ------------------------------------------------------------------ internals
    def _require_sim(self) -> AlarmSimulator:
        if self._sim is None:
            raise gym.error.ResetNeeded("call reset() before using the FaultAlarmRL env")
        return self._sim

    def _observation(self) -> np.ndarray:
        sim = self._require_sim()
        obs = np.zeros((sim.n_pairs, 2), dtype=np.float32)
        obs[:, 0] = sim.counts
        if sim.n_alarms:
            if self.obs_mode == "age":
                age = sim.time - sim.oldest_start()
                obs[:, 1] = np.where(sim.counts > 0, -np.expm1(-np.maximum(age, 0.0) / self._age_scale), 0.0)
            else:
                obs[:, 1] = sim.latest_start()
        return obs.ravel()

    def _info(self, treated: int | None, n_removed: int) -> dict[str, Any]:
        sim = self._require_sim()
        return {
            "alarms": sim.n_alarms,
            "roots_remaining": int(sim.is_root.sum()),
            "treated_pair": None if treated is None else divmod(treated, self.n_types),
            "treated_alarms": n_removed,
            "steps": self._steps,
        }


def _n_logged(sim: AlarmSimulator) -> int:
    return sum(pairs.size for pairs, _ in sim.events or ())


def _as_model(model: AlarmModel | dict[str, Any] | str | Path | None, model_seed: int) -> AlarmModel:
    if model is None:
        return AlarmModel.default(seed=model_seed)
    if isinstance(model, AlarmModel):
        return model
    if isinstance(model, dict):
        return AlarmModel.from_dict(model)
    if isinstance(model, (str, Path)):
        return AlarmModel.load(model)
    raise TypeError(f"model must be an AlarmModel, its dict, a JSON path or None; got {type(model).__name__}")
