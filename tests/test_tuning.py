"""Tuning on a slice of real data: hyperopt (RecBole's HyperTuning) and Ray Tune, 2 trials each."""

import argparse
import logging
import re
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from recbole.trainer import Trainer

from recbole_sigma import reuse, run_folders
from recbole_sigma.compare.logs import join_resumed, read_log
from recbole_sigma.ending import EARLY_STOP, EPOCH_CAP, SCHEDULER_STOP, UNKNOWN
from recbole_sigma.run_folders import only_process
from recbole_sigma.trainer import load_checkpoint
from recbole_sigma.tuning import tune_from_args
from recbole_sigma.tuning.objective import Objective, train_trial
from recbole_sigma.tuning.results import TrialTable, with_endings
from recbole_sigma.tuning.search_grid import grid_points
from recbole_sigma.tuning.space import read_space


@pytest.fixture
def tiny_files(workdir, tiny_config, monkeypatch):
    """A tiny config file, and a 2-trial space (flip_r in {1, 3}) with a comment line."""
    monkeypatch.setattr(sys, "argv", ["run_recbole_sigma.py"])  # RecBole reads --key=value there
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(dict(tiny_config, n_layers=1)))
    (workdir / "hyper.test").write_text("flip_r choice [1,3]\n# n_layers choice [1,2]\n")
    return [str(workdir / "tiny.yaml")], str(workdir / "hyper.test")


def tune(files, hyper, tool, **kw):
    args = argparse.Namespace(model=kw.get("model", "SIGMA"), dataset="ml-tiny", hyper=hyper,
                              tool=tool, algo=kw.get("algo", "exhaustive"),
                              max_evals=kw.get("max_evals"), ray_address=None,
                              output=kw.get("output", "out"), jobs=kw.get("jobs"),
                              command="python run_recbole_sigma.py --hyper ...")
    return tune_from_args(args, files)


def check_table(workdir, trials):
    table = pd.read_csv(workdir / "out" / "results.csv")
    assert sorted(table["flip_r"]) == trials
    for split in ("valid", "test"):
        assert table[f"{split}_ndcg@10"].between(0, 1).all()
    markdown = (workdir / "out" / "results.md").read_text()
    assert markdown.count("| *") == 1 and "valid_ndcg@10" in markdown
    assert (workdir / "out" / "ndcg_vs_r.png").stat().st_size > 0
    return table


def test_read_space_matches_recbole_syntax(tmp_path):
    path = tmp_path / "hyper.test"
    path.write_text("# comment\nflip_r choice [1,3,5]\nlearning_rate loguniform -8,-5\n\n"
                    "dropout_prob uniform 0.1,0.3\n")
    space = read_space(path)
    assert [(p.name, p.kind, p.values) for p in space] == [
        ("flip_r", "choice", (1, 3, 5)), ("learning_rate", "loguniform", (-8, -5)),
        ("dropout_prob", "uniform", (0.1, 0.3))]
    assert [p["flip_r"] for p in grid_points(space[:1])] == [1, 3, 5]
    with pytest.raises(ValueError, match="learning_rate"):
        grid_points(space)
    path.write_text("flip_r pick [1]\n")
    with pytest.raises(ValueError, match="hyper.test:1"):
        read_space(path)


def test_repo_hyper_file_is_the_issue_grid():
    from pathlib import Path

    space = read_space(Path(__file__).resolve().parent.parent / "hyper.test")
    assert {p.name: p.values for p in space} == {"flip_r": (1, 3, 5, 10, 20), "n_layers": (1, 2)}


def test_hyperopt_two_trials_table_and_resume(workdir, tiny_files):
    best = tune(*tiny_files, "hyperopt")
    table = check_table(workdir, [1, 3])
    assert best["best"] == "*" and best["valid_ndcg@10"] == table["valid_ndcg@10"].max()
    # an interrupted run keeps its rows; a rerun reuses them instead of training again
    objective = Objective("SIGMA", "ml-tiny", TrialTable(workdir / "out", "NDCG@10"))
    again = objective({"flip_r": 3}, tiny_files[0])
    assert again["test_result"]["ndcg@10"] == table.set_index("flip_r").loc[3, "test_ndcg@10"]
    assert len(pd.read_csv(workdir / "out" / "results.csv")) == 2


