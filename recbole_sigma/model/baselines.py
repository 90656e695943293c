"""RecBole's SASRec and GRU4Rec, encoding each batch in groups of similar length.

Both encoders mask or never read the padding after a row's last real item (SASRec: causal
attention that masks padded keys; GRU4Rec: a forward GRU), so the output at that item is the same
whatever the width of the batch. ``by_length`` cuts the padding away group by group: same scores,
several times less work on short-history data such as Amazon Beauty. The parameters, their
names and init are RecBole's, so checkpoints load either way. Their dropouts draw RecBole's masks
through the plugin's faster CPU kernel (:mod:`recbole_sigma.ops.dropout`), as SIGMA's do, so
timings compare the models and not the dropout.
"""

import logging

import torch
from recbole.model.sequential_recommender import gru4rec, sasrec

from recbole_sigma.ops.dropout import swap_in
from recbole_sigma.ops.length_groups import by_length


def group_by_length_on(config, model: str, source: str) -> bool:
    """``group_by_length`` (auto | True | False, checked by ``check_config``; auto = on when
    training on CPU) as a bool."""
    value = config["group_by_length"]
    on = torch.device(config["device"]).type == "cpu" if value == "auto" else bool(value)
    logging.getLogger().info(f"{model}: {source}, group_by_length={on}")
    return on


class LengthGrouped:
    """Mixin for a RecBole sequential model: ``forward`` by length groups when
    ``group_by_length``, each group cut to its longest row."""

    source = "RecBole's model"

    def __init__(self, config, dataset) -> None:
        super().__init__(config, dataset)
        swap_in(self)
        self.group_by_length = group_by_length_on(config, type(self).__name__, self.source)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """item_seq (B, L) right-padded, item_seq_len (B,) -> (B, D)."""
        if self.group_by_length:
            return by_length(super().forward, item_seq, item_seq_len)
        return super().forward(item_seq, item_seq_len)


class SASRec(LengthGrouped, sasrec.SASRec):
    """RecBole's SASRec, by length groups on CPU."""


class GRU4Rec(LengthGrouped, gru4rec.GRU4Rec):
    """RecBole's GRU4Rec, by length groups on CPU."""
