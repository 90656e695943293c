"""Where a trial keeps its checkpoints, and the state an interrupted trial left there.

Each trial of ``--hyper`` (hyperopt) trains into its own folder,
``<checkpoint_dir>/trials/<config_hash>``, named by the hash of its effective config
(:mod:`recbole_sigma.reuse`): the folder belongs to that config, with this code and these data
files, and one process at a time trains in it (a lock file). A trial cut short (the process
killed, a session's end) leaves its last epoch's state there (``-last.pth``,
:mod:`recbole_sigma.trainer`); the same search run again resumes the trial from it, and ends as
it would have without the interruption.
"""

import contextlib
import fcntl
from pathlib import Path
from typing import Any, Iterator, Optional

from recbole_sigma.quick_start import run_recbole_sigma
from recbole_sigma.trainer import LAST_STATE_SUFFIX, holds_checkpoint
from recbole_sigma.tuning.results import trial_label

TRIALS, LOCK = "trials", ".lock"


def trial_folder(checkpoint_dir: str | Path, config_hash: str) -> Path:
    """The checkpoint folder of the trial whose effective config has this hash."""
    return Path(checkpoint_dir) / TRIALS / config_hash


def unfinished_state(folder: str | Path) -> Optional[Path]:
    """What to resume the trial from: the newest last-epoch state in ``folder`` (training
    deletes it when it ends), else the newest best-epoch checkpoint (a run stopped after
    training, before its test; resumed, it trains the epochs after that best one again, as they
    were); None when no epoch was saved there."""
    saved = [p for p in Path(folder).glob("*.pth") if holds_checkpoint(str(p))]
    found = [p for p in saved if p.name.endswith(LAST_STATE_SUFFIX)] or saved
    return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None


@contextlib.contextmanager
def trial_lock(folder: Path, label: str) -> Iterator[None]:
    """Hold ``folder``'s lock for the ``with`` block; raise if another process holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"trial {label}: another process is training it in {folder} (a worker of an "
                "earlier search still running, or another search with the same config): let "
                "it end or stop it, then run this search again"
            ) from None
        yield


def train_trial(task: tuple[str, str, Optional[list[str]], dict[str, Any], str]) -> dict[str, Any]:
    """One trial (here or in a worker process): ``(model, dataset, config files, tuned values,
    checkpoint folder)``, resumed from what an interrupted run of it left in the folder."""
    model, dataset, config_file_list, point, folder = task
    with trial_lock(Path(folder), trial_label(point)):
        resume = unfinished_state(folder)
        return run_recbole_sigma(model, dataset, config_file_list, dict(point), saved=True,
                                 resume=None if resume is None else str(resume),
                                 fixed={"checkpoint_dir": str(folder)})
