"""Choice of the Mamba implementation: mamba-ssm's CUDA kernels or the PyTorch path."""

import functools
import logging

import torch
import torch.nn as nn

from recbole_sigma.mamba.torch_mamba import TorchMamba

BACKENDS = ("auto", "torch", "cuda")
logger = logging.getLogger(__name__)


@functools.cache
def cuda_kernels_available() -> bool:
    """True when CUDA is up and mamba-ssm and causal-conv1d import (an import error is logged)."""
    if not torch.cuda.is_available():
        return False
    try:
        import causal_conv1d  # noqa: F401
        from mamba_ssm import Mamba  # noqa: F401
    except ImportError as err:
        logger.warning(f"mamba-ssm CUDA kernels unavailable ({err}); using the PyTorch Mamba")
        return False
    return True


def resolve_backend(name: str, device: torch.device | str | None) -> str:
    """Map the ``mamba_backend`` config value to ``"torch"`` or ``"cuda"``, or raise."""
    if name not in BACKENDS:
        raise ValueError(
            f"mamba_backend must be one of {', '.join(BACKENDS)}, got {name!r}; "
            "use 'auto' to pick CUDA kernels when available and PyTorch otherwise"
        )
    on_cuda = torch.device(device or "cpu").type == "cuda"
    if name == "cuda":
        if not on_cuda or not cuda_kernels_available():
            raise RuntimeError(
                "mamba_backend: cuda needs a CUDA device (use_gpu: True) and the packages "
                "mamba-ssm and causal-conv1d (pip install -e .[cuda]); "
                "set mamba_backend: torch or auto to run on this machine"
            )
        return "cuda"
    if name == "auto" and on_cuda and cuda_kernels_available():
        return "cuda"
    return "torch"


def build_mamba(backend: str, d_model: int, d_state: int, d_conv: int, expand: int) -> nn.Module:
    """A Mamba block of the resolved backend; both share parameter names and shapes."""
    if backend == "cuda":
        from mamba_ssm import Mamba

        return Mamba(d_model=d_model, d_state=d_state, d_conv=d_conv, expand=expand)
    return TorchMamba(d_model=d_model, d_state=d_state, d_conv=d_conv, expand=expand)
