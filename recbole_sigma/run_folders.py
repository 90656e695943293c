"""A folder per run of ``--hyper`` and ``--compare``, so that an interrupted run goes on.

Each run trains into ``<checkpoint_dir>/<kind>/<config_hash>`` (``kind``: ``trials`` or
``compare``), named by the hash of its effective config (:mod:`recbole_sigma.reuse`): the folder
belongs to that config, with this code and these data files, and one process at a time trains in
it (a lock file). A run cut short (the process killed, a session's end) leaves its last epoch's
state there (``-last.pth``, :mod:`recbole_sigma.trainer`); the same command run again resumes it
from that state, and the run ends as it would have without the interruption.
"""

import contextlib
import fcntl
import logging
from pathlib import Path
from typing import Iterator, Optional

from recbole.config import Config

from recbole_sigma.trainer import LAST_STATE_SUFFIX, check_resume_file, holds_checkpoint

LOCK = ".lock"
logger = logging.getLogger(__name__)


def run_folder(checkpoint_dir: str | Path, kind: str, config_hash: str) -> Path:
    """The checkpoint folder of the ``kind`` run whose effective config has this hash."""
    return Path(checkpoint_dir) / kind / config_hash


def unfinished_state(folder: str | Path) -> Optional[Path]:
    """The newest last-epoch state in ``folder`` (a run deletes it once its test result is in,
    so only an interrupted run leaves one), else None."""
    found = [p for p in Path(folder).glob(f"*{LAST_STATE_SUFFIX}") if holds_checkpoint(str(p))]
    return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None


def state_to_resume(folder: Path, config: Config, label: str) -> Optional[str]:
    """:func:`unfinished_state`, checked against the run's ``config``; raise, naming the folder,
    when it cannot be resumed."""
    state = unfinished_state(folder)
    if state is None:
        return None
    try:
        check_resume_file(str(state), config)
    except (ValueError, FileNotFoundError) as err:
        raise RuntimeError(f"{label}: the state an interrupted run left in {folder} cannot be "
                           f"resumed ({err}); delete {folder} to train the run from the "
                           "start") from None
    return str(state)


@contextlib.contextmanager
def only_process(folder: Path, label: str, wait: bool = False) -> Iterator[None]:
    """Hold ``folder``'s lock for the ``with`` block; raise if another process holds it, or,
    with ``wait``, wait until it lets go."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise RuntimeError(
                    f"{label}: another process is training it in {folder} (a worker of an "
                    "earlier command still running, or another command with the same config): "
                    "let it end or stop it, then run this command again"
                ) from None
            logger.info("%s: another process is training it in %s: waiting for it", label,
                        folder)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield
