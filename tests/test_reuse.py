"""The effective config that decides whether a finished run is reused."""

import shutil
import sys
from pathlib import Path

import pytest
from conftest import write_slice

from recbole_sigma.quick_start import build_config
from recbole_sigma.reuse import code_hash, config_hash, differences, effective_config


@pytest.fixture
def settings(tiny_config, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["run_recbole_sigma.py"])

    def make(dataset="ml-tiny", **overrides):
        config = build_config("SIGMA", dataset, config_dict=dict(tiny_config, **overrides))
        return effective_config(config)

    return make


def test_where_and_how_verbosely_do_not_count(settings):
    base = settings()
    same = settings(show_progress=True, state="INFO", checkpoint_dir="elsewhere", gpu_id="1")
    assert config_hash(same) == config_hash(base)
    assert differences(base, settings(epochs=2)) == "epochs: 1 -> 2"
    assert differences(base, settings(flip_r=3, dropout_prob=0.5)) == (
        "dropout_prob: 0.2 -> 0.5, flip_r: 5 -> 3")


def test_the_data_counts_by_content_not_path(settings, tiny_config, tmp_path):
    base = settings()
    copy = tmp_path / "copy"
    shutil.copytree(Path(tiny_config["data_path"]) / "ml-tiny", copy / "ml-tiny")
    assert config_hash(settings(data_path=str(copy))) == config_hash(base)
    inter = copy / "ml-tiny" / "ml-tiny.inter"
    inter.write_text(inter.read_text() + "1\t1\t1\n")
    assert differences(base, settings(data_path=str(copy))).startswith("data_files_sha1: ")
    write_slice(tmp_path, "ml-other", 30)
    other = differences(base, settings("ml-other", data_path=str(tmp_path)))
    assert "data_files_sha1" in other and "dataset: 'ml-tiny' -> 'ml-other'" in other


def test_the_code_counts_by_what_it_does_not_its_comments(tmp_path):
    """A comment, docstring or layout edit keeps the code hash (finished runs stay reused); a
    change to the code, or to a C++ file, changes it."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "__init__.py").write_text("")
    layer, kernel = tmp_path / "model" / "layer.py", tmp_path / "kernel.cpp"
    layer.write_text('"""A layer."""\n\n\ndef scale(x):\n    """Twice x."""\n    return 2 * x\n')
    kernel.write_text("// scan\nint f() { return 1; }\n")
    names = ("model", "kernel.cpp")
    base = code_hash(tmp_path, names)
    layer.write_text('"""The layer, documented anew."""\n\n\ndef scale(x):  # doubles\n'
                     '    """Two times x."""\n\n    return 2 * x\n')
    assert code_hash(tmp_path, names) == base
    layer.write_text('"""A layer."""\n\n\ndef scale(x):\n    """Twice x."""\n    return 3 * x\n')
    assert code_hash(tmp_path, names) != base
    layer.write_text('"""A layer."""\n\n\ndef scale(x):\n    """Twice x."""\n    return 2 * x\n')
    assert code_hash(tmp_path, names) == base
    kernel.write_text("// the scan\nint f() { return 1; }\n")
    assert code_hash(tmp_path, names) != base
