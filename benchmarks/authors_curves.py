"""Training curves of Beauty runs next to the SIGMA authors' logged runs of the same model.

    python benchmarks/authors_curves.py --mamba4rec LOG... --sigma LOG... [--epochs 0-12,15,19,25]

Per epoch: the training loss (RecBole's sum over the epoch's 65 batches) and validation NDCG@10.
Ours come from RecBole log files (a run and its ``--resume`` logs are joined); the authors' from
their notebook ``RecMamba.ipynb`` (github.com/ziwliu-cityu/SIMGA, commit 36d459cf), same protocol
(Beauty 5-core, batch 2048, Adam lr 1e-3, seed 2020; one L4 GPU, mamba-ssm 1.1.4, RecBole 1.2.0):
their Mamba4Rec run "raw" (21 Jul 2024 09:10) and their SIGMA run "SIGMA" (21 Jul 2024 13:08,
904,517 parameters: the run behind their logged test .0761 / .0452 / .0358). The notebook prints
only some epochs of each; the rest are blank.
"""

import argparse
import sys
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recbole_sigma.compare.logs import LoggedRun, join_resumed, read_log  # noqa: E402
from recbole_sigma.compare.report import markdown_table  # noqa: E402

# epoch -> value, as printed in the notebook's cell outputs
AUTHORS = {
    "mamba4rec": {
        "loss": {0: 596.4701, 1: 565.3261, 2: 544.4928, 3: 523.8266, 4: 504.5966, 5: 490.0235,
                 23: 375.2797, 25: 369.0639, 36: 346.1197},
        "valid": {0: .0081, 1: .0111, 5: .0326, 25: .0540},
        "best": 25, "test": (.0659, .0410, .0334),
    },
    "sigma": {
        "loss": {0: 594.9916, 1: 563.6136, 2: 539.0040, 3: 517.4801, 4: 500.0238, 5: 485.8396,
                 6: 474.0429, 7: 463.1366, 8: 452.9162, 9: 444.2816, 10: 435.5670, 11: 427.7893,
                 12: 420.1167, 13: 413.0465, 14: 406.3796, 15: 400.1951, 16: 394.4638,
                 17: 389.1249, 18: 384.1724, 19: 379.3853, 20: 374.8552, 30: 343.5414},
        "valid": {0: .0088, 1: .0121, 2: .0189, 3: .0253, 4: .0306, 5: .0355, 6: .0396, 7: .0440,
                  8: .0474, 9: .0494, 10: .0527, 11: .0540, 12: .0562, 13: .0569, 14: .0571,
                  15: .0584, 17: .0594, 19: .0597},
        "best": 19, "test": (.0761, .0452, .0358),
    },
}


def parse_epochs(spec: Optional[str]) -> Optional[list[int]]:
    """``"0-12,15,19"`` -> [0, 1, ..., 12, 15, 19]; None -> every epoch."""
    if spec is None:
        return None
    epochs = []
    for part in spec.split(","):
        low, _, high = part.partition("-")
        epochs += range(int(low), int(high or low) + 1)
    return epochs


def _cell(values: dict[int, float], epoch: int, digits: int) -> str:
    return f"{values[epoch]:.{digits}f}" if epoch in values else ""


def curves_table(model: str, runs: list[LoggedRun], epochs: Optional[list[int]]) -> str:
    """Markdown: per epoch the authors' and each run's training loss and valid NDCG@10, then
    each one's best epoch and test HR / NDCG / MRR @10."""
    theirs = AUTHORS[model]
    names = [f"run {i + 1}" for i in range(len(runs))]
    header = (["epoch", "authors' loss"] + [f"{n} loss" for n in names]
              + ["authors' valid"] + [f"{n} valid" for n in names])
    if epochs is None:
        seen = set(theirs["loss"]) | set(theirs["valid"])
        for run in runs:
            seen |= set(run.train_losses) | set(run.valid_scores)
        epochs = sorted(seen)
    rows = []
    for e in epochs:
        rows.append([str(e), _cell(theirs["loss"], e, 2)]
                    + [_cell(run.train_losses, e, 2) for run in runs]
                    + [_cell(theirs["valid"], e, 4)]
                    + [_cell(run.valid_scores, e, 4) for run in runs])
    lines = [f"**{model}**", "", markdown_table(header, rows), ""]
    test = "/".join(f"{v:.4f}" for v in theirs["test"])
    lines.append(f"- authors: best epoch {theirs['best']}, valid NDCG@10 "
                 f"{theirs['valid'][theirs['best']]:.4f}, test HR/NDCG/MRR@10 {test}")
    for name, run in zip(names, runs, strict=True):
        best = run.best_epoch
        valid = f"{run.valid_scores[best]:.4f}" if best is not None else "-"
        test = "/".join(f"{run.test[k]:.4f}" for k in ("hit@10", "ndcg@10", "mrr@10")
                        if k in run.test) or "-"
        files = ", ".join(path.name for path in run.paths)
        lines.append(f"- {name} ({files}): best epoch {best}, valid NDCG@10 {valid}, test "
                     f"HR/NDCG/MRR@10 {test} ({run.ended})")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for model in AUTHORS:
        parser.add_argument(f"--{model}", nargs="+", type=Path, default=[],
                            help=f"RecBole log files of {model} runs")
    parser.add_argument("--epochs", help="epochs to show, e.g. 0-12,15,19 (default: all)")
    args = parser.parse_args()
    epochs = parse_epochs(args.epochs)
    for model in AUTHORS:
        logs = getattr(args, model)
        if logs:
            print(curves_table(model, join_resumed([read_log(p) for p in logs]), epochs))


if __name__ == "__main__":
    main()
