"""The PyTorch Mamba block: mamba-ssm's parameter layout and a step-by-step float64 recurrence."""

import pytest
import torch
import torch.nn.functional as F
from reference_sigma import trained_like

from recbole_sigma.mamba import TorchMamba
from recbole_sigma.ops import scan_cpu

# mamba_ssm.Mamba(d_model=64, d_state=32, d_conv=4, expand=2).state_dict(), mamba-ssm 2.x
MAMBA_SSM_STATE = {
    "A_log": (128, 32),
    "D": (128,),
    "in_proj.weight": (256, 64),
    "conv1d.weight": (128, 1, 4),
    "conv1d.bias": (128,),
    "x_proj.weight": (68, 128),
    "dt_proj.weight": (128, 4),
    "dt_proj.bias": (128,),
    "out_proj.weight": (64, 128),
}


def test_state_dict_matches_mamba_ssm():
    state = TorchMamba(64, d_state=32, d_conv=4, expand=2).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == MAMBA_SSM_STATE
    assert list(state) == list(MAMBA_SSM_STATE)


def test_state_dict_round_trip():
    a, b = TorchMamba(16, 8), TorchMamba(16, 8)
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(2, 7, 16)
    assert torch.equal(a(x), b(x))


def step_by_step(m: TorchMamba, x: torch.Tensor) -> torch.Tensor:
    """Mamba as a recurrence, one token at a time (the decoding form of the same block)."""
    batch, length, _ = x.shape
    conv_state = x.new_zeros(batch, m.d_inner, m.d_conv)
    h = x.new_zeros(batch, m.d_inner, m.d_state)
    A = -torch.exp(m.A_log)
    out = []
    for t in range(length):
        xz = m.in_proj(x[:, t])  # (B, 2E)
        xt, z = xz.chunk(2, dim=-1)
        conv_state = torch.cat([conv_state[:, :, 1:], xt.unsqueeze(-1)], dim=-1)
        xt = F.silu((conv_state * m.conv1d.weight.squeeze(1)).sum(-1) + m.conv1d.bias)
        dt, B, C = m.x_proj(xt).split([m.dt_rank, m.d_state, m.d_state], dim=-1)
        dt = F.softplus(m.dt_proj(dt))  # (B, E)
        h = torch.exp(dt.unsqueeze(-1) * A) * h + (dt * xt).unsqueeze(-1) * B.unsqueeze(1)
        y = (h * C.unsqueeze(1)).sum(-1) + m.D * xt
        out.append(m.out_proj(y * F.silu(z)))
    return torch.stack(out, dim=1)


def test_block_equals_recurrence_in_float64():
    torch.manual_seed(0)
    m = TorchMamba(16, d_state=8, d_conv=4, expand=2).double()
    x = torch.randn(3, 11, 16, dtype=torch.float64)
    torch.testing.assert_close(m(x), step_by_step(m, x), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("scan", ["cpp", "torch"])
def test_block_and_its_gradients_equal_the_recurrence_on_trained_like_weights(scan, monkeypatch):
    """The time-major path (C++ conv and scan, or the PyTorch fallback) against the recurrence,
    every weight and bias moved off its init, float64."""
    monkeypatch.setenv("SIGMA_CPU_SCAN", scan)
    assert scan == "torch" or scan_cpu.cpu_kernel() is not None, "the C++ kernels must build"
    torch.manual_seed(1)
    m = TorchMamba(16, d_state=8, d_conv=4, expand=2).double()
    trained_like(m, scale=0.1)
    x = torch.randn(3, 11, 16, dtype=torch.float64, requires_grad=True)
    y, y_ref = m(x), step_by_step(m, x)
    torch.testing.assert_close(y, y_ref, rtol=1e-9, atol=1e-11)
    gy = torch.randn_like(y)
    inputs = [x, *m.parameters()]
    for g, g_ref in zip(torch.autograd.grad(y, inputs, gy), torch.autograd.grad(y_ref, inputs, gy),
                        strict=True):
        torch.testing.assert_close(g, g_ref, rtol=1e-9, atol=1e-11)


def test_block_is_causal():
    torch.manual_seed(0)
    m = TorchMamba(16, d_state=8)
    x = torch.randn(2, 12, 16)
    y_full = m(x)
    x_changed = x.clone()
    x_changed[:, 7:] = torch.randn(2, 5, 16)
    torch.testing.assert_close(m(x_changed)[:, :7], y_full[:, :7])
    torch.testing.assert_close(m(x[:, :7]), y_full[:, :7])
