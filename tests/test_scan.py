"""The fast selective scan (C++ kernel and PyTorch loop) against the float64 reference."""

import pytest
import torch

from recbole_sigma.mamba import TorchMamba
from recbole_sigma.ops import (
    causal_conv1d,
    causal_conv1d_silu_time_major,
    scan_cpu,
    selective_scan,
    selective_scan_reference,
)
from recbole_sigma.ops.length_groups import by_length, length_groups

NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def make_inputs(batch=3, dim=6, length=9, state=5, dtype=torch.float64, seed=0) -> list:
    g = torch.Generator().manual_seed(seed)
    shapes = [(batch, dim, length), (batch, dim, length), (dim, state), (batch, state, length),
              (batch, state, length), (dim,), (batch, dim, length), (dim,)]
    xs = [torch.randn(s, generator=g, dtype=dtype) for s in shapes]
    xs[2] = -torch.rand(dim, state, generator=g, dtype=dtype) * 3  # A < 0 as in Mamba
    return [x.requires_grad_() for x in xs]


def run_scan(fn, xs):
    return fn(*xs[:7], delta_bias=xs[7], delta_softplus=True)


def assert_float32_close(actual, expected, msg=None):
    """float32 against the float64 reference: 1e-5 relative per element, or 1e-6 of the tensor's
    largest element (gradients such as dL/dA sum hundreds of float32 terms that cancel)."""
    atol = 1e-5 + 1e-6 * expected.abs().max().item()
    torch.testing.assert_close(actual.double(), expected, rtol=1e-5, atol=atol, msg=msg)


@pytest.fixture(params=["cpp", "torch"])
def path(request, monkeypatch):
    monkeypatch.setenv("SIGMA_CPU_SCAN", request.param)
    if request.param == "cpp":
        assert scan_cpu.cpu_kernel() is not None, "the C++ scan must build on CI machines"
    return request.param


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_and_every_gradient_match_the_reference(path, dtype):
    xs = make_inputs(dtype=dtype)
    ref_xs = [x.detach().double().requires_grad_() for x in xs]
    y, y_ref = run_scan(selective_scan, xs), run_scan(selective_scan_reference, ref_xs)
    gy = torch.randn_like(y_ref)
    grads = torch.autograd.grad(y, xs, gy.to(dtype))
    ref_grads = torch.autograd.grad(y_ref, ref_xs, gy)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(y.double(), y_ref, rtol=tol, atol=tol)
    for name, g, g_ref in zip(NAMES, grads, ref_grads, strict=True):
        torch.testing.assert_close(g.double(), g_ref, rtol=tol, atol=tol, msg=name)


def test_gradcheck(path):
    xs = make_inputs(batch=2, dim=3, length=5, state=4)
    assert torch.autograd.gradcheck(lambda *a: run_scan(selective_scan, list(a)), xs)


