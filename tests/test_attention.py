"""Attention: scaled dot-product attention and torch.nn.MultiheadAttention, against PyTorch.

Saved bytes are per example, float32, as torch 2.14.1 keeps them on the CPU: batch 2 minus
batch 1, every storage packed by torch.autograd.graph.saved_tensors_hooks counted once, the
input not requiring a gradient (tests/torch_reference.py `saved_bytes`). Each expected figure is
derived by hand below; the torch tests (skipped without torch, as in CI) measure the same.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from archcalc.analysis import Analysis, analyze
from archcalc.errors import ArchcalcError
from archcalc.executor import execute
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import load

S, E = 5, 8  # tokens and features of the input of the attention cases
X = S * E * 4  # 160: the input, kept once by the linear layers q, k, v (and b) for their weights


@dataclass(frozen=True)
class Case:
    name: str
    fields: dict[str, Any]
    fused: int  # bytes per example, derived in the comment of each case
    math: int
    heads: int = 2
    q_out: int = 6
    kv_out: int = 6
    bias: bool = False  # a 4th input: a linear layer's [S, S] output, broadcast over the heads


# q, k, v, out of [5, 6]: 120 bytes each; the attention matrix [heads, 5, 5]: 100 per head.
CASES = [
    # fused (flash): q, k, v and the output (4 x 120) + log-sum-exp [2, 5] float32 (40);
    # math: q and k scaled (2 x 120), the softmax output [2, 5, 5] (200), v's heads copied (120)
    Case("plain", {}, X + 480 + 40, X + 240 + 200 + 120),
    Case("causal", {"causal": True}, X + 480 + 40, X + 240 + 200 + 120),  # the mask adds nothing kept
    Case("scale", {"scale": 0.5}, X + 480 + 40, X + 240 + 200 + 120),
    # dropout: the CPU's flash kernel takes no dropout, so both run the math path, which also
    # keeps dropout's float32 mask and the dropped matrix (2 x 200)
    Case("dropout", {"dropout": 0.1}, X + 560 + 400, X + 560 + 400),
    # one head of 6: lse [1, 5] (20); math keeps v itself (a contiguous view), not a copy
    Case("one head", {}, X + 480 + 20, X + 240 + 100 + 120, heads=1),
    # 2 query heads sharing 1 key/value head: k, v [5, 3] (60 each); flash keeps them as they
    # are, the math path repeats them to 2 heads (repeat_interleave: 120 each)
    Case("grouped-query", {"kv_heads": 1}, X + 120 + 60 + 60 + 120 + 40, X + 240 + 200 + 120, kv_out=3),
    # a float mask: the flash kernel takes none, so both run the math path; the add keeps nothing
    Case("bias", {}, X + 560, X + 560, bias=True),
]


def _spec(case: Case) -> str:
    fields = "".join(f", {k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in case.fields.items())
    bias = "\n  - {name: b, op: linear, out: 5, from: input}" if case.bias else ""
    return (
        f"name: case\ninput: [{S}, {E}]\nlayers:\n"
        f"  - {{name: q, op: linear, out: {case.q_out}}}\n"
        f"  - {{name: k, op: linear, out: {case.kv_out}, from: input}}\n"
        f"  - {{name: v, op: linear, out: {case.kv_out}, from: input}}{bias}\n"
        f"  - {{name: attn, op: attention, heads: {case.heads}{fields}, from: [q, k, v{', b' if case.bias else ''}]}}\n"
    )


def _analysis(text: str, tmp_path: Any, attention: str = "fused") -> Analysis:
    path = tmp_path / "case.yaml"
    path.write_text(text)
    return analyze(load(str(path)), MemoryOptions(batch=1, attention=attention))  # type: ignore[arg-type]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("kernel", ["fused", "math"])
def test_saved_bytes(case: Case, kernel: str, tmp_path: Any) -> None:
    memory = _analysis(_spec(case), tmp_path, kernel).memory
    assert memory.training_activations == getattr(case, kernel)
    assert memory.attention == kernel


def _sdpa_module(nn: Any, case: Case) -> Any:
    """The case in torch: linear q, k, v (and b), heads split and merged as Hugging Face does."""
    F = nn.functional

    class Sdpa(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.q, self.k, self.v = nn.Linear(E, case.q_out), nn.Linear(E, case.kv_out), nn.Linear(E, case.kv_out)
            self.b = nn.Linear(E, S) if case.bias else None

        def forward(self, x: Any) -> Any:
            n = x.shape[0]
            kv_heads = case.fields.get("kv_heads", case.heads)
            q = self.q(x).view(n, S, case.heads, -1).transpose(1, 2)
            k = self.k(x).view(n, S, kv_heads, -1).transpose(1, 2)
            v = self.v(x).view(n, S, kv_heads, -1).transpose(1, 2)
            mask = self.b(x).unsqueeze(1) if self.b is not None else None
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=case.fields.get("dropout", 0.0),
                is_causal=case.fields.get("causal", False), scale=case.fields.get("scale"),
                enable_gqa=kv_heads != case.heads,
            )
            return out.transpose(1, 2).reshape(n, S, -1)

    return Sdpa()


@pytest.fixture(autouse=True)
def _no_mha_fastpath() -> Any:
    """nn.MultiheadAttention without its inference fast path (which flop_counter cannot see
    into), restored after each test: torch.backends.mha's flag is process-wide."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    yield
    torch.backends.mha.set_fastpath_enabled(before)


