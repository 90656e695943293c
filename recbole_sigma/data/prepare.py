"""Convert a shared dataset on first use, so a fresh clone runs with one command."""

from __future__ import annotations

import logging
from pathlib import Path

from recbole_sigma.data.check import require_dataset
from recbole_sigma.data.convert import convert_dataset
from recbole_sigma.data.paths import SOURCES, default_source

logger = logging.getLogger(__name__)


def ensure_dataset(dataset: str, data_path: str) -> None:
    """Make ``<data_path>/<dataset>.inter`` exist, or raise ``FileNotFoundError`` with the fix.

    ``data_path`` is RecBole's final ``config['data_path']`` (it ends with the dataset name).
    A missing shared dataset (``paths.SOURCES``) whose source file is found is converted into
    ``data_path``'s parent folder, as ``python -m recbole_sigma.data.convert`` would do.
    """
    inter = Path(data_path) / f"{dataset}.inter"
    if not inter.is_file() and dataset in SOURCES:
        source = default_source() / SOURCES[dataset].path
        if source.is_file():
            logger.info(f"Dataset {dataset!r}: {inter} not found; converting it from {source} "
                        "(first use only)")
            done = convert_dataset(dataset, out=Path(data_path).parent)
            logger.info(f"Dataset {dataset!r}: wrote {done.path} ({done.users} users, "
                        f"{done.items} items, {done.interactions} interactions)")
    require_dataset(dataset, data_path)
