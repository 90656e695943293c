"""Test metrics per user group by history length, from the checkpoints of finished runs.

    python -m recbole_sigma.compare.checkpoints saved/SIGMA-*.pth saved/SASRec-*.pth --out groups.md

Each checkpoint is loaded with the dataset and split it was trained on (``load_data_and_model``)
and evaluated user by user on ``--split`` (:func:`~recbole_sigma.compare.grouped.evaluate_users`);
its overall metrics must equal RecBole's own evaluation of the same model on the same loader.
Groups: short 0-5, medium 6-20, long 21+ items of history (the model's input sequence, at most
``MAX_ITEM_LIST_LENGTH`` items).

``--paired`` adds a table of every checkpoint against the first, user by user: how far apart two
models' metrics are next to the standard error that the sample of users leaves on that
difference.
"""

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd
from recbole.config import Config

from recbole_sigma.compare.grouped import GROUPS, UserEval, check_metrics, evaluate_users
from recbole_sigma.compare.runner import check_against_recbole
from recbole_sigma.quick_start import load_data_and_model
from recbole_sigma.tables import markdown_table
from recbole_sigma.trainer import read_checkpoint
from recbole_sigma.utils import get_trainer

ALL = "all"  # the row of every user: RecBole's result
_TITLES = {"hit": "HR", "ndcg": "NDCG", "mrr": "MRR"}


@dataclass
class CheckpointEval:
    """One checkpoint's model (``SIGMA (paper)``, ``SASRec``, ...) and per-user results on
    its ``split``."""

    path: Path
    model: str
    split: str
    users: UserEval

    def parts(self) -> dict[str, dict[str, float]]:
        """Users and metrics per history-length group, then of all users."""
        every = {"users": float(len(self.users.lengths)), **self.users.overall()}
        return {**self.users.groups(), ALL: every}


def check_checkpoints(paths: Sequence[str | Path], paired: bool = False) -> None:
    """Raise, naming the file, unless every path is a RecBole checkpoint with metrics that
    grouped evaluation computes (and, ``paired``, trained on the first one's data files)."""
    data_files = {}
    for path in paths:
        saved = read_checkpoint(path)
        config = saved["config"]
        if not isinstance(config, Config):
            raise ValueError(f"{path} is not a RecBole checkpoint (its config is a "
                             f"{type(config).__name__}, not RecBole's Config)")
        try:
            check_metrics(config["metrics"])
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
        data_files[path] = saved.get("data_files_sha1")
        if paired and data_files[path] != data_files[paths[0]]:
            raise ValueError(f"{path} was trained on other data files than {paths[0]}: --paired "
                             "compares checkpoints of one dataset's files")


def evaluate_checkpoint(path: str | Path, split: str = "test") -> CheckpointEval:
    """Per-user metrics of the checkpoint's model on its ``split`` ("test" or "valid"),
    checked against RecBole's evaluator."""
    config, model, _, _, valid_data, test_data = load_data_and_model(str(path))
    data = test_data if split == "test" else valid_data
    users = evaluate_users(model, data, config)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    recbole = trainer.evaluate(data, load_best_model=False, show_progress=False)
    check_against_recbole(str(path), dict(recbole), users.overall(),
                          config["metric_decimal_place"])
    name = config["model"]
    variant = config["sigma_variant"] if name == "SIGMA" else None
    return CheckpointEval(Path(path), f"{name} ({variant})" if variant else name, split, users)


def _title(metric: str) -> str:
    name, k = metric.split("@")
    return f"{_TITLES.get(name, name.upper())}@{k}"


def _cell(value: Optional[float]) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:.4f}"


