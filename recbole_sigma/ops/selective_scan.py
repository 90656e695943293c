"""Selective scan for the PyTorch Mamba path: a fused C++ kernel on CPU, else a PyTorch loop."""

from typing import Optional

import torch
import torch.nn.functional as F

from recbole_sigma.ops.scan_cpu import cpu_kernel
from recbole_sigma.ops.scan_loop import LoopScan


def _swap(x: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """(B, E, L) <-> (B, L, E), a view."""
    return None if x is None else x.transpose(1, 2)


def _other_layout(u, delta, A, B, C, D, z, delta_bias) -> tuple:
    """The scan's tensor arguments with u, delta, B, C, z in the other layout (views)."""
    return _swap(u), _swap(delta), A, _swap(B), _swap(C), D, _swap(z), delta_bias


def _contiguous(x: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    return None if x is None else x.contiguous()


def _unit_channel_stride(x: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """``x`` as it is when its last dimension is contiguous (the kernel reads strided rows of z,
    B and C in place), else a contiguous copy."""
    return x if x is None or x.stride(-1) == 1 or x.size(-1) == 1 else x.contiguous()


def uses_cpu_kernel(x: torch.Tensor) -> bool:
    """Whether the C++ kernels take ``x``: a float32/64 CPU tensor, and the kernels built."""
    on_cpu = x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
    return on_cpu and cpu_kernel() is not None


class _CpuScan(torch.autograd.Function):
    """The fused C++ scan (softplus, D skip and silu(z) gate included), time-major, forward and
    backward."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus):
        u, delta, A, D, delta_bias = (_contiguous(t) for t in (u, delta, A, D, delta_bias))
        B, C, z = (_unit_channel_stride(t) for t in (B, C, z))
        args = [u, delta, A, B, C, D, z, delta_bias]
        out, y = cpu_kernel().forward(*args, delta_softplus, z is not None, False)
        ctx.softplus = delta_softplus
        ctx.save_for_backward(*args, y)  # y: the gate's input, None without z
        return out  # (B, L, E)

    @staticmethod
    def backward(ctx, grad_out):
        *args, y = ctx.saved_tensors
        grads = cpu_kernel().backward(*args, ctx.softplus, y, grad_out.contiguous(), False)
        return (*grads, None)  # u, delta, A, B, C, D, z, delta_bias


def _loop_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus) -> torch.Tensor:
    """The PyTorch loop, (B, E, L) layout."""
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
    time_major = _other_layout(u, delta, A, B, C, D, z, delta_bias)
    return _swap(selective_scan_time_major(*time_major, delta_softplus=delta_softplus))


def selective_scan_time_major(
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
    """:func:`selective_scan` on time-major tensors, the layout of Mamba's Linears (on CPU
    nothing is copied: u and delta come contiguous from the conv and dt_proj, and the kernel
    reads the strided slices z, B, C in place): u, delta, z (B, L, E); B, C (B, L, N). Returns
    (B, L, E)."""
    if uses_cpu_kernel(u):
        return _CpuScan.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    channel_major = _other_layout(u, delta, A, B, C, D, z, delta_bias)
    return _swap(_loop_scan(*channel_major, delta_softplus))
