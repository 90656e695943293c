"""Mamba4Rec (Liu et al., 2024), the SIGMA paper's Mamba baseline: item embedding, Mamba layers
with dropout, LayerNorm and feed-forward, the last real position scored against all items.

Its parameter names, defaults and init are those of the Mamba4Rec code the SIGMA authors ran
(``baselines/mamba4rec.py`` in their repository): RecBole's init reaches inside Mamba, so
``dt_proj``'s bias starts at 0. Mamba is causal and every other op is position-wise, so the output
at a user's last item never reads the padding after it and length groups give the same scores.
"""

from typing import Any, Mapping

import torch
import torch.nn as nn
from recbole.model.abstract_recommender import SequentialRecommender

from recbole_sigma.mamba import BACKENDS, build_mamba, resolve_backend
from recbole_sigma.model.baselines import LengthGrouped
from recbole_sigma.model.layers import FeedForward
from recbole_sigma.model.scoring import DotProductScoring, build_loss, init_like_recbole
from recbole_sigma.model.settings import is_dropout, is_positive_int
from recbole_sigma.ops import Dropout

_POSITIVE = ("hidden_size", "num_layers", "d_state", "d_conv", "expand")


def check_mamba4rec(config: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the key and the fix for a bad Mamba4Rec key."""

    def bad(key: str, want: str) -> ValueError:
        return ValueError(f"config key {key!r} must be {want}, got {config[key]!r}; fix it in "
                          f"your YAML or pass --{key}=<value> (defaults: "
                          f"properties/model/Mamba4Rec.yaml)")

    for key in _POSITIVE:
        if not is_positive_int(config[key]):
            raise bad(key, "a positive integer")
    if not is_dropout(config["dropout_prob"]):
        raise bad("dropout_prob", "a number in [0, 1)")
    if config["loss_type"] not in ("CE", "BPR"):
        raise bad("loss_type", "CE or BPR")
    if config["mamba_backend"] not in BACKENDS:
        raise bad("mamba_backend", "one of " + ", ".join(BACKENDS))


class MambaLayer(nn.Module):
    """Mamba, dropout, LayerNorm (with a residual only when layers are stacked), feed-forward."""

    def __init__(self, d: int, d_state: int, d_conv: int, expand: int, dropout: float,
                 num_layers: int, backend: str) -> None:
        super().__init__()
        self.residual = num_layers > 1
        self.mamba = build_mamba(backend, d, d_state, d_conv, expand)
        self.dropout = Dropout(dropout)
        self.LayerNorm = nn.LayerNorm(d, eps=1e-12)
        self.ffn = FeedForward(d, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, L, D) -> (B, L, D)."""
        h = self.dropout(self.mamba(x))
        return self.ffn(self.LayerNorm(h + x if self.residual else h))


class PaddedMamba4Rec(DotProductScoring, SequentialRecommender):
    """Mamba4Rec on RecBole's padded batch."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        d, self.num_layers = config["hidden_size"], config["num_layers"]
        self.loss_type = config["loss_type"]
        self.mamba_backend = resolve_backend(config["mamba_backend"], config["device"])
        self.item_embedding = nn.Embedding(self.n_items, d, padding_idx=0)
        self.LayerNorm = nn.LayerNorm(d, eps=1e-12)
        self.dropout = Dropout(config["dropout_prob"])
        self.mamba_layers = nn.ModuleList(
            MambaLayer(d, config["d_state"], config["d_conv"], config["expand"],
                       config["dropout_prob"], self.num_layers, self.mamba_backend)
            for _ in range(self.num_layers)
        )
        self.loss_fct = build_loss(self.loss_type)
        self.apply(init_like_recbole)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """item_seq (B, L) right-padded, item_seq_len (B,) -> user representation (B, D)."""
        x = self.LayerNorm(self.dropout(self.item_embedding(item_seq)))  # (B, L, D)
        for layer in self.mamba_layers:
            x = layer(x)
        return self.gather_indexes(x, item_seq_len - 1)  # (B, D)


class Mamba4Rec(LengthGrouped, PaddedMamba4Rec):
    """Mamba4Rec, by length groups on CPU."""

    source = "Mamba4Rec (Liu et al., 2024)"
