"""The G-Mamba block as the authors' public code computes it (``sigma_variant: official``)."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from recbole_sigma.mamba import build_mamba
from recbole_sigma.model.layers import FEGRU, FeedForward
from recbole_sigma.model.settings import SigmaSettings
from recbole_sigma.ops import official_flip


class OfficialGMambaBlock(nn.Module):
    """Shared Mamba, length-blind flip, no flip-back, ``m * (1 + gate)``, mix 0.1/0.1/0.8."""

    def __init__(self, s: SigmaSettings, backend: str) -> None:
        super().__init__()
        d = s.hidden_size
        self.flip_r, self.residual = s.flip_r, s.n_layers > 1
        self.mamba = build_mamba(backend, d, s.d_state, s.d_conv, s.expand)
        self.dense1 = nn.Linear(d, d)
        self.dense2 = nn.Linear(d, d)
        self.gate_silu = nn.Linear(d, d)
        self.gate_sigmoid = nn.Linear(d, d)
        self.gate_dropout = nn.Dropout(0.2)  # fixed in the authors' code, not dropout_prob
        self.fe_gru = FEGRU(d, s.gru_conv_kernel, bias=False)
        self.mix = nn.Parameter(torch.tensor([0.1, 0.1, 0.8]))  # GRU, flipped, forward
        self.proj = nn.Linear(d, d)
        self.dropout = nn.Dropout(s.dropout_prob)
        self.LayerNorm = nn.LayerNorm(d, eps=1e-12)
        self.ffn = FeedForward(d, s.dropout_prob)

    def _gate(self, h: torch.Tensor) -> torch.Tensor:
        return self.gate_dropout(self.gate_silu(F.silu(h)) + self.gate_sigmoid(torch.sigmoid(h)))

    def forward(self, x: torch.Tensor, seq_len: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, L, D); seq_len is unused: the authors' flip ignores true lengths."""
        xf = official_flip(x, self.flip_r)  # (B, L, D)
        m, mf = self.mamba(torch.cat([x, xf])).chunk(2)
        m = m * (1 + self._gate(x + self.dense1(x)))
        mf = mf * (1 + self._gate(xf + self.dense2(xf)))
        z = self.mix[2] * m + self.mix[1] * mf + self.mix[0] * self.fe_gru(x)
        z = self.dropout(self.proj(z))
        h = self.LayerNorm(z + x if self.residual else z)
        return self.ffn(h) * mask
