"""A results table from RecBole log files: how each run ended, its best validation and its test.

    python -m recbole_sigma.compare.logs log/SIGMA/*.log --keys sigma_variant dropout_prob
    python -m recbole_sigma.compare.logs log/SIGMA/*.log --keys dropout_prob --by-setting

A run continued with ``--resume`` writes a second log that starts at the resumed epoch; the logs
of one run given together (the same checkpoint file) make one row. ``--by-setting`` makes one
row per setting (the model and the ``--keys`` values) instead: its complete runs' seeds and the
mean ± std of their metrics.
"""

import argparse
import ast
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, Optional

import pandas as pd

from recbole_sigma.ending import EARLY_STOP, EPOCH_CAP, NOT_FINISHED
from recbole_sigma.reuse import VOLATILE_KEYS
from recbole_sigma.tables import aggregate, endings_count, markdown_table, mean_std

_PARAM = re.compile(r"^(\w+) = (.*)$")
_EPOCH = re.compile(r"epoch (\d+) evaluating \[time: [\d.]+s, valid_score: ([\d.]+)\]")
_TRAIN = re.compile(r"epoch (\d+) training \[time: ([\d.]+)s(?:, train loss: ([\d.]+)\])?")
_STOPPED = re.compile(r"Finished training, best eval result in epoch (\d+)")
_TEST = re.compile(r"(?:test result|compare: \S+ seed \d+ test)\s*:?\s*(.*)$")
_METRIC = re.compile(r"([a-z]+@\d+) : ([\d.]+)")
_SAVED = re.compile(r"Saving current: (.+\.pth)$")
_LAST_STATE = re.compile(r"The last epoch's state goes to (.+)-last\.pth \(for --resume\)")
_RESUMED = re.compile(r"Checkpoint loaded\. Resume training from epoch (\d+)")
_RESUMED_FILE = re.compile(r"Resumed from (.+?)(?:-last)?\.pth$")
_TIME_FORMAT = "%a %d %b %Y %H:%M:%S"  # recbole.utils.init_logger's file date format


@dataclass
class LoggedRun:
    """What the RecBole log files of one run say about it (one file, or a run and its resumes)."""

    paths: list[Path]
    params: dict[str, str]
    valid_scores: dict[int, float] = field(default_factory=dict)  # by epoch
    valid_results: dict[int, dict[str, float]] = field(default_factory=dict)  # by epoch
    epoch_seconds: list[float] = field(default_factory=list)  # every training line
    train_losses: dict[int, float] = field(default_factory=dict)  # by epoch (one loss only)
    test: dict[str, float] = field(default_factory=dict)
    stopped_at: Optional[int] = None  # best epoch reported by early stopping
    checkpoint: Optional[str] = None  # its best-epoch checkpoint: <folder name>/<file name>
    resumed_from: Optional[int] = None  # first epoch of the first log, if that log was resumed
    started: Optional[datetime] = None  # time of the first log's first line

    @property
    def ended(self) -> str:
        """'early stop', 'epoch cap' or 'not finished' (no test result in the log), and whether
        the run's earlier epochs are missing."""
        if not self.test:
            ended = NOT_FINISHED
        else:
            ended = EARLY_STOP if self.stopped_at is not None else EPOCH_CAP
        if self.resumed_from is not None:
            ended += f", resumed at epoch {self.resumed_from} (earlier log not given)"
        return ended

    @property
    def model(self) -> str:
        """The model the run trained: its config's, else the first word of its log's name."""
        return self.params.get("model", self.paths[0].name.split("-")[0])

    @property
    def sign(self) -> int:
        """1 where a higher validation score is better (``valid_metric_bigger``), else -1."""
        return -1 if self.params.get("valid_metric_bigger") == "False" else 1

    @property
    def best_epoch(self) -> Optional[int]:
        """The epoch RecBole kept: the last one at the best score (it counts a tie as better);
        None when no epoch was validated or the epochs before a resume are missing."""
        if not self.valid_scores or self.resumed_from is not None:
            return None
        best = max(self.sign * v for v in self.valid_scores.values())
        return max(e for e, v in self.valid_scores.items() if self.sign * v == best)

    @property
    def best_valid(self) -> dict[str, float]:
        """The validation result of the best epoch (empty if unknown)."""
        return self.valid_results.get(self.best_epoch, {})

    @property
    def complete(self) -> bool:
        """Whether the run's test result and its best epoch's validation result are known (not
        a resumed log given without the log it resumed)."""
        return bool(self.test) and bool(self.best_valid)

    def continues(self, earlier: "LoggedRun") -> bool:
        """Whether this log resumed the run of ``earlier``: the same checkpoint, and resumed
        after an epoch that ``earlier`` validated."""
        return (self.resumed_from is not None and _same_checkpoint(self.checkpoint,
                                                                   earlier.checkpoint)
                and self.resumed_from - 1 in earlier.valid_scores)

    def then(self, resumed: "LoggedRun") -> "LoggedRun":
        """This run continued by the log ``resumed``: its epochs from the resumed one on replace
        ours; the ending and test are the resumed log's."""
        first = resumed.resumed_from

        def joined(ours: dict, theirs: dict) -> dict:
            return {e: v for e, v in ours.items() if e < first} | theirs

        return LoggedRun(
            paths=self.paths + resumed.paths,
            params=resumed.params,
            valid_scores=joined(self.valid_scores, resumed.valid_scores),
            valid_results=joined(self.valid_results, resumed.valid_results),
            epoch_seconds=self.epoch_seconds + resumed.epoch_seconds,
            train_losses=joined(self.train_losses, resumed.train_losses),
            test=resumed.test,
            # a resume of a finished run that trains nothing ends as that run did
            stopped_at=resumed.stopped_at if resumed.valid_scores else self.stopped_at,
            checkpoint=self.checkpoint,
            resumed_from=self.resumed_from,
            started=self.started,
        )