def _kernel(torch: Any, kernel: str) -> Any:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.MATH) if kernel == "math" else contextlib.nullcontext()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("kernel", ["fused", "math"])
def test_saved_bytes_are_what_torch_keeps(case: Case, kernel: str) -> None:
    torch = pytest.importorskip("torch")
    from torch_reference import saved_bytes

    torch.manual_seed(0)
    model = _sdpa_module(torch.nn, case).train()
    with _kernel(torch, kernel):
        per_example = saved_bytes(torch, model, (S, E), 2) - saved_bytes(torch, model, (S, E), 1)
    assert per_example == getattr(case, kernel)


def test_macs_are_the_two_products(tmp_path: Any) -> None:
    # q k^T: 2 heads x 5 queries x 5 keys x 3 (head_dim) = 150; attn v: the same 150
    case = CASES[0]
    layer = {r.path: r for r in _analysis(_spec(case), tmp_path).layers}["attn"]
    assert layer.flops.macs == 300
    # per score: scale, softmax (3) = 4 FLOPs x 50 scores; the causal mask adds one add per score
    assert layer.flops.elementwise == 200
    causal = {r.path: r for r in _analysis(_spec(CASES[1]), tmp_path).layers}["attn"]
    assert (causal.flops.macs, causal.flops.elementwise) == (300, 250)  # the mask halves no product


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_flops_are_what_flop_counter_counts(case: Case, tmp_path: Any) -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    model = _sdpa_module(torch.nn, case).eval()
    with _kernel(torch, "math"), FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, S, E))
    assert _analysis(_spec(case), tmp_path).totals.flops == counter.get_total_flops()


def test_softmax_does_not_overflow() -> None:
    from archcalc.ops.attention import Attention

    q = np.full((1, 2, 2), 1000.0)
    out = Attention(heads=1).forward([q, q, np.array([[[1.0, 2.0], [3.0, 4.0]]])], {})
    assert np.allclose(out, [[[2.0, 3.0], [2.0, 3.0]]])  # equal scores: the mean of the values


@pytest.mark.parametrize("case", [c for c in CASES if "dropout" not in c.fields], ids=lambda c: c.name)
def test_executor_agrees_with_torch(case: Case, tmp_path: Any) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = _sdpa_module(torch.nn, case).eval()
    path = tmp_path / "case.yaml"
    path.write_text(_spec(case))
    network = load(str(path))
    weights = {name: {"weight": m.weight.detach().double().numpy(), "bias": m.bias.detach().double().numpy()}
               for name, m in model.named_children() if m is not None}
    x = np.random.default_rng(1).standard_normal((2, S, E))
    ours = execute(network, x, dtype="float64", weights=weights).output
    with torch.no_grad():
        theirs = model.double()(torch.from_numpy(x)).numpy()
    assert np.allclose(ours, theirs)


