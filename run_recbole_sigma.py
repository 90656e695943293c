"""Train and evaluate SIGMA or any RecBole model; tune it (--hyper) or compare models (--compare).

    python run_recbole_sigma.py                                   # SIGMA on bundled ml-100k
    python run_recbole_sigma.py --model SASRec --dataset amazon-beauty --epochs=5
    python run_recbole_sigma.py --nproc 2                         # DDP, 2 processes
    python run_recbole_sigma.py --resume saved/SIGMA-Nov-24-2026_10-00-00-last.pth
    python run_recbole_sigma.py --hyper hyper.test --tool hyperopt --dataset ml-100k
    python run_recbole_sigma.py --compare SIGMA,SASRec,GRU4Rec --dataset amazon-beauty
"""

import sys

from recbole_sigma.cli import parse_args
from recbole_sigma.quick_start import run


def main() -> None:
    args = parse_args()
    files = args.config_files.split() if args.config_files else None
    single = args.nproc == 1 and args.world_size <= 0 and not args.resume
    if (args.hyper or args.compare) and not single:
        sys.exit("error: --nproc, --world_size and --resume train one model; "
                 "they do not combine with --hyper or --compare")
    if args.hyper:
        from recbole_sigma.tuning import tune_from_args

        tune_from_args(args, files)
    elif args.compare:
        from recbole_sigma.compare import compare_from_args

        compare_from_args(args, files)
    else:
        run(args.model, args.dataset, config_file_list=files, resume=args.resume,
            nproc=args.nproc, world_size=args.world_size, ip=args.ip, port=args.port,
            group_offset=args.group_offset)


if __name__ == "__main__":
    main()
