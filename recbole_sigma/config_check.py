"""Config keys every plugin run checks before it loads any data."""

from typing import Any, Mapping

from recbole_sigma.model.baselines import LengthGrouped
from recbole_sigma.model.mamba4rec import check_mamba4rec
from recbole_sigma.model.settings import sigma_settings, warn_if_flip_is_off

# defaults: properties/overall.yaml
FLAGS = ("flush_denormal", "keep_freed_memory", "drop_duplicates")
GROUP_VALUES = ("auto", True, False)


def check_config(config: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the key and the fix for a bad plugin or SIGMA key."""
    for key in FLAGS:
        if not isinstance(config[key], bool):
            raise ValueError(
                f"config key {key!r} must be True or False, got {config[key]!r}; fix it in your "
                f"YAML or pass --{key}=True / --{key}=False (default: properties/overall.yaml)"
            )
    epochs = config["epochs"]
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(
            f"config key 'epochs' must be an integer >= 1, got {epochs!r}: without a training "
            "epoch the test metrics would be those of an untrained model; pass e.g. --epochs=1"
        )
    grouped = {model.__name__ for model in LengthGrouped.__subclasses__()}
    if config["model"] in grouped and config["group_by_length"] not in GROUP_VALUES:
        raise ValueError(
            f"config key 'group_by_length' must be auto, True or False, got "
            f"{config['group_by_length']!r}; fix it in your YAML or pass --group_by_length=auto "
            f"(default: properties/model/{config['model']}.yaml)"
        )
    if config["model"] == "Mamba4Rec":
        check_mamba4rec(config)
    if config["model"] == "SIGMA":
        warn_if_flip_is_off(sigma_settings(config), config["MAX_ITEM_LIST_LENGTH"])
