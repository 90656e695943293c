"""The CUDA path: mamba-ssm's kernels against the PyTorch Mamba, and SIGMA on either backend.

Runs only on a machine with a CUDA GPU where ``mamba_ssm`` and ``causal_conv1d`` import
(``pip install -e .[cuda]``, see docs/gpu.md); everywhere else the whole file is skipped.
"""

import importlib

import pytest
import torch


def _cuda_kernels_skip_reason() -> str | None:
    if not torch.cuda.is_available():
        return "needs a CUDA GPU (torch.cuda.is_available() is False)"
    for name in ("causal_conv1d", "mamba_ssm"):
        try:
            importlib.import_module(name)
        except Exception as err:  # ImportError, or a broken build raising something else
            return f"needs {name} importable (pip install -e .[cuda]): {type(err).__name__}: {err}"
    return None


SKIP_REASON = _cuda_kernels_skip_reason()
pytestmark = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")

CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def exact_float32():
    """Plain float32 on both sides: no TF32 in matmuls or cuDNN convolutions."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| in float64 (a single number, robust to near-zero entries)."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def assert_close_rel(a: torch.Tensor, b: torch.Tensor, what: str, tol: float = 1e-4) -> None:
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} != {tuple(b.shape)}"
    err = rel_err(a, b)
    assert err < tol, f"{what}: relative error {err:.3e} >= {tol:.0e}"


# ---------------------------------------------------------------- (a) the Mamba block alone


def mamba_pair(source: str, d_model: int = 64, d_state: int = 32, d_conv: int = 4, expand: int = 2):
    """(mamba_ssm.Mamba, TorchMamba) on CUDA with one state_dict, loaded strictly from source."""
    from mamba_ssm import Mamba

    from recbole_sigma.mamba import TorchMamba

    torch.manual_seed(0)
    cuda_m = Mamba(d_model=d_model, d_state=d_state, d_conv=d_conv, expand=expand).to(CUDA)
    torch_m = TorchMamba(d_model, d_state=d_state, d_conv=d_conv, expand=expand).to(CUDA)
    if source == "cuda":
        torch_m.load_state_dict(cuda_m.state_dict(), strict=True)
    else:
        cuda_m.load_state_dict(torch_m.state_dict(), strict=True)
    return cuda_m, torch_m


def test_state_dicts_have_the_same_keys_and_shapes():
    cuda_m, torch_m = mamba_pair("cuda")
    assert {k: v.shape for k, v in cuda_m.state_dict().items()} == {
        k: v.shape for k, v in torch_m.state_dict().items()
    }


@pytest.mark.parametrize("source", ["cuda", "torch"])
@pytest.mark.parametrize("length", [1, 7, 50, 200])
def test_outputs_and_gradients_match_mamba_ssm(source, length):
    cuda_m, torch_m = mamba_pair(source)
    torch.manual_seed(1)
    x = torch.randn(4, length, 64, device=CUDA)
    x_cuda = x.clone().requires_grad_(True)
    x_torch = x.clone().requires_grad_(True)
    y_cuda, y_torch = cuda_m(x_cuda), torch_m(x_torch)
    assert_close_rel(y_torch, y_cuda, f"output (L={length})")

    g = torch.randn_like(y_cuda)
    y_cuda.backward(g)
    y_torch.backward(g)
    assert_close_rel(x_torch.grad, x_cuda.grad, f"input gradient (L={length})")
    cuda_params = dict(cuda_m.named_parameters())
    for name, p in torch_m.named_parameters():
        assert_close_rel(p.grad, cuda_params[name].grad, f"gradient of {name} (L={length})")


# ---------------------------------------------------------------- (b) SIGMA on either backend


def test_auto_backend_picks_cuda_on_a_gpu():
    from recbole_sigma.mamba import resolve_backend

    assert resolve_backend("auto", "cuda") == "cuda"
    assert resolve_backend("auto", torch.device("cuda")) == "cuda"
    assert resolve_backend("cuda", "cuda") == "cuda"
    assert resolve_backend("auto", "cpu") == "torch"


@pytest.fixture(scope="module")
def full_sort_batch(tiny_config, tiny_dataset):
    """The first full-ranking test batch of the real ml-100k slice, through RecBole's loaders."""
    from recbole.data import data_preparation

    from recbole_sigma.quick_start import build_config

    config = build_config("SIGMA", "ml-tiny", config_dict=dict(tiny_config))
    _, _, test_data = data_preparation(config, tiny_dataset)
    interaction = next(iter(test_data))[0]
    return interaction