def test_hyperopt_tpe_respects_max_evals(workdir, tiny_files):
    tune(*tiny_files, "hyperopt", algo="bayes", max_evals=1)
    assert len(pd.read_csv(workdir / "out" / "results.csv")) == 1


def test_ray_tune_two_trials_report_every_epoch(workdir, tiny_files, monkeypatch):
    pytest.importorskip("ray.tune")
    monkeypatch.setenv("RAY_DEDUP_LOGS", "0")
    monkeypatch.setattr(sys, "argv", ["run_recbole_sigma.py", "--epochs=2"])
    tune(*tiny_files, "ray")
    table = check_table(workdir, [1, 3])
    # one report per validation, so ASHA may stop a trial after its first epoch; stopped or
    # not, every trial is in the table with the epochs it trained
    for _, row in table.iterrows():
        (trial,) = (workdir / "out" / "ray").glob(f"train_trial_*flip_r={int(row['flip_r'])}_*")
        reports = (trial / "result.json").read_text().splitlines()
        assert 1 <= len(reports) == row["epochs"] <= 2
        assert row["ended"] == (EPOCH_CAP if row["epochs"] == 2 else SCHEDULER_STOP)
        assert Path(row["log_file"]).is_absolute() and Path(row["log_file"]).is_file()
        # its best epoch is kept in its trial folder (ASHA's stop, even at the epoch cap, comes
        # after the epoch is saved); its last epoch's state is gone
        checkpoint = Path(row["checkpoint"])
        assert checkpoint.parent == workdir / "saved" / "trials" / row["config_hash"]
        kept = load_checkpoint(str(checkpoint))
        assert kept["best_valid_result"]["ndcg@10"] == row["valid_ndcg@10"]
        assert not list(checkpoint.parent.glob("*-last.pth"))
    # a rerun reuses both trials (same config, same scheduler): nothing is trained or added
    tune(*tiny_files, "ray")
    assert pd.read_csv(workdir / "out" / "results.csv").equals(table)
    assert "Trials: 2;" in (workdir / "out" / "results.md").read_text()


class _Session:
    """Ray's trial session, for a trial run in this process: one CPU, its reports kept."""

    def __init__(self) -> None:
        self.reports: list[dict] = []

    def get_trial_resources(self) -> SimpleNamespace:
        return SimpleNamespace(required_resources={"CPU": 1})

    def report(self, metrics: dict) -> None:
        self.reports.append(dict(metrics))


