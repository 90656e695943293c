"""Strict readers for the interaction formats we convert.

Each reader returns rows ``(user, item, time)`` in file order; ``time`` is ``None`` for formats
without timestamps. Any malformed line raises :class:`DataFormatError` naming file, line and fix.
"""

from __future__ import annotations

import csv
import gzip
import math
from collections.abc import Iterator
from pathlib import Path

Row = tuple[str, str, "float | None"]
TSV_HEADER = ["user_id", "item_id", "timestamp"]


class DataFormatError(ValueError):
    """A source file does not have the expected format."""

    def __init__(self, path: Path | str, line: int, problem: str, fix: str) -> None:
        self.path, self.line = str(path), line
        super().__init__(f"{path}, line {line}: {problem}. Fix: {fix}")


def _opener(path: Path):
    return gzip.open if path.suffix == ".gz" else open


def undecodable_line(path: Path, encoding: str = "utf-8") -> int:
    """The 1-based number of the first line of ``path`` that is not ``encoding`` text (0: none)."""
    with _opener(path)(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError:
                return n
    return 0


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(1-based line number, line without newline)``; reject empty lines."""
    try:
        with _opener(path)(path, "rt", encoding="utf-8", newline="") as f:
            for n, raw in enumerate(f, 1):
                line = raw.rstrip("\r\n")
                if not line.strip():
                    raise DataFormatError(path, n, "empty line",
                                          "delete blank lines from the file")
                yield n, line
    except UnicodeDecodeError as err:
        raise DataFormatError(path, undecodable_line(path), f"not UTF-8 text ({err.reason})",
                              "save the file as UTF-8") from None


def _int_id(tok: str, path: Path, n: int, what: str) -> str:
    if not (tok.isascii() and tok.isdigit()):
        raise DataFormatError(
            path, n, f"{what} {tok!r} is not a non-negative integer",
            "ids in this format must be integers; check the format and that there is no header",
        )
    return tok


def _number(tok: str, path: Path, n: int, what: str) -> float:
    try:
        value = float(tok)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise DataFormatError(path, n, f"{what} {tok!r} is not a finite number",
                              f"put a number in the {what} column")
    return value


def _columns(fields: list[str], want: int, path: Path, n: int, layout: str) -> None:
    if len(fields) != want:
        raise DataFormatError(path, n, f"expected {want} columns, found {len(fields)}",
                              f"each line must be {layout}")


def read_s3rec(path: Path) -> list[Row]:
    """S3Rec layout: one user per line, ``user item item ...`` (chronological)."""
    rows: list[Row] = []
    seen: dict[str, int] = {}
    for n, line in _lines(path):
        fields = line.split()
        if len(fields) < 2:
            raise DataFormatError(path, n, f"expected a user id and at least one item, found "
                                  f"{len(fields)} column(s)",
                                  "each line must be `user item item ...`")
        user = _int_id(fields[0], path, n, "user id")
        if user in seen:
            raise DataFormatError(path, n, f"user {user} already has a line ({seen[user]})",
                                  "give each user exactly one line")
        seen[user] = n
        rows.extend((user, _int_id(it, path, n, "item id"), None) for it in fields[1:])
    return rows


def read_pairs(path: Path) -> list[Row]:
    """SASRec layout: ``user item`` per line, grouped by user, chronological."""
    rows: list[Row] = []
    done: dict[str, int] = {}
    current = None
    for n, line in _lines(path):
        fields = line.split()
        _columns(fields, 2, path, n, "`user item`")
        user = _int_id(fields[0], path, n, "user id")
        if user != current:
            if user in done:
                raise DataFormatError(path, n, f"user {user} reappears (its block ended before "
                                      f"line {done[user]})", "group all lines of a user together")
            if current is not None:
                done[current] = n
            current = user
        rows.append((user, _int_id(fields[1], path, n, "item id"), None))
    return rows


def _is_header(fields: list[str], names: list[str]) -> bool:
    return [f.strip().lower() for f in fields] == names


def read_timed_tsv(path: Path) -> list[Row]:
    """``user_id<TAB>item_id<TAB>timestamp`` with an optional header on line 1 (file order kept)."""
    rows: list[Row] = []
    for n, line in _lines(path):
        fields = line.split("\t")
        if _is_header(fields, TSV_HEADER):
            if n == 1:
                continue
            raise DataFormatError(path, n, "duplicate header line", "keep the header on line 1 "
                                  "only (were two files concatenated?)")
        _columns(fields, 3, path, n, "`user_id<TAB>item_id<TAB>timestamp`")
        user = _int_id(fields[0], path, n, "user id")
        item = _int_id(fields[1], path, n, "item id")
        rows.append((user, item, _number(fields[2], path, n, "timestamp")))
    return rows


def _token(tok: str, path: Path, n: int, what: str) -> str:
    tok = tok.strip()
    if not tok or any(c.isspace() for c in tok):
        raise DataFormatError(path, n, f"{what} {tok!r} is empty or contains whitespace",
                              f"give every line a {what} without spaces or tabs")
    return tok


def _raw_rows(path: Path, split, names: list[str], layout: str, int_ids: bool) -> list[Row]:
    rows: list[Row] = []
    for n, line in _lines(path):
        fields = split(line)
        if len(fields) == 4 and _is_header(fields, names):
            if n == 1:
                continue
            raise DataFormatError(path, n, "duplicate header line",
                                  "delete it (header allowed on line 1 only)")
        _columns(fields, 4, path, n, layout)
        user = _token(fields[0], path, n, "user id")
        item = _token(fields[1], path, n, "item id")
        if int_ids:
            _int_id(user, path, n, "user id")
            _int_id(item, path, n, "item id")
        _number(fields[2], path, n, "rating")
        rows.append((user, item, _number(fields[3], path, n, "timestamp")))
    return rows


def read_amazon_csv(path: Path) -> list[Row]:
    """Amazon ratings CSV ``user,item,rating,timestamp`` (no header; raw string ids)."""
    return _raw_rows(path, lambda s: next(csv.reader([s])),
                     ["user", "item", "rating", "timestamp"],
                     "`user,item,rating,timestamp`", int_ids=False)


def read_movielens_dat(path: Path) -> list[Row]:
    """MovieLens ``ratings.dat``: ``user::item::rating::timestamp``."""
    return _raw_rows(path, lambda s: s.split("::"),
                     ["userid", "movieid", "rating", "timestamp"],
                     "`user::item::rating::timestamp`", int_ids=True)
