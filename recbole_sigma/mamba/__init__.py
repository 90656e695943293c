"""Mamba blocks: the PyTorch implementation and the backend switch."""

from recbole_sigma.mamba.backend import BACKENDS, build_mamba, resolve_backend
from recbole_sigma.mamba.torch_mamba import TorchMamba

__all__ = ["BACKENDS", "TorchMamba", "build_mamba", "resolve_backend"]
