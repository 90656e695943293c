"""``get_model`` and ``get_trainer`` as in ``recbole.utils``, for the plugin's models too."""

import torch
from recbole.utils import get_model as get_recbole_model

from recbole_sigma.model import SIGMA
from recbole_sigma.trainer import get_safe_trainer as get_trainer

PLUGIN_MODELS = {"SIGMA": SIGMA}

__all__ = ["PLUGIN_MODELS", "get_model", "get_trainer"]


def get_model(name: str) -> type:
    """The plugin's model class of that name, else RecBole's (``recbole.utils.get_model``)."""
    if name in PLUGIN_MODELS:
        return PLUGIN_MODELS[name]
    anomaly = torch.is_anomaly_enabled()
    try:
        return get_recbole_model(name)
    except (ValueError, ImportError):  # RecBole's search imports its lightgbm/xgboost models
        raise ValueError(
            f"unknown model {name!r}: use SIGMA or a RecBole model name (SASRec, GRU4Rec, ...)"
        ) from None
    finally:
        # importing RecBole's sequential models runs sine.py, which turns on autograd anomaly
        # detection for the whole process: every op then records a stack trace (~4x slower)
        torch.autograd.set_detect_anomaly(anomaly)
