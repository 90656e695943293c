"""The results table read back from real RecBole log files, and from resumed runs' logs (text in
the format of real ones)."""

from datetime import datetime, timedelta

from recbole_sigma.compare.logs import join_resumed, read_log, setting_table, table
from recbole_sigma.quick_start import run


def _only_log(workdir, model="SIGMA"):
    (path,) = (workdir / "log" / model).glob("*.log")
    return read_log(path)


def test_epoch_cap_run_reads_back_as_logged(workdir, tiny_config):
    result = run("SIGMA", "ml-tiny", config_dict=dict(tiny_config, epochs=2, state="INFO"))
    logged = _only_log(workdir)
    assert logged.ended == "epoch cap" and len(logged.valid_scores) == 2
    assert sorted(logged.train_losses) == [0, 1] and min(logged.train_losses.values()) > 0
    assert logged.test == dict(result["test_result"])
    assert logged.best_valid == dict(result["best_valid_result"])
    assert logged.params["sigma_variant"] == "paper"
    assert "| SIGMA | paper | 2020 | 2 | epoch cap |" in table([logged], ["sigma_variant"])
    assert table([logged], ["sigma_variant", "seed"]) == table([logged], ["sigma_variant"])


def test_early_stopped_run_is_marked(workdir, tiny_config):
    # stopping_step 0: the first epoch whose validation score is below the best ends the run
    config = dict(tiny_config, epochs=15, stopping_step=0, learning_rate=0.01, state="INFO")
    run("GRU4Rec", "ml-tiny", config_dict=config)  # the log format is RecBole's, for any model
    logged = _only_log(workdir, "GRU4Rec")
    assert logged.ended == "early stop"
    assert logged.stopped_at == logged.best_epoch
    assert len(logged.valid_scores) == logged.best_epoch + 2 < 15
    assert logged.valid_scores[max(logged.valid_scores)] < max(logged.valid_scores.values())


CHECKPOINT = "saved/SIGMA-Nov-29-2026_09-25-27.pth"
TEST = "OrderedDict([('hit@10', 0.0618), ('ndcg@10', 0.0334), ('mrr@10', 0.0247)])"


def _log(tmp_path, start: str, scores: dict[int, float], *, resumed_from=None, best=0.0,
         stopped_at=None, test=TEST, checkpoint=CHECKPOINT, seed=2020, variant="paper"):
    """A SIGMA log as RecBole and the plugin write it: the config, the resume, then per epoch
    training, validation and (when the score is at least ``best``) the checkpoint."""
    time = datetime.strptime(start, "%a %d %b %Y %H:%M:%S")
    path = tmp_path / f"SIGMA-amazon-beauty-{time:%b-%d-%Y_%H-%M-%S}-abc123.log"

    def at(message: str) -> str:
        nonlocal time
        time += timedelta(seconds=30)
        return f"{time:%a %d %b %Y %H:%M:%S} INFO  {message}"

    lines = [at(""), "General Hyper Parameters:", "gpu_id = 0", f"seed = {seed}",
             "checkpoint_dir = saved", "", "Training Hyper Parameters:", "epochs = 10",
             "stopping_step = 2", "valid_metric = NDCG@10", "valid_metric_bigger = True", "",
             "Other Hyper Parameters: ", f"sigma_variant = {variant}", "", "",
             at("amazon-beauty"), "The number of users: 22364", at("Trainable parameters: 947714")]
    if resumed_from is not None:
        lines.append(at(f"Checkpoint loaded. Resume training from epoch {resumed_from}"))
    lines.append(at(f"The last epoch's state goes to {checkpoint[:-4]}-last.pth (for --resume)"))
    for epoch, score in scores.items():
        lines += [at(f"epoch {epoch} training [time: {100 + 2 * epoch}.00s, train loss: "
                     f"{10_000 * score:.4f}]"),
                  at(f"epoch {epoch} evaluating [time: 9.50s, valid_score: {score:.6f}]"),
                  at("valid result: "),
                  f"hit@10 : {2 * score:.4f}    ndcg@10 : {score:.4f}    mrr@10 : {score / 2:.4f}"]
        if score >= best:
            best = score
            lines.append(at(f"Saving current: {checkpoint}"))
    if stopped_at is not None:
        lines.append(at(f"Finished training, best eval result in epoch {stopped_at}"))
    if test:
        lines += [at(f"Loading model structure and parameters from {checkpoint}"),
                  at(f"best valid : OrderedDict([('hit@10', {2 * best:.4f}), ('ndcg@10', "
                     f"{best:.4f}), ('mrr@10', {best / 2:.4f})])"),
                  at(f"test result: {test}")]
    path.write_text("\n".join(lines) + "\n")
    return path


