"""Train forms of the authors' SIGMA block, initialised exactly as their code initialises it.

    python benchmarks/authors_forms.py --form published --epochs 2
    python benchmarks/authors_forms.py --form fingerprint            # to convergence
    python benchmarks/authors_forms.py --form fingerprint --resume saved/SIGMA-...-last.pth
    python benchmarks/authors_forms.py --flops                        # every form's FLOP count

The authors' logged Beauty runs (their notebook ``RecMamba.ipynb``) do not come from their
published ``model/gated_mamba.py``. Each form below is the ``official`` variant's block with one
change; the model is built in the authors' module order with their ``_init_weights`` (so seed
2020 draws the initial weights as their code does) and trained by the plugin's RecBole pipeline
(length groups, exact for one layer). Forms:

- ``published``: ``gated_mamba.py`` as published (= ``sigma_variant: official``).
- ``notebook_gates``: the notebook's printout: ``selective_gate_sig`` = (SiLU, Linear),
  ``selective_gate_si`` = (Sigmoid, Linear), gate dropout 0.3; the published forward code.
- ``commented_mix``: ``notebook_gates`` with the mix order left commented out in the published
  file (``w[0]`` flipped, ``w[1]`` forward, ``w[2]`` GRU).
- ``gru_on_x``: the published forward with the GRU reading the block input (no Conv1d).
- ``fingerprint``: the form that the logged run's printed FLOPs (3,526,464) allow: one gate
  ``si(h1) + sig(h1)`` from ``h1 = x + dense1(x)`` on both directions, the GRU on the block input,
  no Conv1d, ``dense2`` or ``projection`` call; the published mix order. The model's
  ``sigma_variant: logged`` computes this form (``tests/test_authors_forms.py``) with the modules
  it calls only, created in another order (so a seed draws other initial weights).

``--flops`` counts FLOPs as RecBole's ``get_flops`` logs them (thop), with Mamba counted as 0 as
mamba-ssm's fused path calls none of its submodules, on padded batches (no length groups).
"""

import argparse
import importlib
import logging
import sys
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recbole_sigma import utils  # noqa: E402
from recbole_sigma.mamba.torch_mamba import TorchMamba  # noqa: E402
from recbole_sigma.model.layers import FeedForward  # noqa: E402
from recbole_sigma.model.official import OfficialGMambaBlock  # noqa: E402
from recbole_sigma.model.scoring import init_like_recbole  # noqa: E402
from recbole_sigma.model.sigma import SIGMA  # noqa: E402
from recbole_sigma.ops import official_flip  # noqa: E402

NOTEBOOK_MODULES = ("notebook_gates", "commented_mix", "fingerprint")


class _GMamba(nn.Module):
    """The authors' GMambaBlock modules in their order (notebook: two more scalars, the gate
    activations swapped, gate dropout 0.3)."""

    def __init__(self, d: int, notebook: bool) -> None:
        super().__init__()
        self.combining_weights = nn.Parameter(torch.tensor([0.1, 0.1, 0.8]))
        if notebook:
            self.weights = nn.Parameter(torch.tensor([0.5, 0.5]))
        self.dense1, self.dense2, self.projection = (nn.Linear(d, d) for _ in range(3))
        self.mamba = TorchMamba(d, 32, 4, 2)
        self.gru = nn.GRU(d, d, num_layers=1, bias=False, batch_first=True)
        first, second = (nn.SiLU(), nn.Sigmoid()) if notebook else (nn.Sigmoid(), nn.SiLU())
        self.selective_gate_sig = nn.Sequential(first, nn.Linear(d, d))
        self.selective_gate_si = nn.Sequential(second, nn.Linear(d, d))
        self.selective_gate = nn.Sequential(nn.Dropout(0.3 if notebook else 0.2))
        self.conv1d = nn.Conv1d(d, d, kernel_size=3, padding=1)


class _Layer(nn.Module):
    def __init__(self, d: int, notebook: bool) -> None:
        super().__init__()
        self.gmamba = _GMamba(d, notebook)
        self.dropout, self.LayerNorm = nn.Dropout(0.2), nn.LayerNorm(d, eps=1e-12)
        self.ffn = FeedForward(d, 0.2)


class AuthorsTree(nn.Module):
    """The authors' SIGMA modules, created in their order and initialised by their code (their
    ``_init_weights`` is RecBole's: ``init_like_recbole``)."""

    def __init__(self, n_items: int, d: int, notebook: bool) -> None:
        super().__init__()
        self.item_embedding = nn.Embedding(n_items, d, padding_idx=0)
        self.LayerNorm = nn.LayerNorm(d, eps=1e-12)
        self.dropout = nn.Dropout(0.2)
        self.mamba_layers = nn.ModuleList([_Layer(d, notebook)])
        self.loss_fct = nn.CrossEntropyLoss()
        self.apply(init_like_recbole)


