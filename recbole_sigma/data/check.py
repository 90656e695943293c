"""Fail early, with the fix, when a dataset's atomic file has not been converted yet."""

from __future__ import annotations

from pathlib import Path

from recbole_sigma.data.paths import SOURCES, default_source


def require_dataset(dataset: str, data_path: str) -> None:
    """Raise ``FileNotFoundError`` unless ``<data_path>/<dataset>.inter`` exists.

    ``data_path`` is RecBole's final ``config['data_path']`` (it already ends with the dataset
    name). Called before ``create_dataset`` so RecBole never tries to download anything.
    """
    folder = Path(data_path)
    inter = folder / f"{dataset}.inter"
    if inter.is_file():
        return
    out = folder.parent
    where = "" if inter.is_absolute() else f" (in {Path.cwd()})"
    lines = [f"Dataset {dataset!r}: atomic file {inter}{where} not found."]
    if dataset in SOURCES:
        source = default_source() / SOURCES[dataset].path
        if not source.is_file():
            lines.append(f"Its shared source {source} was not found, so it could not be "
                         "converted on first use.")
        lines.append("Convert it from the shared data (nothing is downloaded):")
        lines.append(f"    python -m recbole_sigma.data.convert --dataset {dataset} --out {out}")
        lines.append("(add --source DIR or set SIGMA_DATA_SOURCE if the shared datasets are not in "
                     "../shared/datasets next to the repository; see dataset/README.md)")
    else:
        lines.append(f"It is not one of the shared datasets ({', '.join(SOURCES)}).")
    lines.append("From raw files you downloaded (Amazon ratings CSV, MovieLens ratings.dat):")
    lines.append(f"    python -m recbole_sigma.data.convert --from-amazon-csv ratings.csv "
                 f"--name {dataset} --out {out}")
    lines.append(f"    python -m recbole_sigma.data.convert --from-movielens-dat ratings.dat "
                 f"--name {dataset} --out {out}")
    lines.append(f"or place a RecBole atomic file at {inter} "
                 "(columns user_id:token, item_id:token, timestamp:float).")
    raise FileNotFoundError("\n".join(lines))
