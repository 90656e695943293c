"""Tensor operations of SIGMA: the partial flip, the Mamba selective scan, dropout."""

from recbole_sigma.ops.causal_conv import causal_conv1d, causal_conv1d_silu_time_major
from recbole_sigma.ops.dropout import Dropout
from recbole_sigma.ops.flip import official_flip, partial_flip
from recbole_sigma.ops.scan_reference import selective_scan_reference
from recbole_sigma.ops.selective_scan import selective_scan, selective_scan_time_major

__all__ = [
    "Dropout",
    "causal_conv1d",
    "causal_conv1d_silu_time_major",
    "official_flip",
    "partial_flip",
    "selective_scan",
    "selective_scan_reference",
    "selective_scan_time_major",
]
