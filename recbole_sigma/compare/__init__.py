"""Compare models on one dataset split: ``python run_recbole_sigma.py --compare SIGMA,SASRec``."""

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Iterator, Optional

import torch

from recbole_sigma.compare.report import write_report
from recbole_sigma.compare.runner import RunResult, SharedSplits, run_one
from recbole_sigma.compare.variants import ABLATIONS, Variant, parse_models
from recbole_sigma.quick_start import build_config

__all__ = [
    "ABLATIONS",
    "RunResult",
    "Variant",
    "compare_from_args",
    "iter_compare",
    "parse_models",
]


def iter_compare(
    variants: list[Variant],
    dataset: str,
    seeds: int = 1,
    config_file_list: Optional[list[str]] = None,
    config_dict: Optional[dict[str, Any]] = None,
    saved: bool = True,
) -> Iterator[RunResult]:
    """Every variant on the same split, with seeds ``seed, seed+1, ...`` (``seed`` from config),
    one result at a time (seed by seed, variants in the given order): ``list(...)`` for all."""
    if seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    first = build_config(variants[0].model, dataset, config_file_list, config_dict)
    splits = SharedSplits()
    for i in range(seeds):
        for v in variants:
            yield run_one(
                v, first["seed"] + i, dataset, splits, config_file_list, config_dict, saved
            )


def compare_from_args(args: argparse.Namespace, config_file_list: Optional[list[str]]) -> Path:
    """The ``--compare`` entry point of ``run_recbole_sigma.py``; returns the results.md path."""
    variants = parse_models(args.compare, args.ablations)
    output = Path(args.output or f"compare-{args.dataset}")
    threads = os.environ.get("OMP_NUM_THREADS")
    command = (
        (f"OMP_NUM_THREADS={threads} " if threads else "")
        + "python "
        + shlex.join(["run_recbole_sigma.py"] + sys.argv[1:])
    )
    notes = f"Command (torch threads: {torch.get_num_threads()}):\n\n```\n{command}\n```\n\n"
    results: list[RunResult] = []
    for result in iter_compare(variants, args.dataset, args.seeds, config_file_list):
        results.append(result)  # the tables are rewritten after every run
        path = write_report(results, output, f"{args.dataset}: model comparison", notes)
    logging.getLogger(__name__).info("comparison written to %s", path)
    print(path.read_text())
    return path
