"""Building blocks of a G-Mamba block (SIGMA, Sec. 3): DS gate, FE-GRU, feed-forward."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from recbole_sigma.ops import Dropout


class DSGate(nn.Module):
    """DS gate, Eq. 4-6: G1(x) = SiLU(d(G0)) + sigmoid(d(G0)), G0 = Conv1d(Linear(x)).

    ``Linear(x)`` is zeroed at padding before the conv, so the gate at a user's last item does
    not read the Linear's bias from the padding that follows it.
    """

    def __init__(self, hidden_size: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, hidden_size)
        self.conv = nn.Conv1d(hidden_size, hidden_size, kernel_size, padding=kernel_size // 2)
        self.dense = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, L, D), mask (B, L, 1) -> gate (B, L, D)."""
        g0 = self.conv((self.linear(x) * mask).transpose(1, 2)).transpose(1, 2)  # (B, L, D)
        d = self.dense(g0)  # (B, L, D)
        return F.silu(d) + torch.sigmoid(d)


class FEGRU(nn.Module):
    """Feature Extract GRU, Eq. 7: Conv1d over the sequence, then a GRU."""

    def __init__(self, hidden_size: int, kernel_size: int = 3, bias: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv1d(hidden_size, hidden_size, kernel_size, padding=kernel_size // 2)
        self.gru = nn.GRU(hidden_size, hidden_size, bias=bias, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (B, L, D)
        out, _ = self.gru(c)  # (B, L, D)
        return out


class FeedForward(nn.Module):
    """Position-wise feed-forward, Eq. 10: GELU, 4x inner size, dropout, residual, LayerNorm."""

    def __init__(self, hidden_size: int, dropout: float) -> None:
        super().__init__()
        self.w_1 = nn.Linear(hidden_size, 4 * hidden_size)
        self.w_2 = nn.Linear(4 * hidden_size, hidden_size)
        self.dropout = Dropout(dropout)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.w_2(self.dropout(F.gelu(self.w_1(x)))))  # (B, L, D)
        return self.LayerNorm(h + x)
