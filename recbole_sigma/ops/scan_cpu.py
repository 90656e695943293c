"""The C++ kernels for CPU (selective scan, causal conv, dropout), compiled on first use (JIT)
and cached.

Set ``SIGMA_CPU_SCAN=torch`` to skip it and use the PyTorch loop (and ``F.dropout``); ``cpp`` makes
a failed build an error instead of a logged fallback. The build needs a C++ compiler and ``ninja``.

The cache entry is ``<torch extensions dir>/recbole_sigma/<name>``, its name keyed by the sources,
torch, Python, the flags and the CPU (``-march=native``), so checkouts of the same code share it.
Each process compiles in a folder of its own and moves it into place when done: a killed build
leaves no lock behind, and no process ever waits for another's build (the first one in place
wins; runners build it once before they start parallel workers). A finished entry is imported
directly, without running the compiler or ninja.
"""

import functools
import hashlib
import importlib.util
import logging
import os
import platform
import shutil
import socket
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Optional

import torch

logger = logging.getLogger(__name__)
CSRC = Path(__file__).resolve().parent / "csrc"
SOURCES = [CSRC / f"{name}_cpu.cpp" for name in ("selective_scan", "causal_conv", "dropout")]
CHOICES = ("auto", "cpp", "torch")
FLAGS = ["-O3", "-ffast-math", "-fno-finite-math-only", "-fopenmp", "-march=native"]
LDFLAGS = ["-fopenmp"]
BUILDING = ".build-"  # marks a folder a process is compiling in: .<name>.build-<host>-<pid>


def scan_choice() -> str:
    """The ``SIGMA_CPU_SCAN`` setting, checked."""
    choice = os.environ.get("SIGMA_CPU_SCAN", "auto")
    if choice not in CHOICES:
        raise ValueError(f"SIGMA_CPU_SCAN must be one of {', '.join(CHOICES)}, got {choice!r}")
    return choice


def cache_root() -> Path:
    """``$TORCH_EXTENSIONS_DIR/recbole_sigma``, else under torch's default build root."""
    from torch.utils.cpp_extension import get_default_build_root

    root = os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()
    return Path(root) / "recbole_sigma"


def kernel_name() -> str:
    """The extension's name: a hash of everything that makes a build differ."""
    digest = hashlib.sha1()
    for path in sorted(CSRC.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    for part in (torch.__version__, sys.version, platform.machine(), *FLAGS, *LDFLAGS,
                 _cpu_flags()):
        digest.update(part.encode())
    return f"sigma_selective_scan_cpu_{digest.hexdigest()[:12]}"


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return ""


def load_or_build(name: str, sources: list[Path], root: Path) -> ModuleType:
    """The extension ``name`` from ``root/name``; compiled there first if it is not yet."""
    folder = root / name
    if (folder / f"{name}.so").is_file():
        return _import(name, folder)
    from torch.utils.cpp_extension import load

    root.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(root)
    building = root / f".{name}{BUILDING}{socket.gethostname()}-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir()
    logger.warning("compiling the CPU scan kernel (first use, ~30 s) into %s", folder)
    start = time.perf_counter()
    try:
        # torch appends to the flag lists it is given
        module = load(name=name, sources=[str(s) for s in sources], extra_cflags=list(FLAGS),
                      extra_ldflags=list(LDFLAGS), build_directory=str(building), verbose=False)
        building.rename(folder)
    except OSError as err:
        if not (folder / f"{name}.so").is_file():
            raise
        logger.info("another process finished the build first (%s); using ours", err)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    logger.info("compiled the CPU scan kernel in %.0f s", time.perf_counter() - start)
    return module


def _import(name: str, folder: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.so")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the extension {folder / name}.so")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _remove_abandoned_builds(root: Path) -> None:
    """Delete build folders of this host whose process is gone (a killed build)."""
    host = socket.gethostname()
    for path in root.glob(f".*{BUILDING}{host}-*"):
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            logger.info("removing %s, left by a build that was killed", path)
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@functools.cache
def _build() -> Optional[ModuleType]:
    try:
        return load_or_build(kernel_name(), SOURCES, cache_root())
    except Exception as err:  # no compiler, no ninja, ...: the PyTorch loop still works
        if scan_choice() == "cpp":
            msg = f"SIGMA_CPU_SCAN=cpp but the C++ scan failed to build: {err}"
            raise RuntimeError(msg) from err
        logger.warning(f"C++ selective scan unavailable ({err}); using the PyTorch loop")
        return None


def cpu_kernel() -> Optional[ModuleType]:
    """The compiled module, or None when it is switched off or cannot be built."""
    return None if scan_choice() == "torch" else _build()
