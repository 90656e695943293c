"""Where a trial keeps its checkpoints, and the state an interrupted trial left there.

Each trial of ``--hyper`` (hyperopt) trains into its own folder,
``<checkpoint_dir>/trials/<config_hash>``, named by the hash of its effective config
(:mod:`recbole_sigma.reuse`): the folder belongs to that one trial, with this code and these data
files. A trial cut short (the process killed, a session's end) leaves its last epoch's state there
(``-last.pth``, :mod:`recbole_sigma.trainer`); the same search run again resumes that trial from
it, and ends as it would have without the interruption.
"""

import logging
from pathlib import Path
from typing import Any, Optional

from recbole_sigma.quick_start import run_recbole_sigma
from recbole_sigma.trainer import LAST_STATE_SUFFIX, holds_checkpoint
from recbole_sigma.tuning.results import trial_label

TRIALS = "trials"
logger = logging.getLogger(__name__)


def trial_folder(checkpoint_dir: str | Path, config_hash: str) -> Path:
    """The checkpoint folder of the trial whose effective config has this hash."""
    return Path(checkpoint_dir) / TRIALS / config_hash


def unfinished_state(folder: str | Path) -> Optional[Path]:
    """The newest last-epoch state in ``folder`` (training deletes it when it ends, so only an
    interrupted run leaves one), else None."""
    found = [p for p in Path(folder).glob(f"*{LAST_STATE_SUFFIX}") if holds_checkpoint(str(p))]
    return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None


def train_trial(task: tuple[str, str, Optional[list[str]], dict[str, Any], str]) -> dict[str, Any]:
    """One trial (here or in a worker process): ``(model, dataset, config files, tuned values,
    checkpoint folder)``, resumed from the state an interrupted run of it left in the folder."""
    model, dataset, config_file_list, point, folder = task
    resume = unfinished_state(folder)
    if resume is not None:
        logger.info("trial %s: resuming its interrupted training from %s", trial_label(point),
                    resume)
    return run_recbole_sigma(model, dataset, config_file_list, dict(point), saved=True,
                             resume=None if resume is None else str(resume),
                             fixed={"checkpoint_dir": str(folder)})
