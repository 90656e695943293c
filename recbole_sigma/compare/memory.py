"""Peak memory of a block of code: CUDA allocations on a GPU, resident set size on a CPU.

On CPU, ``tracemalloc`` misses torch's allocations and ``ru_maxrss`` is the process's all-time
peak (a later, smaller model would read 0), so a thread samples the resident set size from
``/proc/self/statm`` every few milliseconds and the peak *above the size at the start* is
reported. Before the start is read, freed heap memory is handed back to the system
(``gc.collect`` and glibc's ``malloc_trim``), so a block re-using memory freed by an earlier one
is still counted. Where ``/proc`` is missing, the ``ru_maxrss`` increase is the fallback.
"""

import ctypes
import ctypes.util
import gc
import os
import resource
import threading
from types import TracebackType
from typing import Optional

import torch

MIB = 2**20
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_STATM = "/proc/self/statm"


def _release_freed_memory() -> None:
    gc.collect()
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def _rss() -> int:
    with open(_STATM) as f:
        return int(f.read().split()[1]) * _PAGE


def _maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


class PeakMemory:
    """``with PeakMemory(device) as m: ...`` then ``m.mib`` and ``m.kind`` (what was measured)."""

    def __init__(self, device: torch.device | str, interval: float = 0.005) -> None:
        self.device = torch.device(device)
        self.interval = interval
        self.mib = 0.0
        self.kind = "cuda_max_allocated" if self.device.type == "cuda" else "rss_increase"
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._start = self._peak = 0

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, _rss())

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        elif os.path.exists(_STATM):
            _release_freed_memory()
            self._start = self._peak = _rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        else:
            self.kind = "maxrss_increase"
            self._start = _maxrss()
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
            self.mib = peak / MIB  # whole allocation, model and data included
            return
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, _rss())
            self.mib = (self._peak - self._start) / MIB
        else:
            self.mib = (_maxrss() - self._start) / MIB
