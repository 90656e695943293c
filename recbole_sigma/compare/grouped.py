"""Per-user full-ranking metrics on a RecBole eval loader, grouped by history length.

Scores and masks match ``recbole.trainer.Trainer._full_sort_batch_eval`` (item 0 and, where the
loader gives them, history items set to -inf; RecBole's sequential loaders give none) and the
top-k bookkeeping matches ``recbole.evaluator.Collector``; the per-user values come from RecBole's
own metric classes, so their mean is RecBole's result before rounding.

History length is the number of items in the model's input sequence (``item_length``, at most
``MAX_ITEM_LIST_LENGTH``); for non-sequential models, the number of masked history items.
Groups (both ends included): short 0-5, medium 6-20, long 21+.
"""

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from recbole.evaluator import metrics as recbole_metrics

GROUPS: tuple[tuple[str, int, float], ...] = (
    ("short", 0, 5),
    ("medium", 6, 20),
    ("long", 21, float("inf")),
)
# RecBole metric classes whose ``metric_info`` also takes the number of positives per user
_METRICS = {
    "hit": (recbole_metrics.Hit, False),
    "mrr": (recbole_metrics.MRR, False),
    "precision": (recbole_metrics.Precision, False),
    "ndcg": (recbole_metrics.NDCG, True),
    "recall": (recbole_metrics.Recall, True),
    "map": (recbole_metrics.MAP, True),
}


@dataclass
class UserEval:
    """Per-user results on one loader: metric values (``"ndcg@10"`` -> array) and lengths."""

    lengths: np.ndarray
    values: dict[str, np.ndarray]
    batch_ms: list[float]
    batch_sizes: list[int]
    user_ids: Optional[np.ndarray] = None  # in the order of ``lengths`` and ``values``

    def overall(self) -> dict[str, float]:
        """Mean over users, as RecBole reports it (unrounded)."""
        return {k: float(v.mean()) for k, v in self.values.items()}

    def groups(self) -> dict[str, dict[str, float]]:
        """Mean per history-length group, with its number of users under ``"users"``."""
        out = {}
        for name, low, high in GROUPS:
            mask = (self.lengths >= low) & (self.lengths <= high)
            row = {"users": float(mask.sum())}
            for key, v in self.values.items():
                row[key] = float(v[mask].mean()) if mask.any() else float("nan")
            out[name] = row
        return out

    def inference_ms(self) -> float:
        """Median ``full_sort_predict`` time per batch of the largest size (``eval_batch_size``)."""
        largest = max(self.batch_sizes)
        pairs = zip(self.batch_ms, self.batch_sizes, strict=True)
        return float(np.median([ms for ms, n in pairs if n == largest]))


def _history_lengths(interaction, history_index, n: int, config) -> torch.Tensor:
    field = config["ITEM_LIST_LENGTH_FIELD"]
    if field in interaction:
        return interaction[field].cpu()
    if history_index is None:
        return torch.zeros(n, dtype=torch.long)
    return torch.bincount(history_index[0].cpu(), minlength=n)


def _batch_hits(scores, positive_u, positive_i, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """RecBole's ``rec.topk``: 0/1 hits of the top-k items per user, and positives per user."""
    _, topk_idx = torch.topk(scores, k, dim=-1)
    positive_u, positive_i = positive_u.to(scores.device), positive_i.to(scores.device)
    match = (topk_idx[positive_u] == positive_i.unsqueeze(1)).int()
    hits = torch.zeros_like(topk_idx, dtype=torch.int).index_add_(0, positive_u, match)
    return hits.cpu(), torch.bincount(positive_u, minlength=len(scores)).cpu()


def check_metrics(metrics: list[str]) -> list[str]:
    """The config's ``metrics`` in lower case; a ValueError unless grouped evaluation has them."""
    names = [m.lower() for m in metrics]
    unknown = [m for m in names if m not in _METRICS]
    if unknown:
        raise ValueError(f"grouped evaluation supports {sorted(_METRICS)}, not {unknown}")
    return names


@torch.no_grad()
def evaluate_users(model: torch.nn.Module, eval_data, config) -> UserEval:
    """Full-ranking evaluation of ``model`` on ``eval_data``, one metric row per user."""
    topk = list(config["topk"])
    names = check_metrics(config["metrics"])
    device = config["device"]
    n_items = eval_data._dataset.item_num
    model.eval()
    hits, pos_len, lengths, users, batch_ms, batch_sizes = [], [], [], [], [], []
    for interaction, history_index, positive_u, positive_i in eval_data:
        interaction = interaction.to(device)
        start = time.perf_counter()
        scores = model.full_sort_predict(interaction)
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)
        batch_ms.append((time.perf_counter() - start) * 1000)
        scores = scores.view(-1, n_items)
        scores[:, 0] = -np.inf
        if history_index is not None:
            scores[history_index] = -np.inf
        batch_hits, batch_len = _batch_hits(scores, positive_u, positive_i, max(topk))
        hits.append(batch_hits)
        pos_len.append(batch_len)
        batch_sizes.append(len(scores))
        lengths.append(_history_lengths(interaction, history_index, len(scores), config))
        users.append(interaction[config["USER_ID_FIELD"]].cpu())
    pos_index = torch.cat(hits).bool().numpy()
    n_pos = torch.cat(pos_len).numpy()
    values = {}
    for name in names:
        cls, needs_len = _METRICS[name]
        metric = cls(config)
        info = metric.metric_info(pos_index, n_pos) if needs_len else metric.metric_info(pos_index)
        for k in topk:
            values[f"{name}@{k}"] = np.asarray(info[:, k - 1], dtype=np.float64)
    return UserEval(torch.cat(lengths).numpy(), values, batch_ms, batch_sizes,
                    torch.cat(users).numpy())
