"""How a training run ended, in the words every results table of the package uses."""

from typing import Any

EARLY_STOP = "early stop"  # converged: over stopping_step validations in a row below the best
EPOCH_CAP = "epoch cap"  # the ``epochs`` limit ended it: it may not have converged
NOT_FINISHED = "not finished"  # no test result (a log of a run that was stopped)
SCHEDULER_STOP = "stopped by ASHA"  # Ray Tune's scheduler ended it before either
UNKNOWN = "unknown"  # a row written before tables said how runs ended, without its log


def how_ended(trainer: Any) -> str:
    """After RecBole's ``fit``: :data:`EARLY_STOP` when early stopping ended the training (its
    count of validations without a better score passed ``stopping_step``), else
    :data:`EPOCH_CAP`."""
    return EARLY_STOP if trainer.cur_step > trainer.stopping_step else EPOCH_CAP
