"""The random state a training run draws from, saved with checkpoints so resuming replays it.

A training epoch draws from torch's generator (dropout, initialisation), the CUDA generators,
numpy's and Python's (RecBole's negative samplers) and the train loader's own generator (the
shuffle order). With all of them restored, the epochs after a resume are the epochs the
uninterrupted run would have trained.
"""

import random
from typing import Any, Optional

import numpy as np
import torch


def rng_state(loader_generator: Optional[torch.Generator] = None) -> dict[str, Any]:
    """Every generator's state in this process (and the train loader's, if given)."""
    state = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if loader_generator is not None:
        state["loader"] = loader_generator.get_state()
    return state


def set_rng_state(state: dict[str, Any], loader_generator: Optional[torch.Generator]) -> None:
    """Put back what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if loader_generator is not None and "loader" in state:
        loader_generator.set_state(state["loader"])
