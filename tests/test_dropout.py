"""The C++ dropout draws torch's own masks: output, gradient and generator state bit for bit."""

import logging

import pytest
import torch
import torch.nn.functional as F

from recbole_sigma.ops import Dropout, scan_cpu
from recbole_sigma.ops import dropout as dropout_module
from recbole_sigma.ops.dropout import dropout
from tests.reference_sigma import trained_like


@pytest.fixture(autouse=True)
def kernel(monkeypatch):
    monkeypatch.setenv("SIGMA_CPU_SCAN", "cpp")
    assert scan_cpu.cpu_kernel() is not None, "the C++ kernels must build on CI machines"
    assert dropout_module._matches_torch(), "the kernel must draw torch's masks on CI machines"


def both(x: torch.Tensor, p: float, seed: int, used: int) -> tuple:
    """(output, generator state after) of torch's dropout and of ours, from the same state: a
    generator seeded with ``seed`` that has given ``used`` words already."""
    results = []
    for fn in (F.dropout, dropout):
        torch.manual_seed(seed)
        if used:
            torch.randint(0, 2**31, (used,))
        out = fn(x, p, True)
        results.append((out, torch.get_rng_state()))
    return results


# sizes across the generator's 624-word blocks (two words an element) and the kernel's 4096
# element chunks; `used`: how far into a block the generator starts
@pytest.mark.parametrize("numel", [1, 311, 312, 313, 4096, 4097, 20011])
@pytest.mark.parametrize("used", [0, 1, 623])
@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_output_and_generator_state_are_torchs(numel, used, p):
    x = torch.randn(numel)
    (expected, state_t), (actual, state_k) = both(x, p, seed=2020, used=used)
    assert torch.equal(actual, expected)
    assert torch.equal(state_k, state_t)


def test_fraction_dropped_and_scale():
    x = torch.ones(200_000)
    out = dropout(x, 0.3)
    kept = out != 0
    assert abs(1 - kept.float().mean().item() - 0.3) < 0.005
    assert torch.equal(out[kept], torch.full_like(out[kept], float(torch.ones(()) / 0.7)))


def test_gradient_is_torchs():
    x = torch.randn(7, 50, 64, requires_grad=True)
    grad_out = torch.randn(7, 50, 64)
    grads = []
    for fn in (F.dropout, dropout):
        torch.manual_seed(1)
        (g,) = torch.autograd.grad(fn(x, 0.3, True), x, grad_out)
        grads.append(g)
    assert torch.equal(grads[0], grads[1])
    assert (grads[1] == 0).any() and (grads[1] != 0).any()


@pytest.mark.parametrize("case", ["eval", "p=0", "p=1", "float64", "transposed", "empty"])
def test_what_the_kernel_does_not_take_is_torchs_dropout(case):
    x = torch.randn(6, 40)
    p, training = 0.3, True
    if case == "eval":
        training = False
    elif case == "p=0":
        p = 0.0
    elif case == "p=1":
        p = 1.0
    elif case == "float64":
        x = x.double()
    elif case == "transposed":
        x = x.t()
    else:
        x = x[:0]
    outs = []
    for fn in (F.dropout, dropout):
        torch.manual_seed(3)
        outs.append((fn(x, p, training), torch.get_rng_state()))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])


@pytest.mark.parametrize("inplace", [False, True])
def test_the_module_is_nn_dropout_in_place_or_not(inplace):
    outs = []
    for module in (torch.nn.Dropout(0.3, inplace), Dropout(0.3, inplace)):
        torch.manual_seed(8)
        outs.append((module(torch.randn(3, 700)), torch.get_rng_state()))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])


def test_no_grad_and_inference_mode_give_torchs_dropout():
    x = torch.randn(4, 900)
    for context in (torch.no_grad, torch.inference_mode):
        with context():
            (expected, state_t), (actual, state_k) = both(x, 0.2, seed=6, used=5)
        assert torch.equal(actual, expected) and torch.equal(state_k, state_t)


def test_the_first_use_check_leaves_the_generator_alone(monkeypatch):
    monkeypatch.setattr(dropout_module, "_matches_torch", dropout_module._matches_torch.__wrapped__)
    torch.manual_seed(11)
    before = torch.get_rng_state()
    assert dropout_module._matches_torch()
    assert torch.equal(torch.get_rng_state(), before)


