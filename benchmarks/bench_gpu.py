"""GPU timing: SIGMA on mamba-ssm's CUDA kernels vs on the PyTorch Mamba, and RecBole's SASRec.

One training step (forward, CE loss over all items, backward, Adam step) and one full-ranking
inference batch (``full_sort_predict`` under ``torch.no_grad``), each the median of several
timed runs after warm-up, with ``torch.cuda.synchronize`` around each run; peak memory is
``torch.cuda.max_memory_allocated`` over the timed runs of that phase. Sequences are synthetic
(random items, lengths uniform in [1, L], right-padded); models are float32 with PyTorch's default
TF32 settings (``--no-tf32`` turns TF32 off in cuDNN too), no AMP.

    python benchmarks/bench_gpu.py    # writes benchmarks/results_gpu.md (+ .json)
    python benchmarks/bench_gpu.py --repeat 5 --out /tmp/r.md --models SIGMA-cuda,SASRec
"""

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# (name, max sequence length L, number of items incl. padding id 0): the paper's two shapes
SETTINGS = [
    ("L=50, 12,102 items (Beauty-like)", 50, 12102),
    ("L=200, 3,417 items (ML-1M-like)", 200, 3417),
]
MODELS = {
    "SIGMA-cuda": ("SIGMA", {"mamba_backend": "cuda"}),
    "SIGMA-torch": ("SIGMA", {"mamba_backend": "torch"}),
    "SIGMA-official-cuda": ("SIGMA", {"mamba_backend": "cuda", "sigma_variant": "official"}),
    "SIGMA-official-torch": ("SIGMA", {"mamba_backend": "torch", "sigma_variant": "official"}),
    "SASRec": ("SASRec", {}),
}
DEFAULT_MODELS = "SIGMA-cuda,SIGMA-torch,SIGMA-official-cuda,SASRec"


class ShapeOnlyDataset:
    """What a RecBole sequential model reads from its dataset at construction: item counts."""

    def __init__(self, n_items: int, n_users: int = 1) -> None:
        self.n_items, self.n_users = n_items, n_users

    def num(self, field: str) -> int:
        return self.n_users if field == "user_id" else self.n_items


def build_model(name: str, max_len: int, n_items: int, device: torch.device) -> torch.nn.Module:
    from recbole_sigma.quick_start import build_config
    from recbole_sigma.utils import get_model

    model_name, overrides = MODELS[name]
    config = build_config(
        model_name,
        "ml-100k",
        config_dict={
            "use_gpu": device.type == "cuda",
            "MAX_ITEM_LIST_LENGTH": max_len,
            "loss_type": "CE",
            "train_neg_sample_args": None,
            "state": "WARNING",
            "show_progress": False,
            **overrides,
        },
    )
    torch.manual_seed(0)
    model = get_model(model_name)(config, ShapeOnlyDataset(n_items)).to(device)
    if model_name == "SIGMA":
        assert model.mamba_backend == overrides["mamba_backend"], model.mamba_backend
    return model


