"""Tuning with hyperopt through RecBole's ``HyperTuning`` (bayes = TPE, random), one trial at a
time (TPE picks each trial from the finished ones)."""

from typing import Optional

from recbole.trainer import HyperTuning

from recbole_sigma.tuning.objective import Objective
from recbole_sigma.tuning.space import DEFAULT_EVALS, Param, hyperopt_space


def tune_with_hyperopt(
    objective: Objective,
    params: list[Param],
    config_file_list: Optional[list[str]],
    algo: str = "bayes",
    max_evals: Optional[int] = None,
) -> HyperTuning:
    """Run the search; every finished trial is already in ``objective.table``."""
    budget = max_evals or DEFAULT_EVALS
    tuner = HyperTuning(
        objective,
        space=hyperopt_space(params),
        fixed_config_file_list=config_file_list,
        algo=algo,
        max_evals=budget,
        early_stop=budget,  # RecBole's default (10 trials without progress) would cut the search
    )
    tuner.run()
    return tuner
