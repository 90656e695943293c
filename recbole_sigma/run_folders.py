"""A folder per run of ``--hyper`` and ``--compare``, so that an interrupted run goes on.

Each run trains into ``<checkpoint_dir>/<kind>/<config_hash>`` (``kind``: ``trials`` or
``compare``), named by the hash of its effective config (:mod:`recbole_sigma.reuse`): the folder
belongs to that config, with this code and these data files, and one process at a time trains in
it (a lock file). A run cut short (the process killed, a session's end) leaves its last epoch's
state there (``-last.pth``, :mod:`recbole_sigma.trainer`); the same command run again resumes it
from that state, and the run ends as it would have without the interruption. A state that a
run of the same settings left under another hash (the code or the data changed since) is not
resumed: a warning names it (and the ``--resume`` command that continues it outside the search or
comparison, unless it was trained on other data files).
"""

import contextlib
import fcntl
import logging
from pathlib import Path
from typing import IO, Iterator, Optional

from recbole.config import Config

from recbole_sigma.reuse import VOLATILE_KEYS, data_files_hash
from recbole_sigma.trainer import (
    LAST_STATE_SUFFIX,
    changed_keys,
    check_resume_file,
    holds_checkpoint,
    load_checkpoint,
)

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


def unfinished_elsewhere(folder: Path, config: Config) -> list[tuple[Path, Optional[str]]]:
    """Last-epoch states in ``folder``'s sibling folders (other config hashes) of runs with every
    setting of ``config`` that its hash reads (:data:`~recbole_sigma.reuse.VOLATILE_KEYS` aside):
    the same run, left unfinished under other plugin code, data files or versions; each with the
    hash of the data files it was trained on. Folders a live process trains in are skipped; only
    the config is read (the file is memory-mapped)."""
    found = []
    for state in sorted(folder.parent.glob(f"*/*{LAST_STATE_SUFFIX}")):
        if state.parent == folder or not holds_checkpoint(str(state)) or _held(state.parent):
            continue
        try:
            saved = load_checkpoint(str(state), mmap=True)
            trained = saved["config"]
        except Exception:  # torch.load raises many kinds on a broken file: not ours to judge here
            continue
        if not changed_keys(trained, config, VOLATILE_KEYS):
            found.append((state, saved.get("data_files_sha1")))
    return found


def _held(folder: Path) -> bool:
    """Whether a process holds ``folder``'s lock (:func:`only_process`)."""
    if not (folder / LOCK).is_file():
        return False
    with open(folder / LOCK) as lock:  # closing it lets go of the lock taken here
        return not _try_lock(lock)


def _try_lock(lock: IO) -> bool:
    """Take ``lock``'s exclusive lock if no other process holds it; whether it was taken."""
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _warn_unfinished_elsewhere(folder: Path, config: Config) -> None:
    data_now = data_files_hash(config["data_path"], config["dataset"])
    for state, data in unfinished_elsewhere(folder, config):
        if data and data != data_now:
            why = "it was trained on other data files, so it cannot go on with these"
        else:
            why = ("the plugin code, the RecBole/torch/Python versions or the Ray scheduler "
                   f"changed since; `run_recbole_sigma.py --resume {state}` continues it with this "
                   "code, as a run of its own that this command does not record")
        logger.warning(f"an unfinished run with these settings is in {state}, under another "
                       f"config hash, and is not resumed: this run trains from epoch 0 ({why})")


def state_to_resume(folder: Path, config: Config, label: str) -> Optional[str]:
    """:func:`unfinished_state`, checked against the run's ``config``; raise, naming the folder,
    when it cannot be resumed. Without one, warn of :func:`unfinished_elsewhere`."""
    state = unfinished_state(folder)
    if state is None:
        _warn_unfinished_elsewhere(folder, config)
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
        if not _try_lock(lock):
            if not wait:
                raise RuntimeError(
                    f"{label}: another process is training it in {folder} (a worker of an "
                    "earlier command still running, or another command with the same config): "
                    "let it end or stop it, then run this command again"
                )
            logger.info("%s: another process is training it in %s: waiting for it", label,
                        folder)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield
