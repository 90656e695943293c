"""The SIGMA model and its blocks; RecBole's SASRec and GRU4Rec and Mamba4Rec with length-grouped
batches."""

from recbole_sigma.model.baselines import GRU4Rec, SASRec
from recbole_sigma.model.mamba4rec import Mamba4Rec
from recbole_sigma.model.sigma import SIGMA

__all__ = ["GRU4Rec", "Mamba4Rec", "SASRec", "SIGMA"]
