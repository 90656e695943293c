"""Exact checks of the partial flip on hand-worked cases."""

import pytest
import torch

from recbole_sigma.ops import official_flip, partial_flip


def rows(x: torch.Tensor) -> list:
    return x.squeeze(-1).tolist()


def seqs(*lists: list, length: int = 6) -> torch.Tensor:
    return torch.tensor([s + [0] * (length - len(s)) for s in lists]).unsqueeze(-1)  # (B, L, 1)


def test_hand_cases():
    x = seqs([1, 2, 3, 4, 5], [1, 2], [1, 2, 3], [1, 2, 3, 4, 5, 6])
    n = torch.tensor([5, 2, 3, 6])
    # r = 2: reverse the first n - 2 real items, keep the last 2 and the padding
    assert rows(partial_flip(x, n, 2)) == [
        [3, 2, 1, 4, 5, 0],
        [1, 2, 0, 0, 0, 0],  # n = r: unchanged
        [1, 2, 3, 0, 0, 0],  # n - r = 1: one item reversed is itself
        [4, 3, 2, 1, 5, 6],  # n = L
    ]


def test_n_smaller_than_r_and_r_zero():
    x = seqs([1, 2, 3], [1, 2, 3, 4])
    n = torch.tensor([3, 4])
    assert rows(partial_flip(x, n, 10)) == rows(x)
    assert rows(partial_flip(x, n, 0)) == [[3, 2, 1, 0, 0, 0], [4, 3, 2, 1, 0, 0]]


def test_padding_untouched_and_involution():
    torch.manual_seed(0)
    n = torch.tensor([1, 4, 7, 9, 9])
    x = torch.randn(5, 9, 3)
    pad = torch.arange(9)[None, :] >= n[:, None]  # (B, L)
    x[pad] = 0.0
    for r in range(0, 10):
        y = partial_flip(x, n, r)
        assert torch.equal(y[pad], x[pad])
        assert torch.equal(partial_flip(y, n, r), x)
        # the multiset of each row is unchanged and the last min(r, n) items stay
        for b, nb in enumerate(n.tolist()):
            keep = min(r, nb)
            assert torch.equal(y[b, nb - keep : nb], x[b, nb - keep : nb])


def test_gradient_flows_back_to_the_right_positions():
    x = torch.zeros(1, 4, 1, requires_grad=True)
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 4, 1)
    (partial_flip(x, torch.tensor([3]), 1) * weights).sum().backward()
    assert x.grad.view(-1).tolist() == [2.0, 1.0, 3.0, 4.0]


def test_negative_r_is_an_error():
    with pytest.raises(ValueError, match="flip_r"):
        partial_flip(torch.zeros(1, 3, 1), torch.tensor([3]), -1)


def test_official_flip_reverses_the_first_45_positions_whatever_the_lengths():
    x = seqs([1, 2, 3], length=6)
    assert rows(official_flip(x)) == [[0, 0, 0, 3, 2, 1]]  # L < 45: all of it
    for length in (50, 60):
        x = torch.arange(1, length + 1).view(1, length, 1)
        assert rows(official_flip(x))[0] == list(range(45, 0, -1)) + list(range(46, length + 1))
