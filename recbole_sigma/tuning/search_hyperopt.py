"""Tuning with hyperopt through RecBole's ``HyperTuning`` (exhaustive, bayes = TPE, random)."""

from typing import Optional

from recbole.trainer import HyperTuning

from recbole_sigma.tuning.objective import Objective
from recbole_sigma.tuning.space import Param, grid_size, hyperopt_space


def tune_with_hyperopt(
    objective: Objective,
    params: list[Param],
    config_file_list: Optional[list[str]],
    algo: str = "exhaustive",
    max_evals: Optional[int] = None,
) -> HyperTuning:
    """Run the search; every finished trial is already in ``objective.table``."""
    budget = grid_size(params) if algo == "exhaustive" else max_evals or 20
    if max_evals:
        budget = min(budget, max_evals)
    tuner = HyperTuning(
        objective,
        space=hyperopt_space(params),
        fixed_config_file_list=config_file_list,
        algo=algo,
        max_evals=budget,
        early_stop=budget,  # RecBole's default (10 trials without progress) would cut the grid
    )
    tuner.max_evals = budget  # HyperTuning resets it to the full grid for "exhaustive"
    tuner.run()
    return tuner
