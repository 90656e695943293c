"""How much Beauty's valid/test metrics depend on the order of same-day interactions.

Amazon timestamps have day resolution: 44% of Beauty's users bought their test item on the same
day as their validation item, so which of the two is "last" is a file-order convention (S3Rec's
file order here). This evaluates a trained checkpoint with every user's same-day runs kept in file
order, reversed, or shuffled (the model is not retrained), and prints HR/NDCG/MRR@10:

    python benchmarks/tie_order.py saved/SIGMA-....pth --shuffles 3

The "file" row must equal RecBole's own result for that checkpoint (it is checked).
"""

import argparse
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from recbole_sigma.compare.grouped import evaluate_users
from recbole_sigma.data.convert import read_source
from recbole_sigma.quick_start import load_data_and_model


def read_users() -> dict[str, list[tuple[str, float]]]:
    """user token -> [(item token, day timestamp), ...] in the shared source's file order."""
    users = defaultdict(list)
    for user, item, t in read_source("amazon-beauty"):
        users[user].append((item, t))
    return users


def reorder(rows: list[tuple[str, float]], how: str, rng: random.Random) -> list[str]:
    """Items with each run of equal timestamps kept, reversed or shuffled."""
    out, run = [], []
    for item, t in rows + [("", -1)]:
        if run and t != run[-1][1]:
            items = [i for i, _ in run]
            if how == "reversed":
                items.reverse()
            elif how == "shuffled":
                rng.shuffle(items)
            out += items
            run = []
        run.append((item, t))
    return out


@torch.no_grad()
def metrics(model, sequences: list[list[int]], drop_last: int, max_len: int) -> dict:
    """HR/NDCG/MRR@10 of predicting item -1 - drop_last from the items before it."""
    hr, ndcg, mrr = [], [], []
    for start in range(0, len(sequences), 4096):
        batch = sequences[start : start + 4096]
        hist = [s[: len(s) - 1 - drop_last][-max_len:] for s in batch]
        target = torch.tensor([s[len(s) - 1 - drop_last] for s in batch])
        seq = torch.zeros(len(batch), max_len, dtype=torch.long)
        for b, h in enumerate(hist):
            seq[b, : len(h)] = torch.tensor(h)
        lens = torch.tensor([len(h) for h in hist])
        scores = model.full_sort_predict({model.ITEM_SEQ: seq, model.ITEM_SEQ_LEN: lens})
        scores[:, 0] = -np.inf
        rank = (scores > scores.gather(1, target[:, None])).sum(1).float()  # (B,)
        hit = rank < 10
        hr.append(hit.float())
        ndcg.append(torch.where(hit, 1 / torch.log2(rank + 2), torch.zeros_like(rank)))
        mrr.append(torch.where(hit, 1 / (rank + 1), torch.zeros_like(rank)))
    return {k: torch.cat(v).mean().item() for k, v in (("hit", hr), ("ndcg", ndcg), ("mrr", mrr))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--shuffles", type=int, default=3, help="seeds of the shuffled order")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config, model, dataset, _, _, test_data = load_data_and_model(args.checkpoint)
    model.eval()
    recbole_test = evaluate_users(model, test_data, config).overall()
    users = read_users()
    orders = [("file", 0), ("reversed", 0)] + [("shuffled", s) for s in range(args.shuffles)]
    print(f"checkpoint {Path(args.checkpoint).name} ({config['model']}, "
          f"{config['sigma_variant'] if 'sigma_variant' in config else ''})")
    print("| order of same-day items | valid HR@10 | valid NDCG@10 | valid MRR@10 | "
          "test HR@10 | test NDCG@10 | test MRR@10 |")
    print("|---|---|---|---|---|---|---|")
    for how, seed in orders:
        rng = random.Random(seed)
        sequences = [
            list(dataset.token2id(dataset.iid_field, reorder(rows, how, rng)))
            for rows in users.values()
        ]
        valid = metrics(model, sequences, 1, config["MAX_ITEM_LIST_LENGTH"])
        test = metrics(model, sequences, 0, config["MAX_ITEM_LIST_LENGTH"])
        if how == "file":
            for key in ("hit", "ndcg", "mrr"):
                want = recbole_test[f"{key}@10"]
                assert abs(test[key] - want) < 2e-4, f"file order {key}: {test[key]} vs {want}"
        name = how if how != "shuffled" else f"shuffled (seed {seed})"
        cells = [f"{m[k]:.4f}" for m in (valid, test) for k in ("hit", "ndcg", "mrr")]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