def test_long_sequences_and_state_32_match(path):
    xs = make_inputs(batch=4, dim=8, length=200, state=32, dtype=torch.float32, seed=1)
    ref = run_scan(selective_scan_reference, [x.detach().double() for x in xs])
    torch.testing.assert_close(run_scan(selective_scan, xs).double(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dim", [16, 48])  # whole 16-channel vectors: the AVX-512 / 16-lane code
def test_vector_kernel_matches_the_reference_in_every_gradient(path, dim):
    xs = make_inputs(batch=3, dim=dim, length=23, state=12, dtype=torch.float32, seed=2)
    ref_xs = [x.detach().double().requires_grad_() for x in xs]
    y, y_ref = run_scan(selective_scan, xs), run_scan(selective_scan_reference, ref_xs)
    gy = torch.randn_like(y_ref)
    grads = torch.autograd.grad(y, xs, gy.float())
    ref_grads = torch.autograd.grad(y_ref, ref_xs, gy)
    assert_float32_close(y, y_ref)
    for name, g, g_ref in zip(NAMES, grads, ref_grads, strict=True):
        assert_float32_close(g, g_ref, msg=name)


@pytest.mark.parametrize("option", [None, "D", "z", "delta_bias", "delta_softplus"])
def test_each_optional_input_alone_matches_the_reference(option, monkeypatch):
    """The fused kernel branches on D, z, delta_bias and softplus: each on its own, float32."""
    monkeypatch.setenv("SIGMA_CPU_SCAN", "cpp")
    torch.manual_seed(0)
    u, delta, A, B, C, D, z, bias = make_inputs(batch=2, dim=32, length=9, state=8, seed=3)
    given = {"D": D, "z": z, "delta_bias": bias, "delta_softplus": True}
    kwargs = {option: given[option]} if option else {}
    if option != "delta_softplus":  # positive without softplus, as Mamba's dt
        delta = delta.detach().abs().requires_grad_()
    xs = [u, delta, A, B, C] + [v for v in kwargs.values() if isinstance(v, torch.Tensor)]
    fast_xs = [x.detach().float().requires_grad_() for x in xs]
    fast_kwargs = {k: v if isinstance(v, bool) else fast_xs[5] for k, v in kwargs.items()}
    y = selective_scan(*fast_xs[:5], **fast_kwargs)
    y_ref = selective_scan_reference(u, delta, A, B, C, **kwargs)
    assert_float32_close(y, y_ref)
    gy = torch.randn_like(y_ref)
    grads = torch.autograd.grad(y, fast_xs, gy.float())
    for g, g_ref in zip(grads, torch.autograd.grad(y_ref, xs, gy), strict=True):
        assert_float32_close(g, g_ref)


def test_portable_lanes_match_the_avx512_kernel():
    """The plain-loop 16-lane code (what non-AVX-512 CPUs run) against the default build's path."""
    kernel = scan_cpu.cpu_kernel()
    u, delta, A, B, C, D, z, bias = (x.detach() for x in make_inputs(4, 32, 30, 16, torch.float32))
    u, delta, B, C, z = (t.transpose(1, 2).contiguous() for t in (u, delta, B, C, z))
    args = [u, delta, A, B, C, D, z, bias]
    out, y = kernel.forward(*args, True, True, False)
    out_p, y_p = kernel.forward(*args, True, True, True)
    torch.testing.assert_close(out_p, out, rtol=1e-5, atol=1e-6)
    gout = torch.randn_like(out)
    grads = kernel.backward(*args, True, y, gout, False)
    grads_p = kernel.backward(*args, True, y, gout, True)
    for g, g_p in zip(grads, grads_p, strict=True):
        torch.testing.assert_close(g_p, g, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("portable", [False, True])
def test_kernel_reads_strided_rows_of_z_b_c_in_place(portable):
    """z, B and C as slices of wider time-major rows (as in_proj and x_proj give them): the
    kernel's output and every gradient equal those of contiguous copies, bit for bit."""
    kernel = scan_cpu.cpu_kernel()
    u, delta, A, B, C, D, z, bias = (x.detach() for x in make_inputs(3, 32, 11, 8, torch.float32))
    u, delta, B, C, z = (t.transpose(1, 2).contiguous() for t in (u, delta, B, C, z))
    xz = torch.cat([torch.randn_like(z), z], dim=-1)  # (Bt, L, 2E): z is its second half
    x_dbl = torch.cat([torch.randn(3, 11, 4), B, C], dim=-1)  # (Bt, L, R + 2N)
    z_view, B_view, C_view = xz[..., 32:], x_dbl[..., 4:12], x_dbl[..., 12:]
    assert not (z_view.is_contiguous() or B_view.is_contiguous() or C_view.is_contiguous())
    results = []
    for zz, BB, CC in ((z, B, C), (z_view, B_view, C_view)):
        args = [u, delta, A, BB, CC, D, zz, bias]
        out, y = kernel.forward(*args, True, True, portable)
        gout = torch.ones_like(out) + torch.arange(out.numel()).view_as(out) % 7
        results.append((out, y, *kernel.backward(*args, True, y, gout, portable)))
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)
    with pytest.raises(RuntimeError, match="unit channel stride"):
        kernel.forward(u, delta, A, B.transpose(1, 2), C, D, z, bias, True, True, portable)
    with pytest.raises(RuntimeError, match="C has shape"):
        kernel.forward(u, delta, A, B, C[..., :4], D, z, bias, True, True, portable)


def test_one_state_channel_major_inputs_take_the_kernel():
    """d_state 1 through mamba_ssm's (B, N, L) layout: B and C have a size-1 last dimension
    whose stride is not 1, which is still one value per row."""
    xs = make_inputs(batch=2, dim=16, length=7, state=1, dtype=torch.float32)
    ref = [x.detach().double().requires_grad_() for x in xs]
    assert_float32_close(run_scan(selective_scan, xs), run_scan(selective_scan_reference, ref))


def test_kernel_leaves_the_denormal_mode_as_it_was(path):
    """The kernel flushes denormals while it runs (speed); the caller's mode is restored."""
    tiny = torch.tensor([1e-39])  # a float32 denormal
    xs = make_inputs(batch=2, dim=16, length=5, state=4, dtype=torch.float32)
    run_scan(selective_scan, xs).sum().backward()
    assert (tiny * 1.0).item() > 0 and (tiny + 0.0).item() > 0


def test_causal_conv_matches_conv1d():
    x, w, b = torch.randn(2, 5, 11), torch.randn(5, 4), torch.randn(5)
    full = torch.nn.functional.conv1d(x, w.unsqueeze(1), b, padding=3, groups=5)[..., :11]
    torch.testing.assert_close(causal_conv1d(x, w, b, silu=False), full)
    torch.testing.assert_close(causal_conv1d(x, w, b), torch.nn.functional.silu(full))


@pytest.mark.parametrize("dim", [6, 48])  # one lane, and whole 16-channel vectors
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("length", [2, 11])  # shorter than the kernel, and longer
def test_time_major_conv_matches_conv1d_in_every_gradient(path, dim, dtype, length):
    """Mamba's conv on a slice of in_proj's output (strided rows), against F.conv1d in float64."""
    g = torch.Generator().manual_seed(dim + length)
    xz = torch.randn(3, length, 2 * dim, generator=g, dtype=dtype, requires_grad=True)
    w = torch.randn(dim, 4, generator=g, dtype=dtype, requires_grad=True)
    b = torch.randn(dim, generator=g, dtype=dtype, requires_grad=True)
    ref_xs = [t.detach().double().requires_grad_() for t in (xz, w, b)]
    y = causal_conv1d_silu_time_major(xz[..., :dim], w, b)  # (B, L, E)
    full = torch.nn.functional.conv1d(ref_xs[0][..., :dim].transpose(1, 2), ref_xs[1].unsqueeze(1),
                                      ref_xs[2], padding=3, groups=dim)[..., :length]
    y_ref = torch.nn.functional.silu(full).transpose(1, 2)
    gy = torch.randn(y_ref.shape, generator=g, dtype=torch.float64)
    grads = torch.autograd.grad(y, (xz, w, b), gy.to(dtype))
    ref_grads = torch.autograd.grad(y_ref, ref_xs, gy)
    check = assert_float32_close if dtype == torch.float32 else torch.testing.assert_close
    check(y.double(), y_ref)
    for name, grad, grad_ref in zip(("x", "weight", "bias"), grads, ref_grads, strict=True):
        check(grad.double(), grad_ref, msg=name)
    assert not grads[0][..., dim:].any()  # z's half of in_proj's output


def test_time_major_conv_gradcheck_and_no_bias(path):
    shapes = [(2, 6, 3), (3, 4), (3,)]
    x, w, b = (torch.randn(s, dtype=torch.float64, requires_grad=True) for s in shapes)
    assert torch.autograd.gradcheck(causal_conv1d_silu_time_major, (x, w, b))
    assert torch.autograd.gradcheck(causal_conv1d_silu_time_major, (x, w))
    expected = causal_conv1d(x.transpose(1, 2), w).transpose(1, 2)
    torch.testing.assert_close(causal_conv1d_silu_time_major(x, w), expected)


def test_portable_lanes_match_the_avx512_conv():
    kernel = scan_cpu.cpu_kernel()
    x, gout = torch.randn(4, 30, 32), torch.randn(4, 30, 32)
    w, b = torch.randn(32, 4), torch.randn(32)
    out = kernel.conv_forward(x, w, b, False)
    torch.testing.assert_close(kernel.conv_forward(x, w, b, True), out, rtol=1e-5, atol=1e-6)
    grads = kernel.conv_backward(x, w, b, gout, False)
    for g, g_p in zip(grads, kernel.conv_backward(x, w, b, gout, True), strict=True):
        torch.testing.assert_close(g_p, g, rtol=1e-4, atol=1e-5)


def test_unknown_scan_setting_is_an_error(monkeypatch):
    monkeypatch.setenv("SIGMA_CPU_SCAN", "fast")
    with pytest.raises(ValueError, match="SIGMA_CPU_SCAN"):
        scan_cpu.cpu_kernel()


def test_mamba_block_ignores_appended_padding_and_paths_agree(monkeypatch):
    torch.manual_seed(0)
    block = TorchMamba(16, d_state=8)
    x = torch.randn(3, 7, 16)
    padded = torch.cat([x, torch.zeros(3, 5, 16)], dim=1)  # right padding, as RecBole stores it
    outputs = {}
    for choice in ("cpp", "torch"):
        monkeypatch.setenv("SIGMA_CPU_SCAN", choice)
        y = block(x)
        torch.testing.assert_close(block(padded)[:, :7], y)
        outputs[choice] = y
    torch.testing.assert_close(outputs["cpp"], outputs["torch"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("overrides", [{"n_layers": 2}, {"sigma_variant": "official"},
                                       {"sigma_variant": "logged"}])
def test_length_groups_give_sigma_the_same_scores_and_gradients(make_sigma, overrides):
    from reference_sigma import trained_like

    model = make_sigma(**overrides).eval()
    trained_like(model)  # a fresh model's zero biases would hide a padding leak
    assert model.group_by_length  # auto: on for the torch backend
    lengths = torch.tensor([1, 20, 3, 2, 9, 4, 17, 1])  # five length groups
    seq = torch.randint(1, model.n_items, (8, 20))
    seq[torch.arange(20)[None, :] >= lengths[:, None]] = 0
    grouped = model.forward(seq, lengths)
    model.group_by_length = False
    plain = model.forward(seq, lengths)
    torch.testing.assert_close(grouped, plain, rtol=1e-5, atol=1e-6)
    if model.paper_variant:  # the authors' flip reads the padded width: a cut batch scores apart
        cut = by_length(model.forward, seq, lengths)
        torch.testing.assert_close(cut, plain, rtol=1e-5, atol=1e-6)
    weight = model.item_embedding.weight
    g_grouped, g_plain = (torch.autograd.grad(o.square().sum(), weight) for o in (grouped, plain))
    torch.testing.assert_close(g_grouped, g_plain, rtol=1e-4, atol=1e-5)


def test_length_groups_partition_rows_with_at_most_sqrt2_padding():
    lengths = torch.randint(1, 201, (500,))
    groups = length_groups(lengths)
    assert torch.equal(torch.sort(torch.cat(groups)).values, torch.arange(500))
    for rows in groups:
        group = lengths[rows].double()
        assert group.max() / group.min() <= 2**0.5 + 1e-9
    assert len(groups) <= 2 * 8 + 1  # ceil(2 log2 200) + 1
