"""Print dataset statistics as RecBole loads them (after its filters; counts include padding id 0).

    python -m recbole_sigma.data.stats --dataset amazon-beauty [--data-path dataset]
    python -m recbole_sigma.data.stats --all
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from recbole_sigma.data.paths import SOURCES

COLUMNS = ("dataset", "users", "items", "interactions", "avg len", "sparsity")


def load_dataset(dataset: str, data_path: str | Path = "dataset", **overrides):
    """The RecBole (sequential) dataset as training loads it: ``properties/dataset/<dataset>.yaml``
    (else ``_sequential.yaml``), the same checks of the ``.inter`` file."""
    from recbole_sigma.data.load import load_dataset as load_checked
    from recbole_sigma.quick_start import build_config

    config_dict = {"data_path": str(data_path), "use_gpu": False, "show_progress": False,
                   "save_dataset": False, **overrides}
    argv, sys.argv = sys.argv, sys.argv[:1]  # RecBole's Config also parses sys.argv
    try:
        config = build_config("SASRec", dataset, config_dict=config_dict)
    finally:
        sys.argv = argv
    return load_checked(config)


def dataset_stats(dataset: str, data_path: str | Path = "dataset") -> dict[str, object]:
    """Users/items (RecBole counts incl. padding), interactions, avg length, sparsity."""
    ds = load_dataset(dataset, data_path)
    return {"dataset": dataset, "users": ds.user_num, "items": ds.item_num,
            "interactions": ds.inter_num, "avg len": float(ds.avg_actions_of_users),
            "sparsity": float(ds.sparsity)}


def format_row(row: dict[str, object]) -> str:
    """One markdown table row."""
    return (f"| {row['dataset']} | {row['users']:,} | {row['items']:,} | {row['interactions']:,} "
            f"| {row['avg len']:.2f} | {100 * row['sparsity']:.2f}% |")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(prog="python -m recbole_sigma.data.stats", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--dataset", help="dataset name (shared ones, ml-100k, or a converted one)")
    what.add_argument("--all", action="store_true", help="every shared dataset")
    p.add_argument("--data-path", default="dataset",
                   help="RecBole data_path root (default: dataset)")
    args = p.parse_args(argv)
    logging.getLogger().setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)  # pandas, inside RecBole
    names = sorted(SOURCES) if args.all else [args.dataset]
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    try:
        for name in names:
            print(format_row(dataset_stats(name, args.data_path)), flush=True)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
