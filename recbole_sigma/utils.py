"""``get_model`` and ``get_trainer`` as in ``recbole.utils``, for the plugin's models too."""

from recbole.utils import get_model as get_recbole_model

from recbole_sigma.model import SIGMA, GRU4Rec, Mamba4Rec, SASRec
from recbole_sigma.trainer import get_safe_trainer as get_trainer

PLUGIN_MODELS = {"SIGMA": SIGMA, "SASRec": SASRec, "GRU4Rec": GRU4Rec, "Mamba4Rec": Mamba4Rec}

__all__ = ["PLUGIN_MODELS", "get_model", "get_trainer"]


def get_model(name: str) -> type:
    """The plugin's model class of that name, else RecBole's (``recbole.utils.get_model``)."""
    if name in PLUGIN_MODELS:
        return PLUGIN_MODELS[name]
    try:  # importing sine.py's anomaly switch is undone in recbole_sigma/__init__.py
        return get_recbole_model(name)
    except (ValueError, ImportError):  # RecBole's search imports its lightgbm/xgboost models
        raise ValueError(
            f"unknown model {name!r}: use SIGMA, Mamba4Rec or a RecBole model name "
            "(SASRec, GRU4Rec, ...)"
        ) from None