@pytest.mark.parametrize("text", [_spec(c) for c in CASES], ids=[c.name for c in CASES])
def test_analysis_and_executor_agree(text: str, tmp_path: Any) -> None:
    from archcalc.verify import verify

    path = tmp_path / "case.yaml"
    path.write_text(text)
    assert verify(load(str(path)), batch=2).mismatches == ()


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize("layer,message", [
    ("{name: attn, op: attention, heads: 4, from: [q, k, v]}", "divisible by 4"),
    ("{name: attn, op: attention, heads: 2, kv_heads: 4, from: [q, k, v]}", "multiple of kv_heads"),
    ("{name: attn, op: attention, heads: 2, from: [q, k, w, v]}", "the same length"),
    ("{name: attn, op: attention, heads: 2, from: [q, k, v, w]}", "bias"),
])
def test_refusals(layer: str, message: str, tmp_path: Any) -> None:
    text = (
        f"name: bad\ninput: [{S}, {E}]\nlayers:\n  - {{name: q, op: linear, out: 6}}\n"
        "  - {name: k, op: linear, out: 6, from: input}\n  - {name: v, op: linear, out: 6, from: input}\n"
        + ("  - {name: w, op: transpose, dim0: 1, dim1: 2, from: input}\n" if " w" in layer else "")
        + f"  - {layer}\n"
    )
    with pytest.raises(ArchcalcError, match=message):
        _analysis(text, tmp_path)


# --- torch.nn.MultiheadAttention --------------------------------------------------------------

L, D = 5, 12  # tokens and width of the multihead cases: 3 heads of 4
SE = L * D * 4  # 240 bytes: one [5, 12] float32 tensor


@dataclass(frozen=True)
class MhaCase:
    name: str
    fields: dict[str, Any]
    fused: int
    math: int


# Kept by F.multi_head_attention_forward in train mode (batch_first, need_weights=False):
# the in-projection's input, x transposed to [S, N, E] and copied contiguous (SE); the packed
# q, k, v [3, S, N, E] (3 SE), one storage. fused: the flash kernel keeps the packed views, its
# output (SE, which is out_proj's input: no copy) and the log-sum-exp [3, 5] (60). math: q and k
# scaled (2 SE), the attention matrix [3, 5, 5] (300), v as the packed storage's view, and the
# heads merged into a contiguous copy for out_proj (SE).
MHA_CASES = [
    MhaCase("bias", {}, SE + 3 * SE + SE + 60, SE + 3 * SE + 2 * SE + 300 + SE),
    MhaCase("no bias", {"bias": False}, SE + 3 * SE + SE + 60, SE + 3 * SE + 2 * SE + 300 + SE),
    # dropout 0.1: the math path in both, plus dropout's mask and the dropped matrix (2 x 300)
    MhaCase("dropout", {"dropout": 0.1}, 7 * SE + 900, 7 * SE + 900),
]


