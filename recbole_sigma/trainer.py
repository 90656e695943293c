"""RecBole trainers made to reload their own checkpoints on torch >= 2.6, to resume a run
exactly, to train with DDP on CPU ranks too, to time epochs, and to train on CPU with denormals
flushed to zero (``flush_denormal``, on by default) and with freed memory kept for reuse
(``keep_freed_memory``, on by default; :mod:`recbole_sigma.heap`).

Checkpoints: RecBole 1.2.1 calls ``torch.load(file)`` on the checkpoints it wrote itself; since
torch 2.6 that defaults to ``weights_only=True`` and fails on the pickled ``Config`` inside. The
patch below sets ``weights_only=False`` only while RecBole reloads such a checkpoint; nothing in
RecBole is edited.

Resuming: RecBole writes its checkpoint only when the validation score improves, and
``resume_checkpoint`` restores weights, optimizer, epoch, best score and the early-stopping
counter from it. These trainers also write, after every validation, the state of the epoch just
trained to ``<checkpoint>-last.pth`` (deleted when training ends; the package's runs keep it
until their test result is in, so a run stopped while testing goes on to its test without
training again), and store in both files the best validation result and every rank's random state
(:mod:`recbole_sigma.rng`). Resumed from either file, a run trains the epochs the uninterrupted
run would have trained.

DDP: RecBole wraps the model in ``DistributedDataParallel(device_ids=[local_rank])``, which only
GPU modules accept; on CPU ranks the wrapper is built without device ids. Every rank uses rank
0's checkpoint name and waits until the file is written.
"""

import contextlib
import functools
import os
import shlex
import time
from pathlib import Path
from typing import Any, Iterator, Optional

import torch
from recbole.trainer import Trainer
from recbole.utils import get_trainer, set_color
from torch.nn.parallel import DistributedDataParallel

from recbole_sigma.distributed import all_gather, barrier, broadcast, global_rank
from recbole_sigma.ending import how_ended
from recbole_sigma.heap import keep_freed_memory
from recbole_sigma.reuse import EMPTY_HASH, data_files_hash
from recbole_sigma.rng import rng_state, set_rng_state

LAST_STATE_SUFFIX = "-last.pth"
CHECKPOINT_KEYS = ("config", "epoch", "cur_step", "best_valid_score", "state_dict", "optimizer")


@contextlib.contextmanager
def trusted_checkpoint_load() -> Iterator[None]:
    """Let ``torch.load`` unpickle a checkpoint RecBole wrote (``weights_only=False``)."""
    original = torch.load
    torch.load = functools.partial(original, weights_only=False)
    try:
        yield
    finally:
        torch.load = original


def load_checkpoint(
    path: str, map_location: str | torch.device = "cpu", mmap: bool = False
) -> dict:
    """Load a RecBole checkpoint (a pickled dict with ``config`` and ``state_dict``); with
    ``mmap``, its tensors are mapped from the file, not read (to look at its config)."""
    return torch.load(path, map_location=map_location, weights_only=False, mmap=mmap)


