"""Train and evaluate several models on one dataset split, with the same seeds and evaluator.

The dataset is loaded and split once per kind of data a model needs (its model type, sequence
length and negative sampling; all sequential models share one), seeded with the comparison's
first seed, and reused for every model and seed. Before each model, the seeds (``init_seed``) and
the train loader's shuffling generator are reset to the run's seed, so every model starts from the
same random state, in this process or in a ``--jobs`` worker. Data-related keys (batch sizes,
split) are read from the first model's config that needs that kind of data.
"""

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import recbole.data.dataset as recbole_datasets
from recbole.config import Config
from recbole.data import data_preparation
from recbole.utils import get_local_time, init_seed

from recbole_sigma.compare.grouped import evaluate_users
from recbole_sigma.compare.memory import PeakMemory
from recbole_sigma.compare.variants import Variant
from recbole_sigma.data.load import load_dataset
from recbole_sigma.quick_start import build_config
from recbole_sigma.reuse import effective_config
from recbole_sigma.run_folders import only_process, run_folder, state_to_resume
from recbole_sigma.run_log import console_labelled, run_log
from recbole_sigma.utils import get_model, get_trainer

COMPARE = "compare"  # run folders: <checkpoint_dir>/compare/<config_hash>
logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    """One model trained and evaluated with one seed."""

    name: str
    seed: int
    valid: dict[str, float]
    test: dict[str, float]
    groups: dict[str, dict[str, float]]
    epochs: int
    epoch_seconds: float
    parameters: int
    inference_ms: float
    train_peak_mib: float
    inference_peak_mib: float
    memory_kind: str
    saved_model_file: Optional[str] = None
    recomputed_test: dict[str, float] = field(default_factory=dict)
    log_file: Optional[str] = None
    config_hash: str = ""
    ended: str = ""  # recbole_sigma.ending's words; "" in records written before it
    resumed_from: Optional[int] = None  # the epoch an interrupted run went on from


def _data_key(config: Config) -> tuple:
    # models with a dataset class of their own (RecBole's ``<Model>Dataset``) get their own data
    own = config["model"] if hasattr(recbole_datasets, config["model"] + "Dataset") else ""
    return (
        str(config["MODEL_TYPE"]),
        own,
        config["MAX_ITEM_LIST_LENGTH"],
        repr(config["train_neg_sample_args"]),
    )


class SharedSplits:
    """One ``create_dataset`` + ``data_preparation`` per kind of data, kept for all runs."""

    def __init__(self) -> None:
        self._splits: dict[tuple, tuple] = {}

    def get(self, config: Config) -> tuple:
        key = _data_key(config)
        if key not in self._splits:
            init_seed(config["seed"], config["reproducibility"])
            dataset = load_dataset(config)
            logger.info(dataset)
            self._splits[key] = data_preparation(config, dataset)
        return self._splits[key]


def run_config(
    variant: Variant,
    seed: int,
    dataset: str,
    config_file_list: Optional[list[str]] = None,
    config_dict: Optional[dict[str, Any]] = None,
) -> Config:
    """The config of ``variant`` trained with ``seed``."""
    config = build_config(variant.model, dataset, config_file_list, config_dict,
                          fixed=variant.overrides)
    config["seed"] = seed  # also over a --seed on the command line: the seeds are the runner's
    return config


@dataclass(frozen=True)
class RunTask:
    """One run of a comparison. The split it trains on is built from ``split_variant``'s config
    with ``first_seed``: the comparison's first run with this kind of data, as a serial run
    (seed by seed, variants in order) builds it, whichever runs are reused or run elsewhere."""

    variant: Variant
    seed: int
    dataset: str
    split_variant: Variant
    first_seed: int
    config_file_list: Optional[list[str]] = None
    config_dict: Optional[dict[str, Any]] = None
    saved: bool = True

    @property
    def label(self) -> str:
        return f"{self.variant.name} seed {self.seed}"

    def config(self) -> Config:
        return run_config(self.variant, self.seed, self.dataset, self.config_file_list,
                          self.config_dict)

    def split_config(self) -> Config:
        return run_config(self.split_variant, self.first_seed, self.dataset,
                          self.config_file_list, self.config_dict)

    def settings(self) -> dict[str, Any]:
        """The effective config (see ``recbole_sigma.reuse``), with the split's settings where
        they differ (``split_from.<key>``)."""
        settings = effective_config(self.config())
        split = effective_config(self.split_config())
        settings.update({f"split_from.{k}": v for k, v in split.items()
                         if settings.get(k, ...) != v})
        return settings


