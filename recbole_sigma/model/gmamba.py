"""The G-Mamba block of the paper: PF-Mamba with DS gates, FE-GRU, mixing and feed-forward."""

import torch
import torch.nn as nn

from recbole_sigma.mamba import build_mamba
from recbole_sigma.model.layers import FEGRU, DSGate, FeedForward
from recbole_sigma.model.settings import SigmaSettings
from recbole_sigma.ops import Dropout, partial_flip


class GMambaBlock(nn.Module):
    """One G-Mamba block (Eq. 2-10), with the ablation switches of Table 4."""

    def __init__(self, s: SigmaSettings, backend: str) -> None:
        super().__init__()
        d = s.hidden_size
        self.flip_r, self.use_flip, self.share_mamba = s.flip_r, s.use_flip, s.share_mamba
        self.flip_back = s.flip_back
        self.residual = s.n_layers > 1 if s.mix_residual == "auto" else s.mix_residual
        self.mamba = build_mamba(backend, d, s.d_state, s.d_conv, s.expand)
        if s.use_flip and not s.share_mamba:
            self.mamba_flip = build_mamba(backend, d, s.d_state, s.d_conv, s.expand)
        self.gate = DSGate(d, s.gate_conv_kernel) if s.use_ds_gate else None
        self.fe_gru = FEGRU(d, s.gru_conv_kernel) if s.use_fe_gru else None
        self.mix = nn.Parameter(torch.tensor(s.mix_init))  # a1 (PF-Mamba), a2 (FE-GRU), Eq. 8
        self.proj = nn.Linear(d, d)  # Eq. 9
        self.dropout = Dropout(s.dropout_prob)
        self.LayerNorm = nn.LayerNorm(d, eps=1e-12)
        self.ffn = FeedForward(d, s.dropout_prob)

    def _gated(self, x: torch.Tensor, m: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return m if self.gate is None else self.gate(x, mask) * m

    def _pf_mamba(self, x: torch.Tensor, seq_len: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Eq. 2-3: G1(H) * M + G1(Hf) * Mf, position by position. (B, L, D) -> (B, L, D)."""
        if not self.use_flip:
            return self._gated(x, self.mamba(x), mask)
        xf = partial_flip(x, seq_len, self.flip_r)  # (B, L, D)
        if self.share_mamba:
            m, mf = self.mamba(torch.cat([x, xf])).chunk(2)
        else:
            m, mf = self.mamba(x), self.mamba_flip(xf)
        flipped = self._gated(xf, mf, mask)
        if self.flip_back:  # not in Eq. 3: position i again holds item i
            flipped = partial_flip(flipped, seq_len, self.flip_r)
        return self._gated(x, m, mask) + flipped

    def forward(self, x: torch.Tensor, seq_len: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, L, D) zero at padding; seq_len (B,); mask (B, L, 1). Returns (B, L, D)."""
        z = self.mix[0] * self._pf_mamba(x, seq_len, mask)  # Eq. 8
        if self.fe_gru is not None:
            z = z + self.mix[1] * self.fe_gru(x)
        h = self.dropout(self.proj(z))  # Eq. 9
        h = self.LayerNorm(h + x if self.residual else h)
        return self.ffn(h) * mask  # Eq. 10
