"""Tuning with Ray Tune: parallel trials, ASHA early stopping on the validation metric.

Each trial reports after every validation (each ``eval_step`` epochs), so ASHA can stop it early.
The report carries the current validation score (what ASHA compares), the best one so far, and the
test metrics of the model at that best epoch; the test metrics are never used to choose.
"""

import os
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from ray.tune import Callback
from recbole.data import data_preparation
from recbole.utils import init_logger, init_seed

import recbole_sigma
from recbole_sigma.data.load import load_dataset
from recbole_sigma.quick_start import build_config, model_class
from recbole_sigma.trainer import get_safe_trainer
from recbole_sigma.tuning.results import TrialTable, trial_row
from recbole_sigma.tuning.space import Param, ray_space


class ReportEachValidation:
    """Mixed in front of a RecBole trainer: calls ``self.on_valid(score, result)`` each time."""

    on_valid: Callable[[float, dict], None]

    def _valid_epoch(self, valid_data, show_progress=False):
        score, result = super()._valid_epoch(valid_data, show_progress)
        self.on_valid(score, result)
        return score, result


def train_trial(params: dict[str, Any], model: str, dataset: str,
                config_file_list: Optional[list[str]], fixed: dict[str, Any]) -> None:
    """The Ray trainable: one RecBole training run, reporting every validation."""
    from ray.air import session

    cpus = int(session.get_trial_resources().required_resources.get("CPU", 1))
    torch.set_num_threads(max(cpus, 1))
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "")  # set by Ray; RecBole would overwrite it
    config_dict = dict(fixed, **params, gpu_id=gpus, use_gpu=bool(gpus))
    config = build_config(model, dataset, config_file_list, config_dict)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    train_data, valid_data, test_data = data_preparation(config, load_dataset(config))
    init_seed(config["seed"], config["reproducibility"])
    net = model_class(model)(config, train_data._dataset).to(config["device"])
    base = get_safe_trainer(config["MODEL_TYPE"], config["model"])
    trainer = type(base.__name__, (ReportEachValidation, base), {})(config, net)
    sign = 1 if config["valid_metric_bigger"] else -1
    best: dict[str, Any] = {}

    def report(score: float, result: dict) -> None:
        if not best or sign * score > sign * best["best_valid_score"]:
            test = trainer.evaluate(test_data, load_best_model=False)
            best.update(best_valid_score=score, best_valid_result=dict(result),
                        test_result=dict(test))
        epochs = len(getattr(trainer, "epoch_times", []))
        session.report({"valid_score": score, "best_valid_score": best["best_valid_score"],
                        "epochs": epochs, **trial_row({}, best)})

    trainer.on_valid = report
    trainer.fit(train_data, valid_data, saved=False, show_progress=False)


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
) -> None:
    """Run the search on a local Ray (all CPUs) or the cluster at ``address``."""
    import ray
    from ray import air, tune
    from ray.tune.schedulers import ASHAScheduler

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # workers (local or on a cluster) import this very package, shipped with the job
    runtime_env = {"py_modules": [str(Path(recbole_sigma.__file__).resolve().parent)]}
    if address:
        ray.init(address=address, runtime_env=runtime_env)
    else:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, runtime_env=runtime_env)
    try:
        trainable = tune.with_resources(
            tune.with_parameters(train_trial, model=model, dataset=dataset,
                                 config_file_list=config_file_list, fixed=fixed),
            trial_resources(ray.cluster_resources()),
        )
        mode = "max" if table.bigger else "min"
        tuner = tune.Tuner(
            trainable,
            param_space=ray_space(params, grid=algo == "exhaustive"),
            tune_config=tune.TuneConfig(
                metric="valid_score", mode=mode,
                scheduler=ASHAScheduler(max_t=max(max_epochs, 1), grace_period=1,
                                        reduction_factor=2),
                search_alg=_searcher(algo),
                num_samples=1 if algo == "exhaustive" else max_evals or 20),
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
    """Appends each trial to the table when it ends (finished or stopped early by ASHA)."""

    def __init__(self, table: TrialTable, names: list[str]) -> None:
        self.table, self.names = table, names

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        if "best_valid_score" not in result:
            return
        row = {name: trial.config[name] for name in self.names}
        row.update({k: v for k, v in result.items() if k.startswith(("valid_", "test_"))})
        row.pop("valid_score")
        row.update(epochs=result["epochs"], train_seconds=result["time_total_s"])
        self.table.append(row)
