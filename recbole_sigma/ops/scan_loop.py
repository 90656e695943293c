"""The selective scan as a PyTorch loop over time with a hand-written backward (any device).

Vectorised over (batch, channel, state), one step per time position. Only the states
(B, E, L, N) are kept for the backward; decays and inputs are recomputed step by step.
"""

import torch


class LoopScan(torch.autograd.Function):
    """y_t = <h_t, C_t>, h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t; reverse-time adjoint backward."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C):
        batch, dim, length = u.shape
        keep = any(ctx.needs_input_grad)  # inference keeps no (B, E, L, N) tensor
        states = u.new_empty(batch, dim, length if keep else 1, A.size(1))  # (B, E, L, N)
        y = torch.empty_like(u)
        h = u.new_zeros(batch, dim, A.size(1))  # (B, E, N)
        for t in range(length):
            dt = delta[:, :, t, None]  # (B, E, 1)
            h = torch.addcmul((dt * u[:, :, t, None]) * B[:, None, :, t], torch.exp(dt * A), h)
            states[:, :, t if keep else 0] = h
            y[:, :, t] = torch.einsum("ben,bn->be", h, C[:, :, t])
        ctx.save_for_backward(u, delta, A, B, C, states)
        return y  # (B, E, L)

    @staticmethod
    def backward(ctx, grad_y):
        u, delta, A, B, C, states = ctx.saved_tensors
        gu, gdelta = torch.empty_like(u), torch.empty_like(delta)
        gA, gB = torch.zeros_like(A), torch.empty_like(B)
        gC = torch.einsum("bel,beln->bnl", grad_y, states)  # (B, N, L)
        gh = torch.zeros_like(states[:, :, 0])  # (B, E, N): dL/dh_t
        for t in range(u.size(-1) - 1, -1, -1):
            gh = torch.addcmul(gh, grad_y[:, :, t, None], C[:, None, :, t])
            dt = delta[:, :, t, None]  # (B, E, 1)
            decay = torch.exp(dt * A)  # (B, E, N)
            g_dA = gh * decay * states[:, :, t - 1] if t > 0 else torch.zeros_like(gh)
            g_inp_b = (gh * B[:, None, :, t]).sum(-1)  # (B, E): dL/d(dt u)
            gdelta[:, :, t] = (g_dA * A).sum(-1) + g_inp_b * u[:, :, t]
            gu[:, :, t] = g_inp_b * delta[:, :, t]
            gA += (g_dA * dt).sum(0)
            gB[:, :, t] = torch.einsum("ben,be->bn", gh, delta[:, :, t] * u[:, :, t])
            gh = gh * decay
        return gu, gdelta, gA, gB, gC
