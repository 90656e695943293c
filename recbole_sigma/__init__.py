"""recbole-sigma: SIGMA (Selective Gated Mamba, AAAI 2025) as a RecBole plugin."""

from recbole_sigma.model import SIGMA

__version__ = "0.1.0"
__all__ = ["SIGMA", "__version__"]
