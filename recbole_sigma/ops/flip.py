"""Partial flip of right-padded sequences (PF-Mamba, SIGMA Sec. 3.2)."""

import torch


def partial_flip_index(seq_len: torch.Tensor, max_len: int, r: int) -> torch.Tensor:
    """Gather index (B, L) that reverses the first ``max(n - r, 0)`` real items of each row."""
    if r < 0:
        raise ValueError(f"flip_r must be >= 0, got {r}; set flip_r to 0 or a positive integer")
    pos = torch.arange(max_len, device=seq_len.device).unsqueeze(0)  # (1, L)
    k = (seq_len.long() - r).clamp(min=0).unsqueeze(1)  # (B, 1) items to reverse
    return torch.where(pos < k, k - 1 - pos, pos)  # (B, L)


def partial_flip(x: torch.Tensor, seq_len: torch.Tensor, r: int) -> torch.Tensor:
    """Reverse the first ``n - r`` real items of every row of a right-padded ``x``.

    ``x`` is (B, L, ...) with row ``b`` holding ``seq_len[b]`` real items followed by padding.
    The last ``r`` real items and all padding stay in place; if ``n <= r`` the row is unchanged.
    The map is an involution: applying it twice gives ``x`` back, so it also flips back.
    """
    index = partial_flip_index(seq_len, x.size(1), r)  # (B, L)
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return torch.gather(x, 1, index)


OFFICIAL_FLIP_LEN = 45  # the authors' code: flipped[:, :45] = x[:, :45].flip(1)


def official_flip(x: torch.Tensor) -> torch.Tensor:
    """The authors' flip: reverse the first 45 padded positions (all if L < 45), lengths ignored.

    45 is L - r for their L = 50 and r = 5; it stays 45 for any L, as in their code.
    """
    k = min(OFFICIAL_FLIP_LEN, x.size(1))
    return torch.cat([x[:, :k].flip(1), x[:, k:]], dim=1)
