"""Data-parallel training over torch.distributed, the way RecBole does it, for plugin models.

RecBole's trainer already trains with DDP (each rank gets its share of every batch, gradients
are averaged, metrics are reduced over the ranks), but RecBole's ``run`` builds models by name
inside ``recbole.model``. :func:`spawn_ranks` starts the ranks of this machine itself; every
rank runs :func:`recbole_sigma.quick_start.run_recbole_sigma`. The helpers below do nothing
when no process group is up, so the same code serves one process.
"""

import hashlib
from typing import Any, Optional

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def is_distributed() -> bool:
    """True inside a rank of a distributed run."""
    return dist.is_available() and dist.is_initialized()


def global_rank() -> int:
    """This process's rank among all machines (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def all_gather(obj: Any) -> list:
    """``obj`` of every rank, in rank order (``[obj]`` without a process group)."""
    if not is_distributed():
        return [obj]
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (``obj`` without a process group)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    """Wait for every rank (nothing without a process group)."""
    if is_distributed():
        dist.barrier()


def parameter_digest(model: torch.nn.Module) -> str:
    """SHA-256 of the model's parameters and buffers (names, dtypes and exact bytes)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        data = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{data.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def world_size_for(nproc: int, world_size: int, group_offset: int) -> int:
    """The run's world size (``-1``: ``nproc``), after checking the three flags agree."""
    if nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {nproc}")
    if group_offset < 0:
        raise ValueError(f"--group_offset must be at least 0, got {group_offset}")
    world_size = nproc if world_size == -1 else world_size
    if world_size < group_offset + nproc:
        raise ValueError(
            f"--world_size {world_size} is too small for ranks {group_offset}.."
            f"{group_offset + nproc - 1} (--group_offset {group_offset}, --nproc {nproc}): "
            "world_size counts the processes of all machines"
        )
    return world_size


def spawn_ranks(
    model: str,
    dataset: str,
    config_file_list: Optional[list[str]],
    config_dict: Optional[dict[str, Any]],
    saved: bool,
    resume: Optional[str],
    nproc: int,
    world_size: int,
    ip: str,
    port: str,
    group_offset: int,
) -> Optional[dict[str, Any]]:
    """Start ranks ``group_offset .. group_offset + nproc - 1`` of a ``world_size``-rank run on
    this machine, each running ``run_recbole_sigma``; return local rank 0's result."""
    queue = mp.get_context("spawn").SimpleQueue()
    config_dict = dict(
        config_dict or {},
        world_size=world_size, ip=ip, port=str(port), nproc=nproc, offset=group_offset,
    )
    args = (model, dataset, config_file_list, config_dict, saved, resume, queue)
    mp.spawn(_rank, args=args, nprocs=nproc, join=True)
    return None if queue.empty() else queue.get()


def _rank(local_rank: int, model: str, dataset: str, config_file_list: Optional[list[str]],
          config_dict: dict[str, Any], saved: bool, resume: Optional[str], queue) -> None:
    from recbole_sigma.quick_start import run_recbole_sigma

    config_dict = dict(config_dict, local_rank=local_rank)
    result = run_recbole_sigma(model, dataset, config_file_list, config_dict, saved, resume)
    if local_rank == 0:
        queue.put(result)
