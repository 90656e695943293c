"""The tuning table: one CSV row per finished trial (written at once), Markdown and a plot.

Each row carries the hash of the trial's effective config (``recbole_sigma.reuse``), and
``configs.jsonl`` the config itself, so a later search reuses a row only when nothing changed and
can say what did. The report shows the trials of this search only (run or reused by it).
"""

import logging
from pathlib import Path
from typing import Any, Optional, Sequence

import pandas as pd

from recbole_sigma.ending import EARLY_STOP, EPOCH_CAP, SCHEDULER_STOP, UNKNOWN
from recbole_sigma.reuse import ConfigRecords, config_hash
from recbole_sigma.tables import aggregate, endings_count, mean_std

CSV, MARKDOWN, PLOT, CONFIGS = "results.csv", "results.md", "ndcg_vs_r.png", "configs.jsonl"
SEED = "seed"  # a tuned seed is averaged over: settings are ranked by their mean
PLOT_MARKS = f" (in the plot: x `{SCHEDULER_STOP}`, + `{EPOCH_CAP}`)"
logger = logging.getLogger(__name__)


def trial_row(params: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """A table row: the parameters, then ``valid_*`` (best epoch) and ``test_*`` metrics."""
    row = dict(params)
    row.update({f"valid_{k}": v for k, v in result["best_valid_result"].items()})
    row.update({f"test_{k}": v for k, v in result["test_result"].items()})
    row.update({k: result[k] for k in ("epochs", "ended", "train_seconds", "log_file")
                if k in result})
    if result.get("resumed_from") is not None:
        row["resumed_from"] = result["resumed_from"]
    if result.get("saved_model_file"):
        row["checkpoint"] = result["saved_model_file"]
    return row


def trial_label(params: dict[str, Any]) -> str:
    """``"flip_r=3, n_layers=1"``: a trial's tuned values."""
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def trial_name(params: dict[str, Any]) -> str:
    """``"trial flip_r=3, n_layers=1"``: a trial in console lines, bars and lock messages."""
    return f"trial {trial_label(params)}"


class TrialTable:
    """``results.csv`` in ``folder``; every finished trial is appended (and flushed) at once."""

    def __init__(self, folder: str | Path, valid_metric: str, bigger: bool = True) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / CSV
        self.configs = ConfigRecords(self.folder / CONFIGS)
        self.valid_column = f"valid_{valid_metric.lower()}"
        self.bigger = bigger
        # the rows this search ran or reused, each with this search's tuned values
        self.session_rows: dict[int, dict[str, Any]] = {}

    def read(self) -> pd.DataFrame:
        if not self.path.is_file():
            return pd.DataFrame()
        return pd.read_csv(self.path, dtype={"config_hash": str, "log_file": str})

    def append(self, row: dict[str, Any], params: Optional[dict[str, Any]] = None,
               settings: Optional[dict[str, Any]] = None) -> None:
        """Add a finished trial; with its tuned ``params`` and effective config ``settings``,
        a later search can reuse it."""
        if params is not None and settings is not None:
            row = dict(row, config_hash=config_hash(settings))
            self.configs.add({"config_hash": row["config_hash"], "label": trial_label(params),
                              "config": settings})
        table = pd.concat([self.read(), pd.DataFrame([row])], ignore_index=True)
        partial = self.path.with_suffix(".csv.partial")
        table.to_csv(partial, index=False)
        partial.replace(self.path)
        self.session_rows[len(table) - 1] = dict(params or {})

    def find(self, hash_: str, params: Optional[dict[str, Any]] = None
             ) -> Optional[dict[str, Any]]:
        """The latest row with this config hash, if that trial finished; marked as this
        search's, with this search's tuned ``params`` (a row written by a search that fixed
        one of them has no value in its column)."""
        table = self.read()
        if table.empty or "config_hash" not in table:
            return None
        hit = table[table["config_hash"] == hash_]
        if hit.empty:
            return None
        self.session_rows[int(hit.index[-1])] = dict(params or {})
        return dict(hit.iloc[-1].to_dict(), **(params or {}))

    def reuse(self, params: dict[str, Any], settings: dict[str, Any]) -> Optional[dict[str, Any]]:
        """The row of a finished trial with this very effective config, else None; logs which,
        and why an earlier trial with these values is not reused."""
        hash_ = config_hash(settings)
        row = self.find(hash_, params)
        label = trial_label(params)
        if row is not None:
            logger.info("trial %s: reusing the finished trial in %s (same config %s)",
                        label, self.path, hash_)
            return row
        why = self.configs.why_not_reused(label, settings)
        if why is not None:
            logger.info("trial %s: %s has it with another config (%s): training it again",
                        label, self.path, why)
        return None

    def ranked(self) -> pd.DataFrame:
        """This search's trials with its tuned values, best validation score first, a ``best``
        column marking it."""
        table = self.read()
        rows = sorted(i for i in self.session_rows if i < len(table))
        table = table.loc[rows]
        if table.empty:
            return table
        for i in rows:
            for name, value in self.session_rows[i].items():
                table.loc[i, name] = value
        table = table.sort_values(self.valid_column, ascending=not self.bigger, kind="stable")
        table.insert(0, "best", ["*"] + [""] * (len(table) - 1))
        return table.reset_index(drop=True)

    def write_report(self, title: str, notes: list[str],
                     tuned: Sequence[str] = ()) -> Optional[dict[str, Any]]:
        """Write ``results.md`` and the plot; return the best row (None without trials).

        When ``tuned`` has ``seed``, a setting is the other tuned values: the report ranks the
        settings by their mean validation score over seeds (those with every seed of the search
        first), and returns the best setting's means (``seeds`` lists them)."""
        table = with_endings(self.ranked())
        if table.empty:
            return None
        lines = [f"# {title}", "", *notes, ""]
        best, plotted = table.iloc[0].to_dict(), table
        if SEED in tuned:
            names = [t for t in tuned if t != SEED]
            settings = self.settings(table.drop(columns="best"), names)
            best, plotted = settings.iloc[0].to_dict(), settings
            lines += [f"Settings: {len(settings)} (the tuned values but `seed`), each over its "
                      f"seeds; best (`*`) by the mean of `{self.valid_column}` (validation) over "
                      "seeds, ranked first among the settings that have every seed of this "
                      "search. Mean ± sample std over seeds of each trial's best validation "
                      "epoch's metrics.", "", settings_markdown(settings), "",
                      "Every trial (`best` marks the best single trial, not a setting):", ""]
        else:
            lines += [f"Trials: {len(table)}; best (`*`) by `{self.valid_column}` (validation). "
                      "Each trial's metrics are those of its best validation epoch.", ""]
        lines += [table.to_markdown(index=False, floatfmt=".4f"), ""]
        # the plot marks single trials' endings, not a setting's
        marks = PLOT_MARKS if "flip_r" in table and SEED not in tuned else ""
        if "ended" in table:
            lines.append(f"`ended`: `{EARLY_STOP}` = converged (more than `stopping_step` "
                         "validations in a row without matching the best score); "
                         f"`{EPOCH_CAP}` = the `epochs` limit ended it, it may not have "
                         f"converged; `{SCHEDULER_STOP}` = Ray Tune's scheduler stopped it, so "
                         "its best score is over fewer epochs and not comparable with the "
                         f"others'{marks}.\n")
        (self.folder / MARKDOWN).write_text("\n".join(lines))
        plot_ndcg_vs_r(plotted, self.folder / PLOT, self.bigger)
        return best

    def settings(self, trials: pd.DataFrame, names: list[str]) -> pd.DataFrame:
        """One row per setting (``names``' values): its ``seeds``, how its trials ``ended``,
        and per metric the mean over seeds (under the metric's name) and ``<metric>_std``;
        the best validation mean first among the settings with every seed, then the others."""
        keys = names or ["setting"]
        trials = trials if names else trials.assign(setting="all")
        metrics = [c for c in trials if c.startswith(("valid_", "test_")) or c == "epochs"]
        summary = aggregate(trials[[*keys, SEED, *metrics]], keys)
        summary = summary.rename(columns={f"{m}_mean": m for m in metrics}).drop(columns="seeds")
        grouped = trials.groupby(keys, sort=False, dropna=False)
        summary.insert(len(keys), "seeds", list(grouped[SEED].agg(
            lambda seeds: ", ".join(str(s) for s in sorted(seeds)))))
        if "ended" in trials:
            summary.insert(len(keys) + 1, "ended", list(grouped["ended"].agg(endings_count)))
        every_seed = grouped[SEED].nunique().to_numpy() == trials[SEED].nunique()
        summary = summary.assign(partial=~every_seed).sort_values(
            ["partial", self.valid_column], ascending=[True, not self.bigger], kind="stable"
        ).drop(columns="partial")
        summary.insert(0, "best", ["*"] + [""] * (len(summary) - 1))
        return summary.reset_index(drop=True)


def settings_markdown(settings: pd.DataFrame) -> str:
    """The settings table with ``mean ± std`` cells (the mean alone with one seed)."""
    metrics = [c for c in settings if f"{c}_std" in settings]
    cells = settings.drop(columns=[f"{m}_std" for m in metrics])
    for m in metrics:
        digits = 1 if m == "epochs" else 4
        cells[m] = [mean_std(v, sd, digits)
                    for v, sd in zip(settings[m], settings[f"{m}_std"], strict=True)]
    return cells.to_markdown(index=False)


def with_endings(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with an ``ended`` value for every trial: a row written before the tables had
    that column takes it from the trial's RecBole log, when the log is still there and has the
    run's end; else it is ``unknown``."""
    from recbole_sigma.compare.logs import ended_from_log  # the compare package is heavy

    if table.empty or "log_file" not in table:
        return table
    ended = table["ended"] if "ended" in table else pd.Series(None, index=table.index)
    missing = ended.isna()  # only these rows' logs are read
    filled = ended.where(~missing, table["log_file"].where(missing).map(ended_from_log))
    return table.assign(ended=filled.fillna(UNKNOWN)) if filled.notna().any() else table


def plot_ndcg_vs_r(table: pd.DataFrame, path: Path, bigger: bool = True) -> bool:
    """NDCG@10 (validation solid, test dashed) against ``flip_r``, one line per ``n_layers``.

    Other tuned parameters are reduced to the best validation row per (r, n_layers).
    Returns False (no plot) without a ``flip_r`` column or NDCG@10 metrics.
    """
    if "flip_r" not in table or "valid_ndcg@10" not in table:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = table["n_layers"] if "n_layers" in table else pd.Series(1, index=table.index)
    table = table.assign(n_layers=layers).sort_values("valid_ndcg@10", ascending=not bigger)
    best = table.drop_duplicates(["n_layers", "flip_r"]).sort_values("flip_r")
    fig, ax = plt.subplots(figsize=(6, 4))
    for n, group in best.groupby("n_layers"):
        line = ax.plot(group["flip_r"], group["valid_ndcg@10"], "o-", label=f"n_layers={n} valid")
        if "test_ndcg@10" in group:
            ax.plot(group["flip_r"], group["test_ndcg@10"], "s--", color=line[0].get_color(),
                    label=f"n_layers={n} test")
    for ended, marker in ((SCHEDULER_STOP, "x"), (EPOCH_CAP, "+")):
        cut = best[best["ended"] == ended] if "ended" in best else best.iloc[:0]
        if not cut.empty:
            ax.scatter(cut["flip_r"], cut["valid_ndcg@10"], marker=marker, s=80, color="k",
                       zorder=3, label=ended)
    ax.set_xlabel("r (flip_r: last r items not flipped)")
    ax.set_ylabel("NDCG@10")
    ax.set_xticks(sorted(best["flip_r"].unique()))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