def _interrupted_and_resumed(tmp_path):
    # best epoch 3 (a tie with epoch 2 counts as better), interrupted after epoch 5
    first = _log(tmp_path, "Sun 29 Nov 2026 09:25:19",
                 {0: .01, 1: .02, 2: .03, 3: .03, 4: .025, 5: .028}, test="")
    # resumed from epoch 3's checkpoint: epochs 4 and 5 trained again, best 6, early stop at 9
    resumed = _log(tmp_path, "Sun 29 Nov 2026 13:30:18",
                   {4: .032, 5: .029, 6: .032, 7: .031, 8: .030, 9: .027},
                   resumed_from=4, best=.03, stopped_at=6)
    return first, resumed


def test_resumed_run_is_one_row(tmp_path):
    first, resumed = _interrupted_and_resumed(tmp_path)
    (logged,) = join_resumed([read_log(first), read_log(resumed)])
    assert logged.paths == [first, resumed]
    assert logged.ended == "early stop" and logged.best_epoch == 6
    assert sorted(logged.valid_scores) == list(range(10))
    assert logged.valid_scores[5] == 0.029  # the retrained epoch, not the interrupted one
    assert sorted(logged.train_losses) == list(range(10)) and logged.train_losses[5] == 290.0
    assert logged.best_valid == {"hit@10": 0.064, "ndcg@10": 0.032, "mrr@10": 0.016}
    assert logged.test == {"hit@10": 0.0618, "ndcg@10": 0.0334, "mrr@10": 0.0247}
    row = table([logged], ["sigma_variant"]).splitlines()[2]
    # the mean of 12 training lines (epochs 4 and 5 twice) of 100 s + 2 s per epoch
    assert row.startswith("| SIGMA | paper | 2020 | 10 | early stop | 6 | 109 | 0.0320 | "
                          "0.0618 | 0.0334 | 0.0247 | ")
    assert f"[{first.name}]({first.name}), [{resumed.name}]({resumed.name}) |" in row


def test_resumed_log_alone_has_no_best_epoch(tmp_path):
    _, resumed = _interrupted_and_resumed(tmp_path)
    (logged,) = join_resumed([read_log(resumed)])
    assert logged.ended == "early stop, resumed at epoch 4 (earlier log not given)"
    assert logged.best_epoch is None and logged.best_valid == {}
    assert ("| 6 | early stop, resumed at epoch 4 (earlier log not given) |  | 113 | nan | "
            "0.0618 |") in table([logged], [])


def test_chain_of_resumes_in_any_order(tmp_path):
    start = _log(tmp_path, "Mon 30 Nov 2026 08:00:00", {0: .01, 1: .02, 2: .03}, test="")
    # from the last epoch's state, twice; the second resume trains to the epoch cap
    middle = _log(tmp_path, "Mon 30 Nov 2026 09:00:00", {3: .04, 4: .035}, resumed_from=3,
                  best=.03, test="")
    end = _log(tmp_path, "Mon 30 Nov 2026 10:00:00", {5: .045, 6: .05, 7: .04, 8: .03, 9: .02},
               resumed_from=5, best=.04)
    (logged,) = join_resumed([read_log(end), read_log(start), read_log(middle)])
    assert logged.paths == [start, middle, end]
    assert logged.ended == "epoch cap" and logged.best_epoch == 6
    assert len(logged.valid_scores) == 10 and logged.best_valid["ndcg@10"] == 0.05
    # without the middle log, the last one does not follow the first (its epochs 3-4 are missing)
    alone = join_resumed([read_log(start), read_log(end)])[1]
    assert alone.paths == [end] and alone.best_epoch is None


def test_unrelated_runs_stay_apart(tmp_path):
    other = _log(tmp_path, "Sun 29 Nov 2026 10:00:00", {0: .02, 1: .01}, stopped_at=0,
                 checkpoint="saved/SIGMA-Nov-29-2026_10-00-05.pth")
    first, resumed = _interrupted_and_resumed(tmp_path)
    runs = join_resumed([read_log(p) for p in (resumed, other, first)])
    assert [r.paths for r in runs] == [[other], [first, resumed]]  # in the order of first logs
    assert [r.best_epoch for r in runs] == [0, 6]
    (alone, fresh) = join_resumed([read_log(resumed), read_log(other)])
    assert alone.best_epoch is None and fresh.best_epoch == 0


