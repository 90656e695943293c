"""SIGMA: Selective Gated Mamba for Sequential Recommendation (Liu et al., AAAI 2025)."""

import logging

import torch
import torch.nn as nn
from recbole.model.abstract_recommender import SequentialRecommender

from recbole_sigma.mamba import resolve_backend
from recbole_sigma.model.gmamba import GMambaBlock
from recbole_sigma.model.logged import LoggedGMambaBlock
from recbole_sigma.model.official import OfficialGMambaBlock
from recbole_sigma.model.scoring import DotProductScoring, build_loss, init_like_recbole
from recbole_sigma.model.settings import sigma_settings
from recbole_sigma.ops import Dropout, official_flip
from recbole_sigma.ops.length_groups import by_length


class SIGMA(DotProductScoring, SequentialRecommender):
    """Item embedding, ``n_layers`` G-Mamba blocks, last real position scored against all items."""

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        s = sigma_settings(config)
        self.settings = s
        self.loss_type = s.loss_type
        self.paper_variant = s.sigma_variant == "paper"
        self.mamba_backend = resolve_backend(s.mamba_backend, config["device"])
        group = s.group_by_length
        self.group_by_length = self.mamba_backend == "torch" if group == "auto" else group
        # the official and logged variants' second layer reads the first one's padding outputs
        if self.group_by_length and not (self.paper_variant or s.n_layers == 1):
            self.group_by_length = False
            logging.getLogger().warning(
                f"SIGMA: sigma_variant={s.sigma_variant} with n_layers={s.n_layers} cannot encode "
                "by length groups (its later layers read the padding outputs of the first), so "
                "every batch runs at the full MAX_ITEM_LIST_LENGTH; on the torch backend (CPU) "
                "expect each batch to take several times as long as with n_layers=1"
            )
        logging.getLogger().info(
            f"SIGMA: variant={s.sigma_variant}, mamba_backend={self.mamba_backend} "
            f"(asked: {s.mamba_backend}), group_by_length={self.group_by_length}"
        )

        self.item_embedding = nn.Embedding(self.n_items, s.hidden_size, padding_idx=0)
        self.dropout = Dropout(s.dropout_prob)
        self.LayerNorm = nn.LayerNorm(s.hidden_size, eps=1e-12)
        block = {"paper": GMambaBlock, "official": OfficialGMambaBlock,
                 "logged": LoggedGMambaBlock}[s.sigma_variant]
        self.layers = nn.ModuleList(block(s, self.mamba_backend) for _ in range(s.n_layers))
        self.loss_fct = build_loss(s.loss_type)
        self._init_weights()

    def _init_weights(self) -> None:
        """RecBole's init: normal(0, 0.02) for every Linear and Embedding (the padding row too),
        zero Linear biases, LayerNorm 1/0. Like the authors' code it reaches inside Mamba
        (in_proj, x_proj, dt_proj, out_proj: dt_proj's bias 0, so dt starts at softplus(0)),
        unless ``mamba_init: mamba_ssm`` keeps Mamba's own init there; A_log, D, the convs
        and the GRU keep their own init either way."""
        keep_mamba = self.paper_variant and self.settings.mamba_init == "mamba_ssm"
        in_mamba = {id(sub) for m in self.modules() if hasattr(m, "A_log") for sub in m.modules()}
        for module in self.modules():
            if not (keep_mamba and id(module) in in_mamba):
                init_like_recbole(module)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """item_seq (B, L) right-padded, item_seq_len (B,) -> user representation (B, D)."""
        if not self.paper_variant:  # the authors' code lets padding reach the output
            if self.group_by_length:  # only with one layer (see __init__)
                return self._encode_official_one_layer(item_seq, item_seq_len)
            return self._encode_official(item_seq, item_seq_len)
        if self.group_by_length:  # a row's output depends only on its own real items
            return by_length(self._encode, item_seq, item_seq_len)
        # padding after the longest real sequence cannot reach any output: skip it
        return self._encode(item_seq[:, : int(item_seq_len.max())], item_seq_len)

    def _encode(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """Embedding, G-Mamba blocks, last real position: (B, L), (B,) -> (B, D)."""
        positions = torch.arange(item_seq.size(1), device=item_seq.device)
        mask = (positions.unsqueeze(0) < item_seq_len.unsqueeze(1)).unsqueeze(-1)  # (B, L, 1)
        x = self.LayerNorm(self.dropout(self.item_embedding(item_seq))) * mask  # (B, L, D)
        for layer in self.layers:
            x = layer(x, item_seq_len, mask)
        return self.gather_indexes(x, item_seq_len - 1)  # (B, D)

    def _encode_official(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """As :meth:`_encode`, with nothing masked (the padding embedding row is not zero)."""
        x = self.LayerNorm(self.dropout(self.item_embedding(item_seq)))  # (B, L, D)
        for layer in self.layers:
            x = layer(x)
        return self.gather_indexes(x, item_seq_len - 1)  # (B, D)

    def _encode_official_one_layer(
        self, item_seq: torch.Tensor, item_seq_len: torch.Tensor
    ) -> torch.Tensor:
        """:meth:`_encode_official` for one layer, by length groups. The output at a row's last
        item n - 1 reads the input up to n - 1 (Mamba, GRU), n (the official GRU's conv) and
        the flipped input up to n - 1, flipped at full width first (it reads padding up to 44)."""
        x = self.LayerNorm(self.dropout(self.item_embedding(item_seq)))  # (B, L, D)
        flip = self.settings.use_flip  # always on for official (settings.UNREAD_KEYS)
        # (B, L, 2, D) with the flipped input, else (B, L, 1, D)
        pair = torch.stack([x, official_flip(x)], dim=2) if flip else x.unsqueeze(2)
        layer = self.layers[0]

        def encode(cut: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
            xf = cut[:, :, 1] if flip else None
            return self.gather_indexes(layer(cut[:, :, 0], xf), lens - 1)  # (G, D)

        return by_length(encode, pair, item_seq_len, look_ahead=1)
