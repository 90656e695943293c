"""Dropout whose masks are torch's own, drawn faster on CPU.

``F.dropout`` on CPU spends most of its time calling the generator once per random word. The C++
kernel (``csrc/dropout_cpu.cpp``) draws the same words from the same generator in blocks, so the
output, the gradient and the generator state after it are torch's, bit for bit: a seed gives the
same run either way. The first use checks that on a small draw against ``F.dropout`` and keeps
torch's dropout if they differ (another torch build may draw otherwise).
"""

import functools
import logging

import torch
import torch.nn as nn
import torch.nn.functional as F

from recbole_sigma.ops.scan_cpu import cpu_kernel

logger = logging.getLogger(__name__)


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``F.dropout(x, p, training)``, the same numbers and generator state."""
    if training and 0 < p < 1 and _takes(x) and _matches_torch():
        return x * _noise(x.numel(), p).view_as(x)
    return F.dropout(x, p, training)


class Dropout(nn.Dropout):
    """``nn.Dropout`` through :func:`dropout` (no parameters: checkpoints are unchanged)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inplace:
            return super().forward(x)
        return dropout(x, self.p, self.training)


def swap_in(model: nn.Module) -> nn.Module:
    """``model`` with each plain ``nn.Dropout`` replaced by :class:`Dropout` (same ``p``): the
    same numbers, drawn faster on CPU (for RecBole's own models, the baselines)."""
    for module in list(model.modules()):
        for name, child in module.named_children():
            if type(child) is nn.Dropout:
                setattr(module, name, Dropout(child.p, child.inplace))
    return model


def _takes(x: torch.Tensor) -> bool:
    """A contiguous float32 CPU tensor (torch draws in memory order), and the kernels built."""
    fits = x.device.type == "cpu" and x.dtype == torch.float32 and x.is_contiguous()
    return fits and x.numel() > 0 and cpu_kernel() is not None


def _noise(numel: int, p: float) -> torch.Tensor:
    """torch's dropout noise: 1 / (1 - p) (torch's own division) where kept, else 0."""
    return cpu_kernel().dropout_noise(numel, 1 - p, _scale(p))


@functools.cache
def _scale(p: float) -> float:
    return float(torch.ones(()).div_(1 - p))


@functools.cache
def _matches_torch() -> bool:
    """Whether the kernel gives ``F.dropout``'s output and generator state (checked once; the
    generator is left as it was)."""
    x = torch.randn(3001, generator=torch.Generator().manual_seed(0))
    before = torch.get_rng_state()
    expected = F.dropout(x, 0.3, True)
    after = torch.get_rng_state()
    torch.set_rng_state(before)
    same = torch.equal(x * _noise(x.numel(), 0.3), expected)
    same = same and torch.equal(torch.get_rng_state(), after)
    torch.set_rng_state(before)
    if not same:
        logger.warning("the C++ dropout draws differ from this torch's F.dropout on CPU; using "
                       "F.dropout (slower, same results)")
    return same
