"""Is a setting's best validation score a lucky epoch, or is its whole plateau higher?

    python benchmarks/valid_plateau.py LOG... --keys dropout_prob weight_decay [--window 5]

RecBole keeps the epoch with the best validation score, the maximum of a noisy curve: a setting
whose curve is longer or noisier gets a higher maximum by chance alone. Per setting (the model and
the ``--keys`` values), over its complete runs (a run and its ``--resume`` logs are joined):
the mean over seeds of the best single validation score (``valid_metric``, NDCG@10 in the
paper protocol), of the best mean over ``--window`` consecutive validations (epochs, with
``eval_step`` 1), their difference, and of the test NDCG@10 of the kept epoch.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recbole_sigma.compare.logs import (  # noqa: E402
    LoggedRun,
    differing_keys,
    join_resumed,
    read_log,
)
from recbole_sigma.tables import markdown_table  # noqa: E402


def best_window_mean(run: LoggedRun, window: int) -> float:
    """The best mean validation score over ``window`` consecutive validations of ``run``."""
    scores = np.array([run.valid_scores[e] for e in sorted(run.valid_scores)])
    if len(scores) < window:
        return float("nan")
    means = np.convolve(scores, np.ones(window) / window, mode="valid")
    return float(run.sign * (run.sign * means).max())


def plateau_table(runs: list[LoggedRun], keys: list[str], window: int) -> str:
    """Markdown: one row per setting (the model and the ``keys`` values) of the complete runs
    (a test result and every epoch from 0), with the means over its runs described above; the
    seeds cell names the other config keys in which a setting's runs differ."""
    settings: dict[tuple, list[LoggedRun]] = {}
    for run in runs:
        if run.complete:
            setting = (run.model, *(run.params.get(k, "") for k in keys))
            settings.setdefault(setting, []).append(run)
    head = ["run", *keys, "seeds", "best epoch's valid score",
            f"best {window}-epoch mean", "difference", "test NDCG@10"]
    rows = []
    for setting, group in settings.items():
        best = np.mean([r.valid_scores[r.best_epoch] for r in group])
        smooth = np.mean([best_window_mean(r, window) for r in group])
        test = np.mean([r.test["ndcg@10"] for r in group])
        seeds = ", ".join(sorted(r.params.get("seed", "") for r in group))
        differ = differing_keys(group, keys)
        if differ:
            seeds += f" (runs differ in {', '.join(differ)}: add to --keys)"
        rows.append([*setting, seeds, f"{best:.4f}", f"{smooth:.4f}", f"{best - smooth:.4f}",
                     f"{test:.4f}"])
    return markdown_table(head, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+", type=Path, help="RecBole .log files")
    parser.add_argument("--keys", nargs="*", default=[], help="config keys of a setting")
    parser.add_argument("--window", type=int, default=5, help="consecutive epochs averaged")
    args = parser.parse_args()
    runs = join_resumed([read_log(p) for p in args.logs])
    print(plateau_table(runs, args.keys, args.window), end="")


if __name__ == "__main__":
    main()
