"""``tune_from_args``: the ``--hyper`` entry of ``run_recbole_sigma.py``."""

import argparse
from pathlib import Path
from typing import Any, Optional

from recbole_sigma.config import Config, plugin_config_files
from recbole_sigma.model.settings import UNREAD_KEYS, sigma_settings
from recbole_sigma.parallel import build_kernels, check_jobs
from recbole_sigma.quick_start import build_config, require_data
from recbole_sigma.run_log import console_log
from recbole_sigma.tuning.objective import Objective
from recbole_sigma.tuning.results import SEED, TrialTable
from recbole_sigma.tuning.space import ALGOS, Param, read_space

REPORTED_KEYS = ("epochs", "MAX_ITEM_LIST_LENGTH", "hidden_size", "d_state", "train_batch_size",
                 "learning_rate", "dropout_prob", "stopping_step", "seed")


def check_variant_keys(params: list[Param], config: Config, hyper: str) -> None:
    """Stop before any trial when a trial's ``sigma_variant`` does not read a key that the search
    tunes or that the config sets away from its default."""
    tuned = {p.name: p for p in params}
    variants = tuned["sigma_variant"].values if "sigma_variant" in tuned else ()
    for variant in variants or (config["sigma_variant"],):
        unread = sorted(set(tuned) & set(UNREAD_KEYS.get(variant, ())))
        if unread:
            raise ValueError(f"{hyper} tunes {unread}, which sigma_variant: {variant} does not "
                             "read: its trials would train the same model; tune them with "
                             "sigma_variant: paper only")
        try:
            sigma_settings({**config.final_config_dict, "sigma_variant": variant})
        except ValueError as err:
            raise ValueError(f"a trial of {hyper} with sigma_variant: {variant}: {err}") from None


def tune_from_args(
    args: argparse.Namespace, config_file_list: Optional[list[str]] = None
) -> Optional[dict[str, Any]]:
    """Tune ``args.model`` on ``args.dataset`` over ``args.hyper``; return the best table row
    (with ``seed`` tuned: the best setting's means over seeds).

    Results go to ``args.output`` (default ``tuning/<model>-<dataset>``): ``results.csv`` (one row
    per finished trial, written as each trial ends), ``results.md`` and ``ndcg_vs_r.png``. A
    trial whose whole effective config is already in ``results.csv`` is reused, not trained.
    ``args.jobs`` trials run at once (hyperopt: the exhaustive grid; ray: at most that many).
    """
    params = read_space(args.hyper)
    if args.algo not in ALGOS:
        raise ValueError(f"unknown --algo {args.algo!r}: {' | '.join(ALGOS)}")
    if SEED in {p.name for p in params} and (args.algo != "exhaustive" or args.tool == "ray"):
        raise ValueError(f"{args.hyper} tunes seed with --tool {args.tool} --algo {args.algo}: "
                         "seeds are averaged over, not searched (and Ray's ASHA would stop some "
                         "seeds of a setting early); use --tool hyperopt --algo exhaustive "
                         "(every setting with every seed; --jobs N for N at once)")
    jobs = check_jobs(args.jobs)
    if args.tool == "hyperopt" and args.algo != "exhaustive" and jobs > 1:
        raise ValueError(f"--jobs {jobs} with --tool hyperopt --algo {args.algo}: hyperopt "
                         "picks these trials one after another; use --algo exhaustive, or "
                         "--tool ray for parallel random or bayes trials")
    config = build_config(args.model, args.dataset, config_file_list)
    require_data(config)
    console_log(config)
    overrides = dict(config.cmd_config_dict)
    clash = sorted({p.name for p in params} & set(overrides))
    if clash:
        raise ValueError(f"{clash} are tuned by {args.hyper}: do not also set them as --key=value")
    if args.model == "SIGMA":
        check_variant_keys(params, config, args.hyper)
    output = Path(args.output or Path("tuning") / f"{args.model}-{args.dataset}")
    table = TrialTable(output, config["valid_metric"], config["valid_metric_bigger"])
    if args.tool == "ray":
        from recbole_sigma.tuning.search_ray import tune_with_ray

        # Ray workers see neither this command line nor this working directory
        fixed = dict(overrides, data_path=str(Path(config["data_path"]).resolve().parent),
                     checkpoint_dir=str(Path(config["checkpoint_dir"]).resolve()))
        # the plugin's YAML files too: the package Ray ships to workers has no properties/
        files = [str(Path(f).resolve()) for f in
                 plugin_config_files(args.model, args.dataset) + list(config_file_list or [])]
        build_kernels([config])  # once, here: trials on this machine only load it
        tune_with_ray(params, table, args.model, args.dataset, files, fixed,
                      config["epochs"], args.algo, args.max_evals, args.ray_address, args.jobs)
    elif args.algo == "exhaustive":
        from recbole_sigma.tuning.search_grid import tune_grid

        tune_grid(Objective(args.model, args.dataset, table), params, config_file_list,
                  args.max_evals, jobs)
    else:
        from recbole_sigma.tuning.search_hyperopt import tune_with_hyperopt

        tune_with_hyperopt(Objective(args.model, args.dataset, table), params, config_file_list,
                           args.algo, args.max_evals)
    tuned = {p.name for p in params}
    fixed_settings = ", ".join(f"{k}={config[k]}" for k in REPORTED_KEYS
                               if k in config and k not in tuned)
    notes = [f"Command: `{args.command}`", "",
             f"Tool: {args.tool} ({args.algo}); fixed settings: {fixed_settings}."]
    names = [p.name for p in params]
    best = table.write_report(f"Tuning {args.model} on {args.dataset}", notes, names)
    if best is not None:
        kind, over = ("setting", f" (mean over seeds {best['seeds']})") if SEED in names \
            else ("trial", "")
        values = {n: best[n] for n in names if n != SEED}
        print(f"best {kind} {values}: {table.valid_column}={best[table.valid_column]:.4f}{over}; "
              f"table {table.folder / 'results.md'}")
    return best
