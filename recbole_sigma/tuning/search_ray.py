"""Tuning with Ray Tune: parallel trials, ASHA early stopping on the validation metric.

Each trial reports after every validation (each ``eval_step`` epochs), so ASHA can stop it early.
The report carries the current validation score (what ASHA compares), the best one so far, and the
test metrics of the model at that best epoch; the test metrics are never used to choose.
A trial whose effective config (plus the scheduler) is already in the table reports that row once
and trains nothing. A trial trains in its own folder, ``<checkpoint_dir>/trials/<config_hash>``
(:mod:`recbole_sigma.run_folders`), keeping its best epoch and its last epoch's state there; a
search stopped inside a trial, run again, resumes that trial from its last epoch, and the state
is deleted once the trial's row is in the table.
"""

import contextlib
import copy
import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterator, Optional

import torch
from ray.tune import Callback
from recbole.config import Config
from recbole.data import data_preparation
from recbole.utils import init_seed

import recbole_sigma
from recbole_sigma.data.load import load_dataset
from recbole_sigma.ending import EARLY_STOP, EPOCH_CAP, SCHEDULER_STOP
from recbole_sigma.parallel import usable_cores
from recbole_sigma.quick_start import build_config
from recbole_sigma.reuse import config_hash, effective_config
from recbole_sigma.run_folders import only_process, run_folder, state_to_resume
from recbole_sigma.run_log import console_labelled, console_log, run_log
from recbole_sigma.trainer import delete_last_state
from recbole_sigma.tuning.objective import TRIALS, finished_trial
from recbole_sigma.tuning.results import TrialTable, trial_label, trial_name, trial_row
from recbole_sigma.tuning.space import DEFAULT_EVALS, Param, ray_space
from recbole_sigma.utils import get_model, get_trainer

GRACE, REDUCTION = 1, 2  # ASHA: epochs before a trial may stop; 1/REDUCTION go on
# ASHA's clock is the trial's epoch count, which a resumed trial goes on from
SCHEDULER = f"Ray Tune ASHA on epochs, grace_period={GRACE}, reduction_factor={REDUCTION}"
logger = logging.getLogger(__name__)


@contextlib.contextmanager
def _no_command_line() -> Iterator[None]:
    """Hide a Ray worker's own arguments (``--node-ip-address=...``) from RecBole's Config."""
    argv = sys.argv
    sys.argv = argv[:1]
    try:
        yield
    finally:
        sys.argv = argv


def trial_settings(config: Config) -> dict[str, Any]:
    """A Ray trial's effective config: ASHA may stop it early, so the scheduler is part of it."""
    return dict(effective_config(config), scheduler=SCHEDULER)


def train_trial(params: dict[str, Any], model: str, dataset: str,
                config_file_list: Optional[list[str]], fixed: dict[str, Any],
                table_folder: str, session: Any = None) -> None:
    """The Ray trainable: one RecBole training run, reporting every validation to ``session``
    (Ray's, unless given)."""
    if session is None:
        from ray.air import session

    cpus = int(session.get_trial_resources().required_resources.get("CPU", 1))
    torch.set_num_threads(max(cpus, 1))
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "")  # set by Ray; RecBole would overwrite it
    config_dict = dict(fixed, **params, gpu_id=gpus, use_gpu=bool(gpus))
    with _no_command_line():
        config = build_config(model, dataset, config_file_list, config_dict)
    console_log(config)
    settings = trial_settings(config)
    hash_ = config_hash(settings)
    table = TrialTable(table_folder, config["valid_metric"], config["valid_metric_bigger"])
    done = finished_trial(table, params, settings)
    if done is None:
        folder = run_folder(config["checkpoint_dir"], TRIALS, hash_)
        label = trial_name(params)
        # a trial drawn twice (random, bayes) waits for the other one, then reuses its row
        with only_process(folder, label, wait=True):
            done = table.find(hash_, params)  # the row of a draw that ended while we waited
            if done is None:
                table.configs.add({"config_hash": hash_, "label": trial_label(params),
                                   "config": settings})
                with console_labelled(label), run_log(config) as log_file:
                    config["checkpoint_dir"] = str(folder)
                    resume = state_to_resume(folder, config, label)
                    _train(config, model, session, hash_, str(Path(log_file).resolve()), resume)
                return
    metrics = {k: v for k, v in done.items() if k.startswith(("valid_", "test_"))}
    session.report({"valid_score": done[table.valid_column],
                    "best_valid_score": done[table.valid_column], "epochs": done["epochs"],
                    "config_hash": done["config_hash"], "reused": True, **metrics})


def _train(config: Config, model: str, session: Any, hash_: str, log_file: str,
           resume: Optional[str]) -> None:
    init_seed(config["seed"], config["reproducibility"])
    train_data, valid_data, test_data = data_preparation(config, load_dataset(config))
    init_seed(config["seed"], config["reproducibility"])
    net = get_model(model)(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, net)
    best: dict[str, Any] = {}
    if resume is not None:
        trainer.resume_checkpoint(resume)
        best = _best_so_far(trainer, test_data)
    reports = 0

    def row(score: float) -> dict[str, Any]:
        epochs = trainer.start_epoch + len(trainer.epoch_times)
        ended = ending(epochs, trainer.cur_step, config)
        # a trial's last report ends it through Ray, which writes its row (TableCallback) while
        # the trial still holds its folder: a draw of the same point waiting there reuses it
        return {"valid_score": score, "best_valid_score": best["best_valid_score"],
                "epochs": epochs, "ended": ended, "done": ended != SCHEDULER_STOP,
                "log_file": log_file, "config_hash": hash_,
                "checkpoint": trainer.saved_model_file, "resumed_from": trainer.resumed_from,
                **trial_row({}, best)}

    def report(epoch_idx: int, score: float) -> None:
        """After a validation and the files it updates (the best epoch's, the last state)."""
        nonlocal reports
        if trainer.cur_step == 0:  # a new best epoch (RecBole counts a tie as better)
            test = trainer.evaluate(test_data, load_best_model=False)
            best.update(best_valid_score=trainer.best_valid_score,
                        best_valid_result=dict(trainer.best_valid_result),
                        test_result=dict(test))
        reports += 1
        session.report(row(score))  # ASHA stops the trial here (Ray raises in it)

    trainer.fit(train_data, valid_data, saved=True, show_progress=False, callback_fn=report,
                keep_last_state=True)
    if not reports and best:  # resumed after its last validation: nothing left to train
        session.report(row(best["best_valid_score"]))


