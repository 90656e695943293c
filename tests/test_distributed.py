"""DDP on torch.distributed with gloo on CPU: two processes train one model, like one process."""

import socket

import pytest
from recbole.utils import init_seed

from recbole_sigma.quick_start import load_data_and_model, run
from recbole_sigma.trainer import load_checkpoint
from recbole_sigma.utils import get_model, get_trainer


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return str(s.getsockname()[1])


def test_two_cpu_processes_train_one_model(workdir, tiny_config, one_thread):
    # one full batch per epoch and no dropout: 2 ranks x half a batch = 1 process x the batch
    config = dict(tiny_config, state="INFO", epochs=3, train_batch_size=8192, dropout_prob=0.0,
                  learning_rate=0.01)
    two = run("SIGMA", "ml-tiny", config_dict=config, nproc=2, port=free_port())

    digests = two["rank_parameter_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]  # identical parameters on both ranks
    checkpoint = workdir / two["saved_model_file"]
    assert list((workdir / "saved").iterdir()) == [checkpoint]  # rank 0 wrote the one file
    logs = [p.read_text() for p in (workdir / "log" / "SIGMA").glob("*.log")]
    assert sum("test result" in text for text in logs) == 1  # rank 0 logged the metrics

    # the reduced test metrics are those of all test users, as one process computes them
    loaded, model, _, train_data, _, test_data = load_data_and_model(str(checkpoint))
    alone = get_trainer(loaded["MODEL_TYPE"], "SIGMA")(loaded, model).evaluate(
        test_data, load_best_model=False)
    assert two["test_result"] == pytest.approx(dict(alone), abs=2e-4)

    one = run("SIGMA", "ml-tiny", config_dict=config)
    assert two["best_valid_result"] == pytest.approx(dict(one["best_valid_result"]), abs=0.01)
    w1 = load_checkpoint(one["saved_model_file"])["state_dict"]
    w2 = load_checkpoint(str(checkpoint))["state_dict"]
    init_seed(loaded["seed"], True)
    w0 = get_model("SIGMA")(loaded, train_data.dataset).state_dict()  # the runs' initial weights
    moved = max((w1[k] - w0[k]).abs().max().item() for k in w1)
    gap = max((w1[k] - w2[k]).abs().max().item() for k in w1)
    assert gap < 0.01 * moved