def read_checkpoint(path: str | Path) -> dict:
    """Load a RecBole checkpoint, or raise naming the file when it is missing, unreadable or
    not one (it needs ``config`` and ``state_dict``)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        saved = load_checkpoint(str(path))
    except Exception as err:  # torch.load: RuntimeError, UnpicklingError, EOFError, ...
        raise ValueError(
            f"{path} is not a readable checkpoint ({type(err).__name__}: {err}); it may be "
            "cut short (a run stopped while saving) or another kind of file: pass a .pth file "
            "that training wrote under saved/"
        ) from None
    if not isinstance(saved, dict) or "config" not in saved or "state_dict" not in saved:
        raise ValueError(f"{path} is not a RecBole checkpoint (needs config, state_dict)")
    return saved


def last_state_file(checkpoint: str) -> str:
    """Where the run that keeps its best epoch in ``checkpoint`` writes its last epoch."""
    return str(Path(checkpoint).with_suffix("")) + LAST_STATE_SUFFIX


def delete_last_state(checkpoint: Any) -> None:
    """Delete the last epoch's state of the run that keeps its best epoch in ``checkpoint`` (a
    caller of ``fit(..., keep_last_state=True)``, once it has recorded the run's result); a
    run without a checkpoint (None, or NaN from a table) has none."""
    if isinstance(checkpoint, str) and checkpoint:
        Path(last_state_file(checkpoint)).unlink(missing_ok=True)


# config keys a resumed run may change: how long and where it runs, not what it trains
RESUMABLE_CHANGES = frozenset({
    "epochs", "stopping_step", "show_progress", "state", "gpu_id", "use_gpu", "device",
    "checkpoint_dir", "data_path", "dataset_save_path", "dataloaders_save_path", "save_dataset",
    "save_dataloaders", "worker", "eval_batch_size", "log_wandb", "wandb_project", "local_rank",
    "single_spec", "world_size", "nproc", "ip", "port", "offset", "mamba_backend",
    "group_by_length", "flush_denormal", "keep_freed_memory", "loss_decimal_place",
})


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b)
    except (TypeError, ValueError, RuntimeError):  # arrays, tensors
        return repr(a) == repr(b)


def _as_flag(key: str, value: Any) -> str:
    return shlex.quote(f"--{key}={value}")


def changed_keys(
    trained: Any, now: Any, ignore: frozenset[str] = RESUMABLE_CHANGES
) -> dict[str, tuple[Any, Any]]:
    """Keys of both configs (RecBole ``Config`` or dict) whose values differ, outside ``ignore``:
    key -> (checkpoint's value, this run's value)."""
    old = dict(getattr(trained, "final_config_dict", trained))
    new = dict(getattr(now, "final_config_dict", now))
    return {k: (old[k], new[k]) for k in sorted(old.keys() & new.keys())
            if k not in ignore and not _same(old[k], new[k])}


def claim_new_file(path: str) -> str:
    """``path``, or ``<path stem>-2.pth``, ``-3``, ... when that file exists, created empty at
    once: RecBole names a checkpoint by model and second, so two runs that start in the same
    second (``--jobs``, a comparison) would otherwise write, and test, one file."""
    stem, suffix = os.path.splitext(path)
    candidate, number = path, 1
    while True:
        try:
            with open(candidate, "x"):
                return candidate
        except FileExistsError:
            number += 1
            candidate = f"{stem}-{number}{suffix}"


def holds_checkpoint(path: str) -> bool:
    """Whether a saved epoch is at ``path`` (not only the empty file :func:`claim_new_file`
    made)."""
    return os.path.isfile(path) and os.path.getsize(path) > 0


def save_atomically(state: dict, path: str) -> None:
    """``torch.save`` to a temporary file next to ``path``, then rename it over ``path``: a save
    that fails (a full disk, an object that cannot be pickled) leaves the previous file whole."""
    tmp = f"{path}.tmp"
    try:
        torch.save(state, tmp, pickle_protocol=4)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def check_resume_file(path: str, config) -> None:
    """Raise, naming the file and the fix, unless this run can continue from ``path``."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"--resume: no checkpoint file at {path}")
    try:
        checkpoint = load_checkpoint(path)
    except Exception as err:  # torch raises many kinds on a file that is not a checkpoint
        raise ValueError(f"--resume: {path} is not a checkpoint torch can load ({err})") from err
    keys = checkpoint if isinstance(checkpoint, dict) else {}
    missing = [k for k in CHECKPOINT_KEYS if k not in keys]
    if missing:
        raise ValueError(f"--resume: {path} is not a RecBole training checkpoint "
                         f"(it lacks {', '.join(missing)})")
    for key in ("model", "dataset"):
        if checkpoint["config"][key] != config[key]:
            raise ValueError(
                f"--resume: {path} was trained with {key} {checkpoint['config'][key]!r}, this "
                f"run has {config[key]!r}: give --{key} {checkpoint['config'][key]}"
            )
    trained_on = checkpoint.get("data_files_sha1")
    now_on = data_files_hash(config["data_path"], config["dataset"])
    if trained_on and now_on != EMPTY_HASH and trained_on != now_on:
        raise ValueError(
            f"--resume: {path} was trained on other data files than "
            f"{Path(config['data_path']) / config['dataset']}.* holds now: give --data_path the "
            "folder of the files it was trained on"
        )
    changed = changed_keys(checkpoint["config"], config)
    if changed:
        trained = ", ".join(f"{k}={old!r}" for k, (old, _) in changed.items())
        now = ", ".join(f"{k}={new!r}" for k, (_, new) in changed.items())
        raise ValueError(
            f"--resume: {path} was trained with {trained}; this run has {now}. A resumed run "
            f"must train the model it continues: give "
            f"{' '.join(_as_flag(k, old) for k, (old, _) in changed.items())} (only epochs, "
            "stopping_step and how the run executes may change)"
        )
    if checkpoint.get("last_state"):
        best = Path(path).parent / checkpoint["best_model_file"]
        if not best.is_file():
            raise FileNotFoundError(
                f"--resume: {path} holds the last epoch of a run whose best epoch is in {best}, "
                "which is missing: put that file back next to it, or resume from it instead"
            )


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

    def __init__(self, config, model):
        # RecBole's ensure_dir checks, then creates: two processes starting at once (DDP ranks,
        # --jobs) both see no folder and the second makedirs raises FileExistsError
        os.makedirs(config["checkpoint_dir"], exist_ok=True)
        if config["single_spec"] or torch.device(config["device"]).type != "cpu":
            super().__init__(config, model)
        else:
            config["single_spec"] = True  # RecBole's DDP wrapper would ask for a GPU
            try:
                super().__init__(config, model)
            finally:
                config["single_spec"] = False
            # SyncBatchNorm, which RecBole converts to on GPUs, runs only on GPUs
            self.distributed_model = DistributedDataParallel(self.model)
        self.saved_model_file = broadcast(self.saved_model_file)
        self.epoch_times: list[float] = []
        self._train_data = None
        self._valid_result: Optional[dict] = None
        self._resumed_rng: Optional[list] = None
        self.resumed_from: Optional[int] = None  # the epoch a resumed run goes on from
        self._saves = False  # whether fit writes the last epoch's state
        on_cpu = torch.device(config["device"]).type == "cpu"
        if on_cpu and config["keep_freed_memory"] is not False:
            keep_freed_memory()

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        start = time.perf_counter()
        on_cpu = torch.device(self.device).type == "cpu"
        with denormals_flushed(on_cpu and self.config["flush_denormal"] is not False):
            loss = super()._train_epoch(train_data, epoch_idx, loss_func, show_progress)
        self.epoch_times.append(time.perf_counter() - start)
        return loss

    def _valid_epoch(self, valid_data, show_progress=False):
        score, result = super()._valid_epoch(valid_data, show_progress)
        self._valid_result = result
        return score, result

    def _check_nan(self, loss: torch.Tensor) -> None:
        if torch.isnan(loss):
            kept = "No checkpoint was saved before."
            if holds_checkpoint(self.saved_model_file):
                kept = f"The best checkpoint saved so far is kept at {self.saved_model_file}."
            last = last_state_file(self.saved_model_file)
            if os.path.isfile(last):
                kept += f" The last epoch's state is in {last}: --resume it to go on from there."
            raise ValueError(
                f"Training loss is NaN (model {self.config['model']}). {kept} Lower "
                "learning_rate, set clip_grad_norm (e.g. {'max_norm': 5}) or check the input data."
            )

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        """RecBole's checkpoint plus the best validation result, the name of the best epoch's
        file and every rank's random state; written by (local) rank 0, awaited by all ranks."""
        path = kwargs.pop("saved_model_file", self.saved_model_file)
        last = path != self.saved_model_file
        loader = self._train_data.generator if self._train_data is not None else None
        rng = all_gather(rng_state(loader))
        if self.config["local_rank"] == 0:
            state = {
                "config": self.config,
                "epoch": epoch,
                "cur_step": self.cur_step,
                "best_valid_score": self.best_valid_score,
                "state_dict": self.model.state_dict(),
                "other_parameter": self.model.other_parameter(),
                "optimizer": self.optimizer.state_dict(),
                # RecBole sets best_valid_result only after saving the new best epoch
                "best_valid_result": self.best_valid_result if last else self._valid_result,
                "best_model_file": os.path.basename(self.saved_model_file),
                "last_state": last,
                "rng": rng,
                "data_files_sha1": data_files_hash(self.config["data_path"],
                                                  self.config["dataset"]),
            }
            save_atomically(state, path)
            if verbose:
                self.logger.info(set_color("Saving current", "blue") + f": {path}")
        barrier()

    def resume_checkpoint(self, resume_file):
        """RecBole's resume, plus the best validation result and the random state; resumed
        from a last-epoch file, the run keeps improving its best epoch's file."""
        with trusted_checkpoint_load():
            super().resume_checkpoint(resume_file)
        checkpoint = load_checkpoint(str(resume_file))
        self.best_valid_result = checkpoint.get("best_valid_result")
        if checkpoint.get("last_state"):
            self.saved_model_file = str(Path(resume_file).parent / checkpoint["best_model_file"])
        self._resumed_rng = checkpoint.get("rng")
        self.resumed_from = self.start_epoch
        self.logger.info(f"Resumed from {resume_file}")

    def _restore_rng(self, train_data) -> None:
        ranks = self.config["world_size"] if not self.config["single_spec"] else 1
        states = self._resumed_rng
        if states is not None and len(states) == ranks:
            set_rng_state(states[global_rank()], train_data.generator)
            return
        found = "no random state" if states is None else f"the random state of {len(states)} ranks"
        self.logger.warning(
            f"the checkpoint holds {found}, this run has {ranks} rank(s): the resumed epochs draw "
            "other random numbers (dropout, shuffling) than the interrupted run would have (give "
            "--nproc and --world_size as that run had them)"
        )

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False,
            callback_fn=None, keep_last_state=False):
        """RecBole's ``fit``, also writing the last epoch's state after every validation; that
        state is deleted when training ends, or, with ``keep_last_state``, by the caller once it
        has recorded the run's result (:meth:`forget_last_state`, or :func:`delete_last_state`
        with the checkpoint's path when the trainer is gone)."""
        self._train_data = train_data
        self._saves = saved
        if self.resumed_from is not None:
            if self.start_epoch >= self.epochs or self.cur_step > self.stopping_step:
                self.logger.info(f"Training had finished at epoch {self.start_epoch - 1}: "
                                 "nothing to resume (raise epochs or stopping_step to go on)")
                if not keep_last_state:
                    self.forget_last_state()
                return self.best_valid_score, self.best_valid_result
            self._restore_rng(train_data)
        claims = saved and self.resumed_from is None
        if claims:
            self.saved_model_file = broadcast(
                claim_new_file(self.saved_model_file) if global_rank() == 0 else None
            )
        last_file = last_state_file(self.saved_model_file)
        if saved and verbose:
            self.logger.info(f"The last epoch's state goes to {last_file} (for --resume)")

        def after_validation(epoch_idx: int, valid_score: float) -> None:
            if saved:
                self._save_checkpoint(epoch_idx, verbose=False, saved_model_file=last_file)
            if callback_fn:
                callback_fn(epoch_idx, valid_score)

        try:
            result = super().fit(train_data, valid_data, verbose, saved, show_progress,
                                 after_validation)
        finally:
            # this run's claimed file, if no epoch was saved into it (another run's claim at
            # RecBole's name, when this run saves nothing, is left alone)
            if claims and global_rank() == 0 and os.path.isfile(self.saved_model_file) \
                    and not holds_checkpoint(self.saved_model_file):
                os.remove(self.saved_model_file)
        if not keep_last_state:
            self.forget_last_state()
        return result

    def forget_last_state(self) -> None:
        """Delete the last epoch's state ``fit(..., keep_last_state=True)`` kept; called once the
        run's test result is in (until then, a run stopped while testing resumes from it with
        nothing left to train). Nothing to do after a ``fit`` that saved nothing."""
        if self._saves and self.config["local_rank"] == 0:
            delete_last_state(self.saved_model_file)

    def run_summary(self) -> dict[str, Any]:
        """After ``fit``: the run's ``epochs`` (a resumed run's count those before the resume),
        ``resumed_from``, how it ``ended`` and the mean ``epoch_seconds`` of the epochs this
        process trained (NaN when it trained none: a resumed run that had finished)."""
        times = self.epoch_times
        return {
            "epochs": self.start_epoch + len(times),
            "resumed_from": self.resumed_from,
            "ended": how_ended(self),
            "epoch_seconds": sum(times) / len(times) if times else float("nan"),
        }

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
