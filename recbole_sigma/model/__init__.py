"""The SIGMA model and its blocks; RecBole's SASRec and GRU4Rec with length-grouped batches."""

from recbole_sigma.model.baselines import GRU4Rec, SASRec
from recbole_sigma.model.sigma import SIGMA

__all__ = ["GRU4Rec", "SASRec", "SIGMA"]