def _test_result(ndcg: float) -> str:
    return f"OrderedDict([('hit@10', {2 * ndcg}), ('ndcg@10', {ndcg}), ('mrr@10', {ndcg / 2})])"


def test_setting_rows_average_the_finished_seeds(tmp_path):
    def log(minute, seed, variant, best, ndcg):
        return _log(tmp_path, f"Mon 30 Nov 2026 08:{minute:02d}:00", {0: best / 2, 1: best},
                    stopped_at=1, test=_test_result(ndcg) if ndcg else "", seed=seed,
                    variant=variant, checkpoint=f"saved/SIGMA-Nov-30-2026_08-{minute:02d}-05.pth")

    logs = [log(0, 2020, "paper", .05, .040), log(1, 2020, "logged", .06, .045),
            log(2, 2021, "paper", .07, .044), log(3, 2022, "paper", .09, None)]
    text = setting_table(join_resumed([read_log(p) for p in logs]), ["sigma_variant"])
    head, _, paper, logged = text.splitlines()
    assert head.startswith("| run | sigma_variant | seeds | ended | valid NDCG@10 | test HR@10 |")
    # seeds 2020 and 2021 finished; 2022 has no test result and is left out of the means:
    # valid (.05, .07) -> .06 ± .0141; test NDCG (.040, .044) -> .042 ± .0028
    assert paper == ("| SIGMA | paper | 2020, 2021 | early stop x2, not finished x1 | "
                     "0.0600 ± 0.0141 | 0.0840 ± 0.0057 | 0.0420 ± 0.0028 | 0.0210 ± 0.0014 |")
    assert logged == "| SIGMA | logged | 2020 | early stop x1 | 0.0600 | 0.0900 | 0.0450 | 0.0225 |"


def test_setting_without_a_finished_run_shows_no_metrics(tmp_path):
    first, _ = _interrupted_and_resumed(tmp_path)
    text = setting_table(join_resumed([read_log(first)]), [])
    assert text.splitlines()[2] == "| SIGMA |  | not finished x1 |  |  |  |  |"


def test_setting_rows_leave_out_a_resumed_log_given_alone(tmp_path):
    first, resumed = _interrupted_and_resumed(tmp_path)
    other = _log(tmp_path, "Mon 30 Nov 2026 08:00:00", {0: .02, 1: .04}, stopped_at=1,
                 test=_test_result(.05), checkpoint="saved/SIGMA-Nov-30-2026_08-00-05.pth")
    alone = setting_table(join_resumed([read_log(resumed), read_log(other)]), [])
    # the resumed log has a test result but no best epoch: only the other run is averaged
    assert alone.splitlines()[2] == (
        "| SIGMA | 2020 | early stop, resumed at epoch 4 (earlier log not given) x1, early stop "
        "x1 | 0.0400 | 0.1000 | 0.0500 | 0.0250 |")
    together = setting_table(join_resumed([read_log(p) for p in (first, resumed, other)]), [])
    # with its first log it is one complete run: seed 2020 twice, both in the means
    assert together.splitlines()[2] == (
        "| SIGMA | 2020, 2020 | early stop x2 | 0.0360 ± 0.0057 | 0.0809 ± 0.0270 | "
        "0.0417 ± 0.0117 | 0.0249 ± 0.0002 |")


def test_setting_rows_say_when_their_runs_differ_in_another_key(tmp_path):
    logs = [_log(tmp_path, f"Mon 30 Nov 2026 08:0{i}:00", {0: .02}, stopped_at=0, seed=seed,
                 variant=variant, checkpoint=f"saved/SIGMA-Nov-30-2026_08-0{i}-05.pth")
            for i, (seed, variant) in enumerate([(2020, "paper"), (2021, "logged")])]
    runs = join_resumed([read_log(p) for p in logs])
    assert "(runs differ in sigma_variant: add to --keys)" in setting_table(runs, [])
    assert "differ" not in setting_table(runs, ["sigma_variant"])


