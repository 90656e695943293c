"""Convert interaction files to RecBole atomic ``<out>/<name>/<name>.inter``.

Timestamps (``timestamp:float``) are chosen so that every user's timestamps are *strictly*
increasing in the intended order, hence any sort by time (RecBole's ``order: TO``) reproduces it:

* files without time (S3Rec ``user item item ...``, ml-1m ``user item``): the 1-based position
  of the item in the user's sequence;
* files with time: the real time, rounded to float32 (RecBole stores float fields as float32
  tensors, so a sub-128 s offset on a 2014 unix time would vanish), and, when that is not above
  the user's previous timestamp (a tie), raised to the next float32 value after it (+128 s for
  Amazon 2014 day stamps). The file order (``*_with_time.tsv.gz``) or, for the raw formats, a
  stable sort by time (file order for ties) decides the order.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recbole_sigma.data import readers
from recbole_sigma.data.paths import SOURCES, default_source

HEADER = "user_id:token\titem_id:token\ttimestamp:float\n"
READERS = {
    "timed_tsv": readers.read_timed_tsv,
    "s3rec": readers.read_s3rec,
    "pairs": readers.read_pairs,
}


@dataclass
class Summary:
    """What a conversion wrote."""

    name: str
    path: Path
    users: int
    items: int
    interactions: int
    raised: int  # timestamps moved up to break a tie (or an out-of-order time)


def _next_f32(value: float) -> float:
    return float(np.nextafter(np.float32(value), np.float32(np.inf)))


def strict_times(rows: Sequence[readers.Row]) -> tuple[list[float], int]:
    """Per-user strictly increasing float32-exact timestamps for ``rows`` in their given order."""
    times: list[float] = []
    last: dict[str, float] = {}
    count: dict[str, int] = {}
    raised = 0
    real = [np.nan if r[2] is None else r[2] for r in rows]
    rounded = np.asarray(real, dtype=np.float64).astype(np.float32).tolist()
    for i, (user, _, t) in enumerate(rows):
        if t is None:
            count[user] = value = count.get(user, 0) + 1
        else:
            value = rounded[i]
            prev = last.get(user)
            if prev is not None and value <= prev:
                value, raised = _next_f32(prev), raised + 1
        last[user] = value
        times.append(value)
    return times, raised


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def write_inter(rows: Sequence[readers.Row], out_dir: Path, name: str) -> Summary:
    """Write ``out_dir/name/name.inter`` (rows in the given order)."""
    times, raised = strict_times(rows)
    target = Path(out_dir) / name / f"{name}.inter"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".inter.{os.getpid()}.tmp")  # runs converting at once: own files
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(HEADER)
        f.writelines(f"{u}\t{i}\t{_fmt(t)}\n" for (u, i, _), t in zip(rows, times, strict=True))
    tmp.replace(target)
    return Summary(name, target, len({r[0] for r in rows}), len({r[1] for r in rows}),
                   len(rows), raised)


def _by_user_then_time(rows: list[readers.Row]) -> list[readers.Row]:
    """Group by user (first appearance), stable sort by time inside each user."""
    first: dict[str, int] = {}
    for u, _, _ in rows:
        first.setdefault(u, len(first))
    order = sorted(range(len(rows)), key=lambda k: (first[rows[k][0]], rows[k][2], k))
    return [rows[k] for k in order]


def _read(reader: Callable[[Path], list[readers.Row]], path: Path) -> list[readers.Row]:
    """``reader(path)``, which must give at least one row."""
    rows = reader(path)
    if not rows:
        raise readers.DataFormatError(path, 1, "no interactions (the file is empty or has only "
                                      "a header)", "convert a file with at least one rating")
    return rows


def check_name(name: str) -> None:
    """A dataset name must be one plain file name: it becomes ``<out>/<name>/<name>.inter``."""
    if name in ("", ".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"dataset name {name!r} must be a plain name without '/', '\\' or "
                         "'..' (it becomes <out>/<name>/<name>.inter); pass e.g. --name my-data")


def read_source(name: str, source: Path | None = None) -> list[readers.Row]:
    """The rows of a shared dataset (see ``paths.SOURCES``) under ``source``, in file order."""
    if name not in SOURCES:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(SOURCES)}")
    spec = SOURCES[name]
    path = Path(source or default_source()) / spec.path
    if not path.is_file():
        raise FileNotFoundError(f"source file {path} not found; pass --source or set "
                                "SIGMA_DATA_SOURCE to the shared datasets folder")
    return _read(READERS[spec.fmt], path)


def convert_dataset(name: str, source: Path | None = None, out: Path = Path("dataset")) -> Summary:
    """Convert a shared dataset (see ``paths.SOURCES``) from ``source`` into ``out``."""
    return write_inter(read_source(name, source), out, name)


def convert_amazon_csv(path: Path, name: str, out: Path = Path("dataset")) -> Summary:
    """Amazon ratings CSV ``user,item,rating,timestamp`` -> atomic file (raw ids as tokens)."""
    check_name(name)
    rows = _read(readers.read_amazon_csv, Path(path))
    return write_inter(_by_user_then_time(rows), out, name)


def convert_movielens_dat(path: Path, name: str, out: Path = Path("dataset")) -> Summary:
    """MovieLens ``ratings.dat`` ``user::item::rating::timestamp`` -> atomic file."""
    check_name(name)
    rows = _read(readers.read_movielens_dat, Path(path))
    return write_inter(_by_user_then_time(rows), out, name)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m recbole_sigma.data.convert", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--dataset", choices=sorted(SOURCES), help="one shared dataset")
    what.add_argument("--all", action="store_true", help="every shared dataset")
    what.add_argument("--from-amazon-csv", type=Path, metavar="FILE", help="Amazon ratings CSV")
    what.add_argument("--from-movielens-dat", type=Path, metavar="FILE", help="ratings.dat")
    p.add_argument("--name", help="dataset name for --from-* (output dataset/<name>/<name>.inter)")
    p.add_argument("--source", type=Path, default=None,
                   help="shared datasets folder (default: $SIGMA_DATA_SOURCE or ../shared/datasets "
                        "next to the repository)")
    p.add_argument("--out", type=Path, default=Path("dataset"),
                   help="output root (default: dataset)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    args = _parser().parse_args(argv)
    raw = args.from_amazon_csv or args.from_movielens_dat
    if raw and not args.name:
        _parser().error("--name is required with --from-amazon-csv / --from-movielens-dat")
    try:
        if args.from_amazon_csv:
            done = [convert_amazon_csv(args.from_amazon_csv, args.name, args.out)]
        elif args.from_movielens_dat:
            done = [convert_movielens_dat(args.from_movielens_dat, args.name, args.out)]
        else:
            names = sorted(SOURCES) if args.all else [args.dataset]
            done = [convert_dataset(n, args.source, args.out) for n in names]
    except (ValueError, FileNotFoundError) as err:  # DataFormatError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 1
    for s in done:
        print(f"{s.path}: {s.users} users, {s.items} items, {s.interactions} interactions "
              f"({s.raised} tied timestamps raised)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
