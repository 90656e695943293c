"""The SIGMA model: shapes, padding invariance, ablation switches, variants and bad config."""

import logging

import pytest
import torch
import yaml

from recbole_sigma.data.paths import PROPERTIES
from recbole_sigma.model.settings import SigmaSettings


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


@pytest.mark.parametrize("variant", ["paper", "official", "logged"])
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
    mask = (torch.arange(6)[None, :] < n[:, None]).unsqueeze(-1)
    x = x * mask
    with torch.no_grad():
        both = block._pf_mamba(x, n, mask)
        block.use_flip = False
        forward_only = block._pf_mamba(x, n, mask)
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
        {"sigma_variant": "logged"},
        {"sigma_variant": "logged", "n_layers": 2},
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


@pytest.mark.parametrize("variant", ["paper", "official", "logged"])
def test_init_reaches_inside_mamba_like_the_authors(make_sigma, variant):
    model = make_sigma(sigma_variant=variant)
    mamba = model.layers[0].mamba
    assert torch.equal(mamba.A_log[0].exp().round(), torch.arange(1, 9).float())
    assert torch.equal(mamba.dt_proj.bias, torch.zeros_like(mamba.dt_proj.bias))
    assert abs(mamba.in_proj.weight.std().item() - 0.02) < 0.002
    assert model.item_embedding.weight[0].abs().sum() > 0  # the padding row is drawn too


def test_mamba_init_mamba_ssm_keeps_its_own_init(make_sigma):
    mamba = make_sigma(mamba_init="mamba_ssm").layers[0].mamba
    assert mamba.dt_proj.bias.abs().min() > 0
    assert mamba.in_proj.weight.std() > 0.05  # nn.Linear's default, not normal(0, 0.02)


PAPER_CONFIGS = [
    {},
    {"n_layers": 2},
    {"flip_back": True, "share_mamba": True, "n_layers": 2},
    {"mix_residual": True, "flip_r": 0},
    {"use_ds_gate": False, "use_fe_gru": False, "flip_r": 2},
]


@pytest.mark.parametrize("overrides", PAPER_CONFIGS)
def test_paper_variant_matches_the_equations_user_by_user(make_sigma, overrides):
    """Trained-like weights: each user alone, unpadded, through the literal equations, equals the
    batched model grouped or not and with any amount of trailing padding."""
    from reference_sigma import paper_user, trained_like

    lengths = [1, 2, 3, 6, 9, 14, 20]
    model = make_sigma(**overrides).eval()
    trained_like(model)
    inter = batch(model, lengths, 20, seed=1)
    seq = inter[model.ITEM_SEQ]
    with torch.no_grad():
        want = torch.stack([paper_user(model, seq[b, :n].tolist()) for b, n in enumerate(lengths)])
        for group in (True, False):
            model.group_by_length = group
            for extra in (0, 13):
                padded = torch.nn.functional.pad(seq, (0, extra))
                got = model.forward(padded, inter[model.ITEM_SEQ_LEN])
                torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        # one user alone at their own length, and the batch in another order
        got = model.forward(seq[3:4, :6], torch.tensor([6]))
        torch.testing.assert_close(got[0], want[3], rtol=1e-5, atol=1e-5)
        perm = torch.tensor([6, 2, 0, 5, 1, 4, 3])
        got = model.forward(seq[perm], inter[model.ITEM_SEQ_LEN][perm])
        torch.testing.assert_close(got, want[perm], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("max_len, n_layers", [(50, 1), (30, 2), (60, 1), (60, 2)])
@pytest.mark.parametrize("group", [True, False])
@pytest.mark.parametrize("variant", ["official", "logged"])
def test_authors_variants_match_their_literal_forward(make_sigma, max_len, n_layers, group,
                                                      variant):
    """Trained-like weights; with one layer the batch is also encoded by length groups."""
    import reference_sigma

    model = make_sigma(sigma_variant=variant, n_layers=n_layers, group_by_length=group).eval()
    assert model.group_by_length == (group and n_layers == 1)
    reference_sigma.trained_like(model)
    lengths = [n for n in (1, 5, 22, 23, 30, 44, 45, 46) if n < max_len - 1]
    lengths += [max_len - 1, max_len]
    inter = batch(model, lengths, max_len, seed=2)
    seq, seq_len = inter[model.ITEM_SEQ], inter[model.ITEM_SEQ_LEN]
    literal = {"official": reference_sigma.authors_batch, "logged": reference_sigma.logged_batch}
    with torch.no_grad():
        want = literal[variant](model, seq, seq_len)
        got = model.forward(seq, seq_len)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant, n_layers, group, warned", [
    ("logged", 2, "auto", True), ("official", 2, True, True), ("logged", 1, "auto", False),
    ("paper", 2, "auto", False), ("logged", 2, False, False)])