def _best_so_far(trainer: Any, test_data: Any) -> dict[str, Any]:
    """A resumed trial's best validation so far, and the test metrics of its best epoch's
    file; the model keeps the resumed last epoch's weights."""
    last = copy.deepcopy(trainer.model.state_dict())
    test = trainer.evaluate(test_data, load_best_model=True)
    trainer.model.load_state_dict(last)
    return {"best_valid_score": trainer.best_valid_score,
            "best_valid_result": dict(trainer.best_valid_result), "test_result": dict(test)}


def ending(epochs: int, worse: int, config: Config) -> str:
    """How the trial ends if it stops after this validation: early stopping, the epoch cap (no
    validation is left before ``epochs``), or else, should it stop now, the scheduler."""
    if worse > config["stopping_step"]:
        return EARLY_STOP
    if epochs + config["eval_step"] > config["epochs"]:
        return EPOCH_CAP
    return SCHEDULER_STOP


def trial_resources(cluster: dict[str, float]) -> dict[str, float]:
    """One GPU (and a share of the CPUs) per trial where there are GPUs, else one CPU per trial."""
    cpus, gpus = int(cluster.get("CPU", 1)), int(cluster.get("GPU", 0))
    if gpus:
        return {"cpu": max(1, cpus // gpus), "gpu": 1}
    return {"cpu": 1}


def tune_with_ray(
    params: list[Param],
    table: TrialTable,
    model: str,
    dataset: str,
    config_file_list: Optional[list[str]],
    fixed: dict[str, Any],
    max_epochs: int,
    algo: str = "exhaustive",
    max_evals: Optional[int] = None,
    address: Optional[str] = None,
    jobs: Optional[int] = None,
) -> None:
    """Run the search on a local Ray (the cores this process may use) or the cluster at
    ``address``, at most ``jobs`` trials at once (None: as many as there are CPUs, or GPUs)."""
    import ray
    from ray import air, tune
    from ray.tune.schedulers import ASHAScheduler

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # workers (local or on a cluster) import this very package, shipped with the job
    runtime_env = {"py_modules": [str(Path(recbole_sigma.__file__).resolve().parent)]}
    if address:
        ray.init(address=address, runtime_env=runtime_env)
    else:
        ray.init(num_cpus=usable_cores(), include_dashboard=False, runtime_env=runtime_env)
    try:
        trainable = tune.with_resources(
            tune.with_parameters(train_trial, model=model, dataset=dataset,
                                 config_file_list=config_file_list, fixed=fixed,
                                 table_folder=str(table.folder.resolve())),
            trial_resources(ray.cluster_resources()),
        )
        mode = "max" if table.bigger else "min"
        tuner = tune.Tuner(
            trainable,
            param_space=ray_space(params, grid=algo == "exhaustive"),
            tune_config=tune.TuneConfig(
                metric="valid_score", mode=mode,
                scheduler=ASHAScheduler(time_attr="epochs", max_t=max(max_epochs, 1),
                                        grace_period=GRACE, reduction_factor=REDUCTION),
                search_alg=_searcher(algo),
                num_samples=1 if algo == "exhaustive" else max_evals or DEFAULT_EVALS,
                max_concurrent_trials=jobs,
                # an ended trial's actor exits, releasing its folder (a cached one would hold it)
                reuse_actors=False),
            run_config=air.RunConfig(
                name="ray", storage_path=str(table.folder.resolve()),
                callbacks=[TableCallback(table, [p.name for p in params])], verbose=1),
        )
        tuner.fit()
    finally:
        ray.shutdown()


def _searcher(algo: str) -> Any:
    """exhaustive: the grid; random: Tune's own sampling; bayes: hyperopt's TPE inside Ray."""
    if algo == "bayes":
        from ray.tune.search.hyperopt import HyperOptSearch

        return HyperOptSearch()
    if algo not in ("exhaustive", "random"):
        raise ValueError(f"unknown algo {algo!r}: exhaustive | bayes | random")
    return None


class TableCallback(Callback):
    """Appends each trial to the table when it ends (finished or stopped early by ASHA), then
    deletes its last epoch's state; a reused trial is only marked as this search's."""

    def __init__(self, table: TrialTable, names: list[str]) -> None:
        self.table, self.names = table, names

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        if "best_valid_score" not in result:
            return
        if result.get("reused"):
            self.table.find(result["config_hash"],
                            {name: trial.config[name] for name in self.names})
            return
        row = {name: trial.config[name] for name in self.names}
        row.update({k: v for k, v in result.items() if k.startswith(("valid_", "test_"))})
        row.pop("valid_score")
        row.update(epochs=result["epochs"], ended=result.get("ended"),
                   train_seconds=result["time_total_s"], log_file=result.get("log_file"),
                   checkpoint=result.get("checkpoint"), config_hash=result["config_hash"])
        if result.get("resumed_from") is not None:
            row["resumed_from"] = result["resumed_from"]
        self.table.append(row)
        delete_last_state(row["checkpoint"])
