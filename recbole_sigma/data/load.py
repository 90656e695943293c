"""Check a dataset's ``.inter`` file before RecBole reads it, then load it with RecBole.

RecBole keeps rows that repeat an earlier row's user, item and timestamp (the held-out item then
is a copy of an input item), fills a missing timestamp with the column mean (the row moves to the
middle of its user's sequence), and stops on an empty file, date strings or over-strict filters
with errors that name neither the file nor the key. :func:`check_data` reads the columns RecBole
will use and stops first, naming the file, the column or key, and the fix. :func:`load_dataset`
then runs RecBole's ``create_dataset``, dropping exact duplicates when ``drop_duplicates`` is True.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pandas as pd
from recbole.data import create_dataset
from recbole.data.dataset import Dataset
from recbole.utils import ModelType

from recbole_sigma.data.prepare import ensure_dataset
from recbole_sigma.data.readers import DataFormatError, undecodable_line

EXAMPLE_HEADER = "user_id:token<TAB>item_id:token<TAB>timestamp:float"


@dataclass(frozen=True)
class InterSummary:
    """What :func:`check_data` found in a ``.inter`` file (rows with a user and an item)."""

    path: Path
    rows: int
    users: int
    items: int
    max_user_rows: int  # interactions of the most active user
    max_item_rows: int  # interactions of the most popular item
    duplicates: int  # rows repeating an earlier row's user, item and timestamp
    duplicate_fields: tuple[str, ...]


def _inter_columns(config: Any) -> Optional[set[str]]:
    """The ``.inter`` columns RecBole loads (``load_col``); ``None``: all of them."""
    load = config["load_col"]
    if load is None or load.get("inter") == "*":
        return None
    return set(load.get("inter", []))


def _needs_time(config: Any) -> bool:
    """Sequential models order each user's items by time; so does ``eval_args`` ``order: TO``."""
    order = (config["eval_args"] or {}).get("order")
    return order == "TO" or config["MODEL_TYPE"] == ModelType.SEQUENTIAL


def _header(path: Path, config: Any) -> dict[str, str]:
    """``{field: type}`` from line 1, checked the way RecBole will split it."""
    with open(path, encoding=config["encoding"]) as f:
        head = f.readline().rstrip("\r\n")
    if not head:
        raise DataFormatError(path, 1, "the file is empty (no header line)",
                              f"start the file with a header such as {EXAMPLE_HEADER}, "
                              "then one interaction per line")
    fields = {}
    for part in head.split(config["field_separator"]):
        name, colon, ftype = part.partition(":")
        if not colon:
            raise DataFormatError(path, 1, f"header field {part!r} has no ':type'",
                                  f"write the header as name:type fields, e.g. {EXAMPLE_HEADER}")
        fields[name] = ftype
    return fields


def _require_column(path: Path, header: dict[str, str], key: str, field: str, fix: str) -> None:
    if field not in header:
        raise DataFormatError(path, 1, f"no column {field!r} ({key}) in the header "
                              f"({', '.join(f'{k}:{v}' for k, v in header.items())})", fix)


def _read(path: Path, config: Any, columns: list[str], header: dict[str, str]) -> pd.DataFrame:
    """The columns as strings (``NaN`` where pandas reads a missing value, as RecBole does);
    the index is the 0-based row, so line = index + 2 (blank lines kept, unlike RecBole)."""
    frame = pd.read_csv(path, sep=config["field_separator"], dtype=str,
                        usecols=[f"{c}:{header[c]}" for c in columns],
                        encoding=config["encoding"], skip_blank_lines=False)
    frame.columns = [c.partition(":")[0] for c in frame.columns]
    return frame


def _first(mask: pd.Series) -> int:
    """The file line of the first row where ``mask`` holds."""
    return int(mask.idxmax()) + 2


def _check_time(path: Path, frame: pd.DataFrame, field: str, needs_time: bool) -> pd.Series:
    """The timestamps as numbers; an error for text, and for missing ones when time orders."""
    raw = frame[field]
    missing = raw.isna()
    value = pd.to_numeric(raw, errors="coerce")
    text = value.isna() & ~missing
    if text.any():
        line = _first(text)
        raise DataFormatError(
            path, line, f"{field} {raw[line - 2]!r} is not a number (text in {int(text.sum())} of "
            f"{len(raw)} rows)",
            f"write {field} as a number, e.g. unix seconds (2014-01-31 -> 1391126400)")
    if needs_time and missing.any():
        raise DataFormatError(
            path, _first(missing), f"column {field} is empty or n/a in {int(missing.sum())} of "
            f"{len(raw)} rows (first here); RecBole would put them at the column mean, in the "
            "middle of each user's sequence",
            f"give every row a {field}, or delete those rows")
    return value


def check_data(config: Any) -> Optional[InterSummary]:
    """Stop with a clear error when the ``.inter`` file RecBole will load is missing or unusable.

    Checked: the file exists (a missing shared dataset is converted first); it has a header and
    rows; the user, item and (for sequential models or ``order: TO``) time columns are there,
    loaded and, for time, numbers in every row; no row repeats an earlier one (same user, item
    and timestamp) unless ``drop_duplicates`` is True.
    ``None`` for benchmark files (``benchmark_filename``), which are not checked.
    """
    ensure_dataset(config["dataset"], config["data_path"])
    if config["benchmark_filename"]:
        return None
    path = Path(config["data_path"]) / f"{config['dataset']}.inter"
    try:
        return _check_inter(path, config)
    except UnicodeDecodeError as err:
        raise DataFormatError(path, undecodable_line(path, err.encoding), f"not {err.encoding} "
                              f"text ({err.reason})", "save the file as UTF-8, or set the "
                              "config key encoding to its encoding") from None


