"""The SIGMA model and its blocks."""

from recbole_sigma.model.sigma import SIGMA

__all__ = ["SIGMA"]
