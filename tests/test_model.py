"""The SIGMA model: shapes, padding invariance, ablation switches, variants and bad config."""

import pytest
import torch
import yaml

from recbole_sigma.model.settings import SigmaSettings
from recbole_sigma.quick_start import PROPERTIES


def batch(model, lengths: list, max_len: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    seq = torch.zeros(len(lengths), max_len, dtype=torch.long)
    for b, n in enumerate(lengths):
        seq[b, :n] = torch.randint(1, model.n_items, (n,), generator=g)
    return {
        model.ITEM_SEQ: seq,
        model.ITEM_SEQ_LEN: torch.tensor(lengths),
        model.POS_ITEM_ID: torch.randint(1, model.n_items, (len(lengths),), generator=g),
    }


def test_defaults_match_properties_yaml():
    on_disk = yaml.safe_load((PROPERTIES / "model" / "SIGMA.yaml").read_text())
    defaults = SigmaSettings().__dict__
    assert {k: on_disk[k] for k in defaults} == {
        k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items()
    }


def test_full_sort_shape_and_loss(make_sigma):
    model = make_sigma()
    inter = batch(model, [1, 4, 9, 20], 20)
    assert model.full_sort_predict(inter).shape == (4, model.n_items)
    loss = model.calculate_loss(inter)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_scores_do_not_depend_on_trailing_padding(make_sigma, variant):
    model = make_sigma(sigma_variant=variant).eval()
    inter = batch(model, [1, 3, 8, 12], 12)
    wider = dict(inter)
    wider[model.ITEM_SEQ] = torch.nn.functional.pad(inter[model.ITEM_SEQ], (0, 8))
    with torch.no_grad():
        a, b = model.full_sort_predict(inter), model.full_sort_predict(wider)
    if variant == "paper":
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    else:  # the authors' flip reverses the first L - r padded positions: L matters
        assert not torch.allclose(a, b)


def test_flipped_branch_equals_forward_branch_when_n_le_r(make_sigma):
    # with one shared Mamba, rows with n <= r are not flipped, so PF-Mamba = 2 x forward branch
    block = make_sigma(flip_r=3, share_mamba=True).layers[0].eval()
    x = torch.randn(3, 6, 16)
    n = torch.tensor([2, 3, 6])
    x[torch.arange(6)[None, :] >= n[:, None]] = 0.0
    with torch.no_grad():
        both = block._pf_mamba(x, n)
        block.use_flip = False
        forward_only = block._pf_mamba(x, n)
    torch.testing.assert_close(both[:2], 2 * forward_only[:2])
    assert not torch.allclose(both[2, :6], 2 * forward_only[2, :6])


@pytest.mark.parametrize(
    "overrides",
    [
        {"use_flip": False},
        {"use_ds_gate": False},
        {"use_fe_gru": False},
        {"share_mamba": True},
        {"n_layers": 2},
        {"sigma_variant": "official"},
        {"sigma_variant": "official", "n_layers": 2},
        {"flip_r": 0},
    ],
)
def test_switches_run_and_train(make_sigma, overrides):
    model = make_sigma(**overrides)
    inter = batch(model, [2, 5, 7], 7)
    loss = model.calculate_loss(inter)
    loss.backward()
    assert torch.isfinite(loss)


def test_switches_change_the_parameters(make_sigma):
    names = lambda m: {n.split(".")[2] for n, _ in m.named_parameters() if n.startswith("layers")}  # noqa: E731
    assert {"mamba", "mamba_flip", "gate", "fe_gru"} <= names(make_sigma())
    assert "mamba_flip" not in names(make_sigma(share_mamba=True))
    assert "gate" not in names(make_sigma(use_ds_gate=False))
    assert "fe_gru" not in names(make_sigma(use_fe_gru=False))


def test_mamba_keeps_its_own_init(make_sigma):
    mamba = make_sigma().layers[0].mamba
    assert torch.equal(mamba.A_log[0].exp().round(), torch.arange(1, 9).float())
    assert mamba.dt_proj.bias.abs().min() > 0  # not zeroed by the RecBole init


def test_bpr_loss(make_sigma, tiny_config):
    model = make_sigma(loss_type="BPR")
    inter = batch(model, [2, 5], 5)
    inter[model.NEG_ITEM_ID] = torch.tensor([3, 4])
    assert torch.isfinite(model.calculate_loss(inter))


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("flip_r", -1, "flip_r"),
        ("mamba_backend", "tpu", "mamba_backend"),
        ("sigma_variant", "v2", "sigma_variant"),
        ("n_layers", 0, "n_layers"),
        ("dropout_prob", 1.5, "dropout_prob"),
        ("gru_conv_kernel", 2, "gru_conv_kernel"),
        ("use_flip", "yes", "use_flip"),
        ("group_by_length", 1, "group_by_length"),
    ],
)
def test_bad_config_values_raise_clear_errors(make_sigma, key, value, message):
    with pytest.raises(ValueError, match=message):
        make_sigma(**{key: value})


def test_cuda_backend_without_cuda_is_a_clear_error(make_sigma):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the error is for machines without it")
    with pytest.raises(RuntimeError, match="mamba_backend: cuda needs a CUDA device"):
        make_sigma(mamba_backend="cuda")


def test_auto_backend_is_torch_on_cpu_and_logged(make_sigma, caplog):
    with caplog.at_level("INFO"):
        model = make_sigma(mamba_backend="auto")
    assert model.mamba_backend == "torch"
    assert "mamba_backend=torch" in caplog.text
