"""Compare models on one dataset split: ``python run_recbole_sigma.py --compare SIGMA,SASRec``."""

import argparse
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator, Optional

import torch

from recbole_sigma.compare.report import write_report
from recbole_sigma.compare.runner import (
    RunResult,
    RunTask,
    SharedSplits,
    plan_runs,
    run_in_worker,
    run_one,
)
from recbole_sigma.compare.variants import ABLATIONS, Variant, parse_models
from recbole_sigma.parallel import build_kernels, check_jobs, run_parallel
from recbole_sigma.reuse import ConfigRecords, config_hash
from recbole_sigma.run_log import console_log
from recbole_sigma.trainer import delete_last_state

__all__ = [
    "ABLATIONS",
    "RUNS_RECORD",
    "RunResult",
    "Variant",
    "compare_from_args",
    "iter_compare",
    "parse_models",
]

RUNS_RECORD = "runs.jsonl"  # in the output folder: every finished run, its config and result
logger = logging.getLogger(__name__)


def iter_compare(
    variants: list[Variant],
    dataset: str,
    seeds: int = 1,
    config_file_list: Optional[list[str]] = None,
    config_dict: Optional[dict[str, Any]] = None,
    saved: bool = True,
    jobs: Optional[int] = 1,
    records: Optional[ConfigRecords] = None,
) -> Iterator[RunResult]:
    """Every variant on the same split, with seeds ``seed, seed+1, ...`` (``seed`` from config),
    one result at a time as runs finish (with ``jobs=1``: seed by seed, variants in the given
    order): ``list(...)`` for all. ``jobs > 1`` trains that many runs at once in worker processes.

    With ``records``, a run whose effective config (``recbole_sigma.reuse``) is on record is not
    trained again: its recorded result is returned; each new run is recorded as it finishes.
    """
    jobs = check_jobs(jobs)
    tasks = plan_runs(variants, dataset, seeds, config_file_list, config_dict, saved)
    console_log(tasks[0].config())
    splits = SharedSplits()
    todo: list[tuple[RunTask, dict[str, Any]]] = []
    same_as_todo: list[tuple[RunTask, dict[str, Any]]] = []  # a config already in ``todo``
    for task in tasks:
        settings = task.settings()
        reused = _reuse(task, settings, records)
        if reused is not None:
            yield reused
        elif jobs == 1:
            yield _finish(run_one(task, splits, config_hash(settings)), task.label, settings,
                          records)
        elif any(settings == planned for _, planned in todo):
            same_as_todo.append((task, settings))
        else:
            todo.append((task, settings))
    if todo:
        build_kernels(task.config() for task, _ in todo)
        logger.info("compare: %d runs, %d at a time in worker processes", len(todo), jobs)
        work = [(task, config_hash(settings)) for task, settings in todo]
        for index, result in run_parallel(run_in_worker, work, jobs):
            task, settings = todo[index]
            yield _finish(result, task.label, settings, records)
    # after the run with the same config: reused from the record, as one at a time would
    for task, settings in same_as_todo:
        reused = _reuse(task, settings, records)
        yield reused if reused is not None else _finish(
            run_one(task, splits, config_hash(settings)), task.label, settings, records)


def _reuse(
    task: RunTask, settings: dict[str, Any], records: Optional[ConfigRecords]
) -> Optional[RunResult]:
    """The recorded result of a run with the same effective config, else None (logged why)."""
    hash_ = config_hash(settings)
    found = records.find(hash_) if records else None
    if found is not None:
        # under this run's name: another model name with the same config is the same run
        result = RunResult(**dict(found["result"], name=task.variant.name))
        delete_last_state(result.saved_model_file)  # if a kill came between record and delete
        logger.info("compare: %s: reusing the finished run in %s (same config %s; log %s)",
                    task.label, records.path, hash_, result.log_file)
        return result
    why = records.why_not_reused(task.label, settings) if records else None
    if why is not None:
        logger.info("compare: %s: the run in %s has another config (%s): training it again",
                    task.label, records.path, why)
    return None


def _finish(
    result: RunResult, label: str, settings: dict[str, Any], records: Optional[ConfigRecords]
) -> RunResult:
    result.config_hash = config_hash(settings)
    if records is not None:
        records.add({"config_hash": result.config_hash, "label": label, "config": settings,
                     "result": asdict(result)})
    delete_last_state(result.saved_model_file)  # kept by run_one until the result is recorded
    return result


def compare_from_args(args: argparse.Namespace, config_file_list: Optional[list[str]]) -> Path:
    """The ``--compare`` entry point of ``run_recbole_sigma.py``; returns the results.md path.

    Finished runs are kept in ``<output>/runs.jsonl``; a rerun into the same folder reuses each
    run whose effective config is unchanged, and trains the others.
    """
    variants = parse_models(args.compare, args.ablations)
    jobs = check_jobs(args.jobs)
    output = Path(args.output or f"compare-{args.dataset}")
    threads = os.environ.get("OMP_NUM_THREADS")
    command = (f"OMP_NUM_THREADS={threads} " if threads else "") + args.command
    workers = (f"{jobs} worker processes, 1 torch thread each" if jobs > 1
               else f"torch threads: {torch.get_num_threads()}")
    notes = f"Command ({workers}):\n\n```\n{command}\n```\n\n"
    order = {v.name: i for i, v in enumerate(variants)}
    records = ConfigRecords(output / RUNS_RECORD)
    results: list[RunResult] = []
    for result in iter_compare(variants, args.dataset, args.seeds, config_file_list, jobs=jobs,
                               records=records):
        results.append(result)  # the tables are rewritten after every run
        results.sort(key=lambda r: (r.seed, order[r.name]))
        path = write_report(results, output, f"{args.dataset}: model comparison", notes)
    logger.info("comparison written to %s", path)
    print(path.read_text())
    return path
