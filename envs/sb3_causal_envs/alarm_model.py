"""The parameters of a FaultAlarmRL network: alarm types, their causal graph, the device topology.

Everything the simulator needs lives in one explicit, validated, JSON-serialisable object, so a
user can describe their own network and pass it to ``gym.make("FaultAlarmRL-v0", model=...)``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from sb3_causal.graph import CausalGraph, CyclicGraphError
from sb3_causal.topology import HOP_NORMALIZATIONS, Topology

__all__ = ["AlarmModel", "load_table_b2"]

_JSON_FORMAT = "sb3-causal/alarm-model"


def load_table_b2() -> tuple[list[str], list[tuple[str, str]]]:
    """The paper's Table B2 ground truth: (type names in order of first mention, 94 edges)."""
    text = resources.files("sb3_causal_envs").joinpath("data/alarm_graph_table_b2.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    edges = [(r["cause"], r["effect"]) for r in rows]
    names: list[str] = []
    for cause, effect in edges:
        for name in (cause, effect):
            if name not in names:
                names.append(name)
    return names, edges


@dataclass
class AlarmModel:
    """A fault-alarm network (topological Hawkes process with event-level parents).

    :param type_names: alarm type names, index order of the type axis
    :param alpha: propagation intensities ``alpha[h, parent_type, child_type]`` per hop ``h``
        (hop 0: same device, hop 1: neighbours, ...); non-zero entries define the type DAG
    :param mu: spontaneous intensity per type, used for the start time of new root/noise alarms
    :param topology: symmetric 0/1 device adjacency matrix, zero diagonal
    :param root_types: alarm types that can start a cascade as a root alarm
    :param root_devices: devices on which root alarms can appear
    :param transient: ``transient[device, type]`` is True for pairs whose alarms expire by themselves
    :param hop_normalization: weight of hop ``h >= 1`` between devices, one of
        ``sb3_causal.topology.HOP_NORMALIZATIONS``: ``"sym"`` for ``D^-1/2 A_h D^-1/2`` (the paper's
        formula), ``"rw"`` for ``D^-1 A_h D^-1`` (the authors' code; the default, because it reproduces
        the reference policy statistics) or ``"none"`` for ``A_h``
    :param time_per_step: simulated time per env step ("time range")
    :param p_new_root: probability that one new root alarm appears in a step
    :param p_noise: probability that one noise alarm (non-root type, non-root device) appears in a step;
        0.05, the middle of the authors' effective rate measured from their logs (0.03-0.07 per step;
        see ``FaultAlarmEnv``)
    :param n_initial_roots: root alarms placed at reset (cycling over the root types)
    :param min_initial_alarms: reset simulates until at least this many alarms are active
    :param alarm_cap: the episode terminates when more than this many alarms are active
    :param pair_cap: a (device, type) pair holding more than this many alarms receives no new ones
    :param max_steps: episode length limit (truncation)
    :param transient_mean: mean of the exponential lifetime of a transient alarm
    :param transient_min: minimum lifetime of a transient alarm
    :param step_penalty: reward penalty per step already taken (the reference: 1/100)
    """

    type_names: list[str]
    alpha: np.ndarray
    mu: np.ndarray
    topology: np.ndarray
    root_types: list[int]
    root_devices: list[int]
    transient: np.ndarray
    hop_normalization: str = "rw"
    time_per_step: float = 50.0
    p_new_root: float = 0.2
    p_noise: float = 0.05
    n_initial_roots: int = 5
    min_initial_alarms: int = 20
    alarm_cap: int = 1000
    pair_cap: int = 10
    max_steps: int = 100
    transient_mean: float = 10.0
    transient_min: float = 10.0
    step_penalty: float = 0.01
    device_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.alpha = np.asarray(self.alpha, dtype=np.float64)
        self.mu = np.asarray(self.mu, dtype=np.float64)
        self.topology = np.asarray(self.topology).astype(bool)
        self.transient = np.asarray(self.transient).astype(bool)
        self.type_names = [str(t) for t in self.type_names]
        self.root_types = [int(t) for t in self.root_types]
        self.root_devices = [int(d) for d in self.root_devices]
        if not self.device_names:
            self.device_names = [f"dev{i}" for i in range(self.topology.shape[0] if self.topology.ndim else 0)]
        self.validate()

    # ------------------------------------------------------------------ derived sizes
    @property
    def n_types(self) -> int:
        return len(self.type_names)

    @property
    def n_devices(self) -> int:
        return int(self.topology.shape[0])

    @property
    def n_hops(self) -> int:
        return int(self.alpha.shape[0])

    @property
    def n_pairs(self) -> int:
        return self.n_devices * self.n_types

    @property
    def type_adjacency(self) -> np.ndarray:
        """``[v, w]`` True when type v propagates to type w at some hop."""
        return (self.alpha > 0).any(axis=0)

    @property
    def type_graph(self) -> CausalGraph:
        """The true type-level causal graph."""
        return CausalGraph.from_adjacency(self.type_names, self.type_adjacency)

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check shapes, ranges and acyclicity; raise ``ValueError`` naming the problem."""
        v = self.n_types
        if v == 0:
            raise ValueError("AlarmModel needs at least one alarm type")
        if len(set(self.type_names)) != v:
            raise ValueError("AlarmModel type_names must be unique")
        if self.topology.ndim != 2 or self.topology.shape[0] != self.topology.shape[1]:
            raise ValueError(f"topology must be a square device adjacency matrix, got shape {self.topology.shape}")
        n = self.n_devices
        if n == 0:
            raise ValueError("AlarmModel needs at least one device")
        if not np.array_equal(self.topology, self.topology.T):
            raise ValueError("topology must be symmetric (an undirected device network)")
        if self.topology.diagonal().any():
            raise ValueError("topology must have no self-loops (hop 0 already means 'same device')")
        if len(self.device_names) != n:
            raise ValueError(f"device_names has {len(self.device_names)} names for {n} devices")
        if self.alpha.ndim != 3 or self.alpha.shape[1:] != (v, v) or self.alpha.shape[0] < 1:
            raise ValueError(f"alpha must have shape (n_hops, {v}, {v}) for {v} types, got {self.alpha.shape}")
        if not np.all(np.isfinite(self.alpha)) or (self.alpha < 0).any():
            raise ValueError("alpha must be finite and non-negative")
        if self.mu.shape != (v,):
            raise ValueError(f"mu must have shape ({v},), got {self.mu.shape}")
        if not np.all(np.isfinite(self.mu)) or (self.mu <= 0).any():
            raise ValueError("mu must be finite and positive")
        if self.transient.shape != (n, v):
            raise ValueError(f"transient must have shape ({n}, {v}) (devices x types), got {self.transient.shape}")
        try:
            CausalGraph.from_adjacency(self.type_names, self.type_adjacency)
        except CyclicGraphError as exc:
            raise ValueError(f"the alarm type graph (alpha > 0) must be acyclic: {exc}") from exc
        if not self.root_types or not self.root_devices:
            raise ValueError("root_types and root_devices must be non-empty")
        if any(not 0 <= t < v for t in self.root_types):
            raise ValueError(f"root_types must be type indices in [0, {v})")
        if any(not 0 <= d < n for d in self.root_devices):
            raise ValueError(f"root_devices must be device indices in [0, {n})")
        if self.hop_normalization not in HOP_NORMALIZATIONS:
            raise ValueError(f"hop_normalization must be one of {HOP_NORMALIZATIONS}, got {self.hop_normalization!r}")
        for name in ("time_per_step", "transient_mean"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("p_new_root", "p_noise"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")
        for name in ("n_initial_roots", "alarm_cap", "pair_cap", "max_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.min_initial_alarms < 1 or self.min_initial_alarms > self.alarm_cap:
            raise ValueError(f"min_initial_alarms must be in [1, alarm_cap={self.alarm_cap}]")
        if self.transient_min < 0 or self.step_penalty < 0:
            raise ValueError("transient_min and step_penalty must be non-negative")

    # ------------------------------------------------------------------ topology helpers
    @property
    def device_topology(self) -> Topology:
        """The device network as a sparse ``Topology``: the home of hop distances and hop weights."""
        return Topology(sp.csr_array(self.topology))

    def hop_weights(self) -> list[sp.csr_array]:
        """Sparse ``[W_0, ..., W_{n_hops-1}]``, ``W_h[n, m]``: weight of a parent on device m triggering a
        child on device n at hop h (``Topology.hop_weights`` with this model's normalisation)."""
        return self.device_topology.hop_weights(self.n_hops, self.hop_normalization)

    # ------------------------------------------------------------------ construction
    @classmethod
    def default(
        cls,
        seed: int = 0,
        n_devices: int = 50,
        n_links: int | None = None,
        n_root_devices: int | None = None,
        **overrides: Any,
    ) -> AlarmModel:
        """The FaultAlarmRL network of the paper, generated deterministically from ``seed``.

        Table B2's 94-edge DAG over 18 types; 50 devices with ~50 random links (max degree 6);
        each true edge active at one hop (hop 0 with probability 54/94, as in the authors' model),
        ``alpha ~ U[1e-4, 1.3e-3]``, ``mu ~ U[5e-4, 8e-4]``; root types: the 5 most upstream types;
        root devices: the 10 highest-degree devices; 10% of the other pairs transient.

        :param seed: seed of every random choice
        :param n_devices: devices; the paper's network has 50 (larger ones for scale tests: the random
            topology is drawn in ``O(n_devices ** 2)`` time, about 1 s for 5,000 devices)
        :param n_links: random device links (None: as many as devices, the paper's ~50 for 50)
        :param n_root_devices: highest-degree devices that can hold root alarms (None: a fifth of the
            devices, the paper's 10 of 50)
        :param overrides: any other ``AlarmModel`` field
        """
        if n_devices < 1:
            raise ValueError(f"n_devices must be >= 1, got {n_devices}")
        n_links = n_devices if n_links is None else n_links
        n_root_devices = max(1, n_devices // 5) if n_root_devices is None else n_root_devices
        if not 1 <= n_root_devices <= n_devices:
            raise ValueError(f"n_root_devices must be in [1, n_devices={n_devices}], got {n_root_devices}")
        rng = np.random.default_rng(seed)
        names, edges = load_table_b2()
        v = len(names)
        index = {name: i for i, name in enumerate(names)}
        topology = _random_topology(rng, n_devices, n_edges=n_links, max_degree=6)
        alpha = np.zeros((2, v, v))
        for cause, effect in edges:
            hop = 0 if rng.random() < 54 / 94 else 1
            alpha[hop, index[cause], index[effect]] = rng.uniform(1e-4, 1.3e-3)
        mu = rng.uniform(5e-4, 8e-4, size=v)
        type_graph = CausalGraph.from_adjacency(names, alpha.any(axis=0))
        root_types = sorted(np.argsort(type_graph.upstream_rank())[:5].tolist())
        degree = topology.sum(axis=1)
        root_devices = sorted(np.lexsort((np.arange(n_devices), -degree))[:n_root_devices].tolist())
        transient = rng.random((n_devices, v)) < 0.1
        transient[np.ix_(root_devices, root_types)] = False  # root pairs persist: they re-trigger
        params: dict[str, Any] = dict(
            type_names=names,
            alpha=alpha,
            mu=mu,
            topology=topology,
            root_types=root_types,
            root_devices=root_devices,
            transient=transient,
        )
        params.update(overrides)
        return cls(**params)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format": _JSON_FORMAT}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "topology":
                value = [[int(a), int(b)] for a, b in zip(*np.nonzero(np.triu(self.topology)))]
            elif f.name == "transient":
                value = [[int(a), int(b)] for a, b in zip(*np.nonzero(self.transient))]
            elif isinstance(value, np.ndarray):
                value = value.tolist()
            data[f.name] = value
        data["n_devices"] = self.n_devices
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlarmModel:
        if not isinstance(data, dict) or data.get("format") != _JSON_FORMAT:
            raise ValueError(f"not a serialised AlarmModel (expected format {_JSON_FORMAT!r})")
        data = dict(data)
        data.pop("format")
        try:
            n = int(data.pop("n_devices"))
            v = len(data["type_names"])
            topology = np.zeros((n, n), dtype=bool)
            for a, b in data.pop("topology"):
                topology[a, b] = topology[b, a] = True
            transient = np.zeros((n, v), dtype=bool)
            for a, b in data.pop("transient"):
                transient[a, b] = True
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(data) - known)
            if unknown:
                raise ValueError(f"unknown AlarmModel fields: {unknown}")
            return cls(topology=topology, transient=transient, **data)
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"malformed AlarmModel JSON: {exc!r}") from exc

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> AlarmModel:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ValueError(f"AlarmModel JSON is not valid JSON: {exc}") from exc

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> AlarmModel:
        return cls.from_json(Path(path).read_text())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AlarmModel):
            return NotImplemented
        return self.to_dict() == other.to_dict()