def _mha_spec(case: MhaCase) -> str:
    fields = "".join(f", {k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in case.fields.items())
    return f"name: mha\ninput: [{L}, {D}]\nlayers:\n  - {{name: attn, op: multihead_attention, heads: 3{fields}}}\n"


def _mha_module(nn: Any, case: MhaCase) -> Any:
    class Mha(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(
                D, 3, dropout=case.fields.get("dropout", 0.0), bias=case.fields.get("bias", True), batch_first=True
            )

        def forward(self, x: Any) -> Any:
            return self.attn(x, x, x, need_weights=False)[0]

    return Mha()


def test_multihead_parameters_are_named_as_torch_names_them(tmp_path: Any) -> None:
    layer = {r.path: r for r in _analysis(_mha_spec(MHA_CASES[0]), tmp_path).layers}["attn"]
    # nn.MultiheadAttention(12, 3): in_proj_weight [36, 12], in_proj_bias [36], out_proj [12, 12] + [12]
    assert layer.params.params == 36 * 12 + 36 + 12 * 12 + 12
    from archcalc.ops.attention import MultiheadAttention

    assert MultiheadAttention(heads=3).parameters([(L, D)]) == {
        "in_proj_weight": (36, 12), "in_proj_bias": (36,), "out_proj.weight": (12, 12), "out_proj.bias": (12,),
    }
    torch = pytest.importorskip("torch")
    module = torch.nn.MultiheadAttention(D, 3, batch_first=True)
    assert {n: tuple(p.shape) for n, p in module.named_parameters()} == MultiheadAttention(heads=3).parameters([(L, D)])


def test_multihead_macs(tmp_path: Any) -> None:
    # in_proj 5 x 36 x 12 = 2160, out_proj 5 x 12 x 12 = 720, the products 2 x 3 x 5 x 5 x 4 = 600
    assert _analysis(_mha_spec(MHA_CASES[0]), tmp_path).totals.macs == 2160 + 720 + 600


@pytest.mark.parametrize("case", MHA_CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("kernel", ["fused", "math"])
def test_multihead_saved_bytes(case: MhaCase, kernel: str, tmp_path: Any) -> None:
    assert _analysis(_mha_spec(case), tmp_path, kernel).memory.training_activations == getattr(case, kernel)


@pytest.mark.parametrize("case", MHA_CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("kernel", ["fused", "math"])
def test_multihead_saved_bytes_are_what_torch_keeps(case: MhaCase, kernel: str) -> None:
    torch = pytest.importorskip("torch")
    from torch_reference import saved_bytes

    torch.manual_seed(0)
    model = _mha_module(torch.nn, case).train()
    with _kernel(torch, kernel):
        per_example = saved_bytes(torch, model, (L, D), 2) - saved_bytes(torch, model, (L, D), 1)
    assert per_example == getattr(case, kernel)


@pytest.mark.parametrize("case", MHA_CASES[:2], ids=lambda c: c.name)
def test_multihead_flops_and_forward_are_torch_s(case: MhaCase, tmp_path: Any) -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = _mha_module(torch.nn, case).eval().double()
    x = np.random.default_rng(1).standard_normal((2, L, D))
    with _kernel(torch, "math"), FlopCounterMode(display=False) as counter, torch.no_grad():
        theirs = model(torch.from_numpy(x)).numpy()
    analysis = _analysis(_mha_spec(case), tmp_path)
    assert 2 * analysis.totals.flops == counter.get_total_flops()  # two examples
    weights = {"attn": {n: p.detach().numpy() for n, p in model.attn.named_parameters()}}
    ours = execute(analysis.network, x, dtype="float64", weights=weights).output
    assert np.allclose(ours, theirs)


# --- ViT-B/16: one encoder layer --------------------------------------------------------------

VIT_LAYER = """
name: encoder_layer_0
input: [197, 768]
blocks:
  mlp:
    layers:
      - {op: linear, out: 3072}
      - {op: gelu}
      - {op: dropout, p: 0.0}
      - {op: linear, out: 768}
      - {op: dropout, p: 0.0}
layers:
  - {name: ln_1, op: layernorm, eps: 1.0e-6}
  - {name: self_attention, op: multihead_attention, heads: 12}
  - {name: dropout, op: dropout, p: 0.0}
  - {name: add, op: add, from: [dropout, input]}
  - {name: ln_2, op: layernorm, eps: 1.0e-6}
  - {name: mlp, block: mlp}
  - {name: add_1, op: add, from: [mlp, add]}
"""

# torchvision.models.vision_transformer.EncoderBlock(12, 768, 3072, 0.0, 0.0, LayerNorm eps 1e-6),
# measured with torch 2.14.1 (test_vit_layer_is_torchvision_s): parameters; FLOPs on one
# 197-token example under sdpa_kernel(SDPBackend.MATH) with the MHA fast path off (12 of these
# plus the patch embedding 231,211,008 and the head 1,536,000 are the 35,127,656,448 FLOPs of
# ViT-B/16); bytes saved per example in train mode, SDPA's default kernel and MATH.
VIT_PARAMS = 7_087_872
VIT_FLOPS = 2_907_909_120
VIT_SAVED = {"fused": 9_695_552, "math": 12_759_296}


@pytest.mark.parametrize("kernel", ["fused", "math"])
def test_vit_layer(kernel: str, tmp_path: Any) -> None:
    analysis = _analysis(VIT_LAYER, tmp_path, kernel)
    assert (analysis.totals.params, analysis.totals.flops) == (VIT_PARAMS, VIT_FLOPS)
    assert analysis.memory.training_activations == VIT_SAVED[kernel]


def test_vit_layer_analysis_and_executor_agree(tmp_path: Any) -> None:
    from archcalc.verify import verify

    path = tmp_path / "vit.yaml"  # the layer scaled down: 17 tokens of 48, 4 heads, an MLP of 192
    path.write_text(VIT_LAYER.replace("197, 768", "17, 48").replace("3072", "192").replace("768", "48").replace("12", "4"))
    assert verify(load(str(path)), batch=2).mismatches == ()


@pytest.mark.parametrize("kernel", ["fused", "math"])
def test_vit_layer_is_torchvision_s(kernel: str) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from torch.utils.flop_counter import FlopCounterMode
    from torch_reference import saved_bytes
    from torchvision.models.vision_transformer import EncoderBlock

    torch.manual_seed(0)
    block = EncoderBlock(12, 768, 3072, 0.0, 0.0, functools.partial(torch.nn.LayerNorm, eps=1e-6))
    assert sum(p.numel() for p in block.parameters()) == VIT_PARAMS
    with _kernel(torch, "math"), FlopCounterMode(display=False) as counter, torch.no_grad():
        block.eval()(torch.randn(1, 197, 768))
    assert counter.get_total_flops() == VIT_FLOPS
    block.train()
    with _kernel(torch, kernel):
        assert saved_bytes(torch, block, (197, 768), 2) - saved_bytes(torch, block, (197, 768), 1) == VIT_SAVED[kernel]


# --- --attention on the command line -----------------------------------------------------------


def _cli(*args: str) -> Any:
    from click.testing import CliRunner

    from archcalc.cli import main

    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("command", [
    ["analyze"], ["memory"], ["formula", "--what", "memory"], ["report"],
])
def test_every_memory_command_says_which_kernel_it_assumes(command: list[str], tmp_path: Any) -> None:
    path = tmp_path / "mha.yaml"
    path.write_text(_mha_spec(MHA_CASES[0]))
    for kernel in ("fused", "math"):
        assert f"attention {kernel}" in _cli(command[0], str(path), *command[1:], "--attention", kernel).stdout
    plain = tmp_path / "plain.yaml"
    plain.write_text(f"name: plain\ninput: [{L}, {D}]\nlayers:\n  - {{op: linear, out: 4}}\n")
    assert "attention" not in _cli(command[0], str(plain), *command[1:]).stdout


def test_json_holds_the_kernel_only_where_a_layer_attends(tmp_path: Any) -> None:
    import json

    jsonschema = pytest.importorskip("jsonschema")
    from archcalc.schemas import output_schema

    path = tmp_path / "mha.yaml"
    path.write_text(_mha_spec(MHA_CASES[0]))
    document = json.loads(_cli("analyze", str(path), "--json", "--attention", "math").stdout)
    assert document["totals"]["memory"]["attention"] == "math"
    assert document["totals"]["memory"]["training_activations"] == MHA_CASES[0].math
    jsonschema.Draft202012Validator(output_schema("analyze")).validate(document)
    assert "attention" not in json.loads(_cli("analyze", "resnet18", "--json").stdout)["totals"]["memory"]
    compared = json.loads(_cli("compare", str(path), "resnet18", "--json", "--attention", "math").stdout)
    assert compared["attention"] == "math"
    jsonschema.Draft202012Validator(output_schema("compare")).validate(compared)


def test_sweep_prices_the_kernel(tmp_path: Any) -> None:
    path = tmp_path / "mha.yaml"
    path.write_text(_mha_spec(MHA_CASES[0]))
    for kernel in ("fused", "math"):
        _cli("sweep", str(path), "--batch", "1..2", "--attention", kernel, "-o", str(tmp_path / f"{kernel}.csv"))
    rows = {k: (tmp_path / f"{k}.csv").read_text().splitlines() for k in ("fused", "math")}
    # training totals at batch 2 minus batch 1: the bytes saved per example under each kernel
    per_example = {k: int(r[2].split(",")[-1]) - int(r[1].split(",")[-1]) for k, r in rows.items()}
    assert per_example == {"fused": MHA_CASES[0].fused, "math": MHA_CASES[0].math}


def test_an_unknown_kernel_is_refused() -> None:
    from click.testing import CliRunner

    from archcalc.cli import main

    result = CliRunner().invoke(main, ["memory", "resnet18", "--attention", "flash"])
    assert result.exit_code == 2 and "fused" in result.output