def test_valid_plateau_averages_consecutive_epochs_of_joined_runs(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "valid_plateau.py"
    spec = importlib.util.spec_from_file_location("valid_plateau", path)
    plateau = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plateau)
    first, resumed = _interrupted_and_resumed(tmp_path)
    (logged,) = join_resumed([read_log(first), read_log(resumed)])
    # valid .01 .02 .03 .03 .032 .029 .032 .031 .030 .027: epochs 4-6 and 6-8 average .031
    assert abs(plateau.best_window_mean(logged, 3) - 0.031) < 1e-12
    row = plateau.plateau_table([logged], ["sigma_variant"], 3).splitlines()[2]
    assert row == "| SIGMA | paper | 2020 | 0.0320 | 0.0310 | 0.0010 | 0.0334 |"
    # a resumed log without the log it resumed has no best epoch: it is left out
    assert len(plateau.plateau_table(join_resumed([read_log(resumed)]), [], 3).splitlines()) == 2
    # two runs pooled into one setting though they differ in a key not given
    other = _log(tmp_path, "Mon 30 Nov 2026 08:00:00", {0: .02, 1: .04, 2: .03}, stopped_at=1,
                 test=_test_result(.05), seed=2021, variant="logged",
                 checkpoint="saved/SIGMA-Nov-30-2026_08-00-05.pth")
    runs = join_resumed([read_log(p) for p in (first, resumed, other)])
    assert plateau.plateau_table(runs, [], 3).splitlines()[2] == (
        "| SIGMA | 2020, 2021 (runs differ in sigma_variant: add to --keys) | 0.0360 | 0.0305 | "
        "0.0055 | 0.0417 |")
    assert "runs differ" not in plateau.plateau_table(runs, ["sigma_variant"], 3)


def test_trials_trained_at_once_stay_apart_though_their_files_share_a_name(tmp_path):
    # two --jobs trials start in the same second: one checkpoint name, each in its own folder
    name = "SIGMA-Nov-30-2026_19-55-31.pth"
    firsts, resumes = [], []
    for folder, seed, start in (("aaa", 2020, "00"), ("bbb", 2021, "01")):
        checkpoint = f"saved/trials/{folder}/{name}"
        firsts.append(_log(tmp_path, f"Mon 30 Nov 2026 19:55:{start}", {0: .01, 1: .02},
                           test="", checkpoint=checkpoint, seed=seed))
        resumes.append(_log(tmp_path, f"Mon 30 Nov 2026 22:16:{start}", {2: .03}, resumed_from=2,
                            best=.02, checkpoint=checkpoint, seed=seed))
    runs = join_resumed([read_log(p) for p in (*resumes[::-1], *firsts)])
    assert sorted(tuple(r.paths) for r in runs) == sorted(zip(firsts, resumes, strict=True))
    # a resume that names the run's folder by an absolute path still joins it
    moved = _log(tmp_path, "Mon 30 Nov 2026 23:00:00", {2: .03}, resumed_from=2, best=.02,
                 checkpoint=f"/work/runs/x/saved/trials/aaa/{name}", seed=2020)
    (joined,) = join_resumed([read_log(firsts[0]), read_log(moved)])
    assert joined.paths == [firsts[0], moved]


def test_a_rerun_that_only_tests_joins_its_run_even_within_the_same_second(tmp_path):
    # the run trained epochs 0-2 and was stopped in its test; the rerun, started in the same
    # second, resumed its last state, had nothing to train and tested: it names no checkpoint
    # but the state it resumed from
    first = _log(tmp_path, "Mon 30 Nov 2026 23:42:48", {0: .01, 1: .02, 2: .03}, test="")
    rerun = tmp_path / "rerun.log"
    (tmp_path / "other").mkdir()
    lines = [line for line in _log(tmp_path / "other", "Mon 30 Nov 2026 23:42:48", {},
                                   resumed_from=3, best=.03).read_text().splitlines()
             if "state goes to" not in line and "Loading model" not in line]
    lines.insert(-2, f"Mon 30 Nov 2026 23:42:49 INFO  Resumed from {CHECKPOINT[:-4]}-last.pth")
    rerun.write_text("\n".join(lines) + "\n")
    assert read_log(rerun).checkpoint == "saved/SIGMA-Nov-29-2026_09-25-27.pth"
    (logged,) = join_resumed([read_log(rerun), read_log(first)])
    assert logged.paths == [first, rerun] and sorted(logged.valid_scores) == [0, 1, 2]
    assert logged.test["ndcg@10"] == 0.0334 and logged.best_epoch == 2
