"""The C++ selective-scan kernel for CPU, compiled on first use (JIT) and cached.

Set ``SIGMA_CPU_SCAN=torch`` to skip it and use the PyTorch loop; ``cpp`` makes a failed build an
error instead of a logged fallback. The build needs a C++ compiler and ``ninja``.
"""

import functools
import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Optional

logger = logging.getLogger(__name__)
CSRC = Path(__file__).resolve().parent / "csrc"
SOURCE = CSRC / "selective_scan_cpu.cpp"
CHOICES = ("auto", "cpp", "torch")
FLAGS = ["-O3", "-ffast-math", "-fno-finite-math-only", "-fopenmp", "-march=native"]


def scan_choice() -> str:
    """The ``SIGMA_CPU_SCAN`` setting, checked."""
    choice = os.environ.get("SIGMA_CPU_SCAN", "auto")
    if choice not in CHOICES:
        raise ValueError(f"SIGMA_CPU_SCAN must be one of {', '.join(CHOICES)}, got {choice!r}")
    return choice


@functools.cache
def _build() -> Optional[Any]:
    from torch.utils.cpp_extension import load

    # torch's cache only hashes the .cpp: name the build after every file it includes too
    digest = hashlib.sha1(b"".join(p.read_bytes() for p in sorted(CSRC.iterdir()))).hexdigest()
    try:
        return load(
            name=f"sigma_selective_scan_cpu_{digest[:10]}",
            sources=[str(SOURCE)],
            extra_cflags=FLAGS,
            extra_ldflags=["-fopenmp"],
            verbose=False,
        )
    except Exception as err:  # no compiler, no ninja, ...: the PyTorch loop still works
        if scan_choice() == "cpp":
            msg = f"SIGMA_CPU_SCAN=cpp but the C++ scan failed to build: {err}"
            raise RuntimeError(msg) from err
        logger.warning(f"C++ selective scan unavailable ({err}); using the PyTorch loop")
        return None


def cpu_kernel() -> Optional[Any]:
    """The compiled module, or None when it is switched off or cannot be built."""
    return None if scan_choice() == "torch" else _build()