def our_names(tree: AuthorsTree, notebook: bool) -> dict[str, str]:
    """Our official model's parameter name -> the authors' name (dense2, projection, conv1d and
    the notebook's two scalars exist there either way)."""
    g = "mamba_layers.0.gmamba."
    # the Linear after SiLU: published selective_gate_si, notebook selective_gate_sig
    after_silu = "selective_gate_sig.1" if notebook else "selective_gate_si.1"
    after_sigmoid = "selective_gate_si.1" if notebook else "selective_gate_sig.1"
    names = {"item_embedding.weight": "item_embedding.weight",
             "LayerNorm.weight": "LayerNorm.weight", "LayerNorm.bias": "LayerNorm.bias",
             "layers.0.mix": g + "combining_weights"}
    for ours, theirs in [("dense1", "dense1"), ("dense2", "dense2"), ("proj", "projection"),
                         ("gate_silu", after_silu), ("gate_sigmoid", after_sigmoid),
                         ("fe_gru.conv", "conv1d")]:
        for p in ("weight", "bias"):
            names[f"layers.0.{ours}.{p}"] = f"{g}{theirs}.{p}"
    for name, _ in tree.named_parameters():
        if name.startswith((g + "mamba.", g + "gru.")):
            rest = name[len(g):]
            names["layers.0." + ("fe_gru." + rest if rest.startswith("gru.") else rest)] = name
        elif name.startswith(("mamba_layers.0.LayerNorm", "mamba_layers.0.ffn")):
            names["layers.0." + name[len("mamba_layers.0."):]] = name
    return names


class NotebookGatesBlock(OfficialGMambaBlock):
    """The published forward with the notebook's gate modules: the Linear after Sigmoid reads
    h2 in the flipped gate, the one after SiLU the forward gate g1."""

    commented_mix = False

    def forward(self, x: torch.Tensor, xf: Optional[torch.Tensor] = None) -> torch.Tensor:
        xf = official_flip(x) if xf is None else xf  # (B, L, D)
        m, mf = self.mamba(torch.cat([x, xf])).chunk(2)
        h1, h2 = x + self.dense1(x), xf + self.dense2(xf)
        g1 = self.gate_dropout(self.gate_sigmoid(torch.sigmoid(h1)) + self.gate_silu(F.silu(h1)))
        g2 = self.gate_dropout(self.gate_sigmoid(torch.sigmoid(h2)) + self.gate_silu(F.silu(g1)))
        m, mf, fe = m * g1 + m, mf * g2 + mf, self.fe_gru(x)
        w = self.mix
        if self.commented_mix:
            z = w[0] * mf + w[1] * m + w[2] * fe
        else:
            z = w[2] * m + w[1] * mf + w[0] * fe
        h = self.dropout(self.proj(z))
        return self.ffn(self.LayerNorm(h + x if self.residual else h))


class GruOnXBlock(OfficialGMambaBlock):
    """The published forward with the GRU reading the block input (no Conv1d before it)."""

    def forward(self, x: torch.Tensor, xf: Optional[torch.Tensor] = None) -> torch.Tensor:
        xf = official_flip(x) if xf is None else xf  # (B, L, D)
        m, mf = self.mamba(torch.cat([x, xf])).chunk(2)
        h1, h2 = x + self.dense1(x), xf + self.dense2(xf)
        g1 = self.gate_dropout(self.gate_silu(F.silu(h1)) + self.gate_sigmoid(torch.sigmoid(h1)))
        g2 = self.gate_dropout(self.gate_silu(F.silu(h2)) + self.gate_sigmoid(torch.sigmoid(g1)))
        fe, _ = self.fe_gru.gru(x)  # (B, L, D)
        z = self.mix[2] * (m * g1 + m) + self.mix[1] * (mf * g2 + mf) + self.mix[0] * fe
        h = self.dropout(self.proj(z))
        return self.ffn(self.LayerNorm(h + x if self.residual else h))


class FingerprintBlock(OfficialGMambaBlock):
    """One gate for both directions, the GRU on the block input, no projection: the calls the
    logged run's FLOP count allows (GRU, dense1 and the two gate Linears)."""

    def forward(self, x: torch.Tensor, xf: Optional[torch.Tensor] = None) -> torch.Tensor:
        xf = official_flip(x) if xf is None else xf  # (B, L, D)
        m, mf = self.mamba(torch.cat([x, xf])).chunk(2)
        h1 = x + self.dense1(x)
        g1 = self.gate_dropout(self.gate_sigmoid(torch.sigmoid(h1)) + self.gate_silu(F.silu(h1)))
        fe, _ = self.fe_gru.gru(x)  # (B, L, D)
        z = self.mix[2] * (m * g1 + m) + self.mix[1] * (mf * g1 + mf) + self.mix[0] * fe
        h = self.dropout(z)
        return self.ffn(self.LayerNorm(h + x if self.residual else h))


