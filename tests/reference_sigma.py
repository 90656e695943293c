"""Slow, literal forward passes of SIGMA, written from the paper and from ../shared/SPEC.md.

They read a model's parameters but none of its modules except the Mamba block (tested on its own
in test_mamba.py): every other step is spelled out here, one user at a time where the paper
speaks of one sequence, so the tests can check the batched model against them.
"""

import torch
import torch.nn.functional as F


def trained_like(model: torch.nn.Module, seed: int = 0, scale: float = 0.3) -> None:
    """Move every parameter off its init (zero biases, LayerNorm 1/0, the mixing scalars...)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g).to(p.device))


def layer_norm(x: torch.Tensor, ln: torch.nn.LayerNorm) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias


def linear(x: torch.Tensor, layer: torch.nn.Linear) -> torch.Tensor:
    out = x @ layer.weight.t()
    return out if layer.bias is None else out + layer.bias


def conv_same(x: torch.Tensor, conv: torch.nn.Conv1d) -> torch.Tensor:
    """'same' Conv1d over time, zeros outside the sequence: x (L, D) -> (L, D)."""
    w = conv.weight  # (D_out, D_in, K)
    k = w.size(2)
    padded = F.pad(x, (0, 0, k // 2, k // 2))  # (L + K - 1, D)
    rows = [sum(padded[t + j] @ w[:, :, j].t() for j in range(k)) for t in range(len(x))]
    out = torch.stack(rows)
    return out + conv.bias


def gru(x: torch.Tensor, cell: torch.nn.GRU) -> torch.Tensor:
    """torch.nn.GRU's recurrence step by step (reset gate applied after the recurrent product)."""
    d = cell.hidden_size
    w_i, w_h = cell.weight_ih_l0, cell.weight_hh_l0  # (3D, D): r, z, n
    b_i = cell.bias_ih_l0 if cell.bias else torch.zeros(3 * d)
    b_h = cell.bias_hh_l0 if cell.bias else torch.zeros(3 * d)
    h = torch.zeros(d)
    out = []
    for x_t in x:
        gi, gh = w_i @ x_t + b_i, w_h @ h + b_h
        r = torch.sigmoid(gi[:d] + gh[:d])
        z = torch.sigmoid(gi[d : 2 * d] + gh[d : 2 * d])
        n = torch.tanh(gi[2 * d :] + r * gh[2 * d :])
        h = (1 - z) * n + z * h
        out.append(h)
    return torch.stack(out)


def ffn(h: torch.Tensor, block) -> torch.Tensor:
    """Eq. 10: LN(W4 GELU(W3 h + b3) + b4 + h)."""
    return layer_norm(linear(F.gelu(linear(h, block.w_1)), block.w_2) + h, block.LayerNorm)


def ds_gate(h: torch.Tensor, block):
    """Eq. 4-6 on one unpadded sequence (L, D); the "w/o DS gate" ablation sums the directions."""
    if block.gate is None:
        return 1.0
    d = linear(conv_same(linear(h, block.gate.linear), block.gate.conv), block.gate.dense)
    return F.silu(d) + torch.sigmoid(d)


def paper_user(model, items: list[int]) -> torch.Tensor:
    """The paper variant's representation of one user's items (no padding anywhere): (D,)."""
    n = len(items)
    x = layer_norm(model.item_embedding.weight[torch.tensor(items)], model.LayerNorm)  # (n, D)
    for block in model.layers:
        k = max(n - block.flip_r, 0)
        order = list(range(k - 1, -1, -1)) + list(range(k, n))  # partial flip
        xf = x[order]

        m_hat = ds_gate(x, block) * block.mamba(x[None])[0]
        if block.use_flip:
            mamba_f = block.mamba if block.share_mamba else block.mamba_flip
            flipped = ds_gate(xf, block) * mamba_f(xf[None])[0]
            m_hat = m_hat + (flipped[order] if block.flip_back else flipped)  # Eq. 3
        f = 0.0
        if block.fe_gru is not None:
            f = gru(conv_same(x, block.fe_gru.conv), block.fe_gru.gru)  # Eq. 7
        z = block.mix[0] * m_hat + block.mix[1] * f  # Eq. 8
        h = linear(z, block.proj)  # Eq. 9
        h = layer_norm(h + x if block.residual else h, block.LayerNorm)
        x = ffn(h, block.ffn)
    return x[n - 1]


def authors_batch(model, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
    """The authors' published forward (SPEC.md, 'Where the authors' code differs'): (B, D)."""
    x = layer_norm(model.item_embedding.weight[item_seq], model.LayerNorm)  # (B, L, D), unmasked
    for block in model.layers:
        f = x.clone()
        f[:, :45] = x[:, :45].flip(1)
        m, mf = block.mamba(x), block.mamba(f)
        h1 = x + linear(x, block.dense1)
        h2 = f + linear(f, block.dense2)
        si, sig = block.gate_silu, block.gate_sigmoid
        g1 = linear(F.silu(h1), si) + linear(torch.sigmoid(h1), sig)
        g2 = linear(F.silu(h2), si) + linear(torch.sigmoid(g1), sig)
        m, mf = m * g1 + m, mf * g2 + mf
        fe = torch.stack([gru(conv_same(row, block.fe_gru.conv), block.fe_gru.gru) for row in x])
        w = block.mix
        z = w[2] * m + w[1] * mf + w[0] * fe
        h = linear(z, block.proj)
        h = layer_norm(h + x if len(model.layers) > 1 else h, block.LayerNorm)
        x = ffn(h, block.ffn)
    return x[torch.arange(len(x)), item_seq_len - 1]


def logged_batch(model, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
    """The block that fits the authors' logged runs (README, Fidelity): (B, D). One gate from
    h1 for both directions, the GRU on the block input, no projection, nothing masked. The
    ablations drop the flipped direction, the gate (``m`` for ``m * g + m``) or the GRU."""
    x = layer_norm(model.item_embedding.weight[item_seq], model.LayerNorm)  # (B, L, D)
    for block in model.layers:
        g = 0.0
        if block.use_ds_gate:
            h1 = x + linear(x, block.dense1)
            g = linear(F.silu(h1), block.gate_silu) + linear(torch.sigmoid(h1), block.gate_sigmoid)
        w = block.mix
        m = block.mamba(x)
        z = w[2] * (m * g + m)
        if block.use_flip:
            f = x.clone()
            f[:, :45] = x[:, :45].flip(1)
            mf = block.mamba(f)
            z = z + w[1] * (mf * g + mf)
        if block.use_fe_gru:
            z = z + w[0] * torch.stack([gru(row, block.gru) for row in x])
        x = ffn(layer_norm(z + x if len(model.layers) > 1 else z, block.LayerNorm), block.ffn)
    return x[torch.arange(len(x)), item_seq_len - 1]
