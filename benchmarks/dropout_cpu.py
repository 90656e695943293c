"""CPU: the C++ dropout (torch's masks, drawn in blocks) against ``F.dropout``, same seeds,
interleaved step by step in one process.

    python benchmarks/dropout_cpu.py [--reps 3] [--out benchmarks/results_dropout_cpu.md]

Rows: one dropout call on the feed-forward's inner activation (B = 2048, L = 50, 4 x 64), and a
training step (loss, backward; no optimizer step, so both paths see the same weights) of SIGMA
``logged`` with dropout 0.3 on Amazon Beauty's sizes (12,102 items, L = 50, batch 2048 with the
input lengths of Beauty's training samples), one layer (by length groups) and two (full length).
Each row says whether the two paths gave the same output and gradients, bit for bit.
"""

import argparse
import os
import sys
from pathlib import Path
from typing import Callable

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_cpu import batch_for, lengths_from, make_model  # noqa: E402
from in_turn import in_turn, write_report  # noqa: E402

from recbole_sigma.heap import keep_freed_memory  # noqa: E402
from recbole_sigma.ops import dropout as dropout_module  # noqa: E402
from recbole_sigma.trainer import denormals_flushed  # noqa: E402

PATHS = ("F.dropout", "C++ kernel")


def interleaved(run: Callable[[], list[torch.Tensor]], reps: int) -> dict:
    """Best time of ``run`` with each path, in turn from the same seed; same results?"""
    takes = dropout_module._takes

    def use(path: str) -> Callable[[], None]:
        def switch() -> None:
            dropout_module._takes = takes if path == "C++ kernel" else (lambda x: False)
        return switch

    try:
        times, results = in_turn({path: use(path) for path in PATHS}, run, reps)
    finally:
        dropout_module._takes = takes
    same = all(torch.equal(a, b) for a, b in zip(*results.values(), strict=True))
    old, new = (times[p] for p in PATHS)
    return {"old_s": old, "new_s": new, "speedup": old / new, "same": same}


def train_step(n_layers: int) -> Callable[[], list[torch.Tensor]]:
    settings = {"sigma_variant": "logged", "dropout_prob": 0.3, "n_layers": n_layers}
    model = make_model("SIGMA", 50, 12102, settings)
    model.train()
    batch = batch_for(model, lengths_from("amazon-beauty", 50, 2048, True, 0), 50, 0)
    params = list(model.parameters())

    def run() -> list[torch.Tensor]:
        with denormals_flushed(True):
            loss = model.calculate_loss(batch)
            return [loss.detach(), *torch.autograd.grad(loss, params)]

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results_dropout_cpu.md"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    keep_freed_memory()
    assert dropout_module._takes(torch.ones(1)) and dropout_module._matches_torch()
    load_before = os.getloadavg()[0]
    x = torch.randn(2048, 50, 256)
    rows = [("one dropout call, (2048, 50, 256), p = 0.3",
             interleaved(lambda: [dropout_module.dropout(x, 0.3)], args.reps))]
    for n_layers in (1, 2):
        rows.append((f"SIGMA logged training step, n_layers {n_layers}",
                     interleaved(train_step(n_layers), args.reps)))
    table = ["| case | F.dropout s | C++ kernel s | speed-up | same output and gradients |",
             "|---|---:|---:|---:|---|"]
    for case, r in rows:
        table.append(f"| {case} | {r['old_s']:.3f} | {r['new_s']:.3f} | {r['speedup']:.2f}x | "
                     f"{'yes, bit for bit' if r['same'] else 'NO'} |")
    write_report(args.out, "Dropout on CPU: the C++ kernel against F.dropout",
                 f"python benchmarks/dropout_cpu.py --reps {args.reps}", load_before, "", table)

if __name__ == "__main__":
    main()
