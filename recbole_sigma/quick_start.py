"""``run``, ``run_recbole_sigma`` and ``load_data_and_model`` as in ``recbole.quick_start``, for
plugin and RecBole models, on torch >= 2.6, on one process or several (DDP)."""

import logging
import time
from typing import Any, Optional

import torch
import torch.distributed as dist
from recbole.data import data_preparation
from recbole.utils import init_seed, set_color

from recbole_sigma.config import Config
from recbole_sigma.config_check import check_config
from recbole_sigma.data.load import InterSummary, check_data, load_dataset
from recbole_sigma.distributed import all_gather, parameter_digest, spawn_ranks, world_size_for
from recbole_sigma.resume_settings import settings_for_resume
from recbole_sigma.run_log import console_log, run_log
from recbole_sigma.trainer import check_resume_file, load_checkpoint
from recbole_sigma.utils import get_model, get_trainer


def build_config(
    model: str = "SIGMA",
    dataset: str = "ml-100k",
    config_file_list: Optional[list[str]] = None,
    config_dict: Optional[dict[str, Any]] = None,
    fixed: Optional[dict[str, Any]] = None,
) -> Config:
    """The plugin's :class:`~recbole_sigma.config.Config` for a model given by name, its plugin
    and SIGMA keys checked (:func:`~recbole_sigma.config_check.check_config`). ``fixed`` keys
    win over every source, a ``--key=value`` on the command line too (RecBole ranks the command
    line above ``config_dict``)."""
    config = Config(
        model=model, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict
    )
    for key, value in (fixed or {}).items():
        config[key] = value
    check_config(config)
    return config


def require_data(config: Config) -> Optional[InterSummary]:
    """Stop at once, naming the file, key and fix, when the dataset's atomic file is missing or
    unusable (:func:`~recbole_sigma.data.load.check_data`; a shared dataset is converted on
    first use)."""
    return check_data(config)


def run(
    model: Optional[str] = None,
    dataset: Optional[str] = None,
    config_file_list: Optional[list[str]] = None,
    config_dict: Optional[dict[str, Any]] = None,
    saved: bool = True,
    nproc: int = 1,
    world_size: int = -1,
    ip: str = "localhost",
    port: str = "5678",
    group_offset: int = 0,
    resume: Optional[str] = None,
) -> Optional[dict[str, Any]]:
    """Train with early stopping on the validation metric, then evaluate the best model on test.

    With ``nproc > 1`` or ``world_size > 0`` this machine runs ``nproc`` DDP ranks (global ranks
    ``group_offset, ...`` of ``world_size``; rank 0 listens on ``ip:port``) and returns local
    rank 0's result, as ``recbole.quick_start.run`` does. ``resume``: a checkpoint to continue
    from (see :mod:`recbole_sigma.trainer`); the model, dataset and settings not given are its
    (:mod:`recbole_sigma.resume_settings`), else SIGMA on ml-100k with the defaults.
    """
    model, dataset, config_dict = settings_for_resume(
        resume, model, dataset, config_file_list, config_dict
    )
    if nproc == 1 and world_size <= 0:
        return run_recbole_sigma(model, dataset, config_file_list, config_dict, saved, resume)
    world_size = world_size_for(nproc, world_size, group_offset)
    # checked once here, before any rank starts: the config, the data and the resume file
    config = build_config(model, dataset, config_file_list, config_dict)
    console_log(config)
    if resume:
        check_resume_file(resume, config)
    require_data(config)
    logging.getLogger().info(
        f"Starting {nproc} processes: ranks {group_offset}..{group_offset + nproc - 1} of "
        f"{world_size}, rank 0 at {ip}:{port}"
    )
    return spawn_ranks(model, dataset, config_file_list, config_dict, saved, resume,
                       nproc, world_size, ip, port, group_offset)


