"""Training curves of Beauty runs next to the SIGMA authors' logged runs of the same model.

    python benchmarks/authors_curves.py --mamba4rec LOG... --sigma LOG... [--epochs 0-12,15,19,25]

Per epoch: the training loss (RecBole's sum over the epoch's 65 batches) and validation NDCG@10.
Ours come from RecBole log files (a run and its ``--resume`` logs are joined); the authors' from
their notebook ``RecMamba.ipynb`` (github.com/ziwliu-cityu/SIMGA, commit 36d459cf), same protocol
(Beauty 5-core, batch 2048, Adam lr 1e-3, seed 2020; one L4 GPU, mamba-ssm 1.1.4, RecBole 1.2.0):
their Mamba4Rec run "raw" (21 Jul 2024 09:10) and their SIGMA run "SIGMA" (21 Jul 2024 13:08,
904,517 parameters: the run behind their logged test .0761 / .0452 / .0358). 57 of their numbers
were read by one reader and checked against the notebook by a second, who supplied the rest.
"""

import argparse
import sys
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recbole_sigma.compare.logs import LoggedRun, join_resumed, read_log  # noqa: E402
from recbole_sigma.tables import markdown_table  # noqa: E402

# per epoch from 0, as printed in the notebook's cell outputs (every epoch of both runs)
AUTHORS = {
    "mamba4rec": {
        "loss": [596.4701, 565.3261, 544.4928, 523.8266, 504.5966, 490.0235, 478.3046, 467.7385,
                 458.1908, 449.8968, 441.9191, 434.5856, 427.3056, 421.0874, 414.8790, 409.0842,
                 404.1772, 399.2735, 394.3687, 390.5814, 386.1417, 382.1702, 378.5619, 375.2797,
                 371.6650, 369.0639, 366.1283, 363.3688, 361.5015, 358.8973, 356.3842, 355.1345,
                 352.7246, 351.2053, 349.2797, 347.4622, 346.1197],
        "valid": [.0081, .0111, .0186, .0252, .0289, .0326, .0356, .0380, .0403, .0433, .0452,
                  .0467, .0479, .0490, .0499, .0506, .0509, .0518, .0517, .0528, .0531, .0535,
                  .0532, .0532, .0540, .0540, .0528, .0533, .0533, .0523, .0524, .0529, .0531,
                  .0529, .0526, .0527, .0524],
        "best": 25, "test": (.0659, .0410, .0334),
    },
    "sigma": {
        "loss": [594.9916, 563.6136, 539.0040, 517.4801, 500.0238, 485.8396, 474.0429, 463.1366,
                 452.9162, 444.2816, 435.5670, 427.7893, 420.1167, 413.0465, 406.3796, 400.1951,
                 394.4638, 389.1249, 384.1724, 379.3853, 374.8552, 370.8898, 366.7756, 362.9640,
                 359.6069, 356.5230, 353.7750, 351.0258, 348.3224, 345.9218, 343.5414],
        "valid": [.0088, .0121, .0189, .0253, .0306, .0355, .0396, .0440, .0474, .0494, .0527,
                  .0540, .0562, .0569, .0571, .0584, .0588, .0594, .0594, .0597, .0593, .0591,
                  .0590, .0587, .0587, .0587, .0588, .0582, .0582, .0574, .0576],
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
    theirs = {k: dict(enumerate(v)) if isinstance(v, list) else v
              for k, v in AUTHORS[model].items()}
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
