"""A results table from RecBole log files: how each run ended, its best validation and its test.

    python -m recbole_sigma.compare.logs log/SIGMA/*.log --keys sigma_variant dropout_prob
"""

import argparse
import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

_PARAM = re.compile(r"^(\w+) = (.*)$")
_EPOCH = re.compile(r"epoch (\d+) evaluating \[time: [\d.]+s, valid_score: ([\d.]+)\]")
_TRAIN = re.compile(r"epoch (\d+) training \[time: ([\d.]+)s")
_STOPPED = re.compile(r"Finished training, best eval result in epoch (\d+)")
_TEST = re.compile(r"(?:test result|compare: \S+ seed \d+ test)\s*:?\s*(.*)$")
_METRIC = re.compile(r"([a-z]+@\d+) : ([\d.]+)")


@dataclass
class LoggedRun:
    """What one RecBole log file says about its run."""

    path: Path
    params: dict[str, str]
    valid_scores: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    best_valid: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    stopped_at: Optional[int] = None  # best epoch reported by early stopping

    @property
    def ended(self) -> str:
        """'early stop', 'epoch cap' or 'not finished' (no test result in the log)."""
        if not self.test:
            return "not finished"
        return "early stop" if self.stopped_at is not None else "epoch cap"

    @property
    def best_epoch(self) -> Optional[int]:
        """The epoch RecBole kept: the last one at the best score (it counts a tie as better)."""
        if not self.valid_scores:
            return None
        sign = -1 if self.params.get("valid_metric_bigger") == "False" else 1
        best = max(sign * v for v in self.valid_scores)
        return max(i for i, v in enumerate(self.valid_scores) if sign * v == best)


def _parse_dict(text: str) -> dict[str, float]:
    text = text.strip()
    if text.startswith("OrderedDict("):
        text = text[len("OrderedDict(") : -1]
        return {k: float(v) for k, v in ast.literal_eval(text)}
    return {k: float(v) for k, v in ast.literal_eval(text).items()}


def read_log(path: Path) -> LoggedRun:
    """Parse one RecBole log file (written by ``recbole.utils.init_logger``)."""
    run = LoggedRun(path=path, params={})
    lines = path.read_text(errors="replace").splitlines()
    valid_results = []
    for i, line in enumerate(lines):
        if m := _PARAM.match(line):
            run.params.setdefault(m.group(1), m.group(2).strip())
        elif m := _EPOCH.search(line):
            run.valid_scores.append(float(m.group(2)))
        elif line.rstrip().endswith("valid result:") and i + 1 < len(lines):
            valid_results.append({k: float(v) for k, v in _METRIC.findall(lines[i + 1])})
        elif m := _TRAIN.search(line):
            run.epoch_seconds.append(float(m.group(2)))
        elif m := _STOPPED.search(line):
            run.stopped_at = int(m.group(1))
        elif m := _TEST.search(line):
            run.test = _parse_dict(m.group(1))
    best = run.best_epoch
    if best is not None and best < len(valid_results):
        run.best_valid = valid_results[best]
    return run


def table(runs: list[LoggedRun], keys: list[str]) -> str:
    """Markdown: one row per run, the chosen config keys, how it ended, valid and test metrics."""
    head = ["run", *keys, "seed", "epochs", "ended", "best epoch", "s/epoch", "valid NDCG@10",
            "test HR@10", "test NDCG@10", "test MRR@10", "log"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        secs = sum(r.epoch_seconds) / len(r.epoch_seconds) if r.epoch_seconds else float("nan")
        best = r.best_epoch
        cells = [
            r.params.get("model", r.path.name.split("-")[0]),
            *(r.params.get(k, "") for k in keys),
            r.params.get("seed", ""),
            str(len(r.valid_scores)),
            r.ended,
            "" if best is None else str(best),
            f"{secs:.0f}",
            f"{r.best_valid.get('ndcg@10', float('nan')):.4f}",
            *(f"{r.test[k]:.4f}" if k in r.test else "" for k in ("hit@10", "ndcg@10", "mrr@10")),
            f"[{r.path.name}]({r.path.name})",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+", type=Path, help="RecBole .log files")
    parser.add_argument("--keys", nargs="*", default=[], help="config keys to show as columns")
    args = parser.parse_args()
    print(table([read_log(p) for p in args.logs], args.keys), end="")


if __name__ == "__main__":
    main()
