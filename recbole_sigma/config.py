"""RecBole's ``Config``, made to know the plugin (as RecBole-GNN does).

``Config(model="SIGMA", dataset="ml-100k")`` (or ``model=SIGMA``, the class) differs from
``recbole.config.Config`` in three ways:

* model names are looked up with :func:`recbole_sigma.utils.get_model` (plugin models, then
  RecBole's), also when the name comes from a file, ``config_dict`` or the command line;
* the plugin's ``properties/overall.yaml``, ``properties/dataset/<dataset>.yaml`` and
  ``properties/model/<model>.yaml`` are loaded over RecBole's own defaults and under everything
  the user gives (files, ``config_dict``, command line);
* distributed ranks without GPUs join with gloo on CPU; RecBole always asks for NCCL.
"""

import os

import recbole.config
import torch

from recbole_sigma.data.paths import PROPERTIES, properties_file
from recbole_sigma.utils import get_model


def plugin_config_files(model: str, dataset: str) -> list[str]:
    """The plugin's YAML files for this model and dataset that exist, lowest priority first."""
    candidates = [
        PROPERTIES / "overall.yaml",
        properties_file(dataset),
        PROPERTIES / "model" / f"{model}.yaml",
    ]
    return [str(p) for p in candidates if p.is_file()]


class Config(recbole.config.Config):
    """``recbole.config.Config`` for plugin and RecBole models; see the module docstring."""

    def _get_model_and_dataset(self, model, dataset):
        if model is None:
            model = self.external_config_dict.get("model")
        if isinstance(model, str):
            model = get_model(model)
        return super()._get_model_and_dataset(model, dataset)

    def _load_internal_config_dict(self, model, model_class, dataset):
        super()._load_internal_config_dict(model, model_class, dataset)
        dataset_file = str(properties_file(dataset))
        for file in plugin_config_files(model, dataset):
            values = self._update_internal_config_dict(file) or {}
            if file == dataset_file:
                self.parameters["Dataset"] += [
                    key for key in values if key not in self.parameters["Dataset"]
                ]

    def _init_device(self):
        config = self.final_config_dict
        if "local_rank" not in config:
            super()._init_device()
            return
        gpu_id = config["gpu_id"]
        gpu_id = ",".join(map(str, gpu_id)) if isinstance(gpu_id, tuple) else str(gpu_id)
        if gpu_id and torch.cuda.is_available():
            if len(gpu_id.split(",")) < config["nproc"]:
                raise ValueError(
                    f"nproc={config['nproc']} needs as many GPUs in gpu_id, got {gpu_id!r}: "
                    "set e.g. --gpu_id=0,1 (or --gpu_id='' to run the processes on CPU)"
                )
            super()._init_device()  # NCCL, one GPU per process
            return
        config["gpu_id"] = gpu_id
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu_id
        torch.distributed.init_process_group(
            backend="gloo",
            rank=config["local_rank"] + config["offset"],
            world_size=config["world_size"],
            init_method=f"tcp://{config['ip']}:{config['port']}",
        )
        config["device"] = torch.device("cpu")
        config["single_spec"] = False
        if config["local_rank"] != 0:
            config["state"] = "error"
            config["show_progress"] = False
            config["verbose"] = False

