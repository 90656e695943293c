"""The exhaustive search: every combination of the ``choice`` values, in file order, ``jobs`` at
a time (worker processes, one torch thread each; a trial gives the same result either way)."""

import itertools
import logging
from typing import Any, Optional

from recbole_sigma.parallel import build_kernels, run_parallel
from recbole_sigma.quick_start import build_config
from recbole_sigma.tuning.objective import Objective, finished_trial, record, train_trial
from recbole_sigma.tuning.space import Param

logger = logging.getLogger(__name__)


def grid_points(params: list[Param], max_evals: Optional[int] = None) -> list[dict[str, Any]]:
    """The grid in file order (the last parameter varies fastest), the first ``max_evals``."""
    ranged = [p.name for p in params if p.kind != "choice"]
    if ranged:
        raise ValueError(f"the exhaustive search needs 'choice' values; {ranged} are ranges: "
                         "use --algo random or --algo bayes, or list the values with choice")
    points = [dict(zip([p.name for p in params], values, strict=True))
              for values in itertools.product(*(p.values for p in params))]
    return points[:max_evals] if max_evals else points


def tune_grid(
    objective: Objective,
    params: list[Param],
    config_file_list: Optional[list[str]],
    max_evals: Optional[int] = None,
    jobs: int = 1,
) -> None:
    """Run the grid; every finished trial is in ``objective.table`` as it ends."""
    points = grid_points(params, max_evals)
    if jobs == 1:
        for point in points:
            objective(point, config_file_list)
        return
    todo, folders = [], set()
    for point in points:
        settings, folder = objective.prepare(point, config_file_list)
        # a point listed twice is one trial: trained once, reused by the next search
        if folder not in folders and finished_trial(objective.table, point, settings) is None:
            todo.append((point, settings, str(folder)))
            folders.add(folder)
    if not todo:
        return
    model, dataset = objective.model, objective.dataset
    build_kernels([build_config(model, dataset, config_file_list, todo[0][0])])
    logger.info("tuning: %d trials, %d at a time in worker processes", len(todo), jobs)
    tasks = [(model, dataset, config_file_list, point, folder) for point, _, folder in todo]
    for index, result in run_parallel(train_trial, tasks, jobs):
        point, settings, _ = todo[index]
        record(objective.table, point, result, settings)