def make_batch(model, batch: int, max_len: int, n_items: int, device, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, max_len + 1, (batch,), generator=g)
    seq = torch.randint(1, n_items, (batch, max_len), generator=g)
    seq[torch.arange(max_len).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    return {
        model.ITEM_SEQ: seq.to(device),
        model.ITEM_SEQ_LEN: lengths.to(device),
        model.POS_ITEM_ID: torch.randint(1, n_items, (batch,), generator=g).to(device),
    }


def timed(fn: Callable[[], Any], warmup: int, repeat: int, device) -> dict:
    """Median/min wall time (ms) of ``fn`` with a device sync around each run, and peak memory."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(repeat):
        torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "peak_mem_mib": torch.cuda.max_memory_allocated(device) / 2**20,
    }


def bench_one(name: str, max_len: int, n_items: int, args, device) -> dict:
    row: dict[str, Any] = {"model": name, "L": max_len, "n_items": n_items}
    model = build_model(name, max_len, n_items, device)
    row["params"] = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_batch = make_batch(model, args.train_batch, max_len, n_items, device, seed=1)
    eval_batch = make_batch(model, args.eval_batch, max_len, n_items, device, seed=2)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        model.calculate_loss(train_batch).backward()
        opt.step()

    @torch.no_grad()
    def infer() -> None:
        model.full_sort_predict(eval_batch)

    for phase, fn, mode in (("train", train_step, model.train), ("eval", infer, model.eval)):
        mode()
        try:
            r = timed(fn, args.warmup, args.repeat, device)
            row.update({f"{phase}_{k}": v for k, v in r.items()})
        except torch.OutOfMemoryError as err:
            row[f"{phase}_error"] = f"OOM: {str(err).splitlines()[0]}"
            opt.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()
    return row


def versions() -> dict:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda (torch)": torch.version.cuda,
        "device": torch.cuda.get_device_name(0),
        "tf32 matmul/cudnn": f"{torch.backends.cuda.matmul.allow_tf32}/"
        f"{torch.backends.cudnn.allow_tf32}",
    }
    for mod in ("mamba_ssm", "causal_conv1d", "recbole", "numpy", "pandas"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception as err:  # report what is missing, keep benchmarking
            info[mod] = f"not importable ({type(err).__name__})"
    return info


def cell(row: dict, phase: str, key: str, fmt: str) -> str:
    if f"{phase}_error" in row:
        return "OOM" if row[f"{phase}_error"].startswith("OOM") else "error"
    return format(row[f"{phase}_{key}"], fmt) if f"{phase}_{key}" in row else "-"


def markdown(rows: list, info: dict, args, command: str) -> str:
    lines = [
        "# GPU benchmark: SIGMA (mamba-ssm CUDA kernels vs PyTorch Mamba) and SASRec",
        "",
        f"Command: `{command}`",
        "",
        "| " + " | ".join(info) + " |",
        "|" + " --- |" * len(info),
        "| " + " | ".join(str(v) for v in info.values()) + " |",
        "",
        f"Train step: batch {args.train_batch}, forward + CE over all items + backward + Adam. "
        f"Inference: full_sort_predict on {args.eval_batch} users. Median of {args.repeat} runs "
        f"after {args.warmup} warm-up runs, torch.cuda.synchronize around each; peak memory = "
        "torch.cuda.max_memory_allocated during the timed runs (parameters and Adam state "
        "included). float32 (TF32 flags in the table above). Synthetic sequences, lengths "
        "uniform in [1, L].",
        "",
        "| setting | model | params | train ms/step | train peak MiB | infer ms/batch "
        "| infer peak MiB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| L={r['L']}, {r['n_items']:,} items | {r['model']} | {r['params']:,} "
            f"| {cell(r, 'train', 'median_ms', '.2f')} | {cell(r, 'train', 'peak_mem_mib', '.0f')} "
            f"| {cell(r, 'eval', 'median_ms', '.2f')} | {cell(r, 'eval', 'peak_mem_mib', '.0f')} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results_gpu.md"))
    p.add_argument("--json", default=None, help="JSON results (default: --out with .json)")
    p.add_argument("--models", default=DEFAULT_MODELS, help=f"from {', '.join(MODELS)}")
    p.add_argument("--train-batch", type=int, default=2048)
    p.add_argument("--eval-batch", type=int, default=4096)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--lengths", default="50,200", help="which of the settings' L to run")
    p.add_argument("--no-tf32", action="store_true", help="TF32 off in matmuls and cuDNN")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_gpu.py needs a CUDA GPU", file=sys.stderr)
        return 2
    if args.no_tf32:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    device = torch.device("cuda")
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        p.error(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    lengths = {int(x) for x in args.lengths.split(",")}
    info = versions()
    print(json.dumps(info))
    rows = []
    for _, max_len, n_items in SETTINGS:
        if max_len not in lengths:
            continue
        for name in names:
            row = bench_one(name, max_len, n_items, args, device)
            rows.append(row)
            torch.cuda.empty_cache()  # the model of this row is gone now
            print(json.dumps(row), flush=True)
    command = "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:])
    md = markdown(rows, info, args, command)
    print(md)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    Path(args.json or out.with_suffix(".json")).write_text(
        json.dumps({"info": info, "args": vars(args), "rows": rows}, indent=2)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
