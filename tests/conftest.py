"""Shared fixtures: a tiny slice of real data (RecBole's bundled ml-100k) and tiny configs."""

import contextlib
from pathlib import Path

import pytest
import recbole
import torch
from recbole.trainer import Trainer

ML100K = Path(recbole.__file__).parent / "dataset_example" / "ml-100k" / "ml-100k.inter"

# the paper's protocol (leave-one-out by time, full ranking) at toy sizes, for fast tests
TINY_CONFIG = {
    "USER_ID_FIELD": "user_id",
    "ITEM_ID_FIELD": "item_id",
    "TIME_FIELD": "timestamp",
    "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
    "MAX_ITEM_LIST_LENGTH": 20,
    "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user",
                  "mode": "full"},
    "metrics": ["Hit", "NDCG", "MRR"],
    "topk": [10],
    "valid_metric": "NDCG@10",
    "train_neg_sample_args": None,
    "epochs": 1,
    "train_batch_size": 256,
    "eval_batch_size": 256,
    "hidden_size": 16,
    "d_state": 8,
    "show_progress": False,
    "use_gpu": False,
    "state": "WARNING",
}


def write_slice(folder: Path, name: str, users: int) -> Path:
    """Write the first ``users`` users of ml-100k as ``folder/name/name.inter``."""
    lines = ML100K.read_text().splitlines()
    keep = {str(u) for u in range(1, users + 1)}
    rows = [lines[0]] + [row for row in lines[1:] if row.split("\t")[0] in keep]
    out = folder / name
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.inter").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread: on a busy 2-core machine, two OpenMP threads can be 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory) -> dict:
    """Config dict for a RecBole run on the first 40 users of ml-100k (real data, ~4k rows)."""
    root = tmp_path_factory.mktemp("data")
    write_slice(root, "ml-tiny", 40)
    return dict(TINY_CONFIG, data_path=str(root))


@pytest.fixture(scope="session")
def mini_config(tmp_path_factory) -> dict:
    """Config dict for the first 12 users of ml-100k (~1k rows), for tests that train many runs."""
    root = tmp_path_factory.mktemp("mini")
    write_slice(root, "ml-tiny", 12)
    return dict(TINY_CONFIG, data_path=str(root))


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """Run inside a fresh folder: RecBole writes ./log, ./saved and ./log_tensorboard there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def tiny_dataset(tiny_config):
    """The tiny slice loaded by RecBole (shared: it does not depend on the model's keys)."""
    from recbole.data import create_dataset

    from recbole_sigma.quick_start import build_config

    return create_dataset(build_config("SIGMA", "ml-tiny", config_dict=tiny_config))


@pytest.fixture
def make_sigma(tiny_config, tiny_dataset):
    """Build a SIGMA model on the tiny slice with config overrides."""
    from recbole_sigma import SIGMA
    from recbole_sigma.quick_start import build_config

    def make(**overrides):
        config = build_config("SIGMA", "ml-tiny", config_dict=dict(tiny_config, **overrides))
        torch.manual_seed(0)
        return SIGMA(config, tiny_dataset)

    return make


@pytest.fixture
def interrupted_in_epoch_1(monkeypatch):
    """A context manager: training inside it stops with a KeyboardInterrupt as epoch 1 starts
    (after epoch 0's validation), which the block must raise."""

    @contextlib.contextmanager
    def interrupted():
        train_epoch = Trainer._train_epoch

        def stopped_at_epoch_1(self, train_data, epoch_idx, *args, **kwargs):
            if epoch_idx == 1:
                raise KeyboardInterrupt
            return train_epoch(self, train_data, epoch_idx, *args, **kwargs)

        with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
            patch.setattr(Trainer, "_train_epoch", stopped_at_epoch_1)
            yield

    return interrupted
