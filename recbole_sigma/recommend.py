"""Top-k items for one user from a saved RecBole/SIGMA checkpoint.

    python -m recbole_sigma.recommend --checkpoint saved/SIGMA-Nov-24-2026_17-00-00.pth --user 42

The checkpoint's own config names the dataset (``data_path``/``dataset``); it is loaded again,
the user's whole history (all interactions, in time order) is the model's input, and the items
the user has already interacted with are never recommended.
"""

import argparse
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from recbole.config import Config
from recbole.data.interaction import Interaction
from recbole.utils import ModelType

from recbole_sigma.data.load import load_dataset
from recbole_sigma.trainer import read_checkpoint
from recbole_sigma.utils import get_model


def _check_state(net: torch.nn.Module, state: dict, config: Config, n_items: int) -> None:
    """A clear error when the checkpoint's tensors do not fit the dataset's files as they are."""
    own = net.state_dict()
    bad = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    missing = sorted(set(own) ^ set(state))
    if bad or missing:
        detail = ", ".join(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in bad)
        raise ValueError(
            f"the checkpoint does not match dataset {config['dataset']!r} at "
            f"{config['data_path']} ({n_items} item ids now): it was trained on other data or "
            f"another version of these files. Mismatched: {detail or missing}"
        )


def _user_input(net, dataset, config: Config, uid: int) -> tuple[Interaction, torch.Tensor]:
    """The model's input for user ``uid`` and the ids of the items they have seen."""
    inter = dataset.inter_feat  # a pandas frame until RecBole's data_preparation
    mine = inter[inter[dataset.uid_field] == uid]
    if config["TIME_FIELD"] in mine:
        mine = mine.sort_values(config["TIME_FIELD"], kind="stable")
    items = torch.as_tensor(mine[dataset.iid_field].to_numpy(), dtype=torch.long)
    data = {dataset.uid_field: torch.tensor([uid])}
    if config["MODEL_TYPE"] == ModelType.SEQUENTIAL:
        seq = items[-net.max_seq_length :]
        padded = torch.zeros(1, net.max_seq_length, dtype=torch.long)
        padded[0, : len(seq)] = seq
        data[net.ITEM_SEQ] = padded
        data[net.ITEM_SEQ_LEN] = torch.tensor([len(seq)])
    return Interaction(data), items


def recommend(
    checkpoint: str | Path, user_id: str, topk: int = 10, dataset: Optional[str] = None
) -> list[tuple[str, float]]:
    """The ``topk`` best unseen items for ``user_id`` (a token of the dataset's user field),
    as ``(item token, score)`` best first. ``dataset``, if given, must be the checkpoint's."""
    if topk < 1:
        raise ValueError(f"topk must be at least 1, got {topk}")
    saved = read_checkpoint(checkpoint)
    config = saved["config"]
    if dataset is not None and dataset != config["dataset"]:
        raise ValueError(
            f"{checkpoint} was trained on dataset {config['dataset']!r}, not {dataset!r}"
        )
    config["device"] = torch.device("cpu")
    data = load_dataset(config)
    net = get_model(config["model"])(config, data)
    _check_state(net, saved["state_dict"], config, data.item_num)
    net.load_state_dict(saved["state_dict"])
    net.eval()

    tokens = data.field2token_id[data.uid_field]
    if str(user_id) not in tokens or tokens[str(user_id)] == 0:
        raise KeyError(
            f"unknown user {user_id!r} in dataset {config['dataset']!r} "
            f"({data.user_num - 1} users, e.g. {', '.join(list(tokens)[1:4])})"
        )
    inter, seen = _user_input(net, data, config, tokens[str(user_id)])
    with torch.no_grad():
        scores = net.full_sort_predict(inter).view(-1)[: data.item_num].clone()
    scores[0] = -np.inf
    scores[seen] = -np.inf
    k = min(topk, int(torch.isfinite(scores).sum()))
    best = torch.topk(scores, k)
    names = data.id2token(data.iid_field, best.indices.numpy())
    return [(str(n), float(s)) for n, s in zip(names, best.values.tolist(), strict=True)]


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a .pth file under saved/")
    parser.add_argument("--user", required=True, help="user token as in the .inter file")
    parser.add_argument("--topk", type=int, default=10)
    parser.add_argument("--dataset", default=None, help="check the checkpoint is of this dataset")
    args = parser.parse_args(argv)
    try:
        items = recommend(args.checkpoint, args.user, args.topk, args.dataset)
    except (KeyError, ValueError, FileNotFoundError) as err:
        sys.exit(f"error: {err.args[0] if isinstance(err, KeyError) else err}")
    print("rank\titem\tscore")
    for rank, (item, score) in enumerate(items, 1):
        print(f"{rank}\t{item}\t{score:.4f}")


if __name__ == "__main__":
    main()
