"""Causal depthwise Conv1d, the PyTorch stand-in for ``causal_conv1d_fn``."""

from typing import Optional

import torch
import torch.nn.functional as F

from recbole_sigma.ops.scan_cpu import cpu_kernel
from recbole_sigma.ops.selective_scan import uses_cpu_kernel


def causal_conv1d(
    x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None, silu: bool = True
) -> torch.Tensor:
    """x: (B, E, L); weight: (E, K) depthwise; output (B, E, L) sees only positions <= t."""
    kernel = weight.size(-1)
    out = F.conv1d(F.pad(x, (kernel - 1, 0)), weight.unsqueeze(1), bias, groups=x.size(1))
    return F.silu(out) if silu else out


class _CpuCausalConv(torch.autograd.Function):
    """The C++ causal conv + SiLU on time-major rows, forward and backward."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        x = x if x.stride(2) == 1 else x.contiguous()
        ctx.save_for_backward(x, weight, bias)
        return cpu_kernel().conv_forward(x, weight, bias, False)  # (B, L, E)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, bias = ctx.saved_tensors
        gx, gw, gbias = cpu_kernel().conv_backward(x, weight, bias, grad_out.contiguous(), False)
        return gx, gw, gbias if bias is not None else None


def causal_conv1d_silu_time_major(
    x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """silu(:func:`causal_conv1d`) on time-major rows: x (B, L, E) -> (B, L, E). On CPU the C++
    kernel reads x in place (a slice of in_proj's output) and needs no transposed copies."""
    if uses_cpu_kernel(x):
        return _CpuCausalConv.apply(x, weight, bias)
    return causal_conv1d(x.transpose(1, 2), weight, bias).transpose(1, 2)