def plan_runs(
    variants: list[Variant],
    dataset: str,
    seeds: int = 1,
    config_file_list: Optional[list[str]] = None,
    config_dict: Optional[dict[str, Any]] = None,
    saved: bool = True,
) -> list[RunTask]:
    """Every variant with seeds ``seed, seed+1, ...`` (``seed`` from the config), seed by seed."""
    if seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    first_seed = build_config(variants[0].model, dataset, config_file_list, config_dict)["seed"]
    configs = [run_config(v, first_seed, dataset, config_file_list, config_dict) for v in variants]
    owners: dict[tuple, Variant] = {}
    for v, config in zip(variants, configs, strict=True):
        owners.setdefault(_data_key(config), v)
    split_of = [owners[_data_key(c)] for c in configs]
    return [
        RunTask(v, first_seed + i, dataset, split, first_seed, config_file_list, config_dict,
                saved)
        for i in range(seeds)
        for v, split in zip(variants, split_of, strict=True)
    ]


def run_one(task: RunTask, splits: SharedSplits, hash_: str) -> RunResult:
    """Train ``task.variant`` with ``task.seed`` on the shared split, then evaluate it on test per
    user; the run logs to a file of its own. It trains in the folder of its effective config's
    ``hash_`` (:mod:`recbole_sigma.run_folders`) and goes on from what an interrupted run left
    there."""
    config = task.config()
    variant, seed = task.variant, task.seed
    folder = run_folder(config["checkpoint_dir"], COMPARE, hash_)
    # a comparison that saves nothing trains where it always did, and resumes nothing
    owned = only_process(folder, task.label) if task.saved else contextlib.nullcontext()
    with owned, console_labelled(task.label), \
            run_log(config, f"{variant.name}-seed{seed}") as log_file:
        train_data, valid_data, test_data = splits.get(task.split_config())
        init_seed(seed, config["reproducibility"])
        train_data.generator.manual_seed(seed)
        net = get_model(variant.model)(config, train_data._dataset).to(config["device"])
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, net)
        # one file per variant and seed (RecBole's name has only the model and the second)
        name = f"{variant.name}-seed{seed}-{get_local_time()}.pth"
        trainer.saved_model_file = str(folder / name if task.saved
                                       else Path(config["checkpoint_dir"], name))
        logger.info("compare: %s, seed %d", variant.name, seed)
        resume = state_to_resume(folder, config, task.label) if task.saved else None
        if resume is not None:
            trainer.resume_checkpoint(resume)

        progress = config["show_progress"]  # RecBole's progress bars, as in a plain run
        saved = task.saved
        with PeakMemory(config["device"]) as train_memory:
            _, valid = trainer.fit(train_data, valid_data, saved=saved, show_progress=progress,
                                   keep_last_state=True)
        test = trainer.evaluate(test_data, load_best_model=saved, show_progress=progress)
        with PeakMemory(config["device"]) as test_memory:
            users = evaluate_users(trainer.model, test_data, config)
        result = RunResult(
            name=variant.name,
            seed=seed,
            valid=dict(valid),
            test=dict(test),
            groups=users.groups(),
            **trainer.run_summary(),
            parameters=sum(p.numel() for p in net.parameters() if p.requires_grad),
            inference_ms=users.inference_ms(),
            train_peak_mib=train_memory.mib,
            inference_peak_mib=test_memory.mib,
            memory_kind=train_memory.kind,
            saved_model_file=trainer.saved_model_file if saved else None,
            recomputed_test=users.overall(),
            log_file=log_file,
        )
        check_against_recbole(variant.name, result.test, result.recomputed_test,
                              config["metric_decimal_place"])
        logger.info("compare: %s seed %d test %s", variant.name, seed, result.test)
    return result


_WORKER_SPLITS = SharedSplits()  # in a worker process: the splits of its comparison's runs


def run_in_worker(job: tuple[RunTask, str]) -> RunResult:
    """``run_one(task, splits, hash_)`` in a ``--jobs`` worker process (which serves one
    comparison)."""
    task, hash_ = job
    return run_one(task, _WORKER_SPLITS, hash_)


def check_against_recbole(
    name: str, recbole: dict[str, float], mine: dict[str, float], decimals: int
) -> None:
    """The per-user evaluation (``mine``) must reproduce RecBole's result (to its rounding)."""
    for key, value in recbole.items():
        got = mine.get(key)
        if got is None or abs(round(got, decimals) - value) > 1.5 * 10**-decimals:
            raise RuntimeError(f"{name}: grouped evaluation gives {key}={got}, RecBole {value}")