def _random_topology(rng: np.random.Generator, n: int, n_edges: int, max_degree: int) -> np.ndarray:
    """Uniform random simple graph with ``n_edges`` links and a degree cap (not necessarily connected).

    Candidate links are the upper-triangle pairs in one random permutation, taken in order while
    both ends have room; pair ``k`` of the row-major upper triangle is decoded arithmetically, so
    only the permutation (``n (n - 1) / 2`` integers) is held, never ``n x n`` index arrays.
    """
    adj = np.zeros((n, n), dtype=bool)
    degree = np.zeros(n, dtype=np.int64)
    row_start = np.cumsum(np.r_[0, np.arange(n - 1, 0, -1)])  # index of pair (a, a + 1)
    order = rng.permutation(n * (n - 1) // 2)
    added, chunk = 0, max(64, 4 * n_edges)
    for lo in range(0, order.size, chunk):
        k = order[lo : lo + chunk]
        rows = np.searchsorted(row_start, k, side="right") - 1
        cols = k - row_start[rows] + rows + 1
        for a, b in zip(rows.tolist(), cols.tolist()):
            if degree[a] < max_degree and degree[b] < max_degree:
                adj[a, b] = adj[b, a] = True
                degree[a] += 1
                degree[b] += 1
                added += 1
                if added == n_edges:
                    return adj
    return adj
