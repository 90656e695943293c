"""--resume: a run interrupted after some epochs, then resumed, ends as the uninterrupted run;
a failed save leaves the checkpoint it would have replaced."""

import shutil

import pytest
import torch

from recbole_sigma.quick_start import run
from recbole_sigma.trainer import load_checkpoint, save_atomically

pytestmark = pytest.mark.usefixtures("one_thread")


def test_interrupted_run_resumes_to_the_same_weights(workdir, tiny_config,
                                                     interrupted_in_epoch_1):
    # dropout and shuffled mini-batches: the resumed epochs must draw the same random numbers
    config = dict(tiny_config, epochs=3, train_batch_size=512, learning_rate=0.005)
    full = run("SIGMA", "ml-tiny", config_dict=config)
    best = load_checkpoint(full["saved_model_file"])
    assert best["epoch"] == 2  # the best epoch comes after the interruption below
    with interrupted_in_epoch_1():
        run("SIGMA", "ml-tiny", config_dict=config)
    (last,) = (workdir / "saved").glob("*-last.pth")  # epoch 0, kept by the interrupted run
    (kept,) = set((workdir / "saved").glob("*.pth")) - {last, workdir / full["saved_model_file"]}
    best_copy = shutil.copy(kept, workdir / "best-epoch-0.pth")  # RecBole's own checkpoint

    for resume_from in (last, best_copy):
        resumed = run("SIGMA", "ml-tiny", config_dict=config, resume=str(resume_from))
        # epochs 1 and 2 trained here; the run's epochs count epoch 0 too
        assert (resumed["resumed_from"], resumed["epochs"]) == (1, 3)
        assert resumed["best_valid_score"] == full["best_valid_score"]
        assert resumed["best_valid_result"] == full["best_valid_result"]
        assert resumed["test_result"] == full["test_result"]
        again = load_checkpoint(resumed["saved_model_file"])
        assert again["epoch"] == best["epoch"]
        for name, weights in best["state_dict"].items():
            assert torch.equal(again["state_dict"][name], weights), name
    assert not last.exists()  # removed once the test result was in


def test_resume_takes_the_settings_it_does_not_give_from_the_checkpoint(
    workdir, tiny_config, interrupted_in_epoch_1
):
    config = dict(tiny_config, epochs=2, sigma_variant="logged", dropout_prob=0.3,
                  learning_rate=0.005, train_batch_size=512)
    full = run("SIGMA", "ml-tiny", config_dict=config)
    with interrupted_in_epoch_1():
        run("SIGMA", "ml-tiny", config_dict=config)
    (last,) = (workdir / "saved").glob("*-last.pth")

    # no model, dataset, data_path, variant, dropout, epochs: all of them are the checkpoint's
    resumed = run(resume=str(last))
    assert (resumed["model"], resumed["dataset"]) == ("SIGMA", "ml-tiny")
    assert (resumed["resumed_from"], resumed["epochs"]) == (1, 2)
    assert resumed["best_valid_result"] == full["best_valid_result"]
    assert resumed["test_result"] == full["test_result"]
    assert load_checkpoint(resumed["saved_model_file"])["config"]["dropout_prob"] == 0.3


def test_resume_never_takes_how_or_where_the_checkpoint_ran(workdir, tiny_config):
    from recbole_sigma.resume_settings import settings_for_resume

    keys = {"epoch": 0, "cur_step": 0, "best_valid_score": 0.1, "state_dict": {}, "optimizer": {}}
    trained = {"model": "SIGMA", "dataset": "ml-tiny", "dropout_prob": 0.3, "epochs": 7,
               "mamba_backend": "cuda", "eval_batch_size": 8, "data_path": "/elsewhere/ml-tiny",
               "MODEL_INPUT_TYPE": "derived", "only_there": 1}
    torch.save(dict(keys, config=trained), workdir / "t.pth")
    model, dataset, config = settings_for_resume("t.pth", None, None,
                                                 config_dict={"epochs": 2})
    assert (model, dataset) == ("SIGMA", "ml-tiny")
    assert config == {"epochs": 2, "dropout_prob": 0.3, "only_there": 1}
    # data_path is taken where the checkpoint's folder holds the dataset's files
    torch.save(dict(keys, config=dict(trained, data_path=f"{tiny_config['data_path']}/ml-tiny/")),
               workdir / "t.pth")
    assert settings_for_resume("t.pth", None, None)[2]["data_path"] == tiny_config["data_path"]


