"""Real RecBole pipelines on a slice of real data: training, best-checkpoint reload, the CLI."""

import io
import logging
import subprocess
import sys
from pathlib import Path

import colorlog
import pytest
import torch

from recbole_sigma.quick_start import build_config, run
from recbole_sigma.run_log import console_labelled, console_log, run_log
from recbole_sigma.trainer import last_state_file, load_checkpoint

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("model", ["SIGMA", "SASRec", "GRU4Rec"])
def test_one_epoch_run_reloads_best_checkpoint(workdir, tiny_config, model):
    result = run(model, "ml-tiny", config_dict=dict(tiny_config, n_layers=1))
    assert set(result["test_result"]) == {"hit@10", "ndcg@10", "mrr@10"}
    assert 0.0 <= result["test_result"]["ndcg@10"] <= result["test_result"]["hit@10"] <= 1.0
    assert result["epochs"] == 1 and result["epoch_seconds"] > 0
    checkpoint = load_checkpoint(result["saved_model_file"])
    assert checkpoint["config"]["model"] == model
    assert (workdir / "log" / model).is_dir() and Path(result["log_file"]).is_file()


def test_nan_loss_is_a_clear_error_and_keeps_the_checkpoint(workdir, tiny_config, monkeypatch):
    from recbole.trainer import Trainer

    from recbole_sigma import SIGMA

    epoch = {"idx": 0}
    train_epoch, loss_fn = Trainer._train_epoch, SIGMA.calculate_loss

    def track_epoch(self, train_data, epoch_idx, *args, **kwargs):
        epoch["idx"] = epoch_idx
        return train_epoch(self, train_data, epoch_idx, *args, **kwargs)

    def nan_from_second_epoch(self, interaction):
        return loss_fn(self, interaction) * (float("nan") if epoch["idx"] >= 1 else 1.0)

    monkeypatch.setattr(Trainer, "_train_epoch", track_epoch)
    monkeypatch.setattr(SIGMA, "calculate_loss", nan_from_second_epoch)
    with pytest.raises(ValueError, match="Training loss is NaN.*best checkpoint saved so far"):
        run("SIGMA", "ml-tiny", config_dict=dict(tiny_config, epochs=3))
    best = [p for p in (workdir / "saved").glob("SIGMA-*.pth") if p.stem[-5:] != "-last"]
    assert len(best) == 1 and load_checkpoint(str(best[0]))["epoch"] == 0
    last = load_checkpoint(last_state_file(str(best[0])))  # resumable from the epoch before
    assert last["epoch"] == 0 and last["last_state"]


@pytest.mark.parametrize("flush", [True, False])
def test_training_flushes_denormals_only_while_it_runs(workdir, tiny_config, monkeypatch, flush):
    from recbole_sigma import SIGMA

    tiny = torch.tensor([1e-39])  # a float32 denormal: 0 when flushed
    seen, loss_fn = [], SIGMA.calculate_loss

    def record(self, interaction):
        seen.append((tiny * 1.0).item() == 0.0)
        return loss_fn(self, interaction)

    monkeypatch.setattr(SIGMA, "calculate_loss", record)
    run("SIGMA", "ml-tiny", config_dict=dict(tiny_config, flush_denormal=flush))
    assert seen and all(flag == flush for flag in seen)
    assert (tiny * 1.0).item() > 0  # IEEE behaviour again after training


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model 'Sigmaa'"):
        run("Sigmaa", "ml-tiny")


def test_cli_runs_with_recbole_overrides(workdir, tiny_config):
    args = [f"--{k}={v}" for k, v in tiny_config.items() if k in ("data_path", "epochs")]
    cmd = [sys.executable, str(REPO / "run_recbole_sigma.py"), "--model", "SIGMA",
           "--dataset", "ml-tiny", "--config_files", str(workdir / "tiny.yaml"), "--state=INFO",
           *args]
    import yaml

    (workdir / "tiny.yaml").write_text(yaml.safe_dump(tiny_config))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=workdir)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "test result" in out.stdout + out.stderr
    assert "mamba_backend=torch" in out.stdout + out.stderr