def test_a_ray_trial_stopped_inside_goes_on_from_its_last_epoch(workdir, mini_config, monkeypatch,
                                                                interrupted_in_epoch_1):
    """A Ray trial killed in epoch 1, run again, resumes from epoch 1 and reports what it
    reports uninterrupted; once its row is in the table, its last epoch's state is deleted."""
    pytest.importorskip("ray.tune")
    from recbole_sigma.tuning.search_ray import TableCallback
    from recbole_sigma.tuning.search_ray import train_trial as ray_trial

    monkeypatch.setattr(sys, "argv", ["run_recbole_sigma.py"])
    (workdir / "mini.yaml").write_text(yaml.safe_dump(dict(
        mini_config, epochs=3, learning_rate=0.005, train_batch_size=512, state="INFO")))

    def trial(checkpoint_dir: str) -> list[dict]:
        session = _Session()
        ray_trial({"flip_r": 1}, "SIGMA", "ml-tiny", [str(workdir / "mini.yaml")],
                  {"checkpoint_dir": str(workdir / checkpoint_dir)}, str(workdir / "out"),
                  session)
        return session.reports

    full = trial("elsewhere")
    assert [r["epochs"] for r in full] == [1, 2, 3]
    # the last report ends the trial through Ray (which writes its row before the trial lets go
    # of its folder); the others leave it to ASHA
    assert [r["done"] for r in full] == [False, False, True]
    with interrupted_in_epoch_1():
        trial("saved")
    folder = workdir / "saved" / "trials" / full[-1]["config_hash"]
    (last,) = folder.glob("*-last.pth")

    resumed = trial("saved")
    assert [r["epochs"] for r in resumed] == [2, 3]
    same = [k for k in full[-1]
            if k.startswith(("valid_", "test_", "best_")) or k in ("ended", "done")]
    assert len(same) > 6
    assert [{k: r[k] for k in same} for r in resumed] == [{k: r[k] for k in same}
                                                          for r in full[1:]]
    assert resumed[-1]["resumed_from"] == 1 and full[-1]["resumed_from"] is None
    assert "Resumed from" in Path(resumed[-1]["log_file"]).read_text()
    assert Path(resumed[-1]["checkpoint"]).parent == folder and last.exists()

    # drawn again while its first draw is still in its folder (random, bayes): it waits for
    # that one to end and have its row written, then reuses the row
    held = threading.Event()

    def first_draw_ends() -> None:
        with only_process(folder, "trial flip_r=1"):
            held.set()
            time.sleep(1)
            TableCallback(TrialTable(workdir / "out", "NDCG@10"), ["flip_r"]).on_trial_complete(
                0, [], SimpleNamespace(last_result=dict(resumed[-1], time_total_s=1.0),
                                       config={"flip_r": 1}))

    first = threading.Thread(target=first_draw_ends)
    first.start()
    held.wait()
    start = time.monotonic()
    again = trial("saved")
    first.join()
    assert time.monotonic() - start >= 1 - 0.05

    row = pd.read_csv(workdir / "out" / "results.csv").iloc[0]
    assert row["resumed_from"] == 1 and row["epochs"] == 3
    assert row["test_ndcg@10"] == full[-1]["test_ndcg@10"]
    assert not last.exists()  # deleted once the row is written
    kept = load_checkpoint(row["checkpoint"])
    assert kept["best_valid_result"]["ndcg@10"] == row["valid_ndcg@10"]
    assert [(r["reused"], r["test_ndcg@10"]) for r in again] == [(True, row["test_ndcg@10"])]


