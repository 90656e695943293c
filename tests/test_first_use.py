"""One command from a fresh clone: a shared dataset is converted on first use."""

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ML100K

from recbole_sigma.data.prepare import ensure_dataset

REPO = Path(__file__).resolve().parent.parent


def write_beauty_source(root: Path, users: int) -> None:
    """A shared-folder ``Beauty_with_time.tsv.gz`` holding the first ``users`` ml-100k users."""
    rows = [line.split("\t") for line in ML100K.read_text().splitlines()[1:]]
    mine = sorted((int(r[0]), int(float(r[3])), r[1]) for r in rows if int(r[0]) <= users)
    folder = root / "amazon-beauty"
    folder.mkdir(parents=True)
    with gzip.open(folder / "Beauty_with_time.tsv.gz", "wt") as f:
        f.write("user_id\titem_id\ttimestamp\n")
        f.writelines(f"{u}\t{i}\t{t}\n" for u, t, i in mine)


def test_cli_converts_a_shared_dataset_on_first_use(workdir, tiny_config):
    write_beauty_source(workdir / "shared", 40)
    tiny = {k: v for k, v in tiny_config.items() if k != "data_path"}  # RecBole's dataset/
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    cmd = [sys.executable, str(REPO / "run_recbole_sigma.py"), "--dataset", "amazon-beauty",
           "--model", "SIGMA", "--config_files", "tiny.yaml", "--state=INFO"]
    env = dict(os.environ, SIGMA_DATA_SOURCE=str(workdir / "shared"))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=workdir, env=env)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    assert "amazon-beauty.inter not found; converting it from" in log and "test result" in log
    assert (workdir / "dataset" / "amazon-beauty" / "amazon-beauty.inter").is_file()
    assert "will not be used" not in log  # --dataset, --model, --config_files are the script's


def test_without_a_source_the_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("SIGMA_DATA_SOURCE", str(tmp_path / "shared"))
    with pytest.raises(FileNotFoundError, match=r"(?s)Beauty_with_time.tsv.gz was not found.*"
                                                r"python -m recbole_sigma.data.convert"):
        ensure_dataset("amazon-beauty", str(tmp_path / "dataset" / "amazon-beauty"))
