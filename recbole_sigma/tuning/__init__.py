"""Hyper-parameter tuning of SIGMA (or any RecBole model) with hyperopt or Ray Tune."""

from recbole_sigma.tuning.run import tune_from_args

__all__ = ["tune_from_args"]
