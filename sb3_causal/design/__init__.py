"""CAASL (seed 003): exact posterior over DAGs, the design policy for SB3's SAC, information-gain choice."""

from sb3_causal.design.chooser import DesignDataCallback, InformationGainChooser, information_gain
from sb3_causal.design.extractor import DesignHistoryExtractor, DesignSACPolicy, design_action
from sb3_causal.design.posterior import EdgePosterior, ExactPosterior, edge_metrics, expected_correct_entries
from sb3_causal.design.sac import DesignSAC

__all__ = [
    "DesignDataCallback",
    "DesignHistoryExtractor",
    "DesignSAC",
    "DesignSACPolicy",
    "EdgePosterior",
    "ExactPosterior",
    "InformationGainChooser",
    "design_action",
    "edge_metrics",
    "expected_correct_entries",
    "information_gain",
]
