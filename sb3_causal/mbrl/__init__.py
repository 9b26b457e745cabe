"""Causal model-based RL: C-MBPO (a factorised structural causal world model + SB3 SAC) and MBPO.

See ``sb3_causal.mbrl.cmbpo`` for the algorithm and the choices it offers, ``structure`` for how the local
causal graph is learned, ``dynamics`` for the batched probabilistic ensembles.
"""

from __future__ import annotations

from sb3_causal.mbrl.cmbpo import CMBPO, MBPO, ObservationMaskExtractor, UnsupportedSpaceError
from sb3_causal.mbrl.dynamics import FactorisedDynamics, FactorSpec, GaussianEnsemble
from sb3_causal.mbrl.structure import StructureResult, learn_local_graph, reward_ancestor_states

__all__ = [
    "CMBPO",
    "MBPO",
    "FactorSpec",
    "FactorisedDynamics",
    "GaussianEnsemble",
    "ObservationMaskExtractor",
    "StructureResult",
    "UnsupportedSpaceError",
    "learn_local_graph",
    "reward_ancestor_states",
]
