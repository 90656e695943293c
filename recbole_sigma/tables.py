"""Markdown tables and the mean and std over seeds that the comparison reports share."""

import pandas as pd


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table: the header, then one line per row."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def aggregate(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean and std (over seeds; NaN with one seed) of every numeric column, per ``keys`` (a
    missing key value is a group of its own)."""
    numeric = [
        c
        for c in frame.columns
        if c not in keys + ["seed"] and pd.api.types.is_numeric_dtype(frame[c])
    ]
    grouped = frame.groupby(keys, sort=False, dropna=False)[numeric]
    mean, std = grouped.mean(), grouped.std(ddof=1)
    out = pd.concat([mean.add_suffix("_mean"), std.add_suffix("_std")], axis=1)
    out.insert(0, "seeds", frame.groupby(keys, sort=False, dropna=False)["seed"].nunique())
    return out.reset_index()


def endings_count(ended: pd.Series) -> str:
    """How runs ended, counted in order of first appearance: ``"epoch cap x1, early stop x2"``."""
    return ", ".join(f"{e} x{n}" for e, n in ended.value_counts(sort=False).items())


def mean_std(mean: float, std: float, digits: int) -> str:
    """``"0.0446 ± 0.0004"``; the mean alone when the std is NaN (one seed)."""
    text = f"{mean:.{digits}f}"
    return text if pd.isna(std) else f"{text} ± {std:.{digits}f}"
