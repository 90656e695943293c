"""Selective scan for the PyTorch Mamba path: a fused C++ kernel on CPU, else a PyTorch loop."""

from typing import Optional

import torch
import torch.nn.functional as F

from recbole_sigma.ops.scan_cpu import cpu_kernel
from recbole_sigma.ops.scan_loop import LoopScan


def _time_major(x: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """(B, E, L) -> contiguous (B, L, E); free when x is already a transposed view of one."""
    return None if x is None else x.transpose(1, 2).contiguous()


class _CpuScan(torch.autograd.Function):
    """The fused C++ scan (softplus, D skip and silu(z) gate included), forward and backward."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus):
        args = [_time_major(u), _time_major(delta), A.contiguous(), _time_major(B),
                _time_major(C), D, _time_major(z), delta_bias]
        out, y = cpu_kernel().forward(*args, delta_softplus, z is not None, False)
        ctx.softplus = delta_softplus
        ctx.save_for_backward(*args, y)  # y: the gate's input, None without z
        return out.transpose(1, 2)  # (B, E, L) view of (B, L, E)

    @staticmethod
    def backward(ctx, grad_out):
        *args, y = ctx.saved_tensors
        grads = cpu_kernel().backward(*args, ctx.softplus, y, _time_major(grad_out), False)
        gu, gdelta, gA, gB, gC, gD, gz, gbias = grads
        gz = gz.transpose(1, 2) if gz is not None else None
        return (gu.transpose(1, 2), gdelta.transpose(1, 2), gA, gB.transpose(1, 2),
                gC.transpose(1, 2), gD, gz, gbias, None)


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
    if u.device.type == "cpu" and u.dtype in (torch.float32, torch.float64) and cpu_kernel():
        return _CpuScan.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    if delta_bias is not None:
        delta = delta + delta_bias[None, :, None]
    if delta_softplus:
        delta = F.softplus(delta)
    y = LoopScan.apply(u, delta, A, B, C)
    if D is not None:
        y = y + u * D[None, :, None]
    if z is not None:
        y = y * F.silu(z)
    return y
