"""Tables (Markdown + CSV) and a bar plot of a comparison's runs; mean and std over seeds."""

from dataclasses import asdict
from pathlib import Path
from typing import Iterable

import matplotlib
import pandas as pd

from recbole_sigma.compare.grouped import GROUPS
from recbole_sigma.compare.runner import RunResult
from recbole_sigma.ending import EARLY_STOP, EPOCH_CAP, UNKNOWN
from recbole_sigma.tables import aggregate, endings_count, markdown_table, mean_std

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the non-interactive backend)

COSTS = (
    "parameters",
    "epochs",
    "epoch_seconds",
    "inference_ms",
    "train_peak_mib",
    "inference_peak_mib",
)
COST_TITLES = {
    "parameters": "params",
    "epochs": "epochs",
    "epoch_seconds": "s/epoch",
    "inference_ms": "infer ms/batch",
    "train_peak_mib": "train peak MiB",
    "inference_peak_mib": "infer peak MiB",
}


def runs_frame(results: Iterable[RunResult]) -> pd.DataFrame:
    """One row per (model, seed): valid_* and test_* metrics, the costs, how it ended, the epoch
    it was resumed from (if it was), the run's log file and the hash of its effective config."""
    # imported here: `python -m recbole_sigma.compare.logs` runs that module as __main__ after
    # the package (and so this module) is imported
    from recbole_sigma.compare.logs import ended_from_log

    rows = []
    for r in results:
        row = {"model": r.name, "seed": r.seed}
        row.update({f"valid_{k}": v for k, v in r.valid.items()})
        row.update({f"test_{k}": v for k, v in r.test.items()})
        row.update({k: asdict(r)[k] for k in COSTS})
        ended = r.ended or ended_from_log(r.log_file) or UNKNOWN  # older records lack it
        row.update(ended=ended, resumed_from=r.resumed_from, memory_kind=r.memory_kind,
                   log_file=r.log_file, config_hash=r.config_hash)
        rows.append(row)
    return pd.DataFrame(rows)


def groups_frame(results: Iterable[RunResult]) -> pd.DataFrame:
    """One row per (model, seed, history-length group): users and test metrics."""
    rows = []
    for r in results:
        for group, values in r.groups.items():
            row = {"model": r.name, "seed": r.seed, "group": group}
            row.update({("users" if k == "users" else f"test_{k}"): v for k, v in values.items()})
            rows.append(row)
    return pd.DataFrame(rows)


def _metric_columns(frame: pd.DataFrame, prefixes: tuple[str, ...]) -> list[str]:
    return [
        c[: -len("_mean")] for c in frame.columns if c.endswith("_mean") and c.startswith(prefixes)
    ]


def endings(runs: pd.DataFrame) -> dict[str, str]:
    """Per model, how its runs ended: ``"early stop x3"``, ``"epoch cap x1, early stop x2"``."""
    return {model: endings_count(group)
            for model, group in runs.groupby("model", sort=False)["ended"]}


def main_table(summary: pd.DataFrame, ended: dict[str, str]) -> str:
    """Markdown: how the runs ended, metrics on valid and test, then the costs, one row per
    model."""
    metrics = _metric_columns(summary, ("valid_", "test_"))
    header = ["model", "seeds", "ended"] + metrics + [COST_TITLES[c] for c in COSTS]
    rows = []
    for _, s in summary.iterrows():
        row = [s["model"], str(s["seeds"]), ended[s["model"]]]
        row += [mean_std(s[f"{m}_mean"], s[f"{m}_std"], 4) for m in metrics]
        row += [mean_std(s[f"{c}_mean"], s[f"{c}_std"], 0 if c == "parameters" else 1)
                for c in COSTS]
        rows.append(row)
    return markdown_table(header, rows)


def groups_table(summary: pd.DataFrame) -> str:
    """Markdown: test metrics per history-length group, one row per (model, group)."""
    metrics = _metric_columns(summary, ("test_",))
    rows = [
        [s["model"], s["group"], f"{s['users_mean']:.0f}"]
        + [mean_std(s[f"{m}_mean"], s[f"{m}_std"], 4) for m in metrics]
        for _, s in summary.iterrows()
    ]
    return markdown_table(["model", "group", "users"] + metrics, rows)


def groups_plot(summary: pd.DataFrame, path: Path) -> None:
    """Bar plot: one panel per test metric, history-length groups on x, one bar per model."""
    metrics = _metric_columns(summary, ("test_",))
    models = list(dict.fromkeys(summary["model"]))
    groups = [g for g, _, _ in GROUPS]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 4.2), squeeze=False)
    width = 0.8 / len(models)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for i, model in enumerate(models):
            rows = summary[summary["model"] == model].set_index("group").reindex(groups)
            x = [g + (i - (len(models) - 1) / 2) * width for g in range(len(groups))]
            ax.bar(
                x, rows[f"{metric}_mean"], width, yerr=rows[f"{metric}_std"].fillna(0), label=model
            )
        users = summary.drop_duplicates("group").set_index("group").reindex(groups)
        ax.set_xticks(range(len(groups)))
        counts = users["users_mean"].fillna(0)
        ax.set_xticklabels([f"{g}\n({u:.0f} users)" for g, u in zip(groups, counts, strict=True)])
        ax.set_title(metric.replace("test_", "test "))
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(models), 7), fontsize="small")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(results: list[RunResult], output: Path, title: str, notes: str = "") -> Path:
    """Write runs.csv, comparison.csv, groups.csv, groups.png and results.md under ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    runs = runs_frame(results)
    summary = aggregate(runs, ["model"])
    group_summary = aggregate(groups_frame(results), ["model", "group"])
    runs.to_csv(output / "runs.csv", index=False)
    summary.to_csv(output / "comparison.csv", index=False)
    group_summary.to_csv(output / "groups.csv", index=False)
    groups_plot(group_summary, output / "groups.png")
    kind = runs["memory_kind"].iloc[0]
    text = (
        f"# {title}\n\n{notes}"
        f"## Overall (mean ± std over seeds)\n\n{main_table(summary, endings(runs))}\n"
        f"ended: `{EARLY_STOP}` = converged (more than `stopping_step` validations in a row "
        f"without matching the best score), `{EPOCH_CAP}` = the `epochs` limit ended the run, "
        "which may not have converged.\n"
        f"Memory: `{kind}` (see `recbole_sigma/compare/memory.py`); s/epoch: training only; "
        "infer ms/batch: median `full_sort_predict` time per full test batch. Each run's log "
        "file and config hash: `runs.csv`.\n\n"
        "## Test metrics by history length (short 0-5, medium 6-20, long 21+ items)\n\n"
        f"{groups_table(group_summary)}\n![grouped test metrics](groups.png)\n"
    )
    (output / "results.md").write_text(text)
    return output / "results.md"