def test_warns_when_authors_variants_cannot_group(make_sigma, caplog, variant, n_layers, group,
                                                  warned):
    """Length grouping asked (or auto on CPU) but impossible: a warning says why it is slower."""
    caplog.set_level(logging.WARNING)
    make_sigma(sigma_variant=variant, n_layers=n_layers, group_by_length=group)
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("cannot encode by length groups" in m for m in said) == warned


@pytest.mark.parametrize("n_layers", [1, 2])
@pytest.mark.parametrize("ablation", ["use_flip", "use_ds_gate", "use_fe_gru"])
def test_logged_ablations_match_their_literal_forward(make_sigma, ablation, n_layers):
    """Each switch drops its part of the logged block (trained-like weights; one layer: by
    length groups) and its modules, and nothing else."""
    import reference_sigma

    full = make_sigma(sigma_variant="logged", n_layers=n_layers)
    model = make_sigma(sigma_variant="logged", n_layers=n_layers, **{ablation: False}).eval()
    dropped = {"use_flip": set(), "use_ds_gate": {"dense1", "gate_silu", "gate_sigmoid"},
               "use_fe_gru": {"gru"}}[ablation]
    names = {name.split(".")[2] for name, _ in model.named_parameters() if ".layers." in f".{name}"}
    full_names = {name.split(".")[2] for name, _ in full.named_parameters()
                  if ".layers." in f".{name}"}
    assert names == full_names - dropped
    reference_sigma.trained_like(model)
    inter = batch(model, [1, 5, 22, 23, 30, 44, 45, 46, 49, 50], 50, seed=3)
    seq, seq_len = inter[model.ITEM_SEQ], inter[model.ITEM_SEQ_LEN]
    with torch.no_grad():
        want = reference_sigma.logged_batch(model, seq, seq_len)
        got = model.forward(seq, seq_len)
        full.load_state_dict(model.state_dict(), strict=False)
        other = full.eval().forward(seq, seq_len)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert (got - other).abs().max() > 1e-3  # the switch changes the scores


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


# a value other than the default of each key that a variant's form fixes
_OFF_DEFAULT = {"flip_r": 3, "gate_conv_kernel": 5, "flip_back": True, "mix_residual": True,
                "mix_init": [0.5, 1.0], "mamba_init": "mamba_ssm", "use_flip": False,
                "use_ds_gate": False, "use_fe_gru": False, "gru_conv_kernel": 5}
_NOT_READ = {
    "official": ("flip_r", "gate_conv_kernel", "flip_back", "mix_residual", "mix_init",
                 "mamba_init", "use_flip", "use_ds_gate", "use_fe_gru"),
    "logged": ("flip_r", "gate_conv_kernel", "flip_back", "mix_residual", "mix_init",
               "mamba_init", "gru_conv_kernel"),
}


@pytest.mark.parametrize("variant, key",
                         [(v, k) for v, keys in _NOT_READ.items() for k in keys])
def test_keys_the_variant_does_not_read_stop_the_run(make_sigma, variant, key):
    with pytest.raises(ValueError, match=f"config key '{key}'.*sigma_variant: {variant} does not"):
        make_sigma(sigma_variant=variant, **{key: _OFF_DEFAULT[key]})
    make_sigma(sigma_variant="paper", **{key: _OFF_DEFAULT[key]})
    make_sigma(sigma_variant=variant, **{key: getattr(SigmaSettings(), key)})  # its default


def test_keys_the_variants_read_pass(make_sigma):
    """The official variant reads the FE-GRU conv kernel, the logged one the ablation switches;
    both share one Mamba, as share_mamba: True says."""
    make_sigma(sigma_variant="official", gru_conv_kernel=5, share_mamba=True)
    make_sigma(sigma_variant="logged", use_flip=False, use_ds_gate=False, share_mamba=True)


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
