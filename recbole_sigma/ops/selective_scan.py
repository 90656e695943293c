"""Selective scan for the PyTorch Mamba path: a C++ kernel on CPU, a PyTorch loop otherwise."""

from typing import Optional

import torch
import torch.nn.functional as F

from recbole_sigma.ops.scan_cpu import cpu_kernel
from recbole_sigma.ops.scan_loop import LoopScan


class _CpuScan(torch.autograd.Function):
    """y_t = <h_t, C_t>, h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t, with a hand-written backward."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C):
        kernel = cpu_kernel()
        bt, ct = B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous()  # (B, L, N)
        u, delta, A = u.contiguous(), delta.contiguous(), A.contiguous()
        ctx.save_for_backward(u, delta, A, bt, ct)
        return kernel.forward(u, delta, A, bt, ct)  # (B, E, L)

    @staticmethod
    def backward(ctx, grad_y):
        gu, gdelta, gA, gbt, gct = cpu_kernel().backward(*ctx.saved_tensors, grad_y.contiguous())
        return gu, gdelta, gA, gbt.transpose(1, 2), gct.transpose(1, 2)


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: Optional[torch.Tensor] = None,
    z: Optional[torch.Tensor] = None,
    delta_bias: Optional[torch.Tensor] = None,
    delta_softplus: bool = False,
) -> torch.Tensor:
    """Selective scan with ``mamba_ssm.selective_scan_fn``'s signature and shapes.

    u, delta, z: (B, E, L); A: (E, N); B, C: (B, N, L); D, delta_bias: (E,). Returns (B, E, L).
    """
    if delta_bias is not None:
        delta = delta + delta_bias[None, :, None]
    if delta_softplus:
        delta = F.softplus(delta)
    if u.device.type == "cpu" and u.dtype in (torch.float32, torch.float64) and cpu_kernel():
        y = _CpuScan.apply(u, delta, A, B, C)
    else:
        y = LoopScan.apply(u, delta, A, B, C)
    if D is not None:
        y = y + u * D[None, :, None]
    if z is not None:
        y = y * F.silu(z)
    return y
