"""Train and evaluate SIGMA or any RecBole model, the way ``recbole.quick_start`` does."""

import logging
import time
from typing import Any, Optional

import torch
from recbole.config import Config
from recbole.data import data_preparation
from recbole.utils import get_model, init_seed, set_color

from recbole_sigma.config_check import check_config
from recbole_sigma.data.load import InterSummary, check_data, load_dataset
from recbole_sigma.data.paths import PROPERTIES, properties_file
from recbole_sigma.model import SIGMA
from recbole_sigma.run_log import run_log
from recbole_sigma.trainer import get_safe_trainer

PLUGIN_MODELS = {"SIGMA": SIGMA}


def model_class(name: str) -> type:
    """The plugin's model of that name, else RecBole's (``recbole.utils.get_model``)."""
    if name in PLUGIN_MODELS:
        return PLUGIN_MODELS[name]
    anomaly = torch.is_anomaly_enabled()
    try:
        return get_model(name)
    except (ValueError, ImportError):  # RecBole's search imports its lightgbm/xgboost models
        raise ValueError(
            f"unknown model {name!r}: use SIGMA or a RecBole model name (SASRec, GRU4Rec, ...)"
        ) from None
    finally:
        # importing RecBole's sequential models runs sine.py, which turns on autograd anomaly
        # detection for the whole process: every op then records a stack trace (~4x slower)
        torch.autograd.set_detect_anomaly(anomaly)


def config_files(model: str, dataset: str, extra: Optional[list[str]] = None) -> list[str]:
    """The plugin's YAML files for this run (overall, dataset, model), then the user's."""
    candidates = [
        PROPERTIES / "overall.yaml",
        properties_file(dataset),
        PROPERTIES / "model" / f"{model}.yaml",
    ]
    return [str(p) for p in candidates if p.is_file()] + list(extra or [])


def build_config(
    model: str = "SIGMA",
    dataset: str = "ml-100k",
    config_file_list: Optional[list[str]] = None,
    config_dict: Optional[dict[str, Any]] = None,
) -> Config:
    """A RecBole ``Config`` that knows plugin models (RecBole's own looks models up by name),
    its plugin and SIGMA keys checked (:func:`~recbole_sigma.config_check.check_config`)."""
    config = Config(
        model=model_class(model),
        dataset=dataset,
        config_file_list=config_files(model, dataset, config_file_list),
        config_dict=config_dict,
    )
    check_config(config)
    return config


def require_data(config: Config) -> Optional[InterSummary]:
    """Stop at once, naming the file, key and fix, when the dataset's atomic file is missing or
    unusable (:func:`~recbole_sigma.data.load.check_data`)."""
    return check_data(config)


def run(
    model: str = "SIGMA",
    dataset: str = "ml-100k",
    config_file_list: Optional[list[str]] = None,
    config_dict: Optional[dict[str, Any]] = None,
    saved: bool = True,
) -> dict[str, Any]:
    """Train with early stopping on the validation metric, then evaluate the best model on test."""
    config = build_config(model, dataset, config_file_list, config_dict)
    checked = require_data(config)  # before the config dump and the log files
    with run_log(config) as log_file:
        result = _train_and_test(model, config, saved, checked)
    return dict(result, log_file=log_file)


def _train_and_test(
    model: str, config: Config, saved: bool, checked: Optional[InterSummary]
) -> dict[str, Any]:
    init_seed(config["seed"], config["reproducibility"])
    logger = logging.getLogger()
    logger.info(config)

    dataset_obj = load_dataset(config, checked)
    logger.info(dataset_obj)
    train_data, valid_data, test_data = data_preparation(config, dataset_obj)

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    net = model_class(model)(config, train_data._dataset).to(config["device"])
    logger.info(net)
    trainer = get_safe_trainer(config["MODEL_TYPE"], config["model"])(config, net)

    start = time.perf_counter()
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=saved, show_progress=config["show_progress"]
    )
    train_seconds = time.perf_counter() - start
    test_result = trainer.evaluate(
        test_data, load_best_model=saved, show_progress=config["show_progress"]
    )
    logger.info(set_color("best valid ", "yellow") + f": {best_valid_result}")
    logger.info(set_color("test result", "yellow") + f": {test_result}")
    epoch_times = getattr(trainer, "epoch_times", [])
    return {
        "model": model,
        "dataset": config["dataset"],
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": test_result,
        "epochs": len(epoch_times),
        "epoch_seconds": sum(epoch_times) / max(len(epoch_times), 1),
        "train_seconds": train_seconds,
        "parameters": sum(p.numel() for p in net.parameters() if p.requires_grad),
        "saved_model_file": trainer.saved_model_file if saved else None,
    }