def sigma_pair(make_sigma, **overrides):
    """SIGMA with the cuda backend and with the torch backend, same trained-like weights (every
    parameter moved off its init), both on CUDA."""
    from reference_sigma import trained_like

    cuda_model = make_sigma(use_gpu=True, mamba_backend="cuda", **overrides).to(CUDA)
    torch_model = make_sigma(use_gpu=True, mamba_backend="torch", **overrides).to(CUDA)
    assert cuda_model.mamba_backend == "cuda" and torch_model.mamba_backend == "torch"
    from mamba_ssm import Mamba

    assert any(isinstance(m, Mamba) for m in cuda_model.modules())
    trained_like(cuda_model)
    torch_model.load_state_dict(cuda_model.state_dict(), strict=True)
    return cuda_model, torch_model


def test_auto_backend_builds_mamba_ssm_blocks(make_sigma):
    from mamba_ssm import Mamba

    model = make_sigma(use_gpu=True, mamba_backend="auto")
    assert model.mamba_backend == "cuda"
    assert any(isinstance(m, Mamba) for m in model.modules())


@pytest.mark.parametrize("variant", ["paper", "official", "logged"])
def test_full_sort_scores_match_between_backends(make_sigma, full_sort_batch, variant):
    cuda_model, torch_model = sigma_pair(make_sigma, sigma_variant=variant)
    inter = full_sort_batch.to(CUDA)
    cuda_model.eval()
    torch_model.eval()
    with torch.no_grad():
        s_cuda = cuda_model.full_sort_predict(inter)
        s_torch = torch_model.full_sort_predict(inter)
    assert s_cuda.shape == (len(inter), cuda_model.n_items)
    assert_close_rel(s_torch, s_cuda, f"full_sort_predict scores ({variant})")
    # the ranking the metrics see: top-10 lists agree (up to ties at the cut)
    top_cuda = s_cuda.topk(10).indices
    top_torch = s_torch.topk(10).indices
    agree = (top_cuda == top_torch).float().mean().item()
    assert agree > 0.98, f"top-10 agreement {agree:.3f}"


@pytest.mark.parametrize("variant", ["paper", "official", "logged"])
def test_training_loss_and_gradients_match_between_backends(make_sigma, full_sort_batch, variant):
    cuda_model, torch_model = sigma_pair(make_sigma, sigma_variant=variant, dropout_prob=0.0)
    inter = full_sort_batch.to(CUDA)
    losses = []
    for model in (cuda_model, torch_model):
        # eval(): no dropout anywhere (the official block's gate dropout is fixed at 0.2)
        model.eval()
        loss = model.calculate_loss(inter)
        loss.backward()
        losses.append(loss)
    assert_close_rel(losses[1], losses[0], f"CE loss ({variant})", tol=2e-4)
    cuda_params = dict(cuda_model.named_parameters())
    errors = {n: rel_err(p.grad, cuda_params[n].grad) for n, p in torch_model.named_parameters()}
    worst = sorted(errors.items(), key=lambda kv: -kv[1])[:3]
    assert worst[0][1] < 1e-3, f"gradients ({variant}), worst relative errors: {worst}"


# ---------------------------------------------------------------- (c) checkpoints across backends


def test_cuda_checkpoint_loads_into_cpu_torch_model(make_sigma, full_sort_batch, tmp_path):
    from recbole_sigma.trainer import load_checkpoint

    cuda_model = make_sigma(use_gpu=True, mamba_backend="cuda").to(CUDA).eval()
    path = tmp_path / "SIGMA-cuda.pth"
    # the layout RecBole's Trainer writes: a dict holding the state_dict (and more)
    torch.save({"state_dict": cuda_model.state_dict(), "other_parameter": None}, path)

    cpu_model = make_sigma(mamba_backend="torch")  # use_gpu False: a CPU-only run
    assert cpu_model.mamba_backend == "torch"
    cpu_model.load_state_dict(load_checkpoint(str(path))["state_dict"], strict=True)
    cpu_model.eval()
    assert all(p.device.type == "cpu" for p in cpu_model.parameters())
    with torch.no_grad():
        s_cpu = cpu_model.full_sort_predict(full_sort_batch.to("cpu"))
        s_cuda = cuda_model.full_sort_predict(full_sort_batch.to(CUDA))
    assert_close_rel(s_cpu, s_cuda, "scores of the reloaded checkpoint on CPU")