def groups_table(evals: list[CheckpointEval]) -> str:
    """Markdown: one row per checkpoint; users and metrics per history-length group and all."""
    metrics = list(dict.fromkeys(m for e in evals for m in e.users.values))
    parts = [name for name, _, _ in GROUPS] + [ALL]
    header = ["model", "checkpoint"]
    header += [f"{p} {c}" for p in parts for c in ["users"] + [_title(m) for m in metrics]]
    rows = []
    for e in evals:
        row = [e.model, e.path.name]
        for values in e.parts().values():
            row += [f"{values['users']:.0f}"] + [_cell(values.get(m)) for m in metrics]
        rows.append(row)
    bounds = ", ".join(f"{n} {lo}-{hi}" if hi != float("inf") else f"{n} {lo}+"
                       for n, lo, hi in GROUPS)
    split = evals[0].split
    return (f"{markdown_table(header, rows)}\n{split.capitalize()} users by history length "
            f"({bounds} items); {ALL}: every {split} user, RecBole's result.\n")


def paired_table(evals: list[CheckpointEval]) -> str:
    """Markdown: the first checkpoint's overall metrics ± their standard error over users, then
    each other checkpoint's difference from it (this - first, user by user on the same users) ±
    the standard error of that mean difference (sample std of the per-user differences /
    sqrt(users))."""
    first = evals[0]
    metrics = list(first.users.values)
    base = _user_order(first)
    rows = [[first.model, first.path.name,
             *(_mean_se(first.users.values[m][base]) for m in metrics)]]
    for e in evals[1:]:
        order = _user_order(e)
        if not set(metrics) <= set(e.users.values) \
                or not np.array_equal(e.users.user_ids[order], first.users.user_ids[base]):
            raise ValueError(f"{e.path} was not evaluated on the users of {first.path}, or lacks "
                             "its metrics: --paired compares checkpoints of one dataset's files")
        rows.append([e.model, e.path.name, *(
            _mean_se(e.users.values[m][order] - first.users.values[m][base], signed=True)
            for m in metrics)])
    n = len(base)
    return (f"{markdown_table(['model', 'checkpoint', *(_title(m) for m in metrics)], rows)}\n"
            f"First row: its {first.split} metrics ± their standard error over the {n} users; "
            "the others: their difference from the first row (this - first, user by user) ± "
            "the standard error of that difference.\n")


def _user_order(e: CheckpointEval) -> np.ndarray:
    """The order of ``e``'s rows by user id; raise if a user has two rows."""
    ids = e.users.user_ids
    if len(np.unique(ids)) != len(ids):
        raise ValueError(f"{e.path}: a user has more than one row: no pairing by user")
    return np.argsort(ids, kind="stable")


def _mean_se(values: np.ndarray, signed: bool = False) -> str:
    """``"0.0428 ± 0.0012"``: the mean over users ± its standard error (``+``/``-`` with
    ``signed``)."""
    mean = f"{values.mean():{'+' if signed else ''}.4f}"
    if len(values) < 2:
        return mean
    return f"{mean} ± {values.std(ddof=1) / np.sqrt(len(values)):.4f}"


def groups_frame(evals: list[CheckpointEval]) -> pd.DataFrame:
    """One row per (checkpoint, group): users and unrounded metrics."""
    rows = [{"checkpoint": str(e.path), "model": e.model, "split": e.split, "group": group,
             **values}
            for e in evals for group, values in e.parts().items()]
    return pd.DataFrame(rows)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help=".pth files that training wrote")
    parser.add_argument("--split", choices=("test", "valid"), default="test")
    parser.add_argument("--out", type=Path, help="also write the table to this .md file")
    parser.add_argument("--csv", type=Path, help="write the unrounded values to this .csv file")
    parser.add_argument("--paired", action="store_true",
                        help="also each checkpoint against the first, user by user, with the "
                             "standard error of the difference")
    args = parser.parse_args(argv)
    try:
        check_checkpoints(args.checkpoints, args.paired)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    evals = [evaluate_checkpoint(path, args.split) for path in args.checkpoints]
    text = groups_table(evals)
    if args.paired:
        try:
            text += "\n" + paired_table(evals)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    print(text, end="")
    if args.out:
        args.out.write_text(text)
    if args.csv:
        groups_frame(evals).to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