def run_recbole_sigma(
    model: str = "SIGMA",
    dataset: str = "ml-100k",
    config_file_list: Optional[list[str]] = None,
    config_dict: Optional[dict[str, Any]] = None,
    saved: bool = True,
    resume: Optional[str] = None,
    fixed: Optional[dict[str, Any]] = None,
    keep_last_state: bool = False,
) -> dict[str, Any]:
    """One process of a run (all of it, or one DDP rank when ``config_dict`` has ``local_rank``);
    ``fixed`` keys win over the command line (:func:`build_config`). The last epoch's state is
    deleted once the test result is logged, or, with ``keep_last_state``, left for the caller to
    delete (:func:`recbole_sigma.trainer.delete_last_state`) once it has recorded the result.

    The result has RecBole's keys (``best_valid_score``, ``best_valid_result``,
    ``test_result``, ...), the run's epochs (a resumed run's count those before the resume,
    ``resumed_from`` says where it went on), how it ended, seconds, parameters and log file, and
    ``rank_parameter_digests``: each rank's :func:`parameter_digest` after training.
    """
    config = build_config(model, dataset, config_file_list, config_dict, fixed)
    console_log(config)  # a conversion on first use is logged
    if resume:
        check_resume_file(resume, config)
    checked = require_data(config)  # before the config dump and the log files
    with run_log(config) as log_file:
        result = _train_and_test(model, config, saved, checked, resume, keep_last_state)
    if not config["single_spec"]:
        dist.destroy_process_group()
    return dict(result, log_file=log_file)


def _train_and_test(
    model: str,
    config: Config,
    saved: bool,
    checked: Optional[InterSummary],
    resume: Optional[str],
    keep_last_state: bool,
) -> dict[str, Any]:
    init_seed(config["seed"], config["reproducibility"])
    logger = logging.getLogger()
    logger.info(config)

    dataset_obj = load_dataset(config, checked)
    logger.info(dataset_obj)
    train_data, valid_data, test_data = data_preparation(config, dataset_obj)

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    net = get_model(model)(config, train_data._dataset).to(config["device"])
    logger.info(net)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, net)
    if resume:
        trainer.resume_checkpoint(resume)

    start = time.perf_counter()
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=saved, show_progress=config["show_progress"],
        keep_last_state=True,
    )
    train_seconds = time.perf_counter() - start
    digests = all_gather(parameter_digest(trainer.model))
    if len(set(digests)) > 1:
        trainer.forget_last_state()  # a rerun trains again, rather than test rank 0's state
        raise RuntimeError(f"the DDP ranks hold different parameters after training: {digests}")
    test_result = trainer.evaluate(
        test_data, load_best_model=saved, show_progress=config["show_progress"]
    )
    logger.info(set_color("best valid ", "yellow") + f": {best_valid_result}")
    logger.info(set_color("test result", "yellow") + f": {test_result}")
    if not keep_last_state:
        trainer.forget_last_state()
    return {
        "model": model,
        "dataset": config["dataset"],
        "best_valid_score": best_valid_score,
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": test_result,
        **trainer.run_summary(),
        "train_seconds": train_seconds,
        "parameters": sum(p.numel() for p in net.parameters() if p.requires_grad),
        "saved_model_file": trainer.saved_model_file if saved else None,
        "rank_parameter_digests": digests,
    }


def load_data_and_model(model_file: str) -> tuple:
    """RecBole's ``load_data_and_model`` for plugin and RecBole models, on torch >= 2.6.

    Returns ``config, model, dataset, train_data, valid_data, test_data``: the checkpoint's
    config, set to one process on this machine (a DDP run's too), its model with the saved
    weights, and the dataset and splits it was trained on, built again from the data files.
    """
    checkpoint = load_checkpoint(model_file)
    config = checkpoint["config"]
    trained_by = getattr(config, "model_class", None)
    if trained_by is not None and trained_by is not get_model(config["model"]):
        raise ValueError(
            f"{model_file} was trained by {trained_by.__module__}.{trained_by.__qualname__}, not "
            f"by the {config['model']} this package builds from the config: evaluate it with the "
            "code that trained it (benchmarks/authors_forms.py: --evaluate)"
        )
    # numpy aliases RecBole's metrics use (np.float, ...), set in Config.__init__, not on unpickling
    config.compatibility_settings()
    config["single_spec"], config["local_rank"] = True, 0
    on_gpu = bool(config["gpu_id"]) and torch.cuda.is_available()
    config["device"] = torch.device("cuda" if on_gpu else "cpu")
    init_seed(config["seed"], config["reproducibility"])
    console_log(config)
    logger = logging.getLogger()
    logger.info(config)

    dataset = load_dataset(config)
    logger.info(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)

    init_seed(config["seed"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    model.load_state_dict(checkpoint["state_dict"])
    model.load_other_parameter(checkpoint.get("other_parameter"))
    return config, model, dataset, train_data, valid_data, test_data
