"""CPU: TorchMamba time-major (C++ causal conv + time-major scan, the current path) against the
channel-major path it replaced (``F.conv1d`` on a transposed copy, then the scan's
``selective_scan`` signature), same weights and batches, interleaved step by step in one process.

    python benchmarks/mamba_layout.py [--reps 3] [--out benchmarks/results_mamba_layout.md]

Rows: one Mamba call (forward and backward; d_model 64, d_state 32, L = 50, the batch of
SIGMA's two directions at train_batch_size 2048), and a training step (forward and backward) of
two ``logged`` G-Mamba blocks (n_layers 2, B = 2048, L = 50: no length grouping there).
Every weight is moved off its init first; the table gives the largest output and gradient
differences between the paths, so the speed-up is for the same numbers.
"""

import argparse
import os
import sys
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from in_turn import in_turn, write_report  # noqa: E402

from recbole_sigma.mamba import TorchMamba  # noqa: E402
from recbole_sigma.model.logged import LoggedGMambaBlock  # noqa: E402
from recbole_sigma.model.settings import SigmaSettings  # noqa: E402
from recbole_sigma.ops import causal_conv1d, selective_scan  # noqa: E402
from recbole_sigma.trainer import denormals_flushed  # noqa: E402

TIME_MAJOR = TorchMamba.forward


def channel_major(self: TorchMamba, hidden_states: torch.Tensor) -> torch.Tensor:
    """TorchMamba's forward before the time-major path: (B, L, D) -> (B, L, D)."""
    xz = self.in_proj(hidden_states).transpose(1, 2)  # (B, 2E, L)
    x, z = xz.chunk(2, dim=1)
    x = causal_conv1d(x, self.conv1d.weight.squeeze(1), self.conv1d.bias)  # (B, E, L)
    x_dbl = self.x_proj(x.transpose(1, 2))  # (B, L, R + 2N)
    dt, B, C = x_dbl.split([self.dt_rank, self.d_state, self.d_state], dim=-1)
    dt = F.linear(dt, self.dt_proj.weight).transpose(1, 2)  # (B, E, L)
    y = selective_scan(x, dt, -torch.exp(self.A_log), B.transpose(1, 2), C.transpose(1, 2),
                       self.D, z=z, delta_bias=self.dt_proj.bias, delta_softplus=True)
    return self.out_proj(y.transpose(1, 2))


def trained_like(module: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return module


def compare(name: str, module: torch.nn.Module, x: torch.Tensor, reps: int) -> dict:
    """Times forward+backward of ``module(x)`` with each path in turn; best of ``reps``."""
    params = [x, *module.parameters()]

    def use(forward: Callable) -> Callable[[], None]:
        def switch() -> None:
            TorchMamba.forward = forward
        return switch

    def run() -> tuple:
        out = module(x)  # the same dropout masks for both paths (in_turn seeds each round)
        return out.detach(), torch.autograd.grad(out.square().mean(), params)

    paths = {"channel-major": use(channel_major), "time-major": use(TIME_MAJOR)}
    try:
        times, outputs = in_turn(paths, run, reps)
    finally:
        TorchMamba.forward = TIME_MAJOR
    (out_a, grads_a), (out_b, grads_b) = outputs.values()
    grad_diff = max(((a - b).abs().max() / b.abs().max()).item()
                    for a, b in zip(grads_a, grads_b, strict=True))
    old, new = times["channel-major"], times["time-major"]
    return {"case": name, "old_s": old, "new_s": new, "speedup": old / new,
            "out_diff": (out_a - out_b).abs().max().item(), "grad_rel_diff": grad_diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results_mamba_layout.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    load_before = os.getloadavg()[0]
    rows = []
    with denormals_flushed(True):
        mamba = trained_like(TorchMamba(64, d_state=32, d_conv=4, expand=2))
        rows.append(compare("one Mamba call, B=4096, L=50", mamba,
                            torch.randn(4096, 50, 64, requires_grad=True), args.reps))
        settings = SigmaSettings(n_layers=2, sigma_variant="logged", dropout_prob=0.3)
        blocks = torch.nn.Sequential(*(LoggedGMambaBlock(settings, "torch") for _ in range(2)))
        rows.append(compare("two logged blocks, B=2048, L=50", trained_like(blocks),
                            torch.randn(2048, 50, 64, requires_grad=True), args.reps))
    table = ["| case | channel-major s | time-major s | speed-up | max output diff | max grad diff "
             "(relative) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        table.append(f"| {r['case']} | {r['old_s']:.2f} | {r['new_s']:.2f} | "
                     f"{r['speedup']:.2f}x | {r['out_diff']:.1e} | {r['grad_rel_diff']:.1e} |")
    how = ("; forward and backward of the mean squared output, in training mode (dropout 0.3, "
           "the same masks for both paths); weights moved off their init")
    write_report(args.out, "TorchMamba on CPU: time-major path against the channel-major one it "
                 "replaced", f"python benchmarks/mamba_layout.py --reps {args.reps}", load_before,
                 how, table)

if __name__ == "__main__":
    main()
