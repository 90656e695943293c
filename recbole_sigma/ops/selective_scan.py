"""Selective scan for the PyTorch (CPU) Mamba path."""

from typing import Optional

import torch

from recbole_sigma.ops.scan_reference import selective_scan_reference


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
    """Selective scan with ``mamba_ssm.selective_scan_fn``'s signature and shapes."""
    return selective_scan_reference(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
