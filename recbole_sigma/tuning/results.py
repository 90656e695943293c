"""The tuning table: one CSV row per finished trial (written at once), Markdown and a plot."""

import math
from pathlib import Path
from typing import Any, Optional

import pandas as pd

CSV, MARKDOWN, PLOT = "results.csv", "results.md", "ndcg_vs_r.png"


def trial_row(params: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """A table row: the parameters, then ``valid_*`` (best epoch) and ``test_*`` metrics."""
    row = dict(params)
    row.update({f"valid_{k}": v for k, v in result["best_valid_result"].items()})
    row.update({f"test_{k}": v for k, v in result["test_result"].items()})
    row.update({k: result[k] for k in ("epochs", "train_seconds") if k in result})
    return row


class TrialTable:
    """``results.csv`` in ``folder``; every finished trial is appended (and flushed) at once."""

    def __init__(self, folder: str | Path, valid_metric: str, bigger: bool = True) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / CSV
        self.valid_column = f"valid_{valid_metric.lower()}"
        self.bigger = bigger

    def read(self) -> pd.DataFrame:
        return pd.read_csv(self.path) if self.path.is_file() else pd.DataFrame()

    def append(self, row: dict[str, Any]) -> None:
        table = pd.concat([self.read(), pd.DataFrame([row])], ignore_index=True)
        partial = self.path.with_suffix(".csv.partial")
        table.to_csv(partial, index=False)
        partial.replace(self.path)

    def find(self, params: dict[str, Any]) -> Optional[dict[str, Any]]:
        """The row of an earlier trial with exactly these parameters, if one finished."""
        table = self.read()
        if table.empty or not set(params) <= set(table.columns):
            return None
        hit = table
        for name, value in params.items():
            hit = hit[hit[name].map(lambda cell, v=value: _same(cell, v))]
        return None if hit.empty else hit.iloc[-1].to_dict()

    def ranked(self) -> pd.DataFrame:
        """All trials, best validation score first, with a ``best`` column marking the winner."""
        table = self.read()
        if table.empty:
            return table
        table = table.sort_values(self.valid_column, ascending=not self.bigger, kind="stable")
        table.insert(0, "best", ["*"] + [""] * (len(table) - 1))
        return table.reset_index(drop=True)

    def write_report(self, title: str, notes: list[str]) -> Optional[dict[str, Any]]:
        """Write ``results.md`` and the plot; return the best row (None without trials)."""
        table = self.ranked()
        if table.empty:
            return None
        lines = [f"# {title}", "", *notes, "",
                 f"Trials: {len(table)}; best (`*`) by `{self.valid_column}` (validation).", "",
                 table.to_markdown(index=False, floatfmt=".4f"), ""]
        if "epochs" in table and table["epochs"].nunique() > 1:
            lines.append(f"Trials with fewer than {table['epochs'].max()} epochs stopped early "
                         "(early stopping or the scheduler, e.g. ASHA): their metrics are those "
                         "of their last epoch, not comparable with the longer trials' (marked x "
                         "in the plot).\n")
        (self.folder / MARKDOWN).write_text("\n".join(lines))
        plot_ndcg_vs_r(table, self.folder / PLOT, self.bigger)
        return table.iloc[0].to_dict()


def _same(cell: Any, value: Any) -> bool:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return isinstance(cell, (int, float)) and math.isclose(float(cell), float(value))
    return str(cell) == str(value)


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
    if "epochs" in best and best["epochs"].nunique() > 1:
        short = best[best["epochs"] < best["epochs"].max()]
        ax.scatter(short["flip_r"], short["valid_ndcg@10"], marker="x", s=80, color="k",
                   zorder=3, label=f"stopped before epoch {best['epochs'].max()}")
    ax.set_xlabel("r (flip_r: last r items not flipped)")
    ax.set_ylabel("NDCG@10")
    ax.set_xticks(sorted(best["flip_r"].unique()))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
