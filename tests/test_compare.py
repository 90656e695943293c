"""Model comparison: one split for all models, tables, grouped metrics, seeds, ablations."""

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from recbole_sigma.compare import RUNS_RECORD, compare_from_args, iter_compare, parse_models
from recbole_sigma.compare.grouped import UserEval
from recbole_sigma.compare.logs import read_log
from recbole_sigma.compare.report import write_report
from recbole_sigma.compare.runner import plan_runs
from recbole_sigma.ending import EPOCH_CAP
from recbole_sigma.reuse import ConfigRecords
from recbole_sigma.trainer import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def test_parse_models_adds_ablations_and_rejects_unknown_names():
    names = [v.name for v in parse_models("SIGMA, SASRec", ablations=True)]
    assert names == [
        "SIGMA",
        "SASRec",
        "SIGMA-noflip",
        "SIGMA-nogate",
        "SIGMA-nogru",
        "SIGMA-official",
        "SIGMA-logged",
    ]
    noflip = parse_models("SIGMA-noflip")[0]
    assert (noflip.model, noflip.overrides) == ("SIGMA", {"use_flip": False})
    with pytest.raises(ValueError, match="unknown model"):
        parse_models("SIGMA,NoSuchRec")
    with pytest.raises(ValueError, match="twice"):
        parse_models("SASRec,SASRec")


def test_authors_variants_take_their_own_keys_in_a_comparison(tiny_config, monkeypatch):
    """A paper-variant setting of the comparison, on the command line (which RecBole ranks above
    config_dict) or in a config dict, does not stop SIGMA-official or SIGMA-logged (whose forms
    fix it) and does reach SIGMA; alone, such a variant stops on it. An ablation's switch wins
    over the command line too."""
    monkeypatch.setattr(sys, "argv", ["run_recbole_sigma.py", "--mix_residual=True",
                                      "--use_fe_gru=True"])
    variants = parse_models("SIGMA,SIGMA-official,SIGMA-logged,SIGMA-nogru")
    tasks = plan_runs(variants, "ml-tiny", config_dict=dict(tiny_config, flip_r=3))
    configs = {t.variant.name: t.config() for t in tasks}
    assert (configs["SIGMA"]["mix_residual"], configs["SIGMA"]["flip_r"]) == (True, 3)
    for name in ("SIGMA-official", "SIGMA-logged"):
        assert (configs[name]["mix_residual"], configs[name]["flip_r"]) == ("auto", 5)
        assert configs[name]["sigma_variant"] == name.split("-")[1]
    assert configs["SIGMA-nogru"]["use_fe_gru"] is False
    assert tasks[0].settings()["mix_residual"] is True
    with pytest.raises(ValueError, match="sigma_variant: logged does not read it"):
        plan_runs(parse_models("SIGMA"), "ml-tiny",
                  config_dict=dict(tiny_config, sigma_variant="logged"))


def test_groups_use_documented_bounds():
    lengths = np.array([1, 5, 6, 20, 21, 50])
    hits = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    users = UserEval(lengths, {"hit@10": hits}, [1.0], [6])
    groups = users.groups()
    assert [groups[g]["users"] for g in ("short", "medium", "long")] == [2, 2, 2]
    assert [groups[g]["hit@10"] for g in ("short", "medium", "long")] == [0.5, 1.0, 0.0]


def test_comparison_tables_plot_and_grouped_metrics(tiny_config, workdir):
    variants = parse_models("SIGMA,SASRec,SIGMA-nogru")
    config = dict(tiny_config, MAX_ITEM_LIST_LENGTH=30)
    results = list(iter_compare(variants, "ml-tiny", config_dict=config))
    assert [r.name for r in results] == ["SIGMA", "SASRec", "SIGMA-nogru"]
    for r in results:
        assert r.epochs == 1 and r.parameters > 0 and r.inference_ms > 0
        groups = r.groups.values()
        assert sum(g["users"] for g in groups) == 40
        for key, value in r.test.items():  # RecBole's test result, rounded to 4 places
            weighted = sum(g[key] * g["users"] for g in groups if g["users"]) / 40
            assert weighted == pytest.approx(r.recomputed_test[key])
            assert weighted == pytest.approx(value, abs=1e-4)
    assert results[0].parameters != results[2].parameters  # the FE-GRU is gone
    files = [Path(r.saved_model_file) for r in results]
    assert len(set(files)) == 3 and all(f.is_file() for f in files)
    assert files[2].name.startswith("SIGMA-nogru-seed2020-")
    out = workdir / "out"
    md = write_report(results, out, "tiny").read_text()
    for name in ("SIGMA", "SASRec", "SIGMA-nogru", "test_ndcg@10", "medium", "groups.png"):
        assert name in md
    assert (out / "groups.png").read_bytes()[:4] == b"\x89PNG"
    table = pd.read_csv(out / "comparison.csv")
    assert list(table["model"]) == ["SIGMA", "SASRec", "SIGMA-nogru"]
    assert {
        "valid_ndcg@10_mean",
        "test_hit@10_mean",
        "epoch_seconds_mean",
        "inference_ms_mean",
        "train_peak_mib_mean",
    } <= set(table.columns)
    assert len(pd.read_csv(out / "groups.csv")) == 9


