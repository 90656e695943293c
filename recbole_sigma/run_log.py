"""RecBole's logging (console, and a file per run), also for several runs in one process.

RecBole's ``init_logger`` configures the root logger with ``logging.basicConfig``, which does
nothing once the root logger has a handler: in one process (tuning trials, a comparison) every
run after the first logged into the first run's file. Here the console handler is set up once and
each run gets a file of its own (RecBole's name and format), closed when the run ends.
"""

import contextlib
import hashlib
import logging
from pathlib import Path
from typing import Iterator, Optional

import colorlog
from recbole.config import Config
from recbole.utils import get_local_time
from recbole.utils.logger import RemoveColorFilter, log_colors_config
from tqdm import tqdm

from recbole_sigma.trainer import claim_new_file

LOG_ROOT = Path("log")
FILE_FORMAT = ("%(asctime)-15s %(levelname)s  %(message)s", "%a %d %b %Y %H:%M:%S")
CONSOLE_FORMAT = ("%(log_color)s%(asctime)-15s %(levelname)s  %(message)s", "%d %b %H:%M")


def log_level(config: Config) -> int:
    """The level named by ``state`` (RecBole's default: INFO)."""
    level = logging.getLevelName(str(config["state"] or "INFO").upper())
    return level if isinstance(level, int) else logging.INFO


def console_log(config: Config) -> None:
    """Log to the console at ``state``'s level (one handler per process)."""
    level = log_level(config)
    logging.getLogger().setLevel(level)
    _console_handler().setLevel(level)


class AboveBars(logging.StreamHandler):
    """A console line written while no progress bar is being drawn (tqdm's lock, shared by the
    ``--jobs`` workers), on a cleared terminal line: it lands above the workers' bars, which
    redraw below it, instead of being written through the bar on the cursor's line."""

    def emit(self, record: logging.LogRecord) -> None:
        with tqdm.get_lock():
            try:
                if getattr(self.stream, "isatty", lambda: False)():
                    self.stream.write("\r\x1b[K")
            except Exception:
                self.handleError(record)
            super().emit(record)


def _console_handler() -> logging.Handler:
    """The process's console handler, added to the root logger the first time."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler.formatter, colorlog.ColoredFormatter):
            return handler
    handler = AboveBars()
    handler.setFormatter(_console_formatter())
    root.addHandler(handler)
    return handler


def _console_formatter(label: str = "") -> colorlog.ColoredFormatter:
    text, dates = CONSOLE_FORMAT
    if label:
        text = text.replace("%(message)s", f"[{label.replace('%', '%%')}] %(message)s")
    return colorlog.ColoredFormatter(text, dates, log_colors=log_colors_config)


_labels: list[str] = []  # the labels of the console_labelled blocks this process is inside


def current_label() -> str:
    """The label of the innermost :func:`console_labelled` block running, else ``""``."""
    return _labels[-1] if _labels else ""


@contextlib.contextmanager
def console_labelled(label: str) -> Iterator[None]:
    """Console lines logged in the block start with ``[label]``, so that the lines of runs
    trained at once (``--jobs``) say which run wrote them; the runs' log files are unchanged."""
    handler = _console_handler()
    before = handler.formatter
    handler.setFormatter(_console_formatter(label))
    _labels.append(label)
    try:
        yield
    finally:
        _labels.pop()
        handler.setFormatter(before)


@contextlib.contextmanager
def run_log(config: Config, name: Optional[str] = None) -> Iterator[str]:
    """Log to the console and to ``log/<model>/<name>-<dataset>-<time>-<md5>.log`` while the
    block runs (``name`` defaults to the model); yields the file's path."""
    console_log(config)
    folder = LOG_ROOT / config["model"]
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(str(value) for value in config.final_config_dict.values())
    digest = hashlib.md5(text.encode()).hexdigest()[:6]
    # RecBole's name has the second: a run of the same config started in the same second (a
    # rerun that only tests) gets ``-2.log``, not the other run's file
    stem = f"{name or config['model']}-{config['dataset']}-{get_local_time()}-{digest}"
    path = Path(claim_new_file(str(folder / f"{stem}.log")))
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(*FILE_FORMAT))
    handler.addFilter(RemoveColorFilter())
    handler.setLevel(log_level(config))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield str(path)
    finally:
        root.removeHandler(handler)
        handler.close()
