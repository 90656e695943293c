"""SASRec, GRU4Rec and Mamba4Rec with length-grouped batches compute the padded batch's scores."""

import pytest
import torch
from recbole.model.sequential_recommender import gru4rec, sasrec
from reference_sigma import trained_like

from recbole_sigma.model import GRU4Rec, Mamba4Rec, SASRec
from recbole_sigma.model.mamba4rec import PaddedMamba4Rec
from recbole_sigma.quick_start import build_config, run

PADDED = {"SASRec": sasrec.SASRec, "GRU4Rec": gru4rec.GRU4Rec, "Mamba4Rec": PaddedMamba4Rec}
NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attn_dropout_prob": 0.0, "dropout_prob": 0.0}


@pytest.mark.parametrize("model_class", [SASRec, GRU4Rec, Mamba4Rec])
def test_grouped_batch_equals_padded_user_by_user(tiny_config, tiny_dataset, model_class):
    """Trained-like weights: each user alone at their own length through the padded model's
    forward (RecBole's for SASRec and GRU4Rec) equals the grouped batch and the padded batch (so
    grouping changes no score)."""
    name = model_class.__name__
    config = build_config(name, "ml-tiny", config_dict=tiny_config)
    torch.manual_seed(0)
    model = model_class(config, tiny_dataset).eval()
    assert model.group_by_length  # auto on CPU
    trained_like(model)
    lengths = [1, 2, 3, 6, 9, 14, 20, 5]
    g = torch.Generator().manual_seed(1)
    seq = torch.zeros(len(lengths), 20, dtype=torch.long)
    for b, n in enumerate(lengths):
        seq[b, :n] = torch.randint(1, model.n_items, (n,), generator=g)
    seq_len = torch.tensor(lengths)
    recbole_forward = PADDED[name].forward
    with torch.no_grad():
        alone = torch.cat([
            recbole_forward(model, seq[b : b + 1, :n], seq_len[b : b + 1])
            for b, n in enumerate(lengths)
        ])
        padded = recbole_forward(model, seq, seq_len)
        grouped = model.forward(seq, seq_len)
    assert alone.abs().max() > 0.1  # the outputs are not trivially equal
    torch.testing.assert_close(padded, alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grouped, alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["SASRec", "GRU4Rec", "Mamba4Rec"])
def test_grouped_training_gives_recbole_results(mini_config, workdir, one_thread, name):
    """A real RecBole run (no dropout, so no random masks differ): grouped and ungrouped batches
    train to the same validation and test metrics."""
    results = {
        group: run(name, "ml-tiny", config_dict=dict(mini_config, **NO_DROPOUT, epochs=2,
                                                     group_by_length=group, state="INFO"),
                   saved=False)
        for group in (True, False)
    }
    for key in ("best_valid_result", "test_result"):
        for metric, value in results[True][key].items():
            assert value == pytest.approx(results[False][key][metric], abs=2e-4), (key, metric)
    with open(results[True]["log_file"]) as log:
        source = Mamba4Rec.source if name == "Mamba4Rec" else "RecBole's model"
        assert f"{name}: {source}, group_by_length=True" in log.read()


def test_bad_group_by_length_is_refused(tiny_config):
    with pytest.raises(ValueError, match="'group_by_length' must be auto, True or False"):
        build_config("SASRec", "ml-tiny", config_dict=dict(tiny_config, group_by_length="yes"))


def test_mamba4rec_has_the_authors_parameter_count(tiny_config, tiny_dataset):
    """The authors' Beauty log prints Mamba4Rec with 846,784 trainable parameters (12,102 item
    rows of 64, padding included) and 918,912 with two layers."""
    for layers, logged in ((1, 846_784), (2, 918_912)):
        config = build_config("Mamba4Rec", "ml-tiny",
                              config_dict=dict(tiny_config, hidden_size=64, d_state=32,
                                                  num_layers=layers))
        model = Mamba4Rec(config, tiny_dataset)
        count = sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert count - model.n_items * 64 + 12_102 * 64 == logged


@pytest.mark.parametrize(("key", "value"), [("num_layers", 0), ("dropout_prob", 1.5),
                                            ("mamba_backend", "gpu"), ("d_state", "eight")])
def test_bad_mamba4rec_key_is_refused(tiny_config, key, value):
    with pytest.raises(ValueError, match=f"config key '{key}' must be.*Mamba4Rec.yaml"):
        build_config("Mamba4Rec", "ml-tiny", config_dict=dict(tiny_config, **{key: value}))
