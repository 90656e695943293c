"""A Mamba block in plain PyTorch whose parameters match ``mamba_ssm.Mamba`` name for name."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from recbole_sigma.ops import causal_conv1d_silu_time_major, selective_scan_time_major


class TorchMamba(nn.Module):
    """Mamba (S6) block; a state_dict of ``mamba_ssm.Mamba`` with the same sizes loads as is."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init_floor: float = 1e-4,
    ) -> None:
        super().__init__()
        self.d_model, self.d_state, self.d_conv = d_model, d_state, d_conv
        self.d_inner = expand * d_model
        self.dt_rank = math.ceil(d_model / 16)
        self.in_proj = nn.Linear(d_model, self.d_inner * 2, bias=False)
        self.conv1d = nn.Conv1d(
            self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1
        )
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
        # S4D-real A; mamba_ssm's dt init: softplus(dt_bias) log-uniform in [dt_min, dt_max]
        A = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(A))  # (E, N)
        self.D = nn.Parameter(torch.ones(self.d_inner))  # (E,)
        self.A_log._no_weight_decay = True
        self.D._no_weight_decay = True
        nn.init.uniform_(self.dt_proj.weight, -self.dt_rank**-0.5, self.dt_rank**-0.5)
        dt = torch.exp(
            torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        ).clamp(min=dt_init_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """hidden_states (B, L, D) -> (B, L, D); causal along L."""
        xz = self.in_proj(hidden_states)  # (B, L, 2E)
        x, z = xz.chunk(2, dim=-1)  # (B, L, E) each
        x = causal_conv1d_silu_time_major(x, self.conv1d.weight.squeeze(1), self.conv1d.bias)
        x_dbl = self.x_proj(x)  # (B, L, R + 2N)
        dt, B, C = x_dbl.split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.linear(dt, self.dt_proj.weight)  # (B, L, E)
        y = selective_scan_time_major(
            x,
            dt,
            -torch.exp(self.A_log),
            B,  # (B, L, N)
            C,  # (B, L, N)
            self.D,
            z=z,
            delta_bias=self.dt_proj.bias,
            delta_softplus=True,
        )  # (B, L, E)
        return self.out_proj(y)  # (B, L, D)
