"""Loss and scores of a sequential model that dots its user representation with item embeddings."""

import torch
import torch.nn as nn
from recbole.model.loss import BPRLoss


def build_loss(loss_type: str) -> nn.Module:
    """CE over all items or BPR with one sampled negative."""
    return BPRLoss() if loss_type == "BPR" else nn.CrossEntropyLoss()


def init_like_recbole(module: nn.Module) -> None:
    """RecBole's init of one module: normal(0, 0.02) for Linear and Embedding weights (an
    Embedding's padding row too), zero Linear biases, LayerNorm 1/0; other modules untouched."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        module.weight.data.normal_(mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        module.bias.data.zero_()
    elif isinstance(module, nn.LayerNorm):
        module.weight.data.fill_(1.0)
        module.bias.data.zero_()


class DotProductScoring:
    """``calculate_loss``, ``predict`` and ``full_sort_predict`` for a ``SequentialRecommender``
    with ``forward``, ``item_embedding``, ``loss_type`` and ``loss_fct``."""

    def calculate_loss(self, interaction) -> torch.Tensor:
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        pos_items = interaction[self.POS_ITEM_ID]
        if self.loss_type == "BPR":
            pos_score = (seq_output * self.item_embedding(pos_items)).sum(-1)  # (B,)
            neg_items = interaction[self.NEG_ITEM_ID]
            neg_score = (seq_output * self.item_embedding(neg_items)).sum(-1)  # (B,)
            return self.loss_fct(pos_score, neg_score)
        logits = seq_output @ self.item_embedding.weight.t()  # (B, n_items)
        return self.loss_fct(logits, pos_items)

    def predict(self, interaction) -> torch.Tensor:
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        return (seq_output * self.item_embedding(interaction[self.ITEM_ID])).sum(-1)  # (B,)

    def full_sort_predict(self, interaction) -> torch.Tensor:
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        return seq_output @ self.item_embedding.weight.t()  # (B, n_items)