def test_resume_errors_before_loading_data(workdir, tiny_config):
    with pytest.raises(FileNotFoundError, match="--resume: no checkpoint file at nowhere.pth"):
        run("SIGMA", "ml-tiny", config_dict=tiny_config, resume="nowhere.pth")
    (workdir / "notes.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="notes.pth is not a checkpoint torch can load"):
        run("SIGMA", "ml-tiny", config_dict=tiny_config, resume="notes.pth")
    keys = {"epoch": 0, "cur_step": 0, "best_valid_score": 0.1, "state_dict": {}, "optimizer": {}}
    torch.save(dict(keys, config={"model": "SIGMA", "dataset": "ml-tiny"}), workdir / "s.pth")
    with pytest.raises(ValueError, match="s.pth was trained with model 'SIGMA'.*--model SIGMA"):
        run("SASRec", "ml-tiny", config_dict=tiny_config, resume="s.pth")
    torch.save(dict(keys, config={"model": "SIGMA", "dataset": "ml-tiny"}, last_state=True,
                    best_model_file="gone.pth"), workdir / "s-last.pth")
    with pytest.raises(FileNotFoundError, match="whose best epoch is in .*gone.pth, which is"):
        run("SIGMA", "ml-tiny", config_dict=tiny_config, resume="s-last.pth")
    # another model than the one trained, given: the keys and the flags to give
    trained = {"model": "SIGMA", "dataset": "ml-tiny", "n_layers": 3, "mix_init": [0.5, 2.0],
               "epochs": 1}
    torch.save(dict(keys, config=trained), workdir / "t.pth")
    given = dict(tiny_config, epochs=5, n_layers=1, mix_init=[1.0, 1.0])
    with pytest.raises(ValueError, match=r"trained with mix_init=\[0.5, 2.0\], n_layers=3; this "
                       r"run has mix_init=\[1.0, 1.0\], n_layers=1.*give '--mix_init=\[0.5, 2.0\]' "
                       r"--n_layers=3 \(only epochs"):
        run("SIGMA", "ml-tiny", config_dict=given, resume="t.pth")


class FailsToSave:
    def __reduce__(self):
        raise OSError("disk full")


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path):
    path = str(tmp_path / "SIGMA-last.pth")
    save_atomically({"epoch": 3, "weights": torch.ones(2)}, path)
    with pytest.raises(OSError, match="disk full"):
        save_atomically({"epoch": 4, "model_class": FailsToSave()}, path)
    assert load_checkpoint(path)["epoch"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["SIGMA-last.pth"]


def test_resume_on_other_data_files_is_refused(workdir, tiny_config):
    from conftest import write_slice

    for folder, users in (("trained", 40), ("other", 39)):
        write_slice(workdir / folder, "ml-tiny", users)
    config = dict(tiny_config, epochs=1, data_path=str(workdir / "trained"))
    result = run("SIGMA", "ml-tiny", config_dict=config)
    assert load_checkpoint(result["saved_model_file"])["data_files_sha1"]
    moved = dict(config, epochs=2, data_path=str(workdir / "other"))
    with pytest.raises(ValueError, match="was trained on other data files than .*other/ml-tiny"):
        run("SIGMA", "ml-tiny", config_dict=moved, resume=result["saved_model_file"])
    # the same files in another folder: a resume may move
    shutil.copytree(workdir / "trained", workdir / "copy")
    run("SIGMA", "ml-tiny", config_dict=dict(moved, data_path=str(workdir / "copy")),
        resume=result["saved_model_file"])
