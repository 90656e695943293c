"""recbole-sigma: SIGMA (Selective Gated Mamba, AAAI 2025) as a RecBole plugin."""

import sys

import torch

if "recbole.model.sequential_recommender" not in sys.modules:
    # RecBole's sine.py turns on autograd anomaly detection for the whole process when it is
    # imported (every op then records a stack trace, ~4x slower): import it once, undo that
    _anomaly = torch.is_anomaly_enabled()
    import recbole.model.sequential_recommender  # noqa: F401

    torch.autograd.set_detect_anomaly(_anomaly)

from recbole_sigma.model import SIGMA  # noqa: E402

__version__ = "0.1.0"
__all__ = ["SIGMA", "__version__"]
