"""Training on CPU keeps freed memory for reuse (``keep_freed_memory``): no page faults when a
large tensor is allocated again. Each case runs in its own process (the setting is process-wide)."""

import json
import platform
import subprocess
import sys

import pytest

SCRIPT = """
import json, resource, sys
import torch
from recbole_sigma.quick_start import run

def faults():
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(1 << 24)  # 64 MiB written, then freed
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start

run("SASRec", "ml-tiny", config_dict=json.loads(sys.argv[1]), saved=False)
print(*[faults() for _ in range(4)])  # the first one may grow the heap
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
@pytest.mark.parametrize("keep", [True, False])
def test_cpu_training_reuses_freed_memory(workdir, tiny_config, keep):
    config = dict(tiny_config, n_layers=1, keep_freed_memory=keep)
    out = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(config)],
                         capture_output=True, text=True, timeout=300, cwd=workdir)
    assert out.returncode == 0, out.stderr[-2000:]
    pages = min(map(int, out.stdout.split()[-3:]))  # 16,384 pages of 4 KiB when mapped afresh
    assert (pages < 1000) if keep else (pages > 10000), out.stdout
