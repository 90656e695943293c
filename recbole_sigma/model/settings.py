"""SIGMA's config keys: defaults (mirrored in properties/model/SIGMA.yaml) and validation."""

import functools
import warnings
from dataclasses import dataclass, fields
from typing import Any, Mapping, Union

from recbole_sigma.mamba import BACKENDS

VARIANTS = ("paper", "official", "logged")
MAMBA_INITS = ("recbole", "mamba_ssm")


@dataclass(frozen=True)
class SigmaSettings:
    """Validated hyper-parameters of one SIGMA model."""

    hidden_size: int = 64
    n_layers: int = 1
    dropout_prob: float = 0.2
    d_state: int = 32
    d_conv: int = 4
    expand: int = 2
    flip_r: int = 5
    gate_conv_kernel: int = 3
    gru_conv_kernel: int = 3
    use_flip: bool = True
    use_ds_gate: bool = True
    use_fe_gru: bool = True
    share_mamba: bool = False
    flip_back: bool = False
    mix_residual: Union[bool, str] = "auto"
    mix_init: tuple = (1.0, 1.0)
    mamba_init: str = "recbole"
    group_by_length: Union[bool, str] = "auto"
    sigma_variant: str = "paper"
    mamba_backend: str = "auto"
    loss_type: str = "CE"


_POSITIVE = ("hidden_size", "n_layers", "d_state", "d_conv", "expand")
_ODD_KERNELS = ("gate_conv_kernel", "gru_conv_kernel")
_FLAGS = ("use_flip", "use_ds_gate", "use_fe_gru", "share_mamba", "flip_back")
# keys each variant does not read: the authors' forms fix what these set in the paper variant
# (share_mamba is left out: both share one Mamba, as share_mamba: True)
_PAPER_ONLY = ("flip_r", "gate_conv_kernel", "flip_back", "mix_residual", "mix_init",
               "mamba_init")
UNREAD_KEYS = {
    "paper": (),
    "official": _PAPER_ONLY + ("use_flip", "use_ds_gate", "use_fe_gru"),
    "logged": _PAPER_ONLY + ("gru_conv_kernel",),
}
_CHOICES = {
    "sigma_variant": VARIANTS,
    "mamba_backend": BACKENDS,
    "loss_type": ("CE", "BPR"),
    "mamba_init": MAMBA_INITS,
}


def is_positive_int(value: Any) -> bool:
    """An int >= 1 (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def is_dropout(value: Any) -> bool:
    """A number in [0, 1) (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1


def _bad(key: str, value: Any, want: str) -> ValueError:
    return ValueError(
        f"config key {key!r} must be {want}, got {value!r}; "
        f"fix it in your YAML or pass --{key}=<value> (defaults: properties/model/SIGMA.yaml)"
    )


def sigma_settings(config: Mapping[str, Any]) -> SigmaSettings:
    """Read SIGMA's keys from a RecBole ``Config`` (missing keys: defaults) and check them."""
    values = {}
    for f in fields(SigmaSettings):
        value = config[f.name] if f.name in config else None
        values[f.name] = f.default if value is None else value
    for key in _POSITIVE:
        if not is_positive_int(values[key]):
            raise _bad(key, values[key], "a positive integer")
    for key in _ODD_KERNELS:
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value % 2 == 0:
            raise _bad(key, value, "a positive odd integer")
    flip_r = values["flip_r"]
    if isinstance(flip_r, bool) or not isinstance(flip_r, int) or flip_r < 0:
        raise _bad("flip_r", flip_r, "an integer >= 0 (the number of last items kept in place)")
    dropout = values["dropout_prob"]
    if not is_dropout(dropout):
        raise _bad("dropout_prob", dropout, "a number in [0, 1)")
    for key in _FLAGS:
        if not isinstance(values[key], bool):
            raise _bad(key, values[key], "True or False")
    for key, choices in _CHOICES.items():
        if values[key] not in choices:
            raise _bad(key, values[key], "one of " + ", ".join(choices))
    group = values["group_by_length"]
    if not (isinstance(group, bool) or group == "auto"):
        raise _bad("group_by_length", group, "auto (on for the torch backend), True or False")
    residual = values["mix_residual"]
    if not (isinstance(residual, bool) or residual == "auto"):
        raise _bad("mix_residual", residual, "auto (only with n_layers > 1), True or False")
    mix = values["mix_init"]
    if (
        not isinstance(mix, (list, tuple))
        or len(mix) != 2
        or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in mix)
    ):
        raise _bad("mix_init", mix, "two numbers [a1, a2] (PF-Mamba, FE-GRU)")
    values["mix_init"] = tuple(float(a) for a in mix)
    values["dropout_prob"] = float(dropout)
    settings = SigmaSettings(**values)
    _check_read(settings)
    return settings


def unread_defaults(variant: str) -> dict[str, Any]:
    """The defaults of the keys ``variant`` does not read (a config that sets them to these
    passes :func:`sigma_settings` with any variant)."""
    defaults = SigmaSettings()
    return {key: getattr(defaults, key) for key in UNREAD_KEYS[variant]}


def _check_read(settings: SigmaSettings) -> None:
    """Stop on a key set away from its default that the chosen variant would ignore: the run
    would train another model than the config says."""
    variant = settings.sigma_variant
    for key, default in unread_defaults(variant).items():
        value = getattr(settings, key)
        if value != default:
            raise ValueError(
                f"config key {key!r} is {value!r}, but sigma_variant: {variant} does not read it "
                f"(its form fixes what the key sets); remove it, set it to {default!r}, or use "
                f"sigma_variant: paper (README, Fidelity)"
            )


def warn_if_flip_is_off(settings: SigmaSettings, max_len: int) -> None:
    """Warn (once per process and values) when the paper variant's ``flip_r`` leaves nothing to
    flip (the official variant does not read it): the flip
    reverses the first ``n - flip_r`` of ``n <= max_len`` items, and reversing one item is none."""
    paper = settings.sigma_variant == "paper"
    if paper and settings.use_flip and settings.flip_r >= max_len - 1:
        _warn_flip_off(settings.flip_r, max_len)


@functools.cache
def _warn_flip_off(flip_r: int, max_len: int) -> None:
    warnings.warn(
        f"flip_r={flip_r} >= MAX_ITEM_LIST_LENGTH - 1 = {max_len - 1}: the partial flip reverses "
        f"the first n - flip_r items of a sequence of n <= MAX_ITEM_LIST_LENGTH items, so it "
        f"reverses nothing and SIGMA's flipped branch sees the sequence in its own order. Lower "
        f"flip_r (properties/model/SIGMA.yaml) or raise MAX_ITEM_LIST_LENGTH",
        UserWarning, stacklevel=2,
    )