def test_cli_with_two_seeds_gives_std(tiny_config, workdir, monkeypatch):
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(tiny_config))
    argv = ["run_recbole_sigma.py", "--compare", "GRU4Rec", "--dataset", "ml-tiny", "--seeds", "2"]
    monkeypatch.setattr(sys, "argv", argv)
    args = argparse.Namespace(
        compare="GRU4Rec", dataset="ml-tiny", seeds=2, ablations=False, output=str(workdir / "res"),
        jobs=None, command=" ".join(["python", *argv]),
    )
    md = compare_from_args(args, [str(workdir / "tiny.yaml")]).read_text()
    assert "--seeds 2" in md and " ± " in md
    runs = pd.read_csv(workdir / "res" / "runs.csv")
    assert list(runs["seed"]) == [2020, 2021]
    # one epoch of the at most one allowed: both runs ended at the epoch cap
    assert list(runs["ended"]) == [EPOCH_CAP] * 2 and f"| 2 | {EPOCH_CAP} x2 |" in md
    table = pd.read_csv(workdir / "res" / "comparison.csv")
    assert table["seeds"][0] == 2 and not np.isnan(table["epoch_seconds_std"][0])


def test_jobs_reuse_and_a_log_file_per_run(mini_config, workdir, monkeypatch, caplog):
    """A model added to a finished comparison trains alone (the other run is reused), in a
    worker with --jobs 2, and gives the table a serial run gives; a changed setting (here
    --epochs=2) trains again. Each run logs to a file of its own, named in runs.csv."""
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(dict(mini_config, state="INFO")))
    monkeypatch.setattr(sys, "argv", ["run_recbole_sigma.py"])
    caplog.set_level(logging.INFO, logger="recbole_sigma")

    def compare(models, output, jobs=None):
        args = argparse.Namespace(compare=models, dataset="ml-tiny", seeds=1, ablations=False,
                                  output=str(workdir / output), jobs=jobs, command="python ...")
        compare_from_args(args, [str(workdir / "tiny.yaml")])
        return pd.read_csv(workdir / output / "runs.csv")

    compare("GRU4Rec", "res")
    caplog.clear()
    par = compare("GRU4Rec,SIGMA", "res", jobs=2)
    assert "GRU4Rec seed 2020: reusing the finished run" in caplog.text
    assert len((workdir / "res" / RUNS_RECORD).read_text().splitlines()) == 2
    ser = compare("GRU4Rec,SIGMA", "serial")
    columns = [c for c in ser if c.startswith(("model", "seed", "valid_", "test_", "config_"))]
    pd.testing.assert_frame_equal(par[columns], ser[columns])
    for frame in (par, ser):
        for model, log in zip(frame["model"], frame["log_file"], strict=True):
            text = Path(log).read_text()
            assert f"compare: {model}, seed 2020" in text and text.count("compare: ") == 2
        assert list(frame["ended"]) == [read_log(Path(log)).ended for log in frame["log_file"]]

    monkeypatch.setattr(sys, "argv", ["run_recbole_sigma.py", "--epochs=2"])
    caplog.clear()
    again = compare("GRU4Rec", "res")
    assert "GRU4Rec seed 2020: the run in" in caplog.text
    assert "another config (epochs: 1 -> 2)" in caplog.text
    assert list(again["epochs"]) == [2]


