"""``--resume`` continues the run a checkpoint holds: the model, dataset and settings this run
does not give (on the command line, in a config file or in ``config_dict``) are the
checkpoint's, ``epochs``, ``stopping_step`` and ``data_path`` (where its files still are) too,
but not how or where it executes (``RESUMABLE_CHANGES``: device, processes, backend, progress
bars, ...). So ``run_recbole_sigma.py --resume saved/X-last.pth`` needs no other flag. A setting
given here with another value than the checkpoint's stays, and
:func:`~recbole_sigma.trainer.check_resume_file` refuses the run, naming it."""

import logging
import os
from pathlib import Path
from typing import Any, Optional

from recbole_sigma.config import Config
from recbole_sigma.run_log import console_log
from recbole_sigma.trainer import RESUMABLE_CHANGES, changed_keys, load_checkpoint

DEFAULT_MODEL, DEFAULT_DATASET = "SIGMA", "ml-100k"
# how and where this run executes: this run's, never the checkpoint's (data_path: see below)
THIS_RUN = RESUMABLE_CHANGES - {"epochs", "stopping_step"}
# what RecBole's Config derives from other keys: rebuilt, never taken
DERIVED = frozenset({
    "MODEL_TYPE", "MODEL_INPUT_TYPE", "eval_type", "valid_metric_bigger",
    "valid_neg_sample_args", "test_neg_sample_args",
})


def _trained_config(path: Optional[str]) -> Optional[dict[str, Any]]:
    """The checkpoint's config as a dict; None without a readable checkpoint
    (:func:`~recbole_sigma.trainer.check_resume_file` then says why)."""
    if not path:
        return None
    try:
        config = load_checkpoint(path)["config"]
        return dict(getattr(config, "final_config_dict", config))
    except Exception:  # torch.load raises many kinds on a file that is not a checkpoint
        return None


def settings_for_resume(
    path: Optional[str],
    model: Optional[str],
    dataset: Optional[str],
    config_file_list: Optional[list[str]] = None,
    config_dict: Optional[dict[str, Any]] = None,
) -> tuple[str, str, Optional[dict[str, Any]]]:
    """``model``, ``dataset`` and ``config_dict`` for a run that resumes ``path`` (or starts,
    when ``path`` is None): what is not given is the checkpoint's, else the defaults (SIGMA,
    ml-100k)."""
    trained = _trained_config(path)
    if trained is None:
        return model or DEFAULT_MODEL, dataset or DEFAULT_DATASET, config_dict
    model = model or trained.get("model") or DEFAULT_MODEL
    dataset = dataset or trained.get("dataset") or DEFAULT_DATASET
    if (trained.get("model"), trained.get("dataset")) != (model, dataset):
        return model, dataset, config_dict  # check_resume_file names the mismatch
    config = Config(model=model, dataset=dataset, config_file_list=config_file_list,
                    config_dict=config_dict)
    given = {*config.file_config_dict, *config.variable_config_dict, *config.cmd_config_dict}
    kept = given | THIS_RUN | DERIVED
    adopted = {key: old for key, (old, _) in changed_keys(trained, config, kept).items()}
    adopted.update({key: trained[key] for key in trained.keys() - config.final_config_dict.keys()
                    if key not in kept})  # keys this code's defaults do not have
    trained_path = trained.get("data_path")  # RecBole's data_path, joined with the dataset
    if ("data_path" not in given and trained_path and trained_path != config["data_path"]
            and Path(trained_path, f"{dataset}.inter").is_file()):
        adopted["data_path"] = os.path.dirname(os.path.normpath(trained_path))
    if not adopted:
        return model, dataset, config_dict
    console_log(config)
    logging.getLogger().info(
        f"--resume: settings taken from {path}: "
        + ", ".join(f"{key}={value!r}" for key, value in sorted(adopted.items()))
    )
    return model, dataset, {**(config_dict or {}), **adopted}