def _check_inter(path: Path, config: Any) -> InterSummary:
    header = _header(path, config)
    uid, iid, time = config["USER_ID_FIELD"], config["ITEM_ID_FIELD"], config["TIME_FIELD"]
    for key, field in (("USER_ID_FIELD", uid), ("ITEM_ID_FIELD", iid)):
        _require_column(path, header, key, field,
                        f"name that column {field}:token, or set {key} to its name")
    loaded = _inter_columns(config)
    needs_time = _needs_time(config)
    if needs_time:
        _require_column(path, header, "TIME_FIELD", time,
                        f"add a column {time}:float (unix time, or the position of the item in "
                        "its user's sequence: 1, 2, 3, ...); sequential models and eval_args "
                        "order: TO sort each user's interactions by it")
        if loaded is not None and time not in loaded:
            raise ValueError(
                f"config key load_col loads {sorted(loaded)} from {path} but not TIME_FIELD "
                f"{time!r}, which sequential models and eval_args order: TO sort by; "
                f"add it: load_col: {{inter: [{uid}, {iid}, {time}]}}")
        if header[time] != "float":
            raise DataFormatError(path, 1, f"column {time} is {time}:{header[time]}",
                                  f"declare it {time}:float (numbers such as unix seconds)")
    with_time = time in header and header[time] == "float" and (loaded is None or time in loaded)
    frame = _read(path, config, [uid, iid] + ([time] if with_time else []), header)
    frame = frame[frame[uid].notna() & frame[iid].notna()]  # RecBole drops these rows too
    if frame.empty:
        raise DataFormatError(path, 2, "no interactions after the header",
                              "add one interaction per line, or convert your data with "
                              "python -m recbole_sigma.data.convert (see --help)")
    fields = (uid, iid)
    repeated = pd.Series(False, index=frame.index)  # without time, a repeat may be a real one
    if with_time:
        frame = frame.assign(**{time: _check_time(path, frame, time, needs_time)})
        fields = (uid, iid, time)
        repeated = frame.duplicated(subset=list(fields))
    if repeated.any() and config["drop_duplicates"] is not True:
        raise DataFormatError(
            path, _first(repeated), f"{int(repeated.sum())} rows repeat an earlier row's "
            f"{', '.join(fields)} (first here); kept, they put copies of held-out items into "
            "the model's input", "delete them, or set the config key drop_duplicates: True "
            "(--drop_duplicates=True) to drop them while loading")
    unique = frame[~repeated]
    return InterSummary(path, len(unique), unique[uid].nunique(), unique[iid].nunique(),
                        int(unique[uid].value_counts().max()),
                        int(unique[iid].value_counts().max()), int(repeated.sum()), fields)


@contextlib.contextmanager
def duplicates_dropped(summary: InterSummary) -> Iterator[None]:
    """While RecBole builds a dataset, drop rows repeating an earlier row's user, item and time
    (after RecBole's own ``rm_dup_inter`` step), and log how many."""
    original = Dataset._remove_duplication

    def remove_duplication(self: Dataset) -> None:
        original(self)
        before = len(self.inter_feat)
        self.inter_feat.drop_duplicates(subset=list(summary.duplicate_fields), inplace=True)
        self.logger.warning(
            f"{summary.path}: dropped {before - len(self.inter_feat)} rows repeating an earlier "
            f"row's {', '.join(summary.duplicate_fields)} (drop_duplicates: True)")

    Dataset._remove_duplication = remove_duplication
    try:
        yield
    finally:
        Dataset._remove_duplication = original


def _filtered_out(config: Any, summary: InterSummary) -> ValueError:
    users, items = config["user_inter_num_interval"], config["item_inter_num_interval"]
    return ValueError(
        f"{summary.path}: no interaction is left after RecBole's filters "
        f"user_inter_num_interval={users} and item_inter_num_interval={items} (applied until "
        f"every user and item left passes both). The file has {summary.rows} rows: "
        f"{summary.users} users with at most {summary.max_user_rows} interactions each, "
        f"{summary.items} items with at most {summary.max_item_rows}. Fix: add data, or lower "
        "the filters, e.g. --user_inter_num_interval='[1,inf)' --item_inter_num_interval='[1,inf)'"
    )


def load_dataset(config: Any, checked: Optional[InterSummary] = None) -> Dataset:
    """RecBole's ``create_dataset`` on a file :func:`check_data` passed (``checked``: its result
    if already called), with exact duplicates dropped."""
    summary = checked or check_data(config)
    drop = summary is not None and summary.duplicates > 0
    with duplicates_dropped(summary) if drop else contextlib.nullcontext():
        try:
            return create_dataset(config)
        except ValueError as err:
            if summary is None or not str(err).startswith("Some feat is empty"):
                raise
            raise _filtered_out(config, summary) from None
