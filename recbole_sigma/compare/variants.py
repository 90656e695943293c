"""Which models a comparison runs: RecBole or plugin models, and SIGMA's ablation variants."""

from dataclasses import dataclass, field
from typing import Any

from recbole_sigma.model.settings import unread_defaults
from recbole_sigma.utils import get_model


def _variant(name: str) -> dict[str, Any]:
    """``sigma_variant: name``, with the keys it does not read at their defaults, so that a
    comparison's paper-variant settings (e.g. ``--mix_residual=True``) do not stop it."""
    unread = {k: list(v) if isinstance(v, tuple) else v for k, v in unread_defaults(name).items()}
    return {"sigma_variant": name, **unread}


# each ablation is SIGMA with one config switch changed (see properties/model/SIGMA.yaml)
ABLATIONS: dict[str, dict[str, Any]] = {
    "SIGMA-noflip": {"use_flip": False},
    "SIGMA-nogate": {"use_ds_gate": False},
    "SIGMA-nogru": {"use_fe_gru": False},
    "SIGMA-official": _variant("official"),
    "SIGMA-logged": _variant("logged"),
}


@dataclass(frozen=True)
class Variant:
    """A row of the comparison: a display name, the model class name and config overrides."""

    name: str
    model: str
    overrides: dict[str, Any] = field(default_factory=dict)


def variant(name: str) -> Variant:
    """The variant called ``name``: an ablation from :data:`ABLATIONS`, else a model name."""
    if name in ABLATIONS:
        return Variant(name, "SIGMA", dict(ABLATIONS[name]))
    get_model(name)  # raises a clear ValueError for unknown models
    return Variant(name, name)


def parse_models(spec: str, ablations: bool = False) -> list[Variant]:
    """Variants for ``"SIGMA,SASRec,GRU4Rec"``; ``ablations`` appends all of ABLATIONS."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if ablations:
        names += [n for n in ABLATIONS if n not in names]
    if not names:
        raise ValueError("--compare needs at least one model, e.g. SIGMA,SASRec,GRU4Rec")
    if len(set(names)) != len(names):
        raise ValueError(f"a model is named twice in {names}")
    return [variant(n) for n in names]
