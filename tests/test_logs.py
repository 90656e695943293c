"""The results table read back from real RecBole log files."""

from recbole_sigma.compare.logs import read_log, table
from recbole_sigma.quick_start import run


def _only_log(workdir, model="SIGMA"):
    (path,) = (workdir / "log" / model).glob("*.log")
    return read_log(path)


def test_epoch_cap_run_reads_back_as_logged(workdir, tiny_config):
    result = run("SIGMA", "ml-tiny", config_dict=dict(tiny_config, epochs=2, state="INFO"))
    logged = _only_log(workdir)
    assert logged.ended == "epoch cap" and len(logged.valid_scores) == 2
    assert logged.test == dict(result["test_result"])
    assert logged.best_valid == dict(result["best_valid_result"])
    assert logged.params["sigma_variant"] == "paper"
    assert "| SIGMA | paper | 2020 | 2 | epoch cap |" in table([logged], ["sigma_variant"])


def test_early_stopped_run_is_marked(workdir, tiny_config):
    # stopping_step 0: the first epoch whose validation score is below the best ends the run
    config = dict(tiny_config, epochs=15, stopping_step=0, learning_rate=0.01, state="INFO")
    run("GRU4Rec", "ml-tiny", config_dict=config)  # the log format is RecBole's, for any model
    logged = _only_log(workdir, "GRU4Rec")
    assert logged.ended == "early stop"
    assert logged.stopped_at == logged.best_epoch
    assert len(logged.valid_scores) == logged.best_epoch + 2 < 15
    assert logged.valid_scores[-1] < max(logged.valid_scores)
