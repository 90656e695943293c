"""Reuse of finished runs: a run is reused only when its whole effective config is the same.

The effective config is RecBole's ``final_config_dict`` (every YAML file, ``--key=value`` and tuned
value already merged in), without the keys that only say where or how verbosely a run happens,
plus what the keys do not show: a hash of the dataset's atomic files (instead of their path), a
hash of the plugin code that trains and loads data (its code, not its comments and docstrings),
and the RecBole, torch and Python versions (the code's syntax trees differ between Python
versions). Its hash keys each finished run; a run whose hash is not on record is trained.
"""

import ast
import functools
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Iterator, Optional

import recbole
import torch
from recbole.config import Config

# where or how verbosely a run happens, not what it computes
VOLATILE_KEYS = frozenset({
    "checkpoint_dir", "data_path", "dataloaders_save_path", "dataset_save_path", "device",
    "gpu_id", "log_wandb", "save_dataloaders", "save_dataset", "show_progress", "state", "use_gpu",
    "wandb_project",
})
PACKAGE = Path(__file__).resolve().parent
# the plugin code that decides what a run trains, on which data
TRAINING_CODE = ("model", "mamba", "ops", "data", "trainer.py")


def effective_config(config: Config) -> dict[str, Any]:
    """The settings that decide a run's result, as plain JSON values."""
    settings = {k: v for k, v in config.final_config_dict.items() if k not in VOLATILE_KEYS}
    settings.update(
        data_files_sha1=data_files_hash(config["data_path"], config["dataset"]),
        plugin_code_sha1=training_code_hash(),
        versions=f"recbole {recbole.__version__}, torch {torch.__version__}, "
                 f"python {sys.version_info.major}.{sys.version_info.minor}",
    )
    return json.loads(json.dumps(settings, default=str))


def config_hash(settings: dict[str, Any]) -> str:
    """A stable short hash of an effective config."""
    text = json.dumps(settings, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def differences(old: dict[str, Any], new: dict[str, Any], limit: int = 6) -> str:
    """``"epochs: 1 -> 2, dataset: 'a' -> 'b'"``: the keys whose values differ."""
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k, ...) != new.get(k, ...))
    shown = [f"{k}: {_show(old, k)} -> {_show(new, k)}" for k in keys[:limit]]
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(shown) + more


def _show(settings: dict[str, Any], key: str) -> str:
    return repr(settings[key]) if key in settings else "(not set)"


EMPTY_HASH = hashlib.sha1().hexdigest()  # no files


def data_files_hash(folder: str | Path, dataset: str) -> str:
    """Hash of the names and contents of ``<folder>/<dataset>.*`` (RecBole's atomic files)."""
    files = sorted(p for p in Path(folder).glob(f"{dataset}.*") if p.is_file())
    return _files_hash(tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))


@functools.lru_cache(maxsize=64)
def _files_hash(files: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha1()
    for path, _, _ in files:
        digest.update(Path(path).name.encode())
        with open(path, "rb") as f:
            for block in iter(functools.partial(f.read, 1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


@functools.cache
def training_code_hash() -> str:
    """Hash of the plugin's model, data and trainer sources (a code change retrains)."""
    return code_hash(PACKAGE, TRAINING_CODE)


def code_hash(root: Path, names: tuple[str, ...]) -> str:
    """Hash of the sources under ``root`` named by ``names`` (files or folders): of what each
    .py file's code says (its syntax tree without docstrings: comments, docstrings and layout
    do not change a run), and of the C++ files' bytes."""
    digest = hashlib.sha1()
    for path in _sources(root, names):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(_code(path))
    return digest.hexdigest()


def _sources(root: Path, names: tuple[str, ...]) -> Iterator[Path]:
    for name in names:
        path = root / name
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        yield from (f for f in files if f.is_file() and f.suffix in (".py", ".cpp", ".h"))


def _code(path: Path) -> bytes:
    if path.suffix != ".py":
        return path.read_bytes()
    tree = ast.parse(path.read_text())
    documented = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    for node in ast.walk(tree):
        if isinstance(node, documented) and node.body and _is_docstring(node.body[0]):
            node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


def _is_docstring(statement: ast.stmt) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))


class ConfigRecords:
    """A JSON-lines file of finished runs: ``{"config_hash", "label", "config", ...}`` per line.

    A line is appended (and flushed) as each run finishes; a last line cut off by a killed
    process is skipped.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        records = []
        for line in self.path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def find(self, hash_: str) -> Optional[dict[str, Any]]:
        """The latest record with this config hash."""
        found = [r for r in self.read() if r.get("config_hash") == hash_]
        return found[-1] if found else None

    def add(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(record, default=str) + "\n")
            f.flush()

    def why_not_reused(self, label: str, settings: dict[str, Any]) -> Optional[str]:
        """How the latest record with this label differs from ``settings`` (None: no record)."""
        found = [r for r in self.read() if r.get("label") == label and "config" in r]
        return differences(found[-1]["config"], settings) if found else None
