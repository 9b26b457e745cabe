"""Structure learning: initial (observational) graphs and the online interventional learner."""
