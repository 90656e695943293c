"""Building the CPU scan kernel: a killed build never blocks a later run."""

import hashlib
import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from recbole_sigma.ops import scan_cpu

ROOT = Path(__file__).resolve().parent.parent
TINY_EXTENSION = """
#include <pybind11/pybind11.h>
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("answer", []() { return 42; }); }
"""


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_killed_build_leaves_nothing_that_blocks(tmp_path, caplog):
    """A build killed midway (its folder and torch's lock left behind) is removed; the next
    process compiles in a folder of its own, says so, and moves it into place."""
    source = tmp_path / "tiny.cpp"
    source.write_text(TINY_EXTENSION)
    root = tmp_path / "cache"
    killed = root / f".tiny_ext{scan_cpu.BUILDING}{socket.gethostname()}-{dead_pid()}"
    killed.mkdir(parents=True)
    (killed / "lock").touch()
    with caplog.at_level(logging.INFO, logger="recbole_sigma.ops.scan_cpu"):
        module = scan_cpu.load_or_build("tiny_ext", [source], root)
    assert module.answer() == 42
    assert "compiling the CPU scan kernel (first use" in caplog.text
    assert not killed.exists()
    assert [p.name for p in root.iterdir()] == ["tiny_ext"]
    assert not (root / "tiny_ext" / "lock").exists()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="recbole_sigma.ops.scan_cpu"):
        assert scan_cpu.load_or_build("tiny_ext", [source], root).answer() == 42
    assert "compiling" not in caplog.text  # a finished entry is only imported


def test_stale_lock_of_a_killed_run_does_not_hang(tmp_path):
    """torch's own build folder with a stale ``lock`` (what a run killed while compiling left)
    made every later run wait forever; a finished entry of ours is imported directly."""
    kernel = scan_cpu.cpu_kernel()
    assert kernel is not None, "the C++ scan must build on CI machines"
    name = scan_cpu.kernel_name()
    shutil.copytree(scan_cpu.cache_root() / name, tmp_path / "recbole_sigma" / name)
    # where the kernel was built before (torch's folder, named after the sources), locked
    sources = b"".join(p.read_bytes() for p in sorted(scan_cpu.CSRC.iterdir()))
    torch_folder = tmp_path / f"sigma_selective_scan_cpu_{hashlib.sha1(sources).hexdigest()[:10]}"
    torch_folder.mkdir()
    (torch_folder / "lock").touch()
    code = "from recbole_sigma.ops.scan_cpu import cpu_kernel; print(cpu_kernel().__file__)"
    env = dict(os.environ, TORCH_EXTENSIONS_DIR=str(tmp_path), SIGMA_CPU_SCAN="cpp",
               PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path / "recbole_sigma" / name / f"{name}.so")
