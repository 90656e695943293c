"""The command line of ``run_recbole_sigma.py``, and the part of it left for RecBole.

RecBole's ``Config`` reads every ``--key=value`` in ``sys.argv`` and warns about anything else
("command line args [...] will not be used in RecBole"). :func:`recbole_args` removes the flags
this parser consumes, so RecBole sees (and reports) only its own.
"""

import argparse
from typing import Any, Optional, Sequence

DESCRIPTION = "Train and evaluate SIGMA or any RecBole model; tune it or compare models."


def build_parser(**kwargs: Any) -> argparse.ArgumentParser:
    """The script's flags (``kwargs`` go to ``ArgumentParser``); RecBole's ``--key=value``
    overrides are left to ``Config``."""
    # allow_abbrev=False: RecBole's --seed=3 must not be read as an abbreviation of --seeds
    parser = argparse.ArgumentParser(description=DESCRIPTION, allow_abbrev=False, **kwargs)
    parser.add_argument("--model", "-m", default="SIGMA", help="SIGMA or any RecBole model")
    parser.add_argument("--dataset", "-d", default="ml-100k", help="dataset name")
    parser.add_argument("--config_files", default=None, help="space-separated YAML files")
    parser.add_argument("--resume", default=None, metavar="CHECKPOINT",
                        help="continue training from a checkpoint under saved/")
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
    return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The script's flags from ``argv`` (default ``sys.argv[1:]``); the rest is RecBole's."""
    args, _ = build_parser().parse_known_args(argv)
    return args


def recbole_args(argv: Sequence[str]) -> list[str]:
    """``argv`` without this script's flags and their values (``argv`` as is if it does not
    parse, e.g. in another program's command line)."""
    try:
        _, rest = build_parser(add_help=False, exit_on_error=False).parse_known_args(list(argv))
    except argparse.ArgumentError:
        return list(argv)
    return rest