def test_an_interrupted_comparison_goes_on_from_its_last_epoch(mini_config, workdir, monkeypatch,
                                                               interrupted_in_epoch_1):
    """A comparison stopped inside a run, run again (here with --jobs 2), resumes that run from
    the last epoch it saved, and ends with the weights and table of an uninterrupted one."""
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(dict(
        mini_config, epochs=3, learning_rate=0.005, train_batch_size=512, state="INFO")))

    def compare(output, jobs=None, *flags):
        monkeypatch.setattr(sys, "argv", ["run_recbole_sigma.py", *flags])
        args = argparse.Namespace(compare="SIGMA,GRU4Rec", dataset="ml-tiny", seeds=1,
                                  ablations=False, output=str(workdir / output), jobs=jobs,
                                  command="python ...")
        compare_from_args(args, [str(workdir / "tiny.yaml")])
        records = [json.loads(line) for line in (workdir / output / RUNS_RECORD).open()]
        return pd.read_csv(workdir / output / "runs.csv"), {
            r["label"]: load_checkpoint(r["result"]["saved_model_file"]) for r in records}

    full, full_weights = compare("full", None, "--checkpoint_dir=elsewhere")  # no shared folder
    with interrupted_in_epoch_1():
        compare("res")  # in SIGMA's epoch 1
    (last,) = (workdir / "saved" / "compare").glob("*/*-last.pth")
    assert last.parent.name == full.set_index("model").loc["SIGMA", "config_hash"]

    again, weights = compare("res", 2)
    columns = [c for c in full if c.startswith(("model", "seed", "valid_", "test_", "config_"))]
    pd.testing.assert_frame_equal(again[columns + ["epochs"]], full[columns + ["epochs"]])
    assert again.set_index("model").loc["SIGMA", "valid_ndcg@10"] > 0
    assert list(again["epochs"]) == [3, 3] and list(again["resumed_from"].fillna(-1)) == [1, -1]
    for label, checkpoint in weights.items():
        assert checkpoint["epoch"] == full_weights[label]["epoch"], label
        for name, value in checkpoint["state_dict"].items():
            assert torch.equal(value, full_weights[label]["state_dict"][name]), (label, name)
    assert not last.exists()
    logs = dict(zip(again["model"], again["log_file"], strict=True))
    assert "Resume training from epoch 1" in Path(logs["SIGMA"]).read_text()
    assert "Resume" not in Path(logs["GRU4Rec"]).read_text()


def test_a_comparison_stopped_while_recording_a_run_tests_it_without_training(
        mini_config, workdir, monkeypatch):
    """A run's last epoch's state is kept until its result is in runs.jsonl: a comparison killed
    while recording it, run again, tests the run without training it again."""
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(dict(mini_config, epochs=2, state="INFO")))
    monkeypatch.setattr(sys, "argv", ["run_recbole_sigma.py"])
    args = argparse.Namespace(compare="GRU4Rec", dataset="ml-tiny", seeds=1, ablations=False,
                              output=str(workdir / "res"), jobs=None, command="python ...")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(ConfigRecords, "add", killed)
        compare_from_args(args, [str(workdir / "tiny.yaml")])
    (last,) = (workdir / "saved" / "compare").glob("*/*-last.pth")

    compare_from_args(args, [str(workdir / "tiny.yaml")])
    runs = pd.read_csv(workdir / "res" / "runs.csv")
    log = Path(runs.loc[0, "log_file"]).read_text()
    assert "Training had finished at epoch 1" in log and "epoch 0 training" not in log
    assert runs.loc[0, "epochs"] == 2 and not last.exists()


def test_two_names_for_one_config_train_once(mini_config, workdir, monkeypatch, caplog):
    """SIGMA with use_flip False and SIGMA-noflip are one run: with --jobs 2 it trains once (the
    two would share a run folder), and both rows show it under their own names."""
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(dict(mini_config, state="INFO")))
    monkeypatch.setattr(sys, "argv", ["run_recbole_sigma.py", "--use_flip=False"])
    caplog.set_level(logging.INFO, logger="recbole_sigma")
    args = argparse.Namespace(compare="SIGMA,SIGMA-noflip", dataset="ml-tiny", seeds=1,
                              ablations=False, output=str(workdir / "res"), jobs=2,
                              command="python ...")
    compare_from_args(args, [str(workdir / "tiny.yaml")])
    runs = pd.read_csv(workdir / "res" / "runs.csv")
    assert list(runs["model"]) == ["SIGMA", "SIGMA-noflip"]
    assert runs["config_hash"].nunique() == 1 and runs["log_file"].nunique() == 1
    assert "SIGMA-noflip seed 2020: reusing the finished run" in caplog.text
