"""Timing two code paths in turn in one process, and the report the in-turn benchmarks write."""

import os
import platform
import time
from pathlib import Path
from typing import Any, Callable

import torch


def in_turn(paths: dict[str, Callable[[], None]], run: Callable[[], Any],
            reps: int) -> tuple[dict[str, float], dict[str, Any]]:
    """The best seconds of ``run`` on each path (``paths[name]()`` switches to it), the paths
    taking turns from the same seed in every round, after a warm-up round; and each path's
    last result."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    results = {}
    for rep in range(reps + 1):
        for name, switch in paths.items():
            switch()
            torch.manual_seed(rep)
            start = time.perf_counter()
            results[name] = run()
            if rep:
                times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}, results


def write_report(out: str, title: str, command: str, load_before: float, how: str,
                 table: list[str]) -> None:
    """``out``: the title, the command, the machine and how it was timed, then the table."""
    text = "\n".join([
        f"# {title}\n",
        f"Command: `{command}`\n",
        f"Machine: {os.cpu_count()} cores ({platform.machine()}), torch {torch.__version__}, one "
        f"thread, load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after "
        "(shared machine: compare the two columns of a row, measured in turn in one process, "
        f"not the seconds across runs). Best of the timed rounds, after a warm-up round{how}.\n",
        *table,
    ]) + "\n"
    Path(out).write_text(text)
    print(text)
