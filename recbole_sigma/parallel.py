"""``--jobs N``: runs in N worker processes (started with ``spawn``), one torch thread each.

Each run seeds itself, so a run gives the same result in a worker as in the main process. The
CPU scan kernel is compiled in the main process before the workers start, so no worker waits for
(or repeats) a build. Each worker draws RecBole's progress bars on a line of its own, labelled
with its run (:func:`recbole_sigma.run_log.console_labelled`).
"""

import functools
import logging
import multiprocessing
import os
import sys
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from multiprocessing.sharedctypes import Synchronized
from typing import Any, Callable, Iterable, Iterator, Optional

import recbole.trainer.trainer as recbole_trainer
import torch
from recbole.config import Config
from tqdm import tqdm

from recbole_sigma.ops.scan_cpu import cpu_kernel
from recbole_sigma.run_log import current_label

logger = logging.getLogger(__name__)


def usable_cores() -> int:
    """CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def check_jobs(jobs: Optional[int]) -> int:
    """``--jobs``, checked before any work starts (not given: 1)."""
    if jobs is None:
        return 1
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"--jobs must be a whole number of at least 1, got {jobs!r}")
    return jobs


def build_kernels(configs: Iterable[Config]) -> None:
    """Compile the CPU scan kernel now if any of these runs needs it."""
    if any(c["model"] == "SIGMA" and torch.device(c["device"]).type == "cpu" for c in configs):
        cpu_kernel()


def _start_worker(argv: list[str], bar_lock: Any, workers_started: Synchronized) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    sys.argv = argv  # RecBole reads --key=value overrides from the command line
    with workers_started.get_lock():
        line = workers_started.value
        workers_started.value += 1
    tqdm.set_lock(bar_lock)  # one writer at a time on the shared terminal
    recbole_trainer.tqdm = functools.partial(labelled_bar, line=line)


def labelled_bar(*args: Any, line: int, **kwargs: Any) -> tqdm:
    """RecBole's progress bar, drawn on terminal line ``line`` (one per worker), starting with
    the label of the run being trained, and cleared when done (the next bar takes its line)."""
    label = current_label()
    if label:
        kwargs["desc"] = f"[{label}] {kwargs.get('desc') or ''}"
    return tqdm(*args, position=line, leave=False, **kwargs)


def run_parallel(
    function: Callable[[Any], Any], tasks: list[Any], jobs: int
) -> Iterator[tuple[int, Any]]:
    """``(index, function(task))`` for each task as it finishes, ``jobs`` at a time in workers
    (more workers than this process's CPU cores warns).

    A failed run does not stop the others: every run that finishes is yielded, then the first
    failure is raised.
    """
    workers, cores = min(jobs, len(tasks)), usable_cores()
    if workers > cores:
        logger.warning("--jobs %d runs %d processes on %d CPU cores: they share the cores, so "
                       "each run takes longer (its results do not change); --jobs %d uses each "
                       "core once", jobs, workers, cores, cores)
    context = multiprocessing.get_context("spawn")
    failures: list[tuple[int, BaseException]] = []
    bars = (context.RLock(), context.Value("i", 0))
    own_lock = tqdm.get_lock()
    tqdm.set_lock(bars[0])  # this process's log lines wait for the workers' bars too
    try:
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker,
                                 initargs=(list(sys.argv), *bars)) as pool:
            futures: dict[Future, int] = {pool.submit(function, t): i
                                          for i, t in enumerate(tasks)}
            for future in as_completed(futures):
                index = futures[future]
                error = future.exception()
                if error is None:
                    yield index, future.result()
                else:
                    logger.error("run %d of %d failed: %r", index + 1, len(tasks), error)
                    failures.append((index, error))
    finally:
        tqdm.set_lock(own_lock)
    if failures:
        index, error = failures[0]
        raise RuntimeError(f"{len(failures)} of {len(tasks)} runs failed; "
                           f"the first (run {index + 1}): {error!r}") from error