def test_local_ray_gets_the_cores_this_process_may_use(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    from recbole_sigma.tuning.search_ray import tune_with_ray

    seen = {}

    def init(**kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 64)
    with pytest.raises(RuntimeError, match="stop here"):
        tune_with_ray([], TrialTable(tmp_path, "ndcg@10", True), "SIGMA", "ml-100k", None, {}, 1)
    assert seen["num_cpus"] == 1


def test_report_says_how_each_trial_ended(tmp_path):
    table = TrialTable(tmp_path, "NDCG@10")
    for r, ndcg, epochs, ended in [(1, 0.02, 9, EARLY_STOP), (3, 0.01, 1, SCHEDULER_STOP),
                                   (5, 0.03, 20, EPOCH_CAP)]:
        table.append({"flip_r": r, "n_layers": 1, "valid_ndcg@10": ndcg,
                      "test_ndcg@10": ndcg / 2, "epochs": epochs, "ended": ended})
    best = table.write_report("t", [])
    assert (best["flip_r"], best["ended"]) == (5, EPOCH_CAP)
    report = (tmp_path / "results.md").read_text()
    assert "metrics are those of its best validation epoch" in report
    assert f"`{EPOCH_CAP}` = the `epochs` limit ended it, it may not have converged" in report
    assert (tmp_path / "ndcg_vs_r.png").read_bytes()[:4] == b"\x89PNG"


def test_grid_trials_end_as_their_logs_say(workdir, mini_config, monkeypatch):
    """Early stopping and the epoch cap, each in the table as the trial's RecBole log has it;
    a table written before the ``ended`` column gets it from the logs."""
    monkeypatch.setattr(sys, "argv", ["run_recbole_sigma.py"])
    # a high learning rate makes the validation score fall after the first epochs; INFO logs
    (workdir / "mini.yaml").write_text(yaml.safe_dump(
        dict(mini_config, epochs=4, learning_rate=0.05, state="INFO")))
    (workdir / "stop.test").write_text("stopping_step choice [0,10]\n")
    tune([str(workdir / "mini.yaml")], "stop.test", "hyperopt", model="GRU4Rec")
    table = pd.read_csv(workdir / "out" / "results.csv")
    logged = dict(zip(table["stopping_step"],
                      [read_log(Path(f)).ended for f in table["log_file"]], strict=True))
    assert dict(zip(table["stopping_step"], table["ended"], strict=True)) == logged
    assert logged == {0: EARLY_STOP, 10: EPOCH_CAP}
    assert table.set_index("stopping_step").loc[10, "epochs"] == 4

    table.drop(columns="ended").to_csv(workdir / "out" / "results.csv", index=False)
    tables = TrialTable(workdir / "out", "NDCG@10")
    tables.session_rows = {0: {}, 1: {}}
    best = tables.write_report("t", [])
    assert best["ended"] == logged[best["stopping_step"]]
    assert f"| {EARLY_STOP} " in (workdir / "out" / "results.md").read_text()
    # a log gone, or one without INFO lines, tells nothing: the trial's end is unknown
    Path(table.set_index("stopping_step").loc[0, "log_file"]).write_text("WARNING only\n")
    assert list(with_endings(tables.ranked()).set_index("stopping_step")["ended"].sort_index()) \
        == [UNKNOWN, EPOCH_CAP]


def test_jobs_and_reuse_only_with_the_same_config(workdir, mini_config, monkeypatch, caplog):
    """--jobs 2 gives the table --jobs 1 gives; a rerun reuses a finished trial only while
    nothing in its config changed (here --epochs=2 trains it again)."""
    monkeypatch.setattr(sys, "argv", ["run_recbole_sigma.py"])
    (workdir / "mini.yaml").write_text(yaml.safe_dump(mini_config))
    files = [str(workdir / "mini.yaml")]
    (workdir / "drop.test").write_text("dropout_prob choice [0.1,0.3]\n")
    caplog.set_level(logging.INFO, logger="recbole_sigma")
    tune(files, "drop.test", "hyperopt", model="GRU4Rec", jobs=2, output="par")
    tune(files, "drop.test", "hyperopt", model="GRU4Rec", output="ser")
    par, ser = (pd.read_csv(workdir / out / "results.csv").sort_values("dropout_prob")
                .reset_index(drop=True) for out in ("par", "ser"))
    columns = [c for c in ser if c.startswith(("dropout", "valid_", "test_", "config_"))]
    pd.testing.assert_frame_equal(par[columns], ser[columns])
    assert all(Path(workdir / f).is_file() for f in par["log_file"])

    caplog.clear()
    tune(files, "drop.test", "hyperopt", model="GRU4Rec", jobs=2, output="par")
    assert caplog.text.count("reusing the finished trial") == 2
    assert len(pd.read_csv(workdir / "par" / "results.csv")) == 2

    monkeypatch.setattr(sys, "argv", ["run_recbole_sigma.py", "--epochs=2"])
    (workdir / "one.test").write_text("dropout_prob choice [0.3]\n")
    caplog.clear()
    best = tune(files, "one.test", "hyperopt", model="GRU4Rec", output="ser")
    assert "another config (epochs: 1 -> 2)" in caplog.text
    assert list(pd.read_csv(workdir / "ser" / "results.csv")["epochs"]) == [1, 1, 2]
    # the report shows this search's trials only, and not the base config's value of the
    # tuned key among the fixed settings
    report = (workdir / "ser" / "results.md").read_text()
    assert best["epochs"] == 2 and "Trials: 1;" in report
    assert "fixed settings: epochs=2, " in report and "dropout_prob=" not in report


def test_hyperopt_jobs_need_the_grid(workdir, tiny_files):
    with pytest.raises(ValueError, match="--jobs 2 with --tool hyperopt --algo bayes"):
        tune(*tiny_files, "hyperopt", algo="bayes", jobs=2)


def test_tuning_a_key_the_variant_does_not_read_stops_first(workdir, tiny_files, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["run_recbole_sigma.py", "--sigma_variant=logged"])
    with pytest.raises(ValueError, match=r"tunes \['flip_r'\], which sigma_variant: logged"):
        tune(*tiny_files, "hyperopt")
    # a tuned variant: each of its values against the tuned and the fixed keys
    (workdir / "variant.test").write_text("sigma_variant choice ['paper','official']\n"
                                          "dropout_prob choice [0.1]\n")
    monkeypatch.setattr(sys, "argv", ["run_recbole_sigma.py", "--mix_residual=True"])
    with pytest.raises(ValueError, match="sigma_variant: official: config key 'mix_residual'"):
        tune(tiny_files[0], str(workdir / "variant.test"), "hyperopt")
    (workdir / "both.test").write_text("sigma_variant choice ['paper','logged']\n"
                                       "flip_r choice [1,3]\n")
    monkeypatch.setattr(sys, "argv", ["run_recbole_sigma.py"])
    with pytest.raises(ValueError, match=r"tunes \['flip_r'\], which sigma_variant: logged"):
        tune(tiny_files[0], str(workdir / "both.test"), "hyperopt")
    assert not (workdir / "out").exists()


def test_tuned_seeds_rank_settings_by_their_mean(tmp_path):
    table = TrialTable(tmp_path, "NDCG@10")
    # flip_r 1 has the best single trial (.060), flip_r 3 the best mean (.050 vs .040)
    for r, seed, ndcg in [(1, 2020, .060), (1, 2021, .030), (1, 2022, .030),
                          (3, 2020, .045), (3, 2021, .055), (3, 2022, .050)]:
        table.append({"flip_r": r, "seed": seed, "valid_ndcg@10": ndcg,
                      "test_ndcg@10": ndcg / 2, "epochs": seed - 2010, "ended": EARLY_STOP})
    best = table.write_report("t", [], ["flip_r", "seed"])
    assert best["flip_r"] == 3 and best["seeds"] == "2020, 2021, 2022"
    assert best["valid_ndcg@10"] == pytest.approx(.050) and best["epochs"] == 11
    assert best["valid_ndcg@10_std"] == pytest.approx(.005)
    report = (tmp_path / "results.md").read_text()
    assert "Settings: 2 (the tuned values but `seed`)" in report
    rows = [line for line in report.splitlines() if line.startswith("| ")]
    assert rows[1].split("|")[1:4] == [" *      ", "        3 ", " 2020, 2021, 2022 "]
    assert f"{EARLY_STOP} x3" in rows[1] and "0.0500 ± 0.0050" in rows[1]
    assert "0.0400 ± 0.0173" in rows[2] and "0.0250 ± 0.0025" in rows[1]  # test, reported
    assert (tmp_path / "ndcg_vs_r.png").read_bytes()[:4] == b"\x89PNG"


def test_tuning_seeds_on_real_runs(workdir, mini_config, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["run_recbole_sigma.py"])
    (workdir / "mini.yaml").write_text(yaml.safe_dump(mini_config))
    (workdir / "seeds.test").write_text("dropout_prob choice [0.1,0.3]\nseed choice [1,2]\n")
    best = tune([str(workdir / "mini.yaml")], "seeds.test", "hyperopt", model="GRU4Rec")
    trials = pd.read_csv(workdir / "out" / "results.csv")
    pairs = zip(trials["dropout_prob"], trials["seed"], strict=True)
    assert sorted(pairs) == [(.1, 1), (.1, 2), (.3, 1), (.3, 2)]
    assert trials.groupby("dropout_prob")["valid_ndcg@10"].nunique().eq(2).all()  # seeds differ
    means = trials.groupby("dropout_prob")["valid_ndcg@10"].mean()
    assert best["dropout_prob"] == means.idxmax() and best["seeds"] == "1, 2"
    assert best["valid_ndcg@10"] == pytest.approx(means.max())
    assert f"best setting {{'dropout_prob': {best['dropout_prob']}}}" in capsys.readouterr().out
    with pytest.raises(ValueError, match="seeds are averaged over, not searched"):
        tune([str(workdir / "mini.yaml")], "seeds.test", "hyperopt", model="GRU4Rec",
             algo="random")
    with pytest.raises(ValueError, match="ASHA would stop some seeds"):
        tune([str(workdir / "mini.yaml")], "seeds.test", "ray", model="GRU4Rec")


def test_reused_trials_keep_this_search_s_values(tmp_path):
    """A trial reused from a search that fixed dropout_prob (no column for it in its row) takes
    this search's value, so its setting is not lost from the ranking."""
    first = TrialTable(tmp_path, "NDCG@10")
    for seed, ndcg in [(2020, .05), (2021, .06)]:
        first.append({"seed": seed, "valid_ndcg@10": ndcg, "ended": EARLY_STOP}, {"seed": seed},
                     {"dropout_prob": 0.1, "seed": seed})
    second = TrialTable(tmp_path, "NDCG@10")
    for seed, ndcg in [(2020, .03), (2021, .03)]:
        params = {"dropout_prob": 0.1, "seed": seed}
        assert second.reuse(params, {"dropout_prob": 0.1, "seed": seed})["dropout_prob"] == 0.1
        params = {"dropout_prob": 0.3, "seed": seed}
        second.append({**params, "valid_ndcg@10": ndcg, "ended": EARLY_STOP}, params, params)
    best = second.write_report("t", [], ["dropout_prob", "seed"])
    assert (best["dropout_prob"], best["seeds"]) == (0.1, "2020, 2021")
    assert best["valid_ndcg@10"] == pytest.approx(.055)
    assert "Settings: 2 " in (tmp_path / "results.md").read_text()


def test_a_setting_missing_seeds_ranks_after_complete_ones(tmp_path):
    table = TrialTable(tmp_path, "NDCG@10")
    for r, seed, ndcg in [(1, 2020, .040), (1, 2021, .042), (3, 2020, .090)]:
        table.append({"flip_r": r, "seed": seed, "valid_ndcg@10": ndcg, "ended": EARLY_STOP})
    best = table.write_report("t", [], ["flip_r", "seed"])
    assert (best["flip_r"], best["seeds"]) == (1, "2020, 2021")


def _uninterrupted_trial(workdir, mini_config, monkeypatch) -> tuple[list[str], pd.Series]:
    """``mini.yaml`` (3 epochs) and ``one.test`` (flip_r 1), and the results row of that trial
    searched uninterrupted into a checkpoint folder of its own (``elsewhere``)."""
    monkeypatch.setattr(sys, "argv", ["run_recbole_sigma.py"])
    files = [str(workdir / "mini.yaml")]
    (workdir / "mini.yaml").write_text(yaml.safe_dump(dict(
        mini_config, epochs=3, learning_rate=0.005, train_batch_size=512, state="INFO")))
    (workdir / "one.test").write_text("flip_r choice [1]\n")
    with monkeypatch.context() as patch:  # it shares no folder with the searches after it
        patch.setattr(sys, "argv", ["run_recbole_sigma.py", "--checkpoint_dir=elsewhere"])
        tune(files, "one.test", "hyperopt", output="full")
    return files, pd.read_csv(workdir / "full" / "results.csv").iloc[0]


def test_an_interrupted_trial_goes_on_from_its_last_epoch(workdir, mini_config, monkeypatch,
                                                          interrupted_in_epoch_1):
    """A search stopped inside a trial, run again (here with --jobs 2), resumes that trial from
    the last epoch it saved, and the trial ends as it does uninterrupted."""
    files, full = _uninterrupted_trial(workdir, mini_config, monkeypatch)
    (workdir / "two.test").write_text("flip_r choice [1,3,3]\n")  # 3 twice: one trial
    assert Path(full["checkpoint"]).parent == Path("elsewhere/trials", full["config_hash"])

    with interrupted_in_epoch_1():
        tune(files, "two.test", "hyperopt")
    folder = workdir / "saved" / "trials" / full["config_hash"]
    (last,) = folder.glob("*-last.pth")  # epoch 0 of the interrupted trial

    tune(files, "two.test", "hyperopt", jobs=2)
    table = pd.read_csv(workdir / "out" / "results.csv").set_index("flip_r")
    resumed = table.loc[1]
    assert "Resume training from epoch 1" in Path(resumed["log_file"]).read_text()
    metrics = [c for c in table if c.startswith(("valid_", "test_"))] + ["epochs", "config_hash"]
    assert resumed[metrics].equals(full[metrics]) and resumed["epochs"] == 3
    assert resumed["resumed_from"] == 1 and pd.isna(table.loc[3, "resumed_from"])
    # compare.logs joins the interrupted trial's log and its resumed log into one run
    logs = sorted((workdir / "log" / "SIGMA").glob("*.log"))
    joined = join_resumed([read_log(p) for p in logs])
    assert len(joined) == len(logs) - 1
    (trial,) = [run for run in joined if len(run.paths) == 2]
    assert Path(trial.paths[-1]).name == Path(resumed["log_file"]).name
    assert sorted(trial.valid_scores) == [0, 1, 2]
    assert not last.exists() and (workdir / resumed["checkpoint"]).parent == folder
    assert "Resume training" not in Path(table.loc[3, "log_file"]).read_text()
    assert Path(table.loc[3, "checkpoint"]).parent.name == table.loc[3, "config_hash"]
    assert len(table) == 2

    # another search with the config of a trial that finished (no row in its table) trains it
    # from the start, in the same folder
    tune(files, "one.test", "hyperopt", output="other")
    other = pd.read_csv(workdir / "other" / "results.csv").iloc[0]
    assert "Resume" not in Path(other["log_file"]).read_text()
    assert other[metrics].equals(full[metrics]) and (workdir / other["checkpoint"]).parent == folder


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_state_left_by_a_kill_after_the_row_is_deleted_when_the_trial_is_reused(
        workdir, mini_config, monkeypatch, jobs):
    """Killed after a trial's row is written but before its last state is deleted: a rerun
    reuses the row and deletes the state (one trial at a time, and the grid with --jobs)."""
    monkeypatch.setattr(sys, "argv", ["run_recbole_sigma.py"])
    (workdir / "mini.yaml").write_text(yaml.safe_dump(dict(mini_config, epochs=1)))
    (workdir / "one.test").write_text("flip_r choice [1]\n")

    def killed(checkpoint):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr("recbole_sigma.tuning.objective.delete_last_state", killed)
        tune([str(workdir / "mini.yaml")], "one.test", "hyperopt")
    (row,) = pd.read_csv(workdir / "out" / "results.csv").to_dict("records")
    (last,) = (workdir / "saved" / "trials" / row["config_hash"]).glob("*-last.pth")

    tune([str(workdir / "mini.yaml")], "one.test", "hyperopt", jobs=jobs)
    assert not last.exists() and Path(row["checkpoint"]).is_file()
    assert pd.read_csv(workdir / "out" / "results.csv").to_dict("records") == [row]


@pytest.mark.parametrize("stopped", ["testing", "recording"])
def test_a_trial_stopped_after_training_is_tested_without_training_again(workdir, mini_config,
                                                                         monkeypatch, stopped):
    """A search killed during a trial's test, or while its row is written, run again, tests the
    trial's best epoch without training it again, and records the uninterrupted trial's metrics
    and epochs."""
    files, full = _uninterrupted_trial(workdir, mini_config, monkeypatch)

    evaluate = Trainer.evaluate

    def killed_in_test(self, eval_data, load_best_model=True, *args, **kwargs):
        if load_best_model:  # the test; validations do not load the best epoch
            raise KeyboardInterrupt
        return evaluate(self, eval_data, load_best_model, *args, **kwargs)

    def killed_in_append(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        if stopped == "testing":
            patch.setattr(Trainer, "evaluate", killed_in_test)
        else:
            patch.setattr(TrialTable, "append", killed_in_append)
        tune(files, "one.test", "hyperopt")
    folder = workdir / "saved" / "trials" / full["config_hash"]
    (last,) = folder.glob("*-last.pth")  # kept until the trial's row is written

    tune(files, "one.test", "hyperopt")
    row = pd.read_csv(workdir / "out" / "results.csv").iloc[0]
    log = Path(row["log_file"]).read_text()
    assert "Training had finished at epoch 2" in log and "epoch 0 training" not in log
    metrics = [c for c in row.index if c.startswith(("valid_", "test_"))] + ["epochs", "ended"]
    assert row[metrics].equals(full[metrics]) and row["epochs"] == 3
    assert row["resumed_from"] == 3 and not last.exists()
    # compare.logs joins the log of the test-only rerun to the interrupted trial's log
    joined = join_resumed([read_log(p) for p in sorted((workdir / "log" / "SIGMA").glob("*.log"))])
    (trial,) = [run for run in joined if len(run.paths) == 2]
    assert Path(trial.paths[-1]).name == Path(row["log_file"]).name
    assert trial.ended == "epoch cap" and sorted(trial.valid_scores) == [0, 1, 2]
    assert trial.test == {k[len("test_"):]: v for k, v in row.items() if k.startswith("test_")}


def test_a_trial_another_process_trains_is_not_trained_twice(tmp_path):
    folder = tmp_path / "trial"
    with only_process(folder, "trial flip_r=1"):
        with pytest.raises(RuntimeError, match="another process is training it"):
            train_trial(("SIGMA", "ml-tiny", None, {"flip_r": 1}, str(folder)))


def test_a_state_that_cannot_be_resumed_names_its_folder(workdir, tiny_files):
    folder = workdir / "saved" / "trials" / "0123"
    folder.mkdir(parents=True)
    (folder / "SIGMA-Nov-30-2026_10-00-00-last.pth").write_text("cut short")
    with pytest.raises(RuntimeError, match=re.escape(f"cannot be resumed (--resume: {folder}/")
                       ) as err:
        train_trial(("SIGMA", "ml-tiny", tiny_files[0], {"flip_r": 1}, str(folder)))
    assert f"delete {folder} to train the run from the start" in str(err.value)


def test_a_trial_left_unfinished_by_other_code_is_named_not_resumed(workdir, tiny_files,
                                                                   monkeypatch, caplog,
                                                                   interrupted_in_epoch_1):
    """A code change gives a trial another config hash: the state its interrupted run left is
    not resumed by this code; a warning names it and the --resume command, and it is kept."""
    files, _ = tiny_files
    config = yaml.safe_load(Path(files[0]).read_text())
    Path(files[0]).write_text(yaml.safe_dump(dict(config, epochs=2)))
    (workdir / "one.test").write_text("flip_r choice [1]\n")
    (workdir / "other.test").write_text("flip_r choice [3]\n")
    with interrupted_in_epoch_1():
        tune(files, "one.test", "hyperopt")
    with interrupted_in_epoch_1():
        tune(files, "other.test", "hyperopt", output="other")
    states = sorted((workdir / "saved" / "trials").glob("*/*-last.pth"))
    assert len(states) == 2  # one per trial
    monkeypatch.setattr(reuse, "training_code_hash", lambda: "the code of a later commit")
    (old,) = [s for s in states if load_checkpoint(str(s))["config"]["flip_r"] == 1]
    with only_process(old.parent, "a run still training there"), \
            caplog.at_level(logging.WARNING, logger="recbole_sigma.run_folders"):
        tune(files, "one.test", "hyperopt", output="held")
    assert "unfinished run" not in caplog.text  # a live run's state is not named
    with caplog.at_level(logging.WARNING, logger="recbole_sigma.run_folders"):
        tune(files, "one.test", "hyperopt")
    row = pd.read_csv(workdir / "out" / "results.csv").iloc[0]
    assert "Resume" not in Path(row["log_file"]).read_text() and row["epochs"] == 2
    (warning,) = [r.getMessage() for r in caplog.records if "unfinished run" in r.getMessage()]
    assert f"`run_recbole_sigma.py --resume saved/trials/{old.parent.name}/{old.name}`" in warning
    assert all(state.exists() for state in states)
    assert Path(row["checkpoint"]).parent.name not in {s.parent.name for s in states}

    caplog.clear()
    monkeypatch.setattr(run_folders, "data_files_hash", lambda *_: "other files")
    with caplog.at_level(logging.WARNING, logger="recbole_sigma.run_folders"):
        tune(files, "one.test", "hyperopt", output="third")
    (warning,) = [r.getMessage() for r in caplog.records if "unfinished run" in r.getMessage()]
    assert "trained on other data files" in warning and "--resume" not in warning