def _parse_dict(text: str) -> dict[str, float]:
    text = text.strip()
    if text.startswith("OrderedDict("):
        text = text[len("OrderedDict(") : -1]
        return {k: float(v) for k, v in ast.literal_eval(text)}
    return {k: float(v) for k, v in ast.literal_eval(text).items()}


def _start_time(first_line: str) -> Optional[datetime]:
    try:
        return datetime.strptime(" ".join(first_line.split()[:5]), _TIME_FORMAT)
    except ValueError:
        return None


def _folder_and_name(path: str) -> str:
    """``<folder name>/<file name>`` of a checkpoint path (the file name alone for a file in the
    working folder): runs trained at once in their own folders (``--jobs`` trials) can share a
    file name, while a resume may name the run's folder by another path (absolute, or from
    another working folder)."""
    return Path(*Path(path).parts[-2:]).as_posix()


def _same_checkpoint(a: Optional[str], b: Optional[str]) -> bool:
    """Whether two :func:`_folder_and_name` keys name one file: the same file name, and the same
    folder name where both have one."""
    if a is None or b is None:
        return False
    a_path, b_path = PurePosixPath(a), PurePosixPath(b)
    folders = a_path.parent.name, b_path.parent.name
    return a_path.name == b_path.name and ("" in folders or folders[0] == folders[1])


def read_log(path: Path) -> LoggedRun:
    """Parse one RecBole log file (written by ``recbole.utils.init_logger``)."""
    run = LoggedRun(paths=[path], params={})
    lines = path.read_text(errors="replace").splitlines()
    run.started = _start_time(lines[0] if lines else "")
    epoch = None  # the epoch of the last evaluating line
    for i, line in enumerate(lines):
        if m := _PARAM.match(line):
            run.params.setdefault(m.group(1), m.group(2).strip())
        elif m := _EPOCH.search(line):
            epoch = int(m.group(1))
            run.valid_scores[epoch] = float(m.group(2))
        elif line.rstrip().endswith("valid result:") and epoch is not None and i + 1 < len(lines):
            run.valid_results[epoch] = {k: float(v) for k, v in _METRIC.findall(lines[i + 1])}
        elif m := _TRAIN.search(line):
            run.epoch_seconds.append(float(m.group(2)))
            if m.group(3) is not None:
                run.train_losses[int(m.group(1))] = float(m.group(3))
        elif m := _STOPPED.search(line):
            run.stopped_at = int(m.group(1))
        elif m := _TEST.search(line):
            run.test = _parse_dict(m.group(1))
        elif m := _SAVED.search(line):
            run.checkpoint = _folder_and_name(m.group(1))
        elif m := _LAST_STATE.search(line):
            run.checkpoint = _folder_and_name(m.group(1) + ".pth")
        elif m := _RESUMED.search(line):
            run.resumed_from = int(m.group(1))
        elif (m := _RESUMED_FILE.search(line)) and run.checkpoint is None:
            # a resumed run that had finished training logs no checkpoint of its own
            run.checkpoint = _folder_and_name(m.group(1) + ".pth")
    return run


def ended_from_log(path: Any) -> Optional[str]:
    """How the run of the RecBole log at ``path`` ended, when the log has it (INFO lines, with
    the test result a finished run writes); else None."""
    if not isinstance(path, str) or not Path(path).is_file():
        return None
    run = read_log(Path(path))
    return run.ended if run.test else None