BLOCKS = {"published": None, "notebook_gates": NotebookGatesBlock,
          "commented_mix": NotebookGatesBlock, "gru_on_x": GruOnXBlock,
          "fingerprint": FingerprintBlock}


def authors_form(form: str) -> type:
    """A SIGMA class (official variant, one layer) with the block of ``form``, initialised as
    the authors' code initialises it."""

    class AuthorsForm(SIGMA):
        def __init__(self, config, dataset):
            state = torch.get_rng_state()
            super().__init__(config, dataset)
            torch.set_rng_state(state)  # the authors' modules draw from the same state
            notebook = form in NOTEBOOK_MODULES
            tree = AuthorsTree(self.n_items, config["hidden_size"], notebook)
            theirs = dict(tree.named_parameters())
            ours = dict(self.named_parameters())
            names = our_names(tree, notebook)
            assert set(names) == set(ours), set(names) ^ set(ours)
            with torch.no_grad():
                for name, their_name in names.items():
                    ours[name].copy_(theirs[their_name])
            block = self.layers[0]
            if BLOCKS[form] is not None:
                block.__class__ = BLOCKS[form]
            if notebook:
                block.gate_dropout.p = 0.3
            block.commented_mix = form == "commented_mix"
            logging.getLogger().info(f"authors_forms: form={form}, the authors' init")

    AuthorsForm.__name__ = "SIGMA"  # RecBole reads the model's YAML by this name
    # a checkpoint's config holds the model class: pickle finds it by module and this name
    AuthorsForm.__qualname__ = f"AuthorsForm_{form}"
    globals()[AuthorsForm.__qualname__] = AuthorsForm
    return AuthorsForm


def count_flops(model: nn.Module, dataset, train) -> float:
    """thop FLOPs of ``model`` as RecBole's ``get_flops`` logs them, Mamba counted as 0."""
    from recbole.utils import get_flops

    hooks = importlib.import_module("thop.profile").register_hooks
    hooks[TorchMamba] = lambda module, inputs, output: None  # adds nothing: 0 ops
    try:
        return get_flops(model, dataset, "cpu", logging.getLogger(), train.transform)
    finally:
        del hooks[TorchMamba]


def flops_table(dataset_name: str, config_dict: dict) -> str:
    """Markdown: each form's FLOPs (``count_flops``) on padded batches."""
    from recbole.data import create_dataset, data_preparation

    from recbole_sigma.quick_start import build_config

    config = build_config("SIGMA", dataset_name,
                          config_dict=dict(config_dict, group_by_length=False))
    dataset = create_dataset(config)
    train, _, _ = data_preparation(config, dataset)
    rows = ["| form | FLOPs |", "|---|---|"]
    for form in BLOCKS:
        flops = count_flops(authors_form(form)(config, train._dataset), dataset, train)
        rows.append(f"| {form} | {flops:,.0f} |")
    return "\n".join(rows) + "\n"


def evaluate(form: str, checkpoint: str, dataset_name: str, config_dict: dict) -> dict:
    """Valid and test metrics of a saved checkpoint of ``form`` (RecBole's evaluator)."""
    from recbole.data import create_dataset, data_preparation

    from recbole_sigma.quick_start import build_config
    from recbole_sigma.trainer import read_checkpoint
    from recbole_sigma.utils import get_trainer

    config = build_config("SIGMA", dataset_name, config_dict=config_dict)
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    model = authors_form(form)(config, train._dataset)
    model.load_state_dict(read_checkpoint(checkpoint)["state_dict"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    return {split: dict(trainer.evaluate(data, load_best_model=False, show_progress=False))
            for split, data in (("valid", valid), ("test", test))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--form", choices=sorted(BLOCKS), default="fingerprint")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--data_path", default=None, help="folder of <dataset>/<dataset>.inter")
    parser.add_argument("--resume", help="continue from a checkpoint this script saved")
    parser.add_argument("--evaluate", metavar="CHECKPOINT",
                        help="only evaluate a checkpoint of --form on valid and test")
    parser.add_argument("--flops", action="store_true", help="print each form's FLOPs and stop")
    args = parser.parse_args()
    config = {"sigma_variant": "official", "n_layers": 1, "show_progress": False,
              "state": "INFO", "epochs": args.epochs}
    if args.data_path:
        config["data_path"] = args.data_path
    if args.flops:
        print(flops_table(args.dataset, config), end="")
        return
    if args.evaluate:
        print(evaluate(args.form, args.evaluate, args.dataset, config))
        return
    from recbole_sigma.quick_start import run

    utils.PLUGIN_MODELS["SIGMA"] = authors_form(args.form)
    result = run("SIGMA", args.dataset, config_dict=config, resume=args.resume)
    print(args.form, result)


if __name__ == "__main__":
    main()
