"""The G-Mamba block that fits the authors' logged Beauty run (``sigma_variant: logged``).

Their notebook's logged SIGMA run (test NDCG@10 .0452) was not made by their published
``gated_mamba.py``: the FLOPs their RecBole printed (3,526,464 on Beauty) are Mamba4Rec's plus one
GRU and three Linear(64, 64) calls, with no Conv1d call, where the published forward makes seven
Linear calls and a Conv1d call. This block makes that many calls; what the counts cannot show
(which three Linears, what the gate and the GRU read, the mix order) follows the published file.
It is a reconstruction, not their code.
"""

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from recbole_sigma.mamba import build_mamba
from recbole_sigma.model.layers import FeedForward
from recbole_sigma.model.settings import SigmaSettings
from recbole_sigma.ops import Dropout, official_flip


class LoggedGMambaBlock(nn.Module):
    """The official block with one gate ``silu-path(h1) + sigmoid-path(h1)``, ``h1 = x +
    dense1(x)``, on both directions, the GRU on the block input (no Conv1d) and no projection;
    gate dropout 0.3 as their runs' printed module tree shows. The ablation switches drop the
    flipped direction (``use_flip``), the gate (``use_ds_gate``: ``m`` for ``m * gate + m``) or
    the GRU (``use_fe_gru``), as the paper variant's do.

    Nothing is masked: padding positions carry the padding embedding through every layer.
    """

    def __init__(self, s: SigmaSettings, backend: str) -> None:
        super().__init__()
        d = s.hidden_size
        self.residual = s.n_layers > 1
        self.use_flip, self.use_ds_gate, self.use_fe_gru = s.use_flip, s.use_ds_gate, s.use_fe_gru
        self.mamba = build_mamba(backend, d, s.d_state, s.d_conv, s.expand)
        if s.use_ds_gate:
            self.dense1 = nn.Linear(d, d)
            self.gate_silu = nn.Linear(d, d)
            self.gate_sigmoid = nn.Linear(d, d)
            self.gate_dropout = Dropout(0.3)  # fixed in the authors' runs, not dropout_prob
        if s.use_fe_gru:
            self.gru = nn.GRU(d, d, bias=False, batch_first=True)
        self.mix = nn.Parameter(torch.tensor([0.1, 0.1, 0.8]))  # GRU, flipped, forward
        self.dropout = Dropout(s.dropout_prob)
        self.LayerNorm = nn.LayerNorm(d, eps=1e-12)
        self.ffn = FeedForward(d, s.dropout_prob)

    def _gate(self, x: torch.Tensor) -> Optional[torch.Tensor]:
        """The gate of both directions, read from ``h1 = x + dense1(x)``; None without it."""
        if not self.use_ds_gate:
            return None
        h1 = x + self.dense1(x)
        return self.gate_dropout(self.gate_silu(F.silu(h1)) + self.gate_sigmoid(torch.sigmoid(h1)))

    @staticmethod
    def _gated(m: torch.Tensor, gate: Optional[torch.Tensor]) -> torch.Tensor:
        """``m * gate + m``, or ``m`` without the gate."""
        return m if gate is None else m * gate + m

    def forward(self, x: torch.Tensor, xf: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x (B, L, D), padding included -> (B, L, D). ``xf``: ``official_flip`` of the full-width
        input when ``x`` is a cut of it (the flip reads positions up to 44)."""
        if self.use_flip:
            xf = official_flip(x) if xf is None else xf  # (B, L, D)
            m, mf = self.mamba(torch.cat([x, xf])).chunk(2)
        else:
            m = self.mamba(x)  # (B, L, D)
        gate = self._gate(x)
        z = self.mix[2] * self._gated(m, gate)
        if self.use_flip:
            z = z + self.mix[1] * self._gated(mf, gate)
        if self.use_fe_gru:
            z = z + self.mix[0] * self.gru(x)[0]
        h = self.dropout(z)
        h = self.LayerNorm(h + x if self.residual else h)
        return self.ffn(h)
