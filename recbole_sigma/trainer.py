"""RecBole trainers made to reload their own checkpoints on torch >= 2.6, to time epochs, and to
train on CPU with denormals flushed to zero (``flush_denormal``, on by default) and with freed
memory kept for reuse (``keep_freed_memory``, on by default; :mod:`recbole_sigma.heap`).

RecBole 1.2.1 calls ``torch.load(file)`` on the checkpoints it wrote itself; since torch 2.6 that
defaults to ``weights_only=True`` and fails on the pickled ``Config`` inside. The patch below sets
``weights_only=False`` only while RecBole reloads such a checkpoint; nothing in RecBole is edited.
"""

import contextlib
import functools
import os
import time
from typing import Iterator

import torch
from recbole.trainer import Trainer
from recbole.utils import get_trainer

from recbole_sigma.heap import keep_freed_memory


@contextlib.contextmanager
def trusted_checkpoint_load() -> Iterator[None]:
    """Let ``torch.load`` unpickle a checkpoint RecBole wrote (``weights_only=False``)."""
    original = torch.load
    torch.load = functools.partial(original, weights_only=False)
    try:
        yield
    finally:
        torch.load = original


def load_checkpoint(path: str, map_location: str | torch.device = "cpu") -> dict:
    """Load a RecBole checkpoint (a pickled dict with ``config`` and ``state_dict``)."""
    return torch.load(path, map_location=map_location, weights_only=False)


@contextlib.contextmanager
def denormals_flushed(on: bool) -> Iterator[None]:
    """Flush float denormals to zero in this thread (x86), back to IEEE behaviour after.

    Gradients that reach only the last position decay through long sequences into denormal
    range, where each CPU multiply needs a microcode assist: a SIGMA training step at L=200 ran
    1.6x slower with them (GRU and conv backward). Values below 1.2e-38 become 0.
    """
    if not on:
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


class CheckpointSafeMixin:
    """Mixed in front of a RecBole trainer class; see the module docstring."""

    epoch_times: list

    def __init__(self, config, model):
        super().__init__(config, model)
        on_cpu = torch.device(config["device"]).type == "cpu"
        if on_cpu and config["keep_freed_memory"] is not False:
            keep_freed_memory()

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        start = time.perf_counter()
        on_cpu = torch.device(self.device).type == "cpu"
        with denormals_flushed(on_cpu and self.config["flush_denormal"] is not False):
            loss = super()._train_epoch(train_data, epoch_idx, loss_func, show_progress)
        self.epoch_times = getattr(self, "epoch_times", []) + [time.perf_counter() - start]
        return loss

    def _check_nan(self, loss: torch.Tensor) -> None:
        if torch.isnan(loss):
            kept = (
                f"The best checkpoint saved so far is kept at {self.saved_model_file}."
                if os.path.isfile(self.saved_model_file)
                else "No checkpoint was saved before."
            )
            raise ValueError(
                f"Training loss is NaN (model {self.config['model']}). {kept} Lower "
                "learning_rate, set clip_grad_norm (e.g. {'max_norm': 5}) or check the input data."
            )

    def resume_checkpoint(self, resume_file):
        with trusted_checkpoint_load():
            return super().resume_checkpoint(resume_file)

    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        with trusted_checkpoint_load():
            return super().evaluate(eval_data, load_best_model, model_file, show_progress)


@functools.cache
def safe_trainer_class(trainer_cls: type = Trainer) -> type:
    """``trainer_cls`` with :class:`CheckpointSafeMixin` in front."""
    return type(trainer_cls.__name__, (CheckpointSafeMixin, trainer_cls), {})


def get_safe_trainer(model_type, model_name: str) -> type:
    """RecBole's ``get_trainer`` choice for this model, made checkpoint-safe."""
    return safe_trainer_class(get_trainer(model_type, model_name))