def join_resumed(runs: list[LoggedRun]) -> list[LoggedRun]:
    """One run per training: in order of start time (and of the epoch resumed from, within a
    second), each resumed log joins the run it continues; the runs keep the order of their first
    log in ``runs``."""
    joined: dict[int, LoggedRun] = {}  # by the index of the run's first log in ``runs``
    # logs started in the same second: a resume after the run it resumes
    order = sorted(range(len(runs)), key=lambda i: (runs[i].started or datetime.min,
                                                    -1 if runs[i].resumed_from is None
                                                    else runs[i].resumed_from))
    for i in order:
        into = next((j for j, run in joined.items() if runs[i].continues(run)), None)
        if into is None:
            joined[i] = runs[i]
        else:
            joined[into] = joined[into].then(runs[i])
    return [joined[i] for i in sorted(joined)]


def table(runs: list[LoggedRun], keys: list[str]) -> str:
    """Markdown: one row per run, the chosen config keys, how it ended, valid and test metrics."""
    keys = [k for k in keys if k != "seed"]  # a column of its own
    head = ["run", *keys, "seed", "epochs", "ended", "best epoch", "s/epoch", "valid NDCG@10",
            "test HR@10", "test NDCG@10", "test MRR@10", "log"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        secs = sum(r.epoch_seconds) / len(r.epoch_seconds) if r.epoch_seconds else float("nan")
        best = r.best_epoch
        cells = [
            r.model,
            *(r.params.get(k, "") for k in keys),
            r.params.get("seed", ""),
            str(len(r.valid_scores)),
            r.ended,
            "" if best is None else str(best),
            f"{secs:.0f}",
            f"{r.best_valid.get('ndcg@10', float('nan')):.4f}",
            *(f"{r.test[k]:.4f}" if k in r.test else "" for k in ("hit@10", "ndcg@10", "mrr@10")),
            ", ".join(f"[{p.name}]({p.name})" for p in r.paths),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


METRICS = ("hit@10", "ndcg@10", "mrr@10")


def differing_keys(runs: list[LoggedRun], keys: list[str]) -> list[str]:
    """Config keys, besides ``keys``, the seed and where or how verbosely a run happens (the
    data path counts), whose logged values differ among ``runs`` (a key a log lacks is unknown,
    not different)."""
    ignore = (VOLATILE_KEYS - {"data_path"}) | {"seed", *keys}
    names = set().union(*(r.params for r in runs)) - ignore
    return sorted(k for k in names if len({r.params[k] for r in runs if k in r.params}) > 1)


def setting_table(runs: list[LoggedRun], keys: list[str]) -> str:
    """Markdown: one row per setting (the model and the ``keys`` values, in order of first
    appearance), with how its runs ended (and which other config keys differ among them) and,
    over its complete runs (a test result and the best
    validation epoch: not a resumed log given without the log it resumed), their seeds (one per
    run) and the mean ± sample std of valid NDCG@10 and the test metrics; a setting without a
    complete run shows no metrics."""
    setting = ["run", *keys]
    rows = [{"run": r.model,
             **{k: r.params.get(k, "") for k in keys},
             "seed": r.params.get("seed", ""), "ended": r.ended,
             "complete": r.complete,
             "valid_ndcg@10": r.best_valid.get("ndcg@10", float("nan")),
             **{f"test_{m}": r.test.get(m, float("nan")) for m in METRICS}}
            for r in runs]
    frame = pd.DataFrame(rows)
    complete = frame[frame["complete"]].drop(columns="complete")
    summary = aggregate(complete, setting).set_index(setting) if len(complete) else None
    head = [*setting, "seeds", "ended", "valid NDCG@10", "test HR@10", "test NDCG@10",
            "test MRR@10"]
    lines = []
    for values, group in frame.groupby(setting, sort=False):
        done = group[group["complete"]]
        ended = endings_count(group["ended"])
        differ = differing_keys([runs[i] for i in group.index], keys)
        if differ:
            ended += f" (runs differ in {', '.join(differ)}: add to --keys)"
        cells = ["" for _ in range(4)]
        if len(done):
            s = summary.loc[values]
            cells = [mean_std(s[f"{c}_mean"], s[f"{c}_std"], 4)
                     for c in ("valid_ndcg@10", *(f"test_{m}" for m in METRICS))]
        lines.append([*values, ", ".join(sorted(done["seed"])), ended, *cells])
    return markdown_table(head, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+", type=Path, help="RecBole .log files")
    parser.add_argument("--keys", nargs="*", default=[], help="config keys to show as columns")
    parser.add_argument("--by-setting", action="store_true",
                        help="one row per setting (model and --keys values): mean ± std over "
                             "its complete runs (one per seed)")
    args = parser.parse_args()
    runs = join_resumed([read_log(p) for p in args.logs])
    make = setting_table if args.by_setting else table
    print(make(runs, args.keys), end="")


if __name__ == "__main__":
    main()
