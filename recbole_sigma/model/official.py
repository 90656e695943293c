"""The G-Mamba block as the authors' public code computes it (``sigma_variant: official``)."""

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from recbole_sigma.mamba import build_mamba
from recbole_sigma.model.layers import FEGRU, FeedForward
from recbole_sigma.model.settings import SigmaSettings
from recbole_sigma.ops import Dropout, official_flip


class OfficialGMambaBlock(nn.Module):
    """Shared Mamba, fixed 45-position flip, no flip-back, ``m * (1 + gate)``, mix 0.1/0.1/0.8.

    Nothing is masked: padding positions carry the padding embedding through every layer.
    """

    def __init__(self, s: SigmaSettings, backend: str) -> None:
        super().__init__()
        d = s.hidden_size
        self.residual = s.n_layers > 1
        self.mamba = build_mamba(backend, d, s.d_state, s.d_conv, s.expand)
        self.dense1 = nn.Linear(d, d)
        self.dense2 = nn.Linear(d, d)
        self.gate_silu = nn.Linear(d, d)
        self.gate_sigmoid = nn.Linear(d, d)
        self.gate_dropout = Dropout(0.2)  # fixed in the authors' code, not dropout_prob
        self.fe_gru = FEGRU(d, s.gru_conv_kernel, bias=False)
        self.mix = nn.Parameter(torch.tensor([0.1, 0.1, 0.8]))  # GRU, flipped, forward
        self.proj = nn.Linear(d, d)
        self.dropout = Dropout(s.dropout_prob)
        self.LayerNorm = nn.LayerNorm(d, eps=1e-12)
        self.ffn = FeedForward(d, s.dropout_prob)

    def forward(self, x: torch.Tensor, xf: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x (B, L, D), padding included -> (B, L, D). ``xf``: ``official_flip`` of the full-width
        input when ``x`` is a cut of it (the flip reads positions up to 44)."""
        xf = official_flip(x) if xf is None else xf  # (B, L, D)
        m, mf = self.mamba(torch.cat([x, xf])).chunk(2)
        h1 = x + self.dense1(x)
        h2 = xf + self.dense2(xf)
        g1 = self.gate_dropout(self.gate_silu(F.silu(h1)) + self.gate_sigmoid(torch.sigmoid(h1)))
        # the flipped gate's sigmoid path reads the forward gate g1, as in the authors' code
        g2 = self.gate_dropout(self.gate_silu(F.silu(h2)) + self.gate_sigmoid(torch.sigmoid(g1)))
        z = self.mix[2] * (m * g1 + m) + self.mix[1] * (mf * g2 + mf) + self.mix[0] * self.fe_gru(x)
        h = self.dropout(self.proj(z))
        h = self.LayerNorm(h + x if self.residual else h)
        return self.ffn(h)
