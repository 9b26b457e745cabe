"""Structure learning: initial (observational) graphs and the online interventional learner."""

from sb3_causal.discovery.initial import INITIAL_METHODS, initial_graph
from sb3_causal.discovery.online import OnlineCausalLearner

__all__ = ["INITIAL_METHODS", "OnlineCausalLearner", "initial_graph"]
