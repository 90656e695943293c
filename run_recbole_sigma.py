"""Train and evaluate SIGMA or any RecBole model; tune it (--hyper) or compare models (--compare).

    python run_recbole_sigma.py                                   # SIGMA on bundled ml-100k
    python run_recbole_sigma.py --model SASRec --dataset amazon-beauty --epochs=5
    python run_recbole_sigma.py --nproc 2                         # DDP, 2 processes
    python run_recbole_sigma.py --resume saved/SIGMA-Nov-24-2026_10-00-00-last.pth
    python run_recbole_sigma.py --hyper hyper.test --tool hyperopt --dataset ml-100k
    python run_recbole_sigma.py --compare SIGMA,SASRec,GRU4Rec --dataset amazon-beauty
"""

import argparse
import shlex
import sys

from recbole_sigma.quick_start import run
from recbole_sigma.resume_settings import DEFAULT_DATASET, DEFAULT_MODEL


def parse_args() -> argparse.Namespace:
    # no abbreviations: RecBole's --seed=N must not be read as --seeds
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--model", "-m", default=None,
                        help="SIGMA (default) or any RecBole model")
    parser.add_argument("--dataset", "-d", default=None, help="dataset name (default: ml-100k)")
    parser.add_argument("--config_files", default=None, help="space-separated YAML files")
    parser.add_argument("--resume", default=None, metavar="CHECKPOINT",
                        help="continue training from a checkpoint under saved/ (the model, "
                        "dataset and settings not given are the checkpoint's)")
    ddp = parser.add_argument_group("distributed training (torch.distributed, DDP)")
    ddp.add_argument("--nproc", type=int, default=1, help="processes on this machine")
    ddp.add_argument("--world_size", type=int, default=-1,
                     help="processes on all machines (default: --nproc)")
    ddp.add_argument("--ip", default="localhost", help="address of the machine with rank 0")
    ddp.add_argument("--port", default="5678", help="free TCP port on that machine")
    ddp.add_argument("--group_offset", type=int, default=0,
                     help="global rank of this machine's first process")
    tune = parser.add_argument_group("hyper-parameter tuning")
    tune.add_argument("--hyper", default=None, help="search space file, e.g. hyper.test")
    tune.add_argument("--tool", choices=("hyperopt", "ray"), default="hyperopt")
    tune.add_argument("--algo", default="exhaustive", help="hyperopt: exhaustive | bayes | random")
    tune.add_argument("--max-evals", type=int, default=None, help="trial budget (default: all)")
    tune.add_argument("--ray-address", default=None, help="join this Ray cluster (ray tool)")
    tune.add_argument("--output", default=None, help="folder for tables and plots")
    compare = parser.add_argument_group("comparison")
    compare.add_argument("--compare", default=None, help="models, e.g. SIGMA,SASRec,GRU4Rec")
    compare.add_argument("--seeds", type=int, default=1, help="seeds per model (mean and std)")
    compare.add_argument("--ablations", action="store_true", help="add SIGMA's ablation variants")
    parser.add_argument("--jobs", type=int, default=1,
                        help="--compare/--hyper: runs at once, in worker processes (1 thread each)")
    args, recbole_args = parser.parse_known_args()
    args.command = shlex.join(["python", "run_recbole_sigma.py", *sys.argv[1:]])
    # RecBole's Config reads its `--key=value` overrides from sys.argv: leave only those there,
    # so this script's own options never become config keys (nor reach the DDP processes)
    sys.argv[1:] = recbole_args
    return args


def main() -> None:
    args = parse_args()
    files = args.config_files.split() if args.config_files else None
    one_run = args.nproc == 1 and args.world_size <= 0 and not args.resume
    if (args.hyper or args.compare) and not one_run:
        sys.exit("error: --nproc, --world_size and --resume train one model; "
                 "they do not combine with --hyper or --compare")
    if not args.resume:
        args.model, args.dataset = args.model or DEFAULT_MODEL, args.dataset or DEFAULT_DATASET
    if args.hyper:
        from recbole_sigma.tuning import tune_from_args

        tune_from_args(args, files)
    elif args.compare:
        from recbole_sigma.compare import compare_from_args

        compare_from_args(args, files)
    else:
        run(args.model, args.dataset, config_file_list=files, nproc=args.nproc,
            world_size=args.world_size, ip=args.ip, port=args.port,
            group_offset=args.group_offset, resume=args.resume)


if __name__ == "__main__":
    main()
