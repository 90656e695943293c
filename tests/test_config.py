"""RecBole's entry points, plugin-aware: Config, get_model, get_trainer, load_data_and_model."""

import os
import sys
from pathlib import Path

import pytest
import torch
import yaml
from recbole.model.sequential_recommender import NARM, SASRec
from recbole.utils import ModelType

from recbole_sigma import SIGMA
from recbole_sigma.config import Config
from recbole_sigma.model import baselines
from recbole_sigma.quick_start import build_config, load_data_and_model, run
from recbole_sigma.trainer import load_checkpoint
from recbole_sigma.utils import get_model, get_trainer


@pytest.fixture
def argv(monkeypatch):
    """Set the command line RecBole's Config reads."""
    def set_argv(*args: str) -> None:
        monkeypatch.setattr(sys, "argv", ["run_recbole_sigma.py", *args])

    set_argv()
    return set_argv


@pytest.mark.parametrize("model", ["SIGMA", SIGMA])
def test_config_loads_the_plugin_yaml_files(argv, model):
    config = Config(model=model, dataset="ml-100k")
    assert config["model"] == "SIGMA" and config["MODEL_TYPE"] == ModelType.SEQUENTIAL
    assert config["epochs"] == 200 and config["stopping_step"] == 10  # properties/overall.yaml
    assert config["user_inter_num_interval"] == "[5,inf)"  # properties/dataset/ml-100k.yaml
    assert config["MAX_ITEM_LIST_LENGTH"] == 50 and config["normalize_all"] is False
    assert config["flip_r"] == 5 and config["loss_type"] == "CE"  # properties/model/SIGMA.yaml


def test_user_settings_win_over_the_plugin_yaml_files(argv, tmp_path):
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump({"hidden_size": 8, "flip_r": 1}))
    argv("--flip_r=2")
    config = Config(dataset="ml-100k", config_file_list=[str(tmp_path / "mine.yaml")],
                    config_dict={"model": "SIGMA", "epochs": 3})
    assert config["model"] == "SIGMA" and config["d_state"] == 32  # the name from config_dict
    assert (config["epochs"], config["hidden_size"], config["flip_r"]) == (3, 8, 2)


def test_best_beauty_config_file_is_a_valid_run(argv):
    """Every key of the committed best-setting YAML is one the model reads (RecBole ignores
    unknown keys silently), and the SIGMA checks accept its values for its variant."""
    from recbole_sigma.data.paths import REPO_ROOT
    from recbole_sigma.model.settings import sigma_settings
    from recbole_sigma.quick_start import build_config

    path = REPO_ROOT / "docs/results/amazon-beauty-converged/best-on-validation.yaml"
    keys = yaml.safe_load(path.read_text())
    defaults = build_config("SIGMA", "amazon-beauty")
    assert keys and set(keys) <= set(defaults.final_config_dict)
    config = build_config("SIGMA", "amazon-beauty", config_file_list=[str(path)])
    sigma_settings(config)  # raises on a value the variant does not allow
    assert {key: config[key] for key in keys} == keys


def test_recbole_models_get_the_plugin_protocol_too(argv):
    config = Config(model="SASRec", dataset="ml-100k")
    assert config["epochs"] == 200 and config["MAX_ITEM_LIST_LENGTH"] == 50
    assert config["n_heads"] == 2  # RecBole's own SASRec.yaml


def test_get_model():
    assert get_model("SIGMA") is SIGMA and get_model("SASRec") is baselines.SASRec
    assert issubclass(get_model("SASRec"), SASRec)  # RecBole's model, encoded by length groups
    assert get_model("NARM") is NARM
    with pytest.raises(ValueError, match="unknown model 'Sigma'"):
        get_model("Sigma")
    with pytest.raises(ValueError, match="unknown model 'Sigma'"):
        Config(model="Sigma", dataset="ml-100k")


@pytest.mark.usefixtures("one_thread")
def test_load_data_and_model_of_a_recbole_model(workdir, tiny_config):
    result = run("SASRec", "ml-tiny", config_dict=dict(tiny_config, n_layers=1))
    config, model, _, _, _, test_data = load_data_and_model(result["saved_model_file"])
    assert isinstance(model, SASRec)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    assert trainer.evaluate(test_data, load_best_model=False) == result["test_result"]
    # a checkpoint of another class under the same name would load into the wrong forward
    checkpoint = load_checkpoint(result["saved_model_file"])
    checkpoint["config"].model_class = ChangedSASRec
    torch.save(checkpoint, workdir / "changed.pth")
    with pytest.raises(ValueError, match="changed.pth was trained by .*ChangedSASRec, not by the "
                       "SASRec this package builds"):
        load_data_and_model(str(workdir / "changed.pth"))


def test_trainer_makes_its_checkpoint_folder_without_a_race(workdir, tiny_config, tiny_dataset,
                                                            monkeypatch):
    """RecBole's check-then-create ``ensure_dir`` fails in the second of two processes that
    start at once; the folder must exist before RecBole looks."""
    import recbole.trainer.trainer as recbole_trainer

    def ensure_dir(path):
        assert os.path.isdir(path), f"{path} left for RecBole's racy ensure_dir to create"

    monkeypatch.setattr(recbole_trainer, "ensure_dir", ensure_dir)
    config = build_config("SIGMA", "ml-tiny", config_dict=dict(
        tiny_config, checkpoint_dir=str(workdir / "fresh" / "saved")))
    get_trainer(config["MODEL_TYPE"], "SIGMA")(config, SIGMA(config, tiny_dataset))
    assert (workdir / "fresh" / "saved").is_dir()


@pytest.mark.usefixtures("one_thread")
def test_runs_started_in_the_same_second_keep_their_own_checkpoints(workdir, mini_config,
                                                                    monkeypatch):
    """RecBole names a checkpoint by model and second: two runs in one second must not write,
    and then test, one file."""
    import recbole.trainer.trainer as recbole_trainer

    monkeypatch.setattr(recbole_trainer, "get_local_time", lambda: "Nov-30-2026_00-00-00")
    first = run("SIGMA", "ml-tiny", config_dict=dict(mini_config, epochs=1, seed=1))
    second = run("SIGMA", "ml-tiny", config_dict=dict(mini_config, epochs=1, seed=2))
    assert Path(first["saved_model_file"]).name == "SIGMA-Nov-30-2026_00-00-00.pth"
    assert Path(second["saved_model_file"]).name == "SIGMA-Nov-30-2026_00-00-00-2.pth"
    for result in (first, second):
        config, model, _, _, _, test_data = load_data_and_model(result["saved_model_file"])
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        assert trainer.evaluate(test_data, load_best_model=False) == result["test_result"]
    # a run that fails before its first save leaves no empty file behind
    monkeypatch.setattr(recbole_trainer.Trainer, "_train_epoch", _fail)
    with pytest.raises(RuntimeError, match="interrupted"):
        run("SIGMA", "ml-tiny", config_dict=dict(mini_config, epochs=1))
    assert sorted(p.name for p in (workdir / "saved").iterdir()) == [
        "SIGMA-Nov-30-2026_00-00-00-2.pth", "SIGMA-Nov-30-2026_00-00-00.pth"]


def _fail(*args, **kwargs):
    raise RuntimeError("interrupted")


class ChangedSASRec(SASRec):
    """SASRec under another class: what a benchmark's model subclass saves."""
