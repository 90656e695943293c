"""Causal depthwise Conv1d, the PyTorch stand-in for ``causal_conv1d_fn``."""

from typing import Optional

import torch
import torch.nn.functional as F


def causal_conv1d(
    x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None, silu: bool = True
) -> torch.Tensor:
    """x: (B, E, L); weight: (E, K) depthwise; output (B, E, L) sees only positions <= t."""
    kernel = weight.size(-1)
    out = F.conv1d(F.pad(x, (kernel - 1, 0)), weight.unsqueeze(1), bias, groups=x.size(1))
    return F.silu(out) if silu else out