def test_a_kernel_that_draws_otherwise_falls_back_to_torch(monkeypatch, caplog):
    def wrong_noise(numel, p):
        return torch.full((numel,), 1 / (1 - p))

    monkeypatch.setattr(dropout_module, "_noise", wrong_noise)
    monkeypatch.setattr(dropout_module, "_matches_torch", dropout_module._matches_torch.__wrapped__)
    x = torch.randn(500)
    with caplog.at_level(logging.WARNING):
        (expected, _), (actual, _) = both(x, 0.3, seed=0, used=0)
    assert torch.equal(actual, expected)
    assert "differ" in caplog.text


def forward_backward(model: torch.nn.Module) -> tuple:
    """Output and parameter gradients of ``model`` in training mode on a fixed batch of 9 users,
    the generator seeded first (the same masks for every model that draws like torch)."""
    g = torch.Generator().manual_seed(2)
    seq = torch.randint(1, model.n_items, (9, model.max_seq_length), generator=g)
    lens = torch.randint(1, model.max_seq_length + 1, (9,), generator=g)
    torch.manual_seed(4)
    out = model.train()(seq, lens)
    return out, torch.autograd.grad(out.square().sum(), list(model.parameters()),
                                    allow_unused=True)


def assert_same_step(expected: tuple, actual: tuple) -> None:
    """Two :func:`forward_backward` results equal bit for bit."""
    assert torch.equal(expected[0], actual[0])
    for ge, ga in zip(expected[1], actual[1], strict=True):
        assert (ge is None and ga is None) or torch.equal(ge, ga)


def test_sigma_train_step_is_torchs_with_trained_like_weights(make_sigma, monkeypatch):
    """A logged-variant SIGMA (embedding, gate and FFN dropouts) trains to the same loss and
    gradients, bit for bit, with the kernel's dropout and with torch's."""
    model = make_sigma(sigma_variant="logged", dropout_prob=0.3, n_layers=2)
    trained_like(model)
    assert any(isinstance(m, Dropout) for m in model.modules())
    monkeypatch.setattr(dropout_module, "_takes", lambda x: False)
    expected = forward_backward(model)
    monkeypatch.undo()
    monkeypatch.setenv("SIGMA_CPU_SCAN", "cpp")
    drawn = []
    noise = dropout_module._noise
    monkeypatch.setattr(dropout_module, "_noise", lambda *a: drawn.append(a) or noise(*a))
    actual = forward_backward(model)
    assert len(drawn) == 1 + 2 * 4  # the embedding; per layer the gate, the block, the FFN twice
    assert_same_step(expected, actual)


@pytest.mark.parametrize("name", ["SASRec", "GRU4Rec"])
def test_baselines_draw_recboles_masks_through_the_kernel(name, tiny_config, tiny_dataset,
                                                          monkeypatch):
    """The plugin's SASRec and GRU4Rec (ungrouped) train as RecBole's own, bit for bit, with
    every dropout through the kernel."""
    from recbole.model.sequential_recommender import gru4rec, sasrec

    from recbole_sigma.model import GRU4Rec, SASRec
    from recbole_sigma.quick_start import build_config

    ours_class, recbole_class = {"SASRec": (SASRec, sasrec.SASRec),
                                 "GRU4Rec": (GRU4Rec, gru4rec.GRU4Rec)}[name]
    config = build_config(name, "ml-tiny", config_dict=dict(tiny_config, group_by_length=False))
    torch.manual_seed(0)
    theirs = recbole_class(config, tiny_dataset)
    trained_like(theirs)
    ours = ours_class(config, tiny_dataset)
    ours.load_state_dict(theirs.state_dict())
    assert not [m for m in ours.modules() if type(m) is torch.nn.Dropout]
    drawn = []
    noise = dropout_module._noise
    monkeypatch.setattr(dropout_module, "_noise", lambda *a: drawn.append(a) or noise(*a))
    expected = forward_backward(theirs)
    actual = forward_backward(ours)
    assert drawn
    assert_same_step(expected, actual)
