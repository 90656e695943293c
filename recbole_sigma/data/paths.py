"""Dataset names, their shared source files, and default folders."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PROPERTIES = REPO_ROOT / "properties"
PROPERTIES_DIR = PROPERTIES / "dataset"
SOURCE_ENV = "SIGMA_DATA_SOURCE"


@dataclass(frozen=True)
class Source:
    """Where a dataset comes from inside the shared folder, and in which format."""

    path: str  # relative to the source root
    fmt: str  # "timed_tsv" | "s3rec" | "pairs"


SOURCES: dict[str, Source] = {
    "amazon-beauty": Source("amazon-beauty/Beauty_with_time.tsv.gz", "timed_tsv"),
    "amazon-sports": Source("amazon-sports/Sports_and_Outdoors_with_time.tsv.gz", "timed_tsv"),
    "amazon-games": Source("amazon-games/Video_Games.txt", "s3rec"),
    "yelp": Source("yelp/Yelp.txt", "s3rec"),
    "ml-1m": Source("ml-1m/ml-1m.txt", "pairs"),
}


def default_source() -> Path:
    """``$SIGMA_DATA_SOURCE`` if set, else ``<repo>/../shared/datasets``."""
    env = os.environ.get(SOURCE_ENV)
    return Path(env) if env else REPO_ROOT.parent / "shared" / "datasets"


GENERIC_PROPERTIES = PROPERTIES_DIR / "_sequential.yaml"


def properties_file(dataset: str) -> Path:
    """The dataset's RecBole properties yaml (``properties/dataset/<name>.yaml``), else the
    paper's protocol for any sequential dataset (``_sequential.yaml``)."""
    own = PROPERTIES_DIR / f"{dataset}.yaml"
    return own if own.is_file() else GENERIC_PROPERTIES