def test_loading_a_recbole_model_leaves_anomaly_detection_off():
    """RecBole's sine.py turns on autograd anomaly detection when its sequential models are
    imported: every later training step recorded stack traces (SIGMA ~4x slower)."""
    code = ("import torch; from recbole_sigma.utils import get_model; "
            "get_model('GRU4Rec'); print(torch.is_anomaly_enabled())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    assert out.stdout.strip() == "False", out.stderr


def test_console_lines_name_their_run_and_log_files_do_not(workdir, tiny_config):
    config = build_config("SIGMA", "ml-tiny", config_dict=dict(tiny_config, state="INFO"))
    console_log(config)
    (handler,) = [h for h in logging.getLogger().handlers
                  if isinstance(h.formatter, colorlog.ColoredFormatter)]
    stream = io.StringIO()
    before = handler.setStream(stream)
    try:
        with console_labelled("trial seed=2020, weight_decay=0.001"), run_log(config) as path:
            logging.getLogger().info("epoch 3 evaluating")
        logging.getLogger().info("after the run")
    finally:
        handler.setStream(before)
    console = stream.getvalue()
    assert "[trial seed=2020, weight_decay=0.001] epoch 3 evaluating" in console
    assert "after the run" in console and "] after the run" not in console
    text = Path(path).read_text()
    assert "epoch 3 evaluating" in text and "[trial" not in text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_console_lines_clear_their_terminal_line_and_wait_for_the_bars(monkeypatch):
    """A worker's log line is written under tqdm's lock (no bar is half drawn) on a cleared line,
    so it does not run through the progress bar on the cursor's line; a file gets no escapes."""
    from tqdm import tqdm

    from recbole_sigma.run_log import AboveBars

    held = []

    class Lock:
        def __enter__(self):
            held.append(True)

        def __exit__(self, *exc):
            held.append(False)

    monkeypatch.setattr(tqdm, "get_lock", classmethod(lambda cls: Lock()))
    terminal, file = _Terminal(), io.StringIO()
    for stream in (terminal, file):
        handler = AboveBars(stream)
        handler.emit(logging.LogRecord("x", logging.INFO, __file__, 1, "epoch 3 evaluating",
                                       None, None))
    assert terminal.getvalue() == "\r\x1b[Kepoch 3 evaluating\n"
    assert file.getvalue() == "epoch 3 evaluating\n"
    assert held == [True, False, True, False]


def test_each_worker_draws_its_progress_bars_on_its_own_line_with_its_label(monkeypatch):
    import multiprocessing

    import recbole.trainer.trainer as recbole_trainer
    from tqdm import tqdm

    from recbole_sigma.parallel import _start_worker

    monkeypatch.setattr(recbole_trainer, "tqdm", recbole_trainer.tqdm)  # restored afterwards
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # restored afterwards, as the threads below
    threads = torch.get_num_threads()
    started = multiprocessing.Value("i", 0)
    lock = tqdm.get_lock()  # restored afterwards
    bars = []
    for label in ("trial seed=2020", "trial seed=2021"):  # two workers, as the pool starts them
        _start_worker(["run_recbole_sigma.py"], multiprocessing.RLock(), started)
        stream = io.StringIO()
        with console_labelled(label):
            bar = recbole_trainer.tqdm(range(3), total=3, ncols=100, desc="Train     0",
                                       file=stream)
        bars.append((bar.pos, bar.desc))
        bar.close()
    torch.set_num_threads(threads)
    tqdm.set_lock(lock)
    assert [abs(pos) for pos, _ in bars] == [0, 1]
    assert [desc for _, desc in bars] == ["[trial seed=2020] Train     0",
                                          "[trial seed=2021] Train     0"]
