"""Bytes saved for backward, op by op, as PyTorch's autograd keeps them.

Each case is a small network written twice, as a spec and as torch modules. `measured` is what
torch 2.14.1 kept per example (batch 2 minus batch 1, every storage packed by
torch.autograd.graph.saved_tensors_hooks counted once, float32, input not requiring a
gradient): tests/torch_reference.py `saved_bytes`. CI has no torch, so the analysis is checked
against these literals on every run, and the literals against torch wherever it is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from archcalc.analysis import analyze
from archcalc.figures.memory import MemoryOptions
from archcalc.spec.graph import load


@dataclass(frozen=True)
class Case:
    name: str
    input: tuple[int, ...]
    layers: tuple[str, ...]  # spec entries, one YAML flow mapping each
    torch: Callable[[Any], Any]  # torch.nn -> the same network as a module
    measured: int  # bytes per example, torch 2.14.1 (see the module docstring)


def _frozen(module: Any) -> Any:
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def _branches(nn: Any, a: Any, b: Any, join: Callable[[Any, Any], Any]) -> Any:
    """A module computing join(a(x), b(x)): two branches from one input."""

    class Join(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = a, b

        def forward(self, x: Any) -> Any:
            return join(self.a(x), self.b(x))

    return Join()


def _first_channel(nn: Any) -> Any:
    """x[:, :1], a view."""

    class First(nn.Module):  # type: ignore[misc]
        def forward(self, x: Any) -> Any:
            return x[:, :1]

    return First()


def _heads_folded(nn: Any, conv: Any) -> Any:
    """conv on [N*heads, C, T, H, W], as torchvision's MViT Pool runs it on [N, heads, C, T, H, W]."""

    class Folded(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.conv = conv

        def forward(self, x: Any) -> Any:
            y = self.conv(x.reshape(-1, *x.shape[2:]))
            return y.reshape(*x.shape[:2], *y.shape[1:])

    return Folded()


C1 = "{name: c1, op: conv2d, out: 4, kernel: 1}"  # trains, so a gradient flows to what follows


def c1(nn: Any) -> Any:
    return nn.Conv2d(2, 4, 1)


CASES = [
    # A padding mode other than zeros: F.pad then a convolution with padding 0, which keeps the
    # padded copy. As the first layer no gradient flows to the input: only the copy is kept,
    # C * prod(n + 2p) * 4 bytes.
    Case("conv1d reflect first", (2, 7), ("{op: conv1d, out: 3, kernel: 3, padding: 1, padding_mode: reflect}",),
         lambda nn: nn.Conv1d(2, 3, 3, padding=1, padding_mode="reflect"), 2 * 9 * 4),
    Case("conv2d replicate first", (2, 7, 6), ("{op: conv2d, out: 3, kernel: 3, padding: 1, padding_mode: replicate}",),
         lambda nn: nn.Conv2d(2, 3, 3, padding=1, padding_mode="replicate"), 2 * 9 * 8 * 4),
    Case("conv3d circular first", (2, 5, 6, 7), ("{op: conv3d, out: 3, kernel: 3, padding: 1, padding_mode: circular}",),
         lambda nn: nn.Conv3d(2, 3, 3, padding=1, padding_mode="circular"), 2 * 7 * 8 * 9 * 4),
    # even kernel, padding 'same', zeros: constant_pad_nd by the odd element only (n + 1 per axis)
    Case("conv1d same even", (2, 7), ("{op: conv1d, out: 3, kernel: 4, padding: same}",),
         lambda nn: nn.Conv1d(2, 3, 4, padding="same"), 2 * 8 * 4),
    Case("conv3d same even", (2, 5, 6, 7), ("{op: conv3d, out: 3, kernel: 4, padding: same}",),
         lambda nn: nn.Conv3d(2, 3, 4, padding="same"), 2 * 6 * 7 * 8 * 4),
    Case("conv2d same even, reflect", (2, 7, 6), ("{op: conv2d, out: 3, kernel: 4, padding: same, padding_mode: reflect}",),
         lambda nn: nn.Conv2d(2, 3, 4, padding="same", padding_mode="reflect"), 2 * 10 * 9 * 4),
    # after a training layer: c1's input (2*7*9*4 = 504) + the copy 4*9*11*4 = 1,584, and
    # reflection/replication padding's backward keeps its own input, c1's output (1,008)
    Case("conv2d reflect after", (2, 7, 9), (C1, "{op: conv2d, out: 3, kernel: 3, padding: 1, padding_mode: reflect}"),
         lambda nn: nn.Sequential(c1(nn), nn.Conv2d(4, 3, 3, padding=1, padding_mode="reflect")), 504 + 1008 + 1584),
    Case("conv2d replicate after", (2, 7, 9), (C1, "{op: conv2d, out: 3, kernel: 3, padding: 1, padding_mode: replicate}"),
         lambda nn: nn.Sequential(c1(nn), nn.Conv2d(4, 3, 3, padding=1, padding_mode="replicate")), 504 + 1008 + 1584),
    Case("conv2d circular after", (2, 7, 9), (C1, "{op: conv2d, out: 3, kernel: 3, padding: 1, padding_mode: circular}"),
         lambda nn: nn.Sequential(c1(nn), nn.Conv2d(4, 3, 3, padding=1, padding_mode="circular")), 504 + 1584),
    Case("conv2d same even after", (2, 7, 9), (C1, "{op: conv2d, out: 3, kernel: 4, padding: same}"),
         lambda nn: nn.Sequential(c1(nn), nn.Conv2d(4, 3, 4, padding="same")), 504 + 4 * 8 * 10 * 4),
    Case("frozen conv2d reflect after", (2, 7, 9), (C1, "{op: conv2d, out: 3, kernel: 3, padding: 1, padding_mode: reflect, frozen: true}"),
         lambda nn: nn.Sequential(c1(nn), _frozen(nn.Conv2d(4, 3, 3, padding=1, padding_mode="reflect"))), 504 + 1008 + 1584),
    # a per-side padding stands for PyTorch's own route for asymmetric padding: zeros pad by
    # the difference with constant_pad_nd, the symmetric rest in the convolution (copy
    # 4*(7+1)*(9+1)); another mode pads every side with F.pad first (copy 4*(7+3)*(9+1))
    Case("conv2d per-side zeros", (2, 7, 9), (C1, "{op: conv2d, out: 3, kernel: 3, padding: [[1, 2], [1, 0]]}"),
         lambda nn: nn.Sequential(c1(nn), _padded(nn, (1, 0, 0, 1), "constant", nn.Conv2d(4, 3, 3, padding=(1, 0)))), 504 + 4 * 8 * 10 * 4),
    Case("conv2d per-side replicate", (2, 7, 9), (C1, "{op: conv2d, out: 3, kernel: 3, padding: [[1, 2], [1, 0]], padding_mode: replicate}"),
         lambda nn: nn.Sequential(c1(nn), _padded(nn, (1, 0, 1, 2), "replicate", nn.Conv2d(4, 3, 3))), 504 + 1008 + 4 * 10 * 10 * 4),
    # lp_pool: x, x^p (input-sized) and four output-sized tensors of torch's Python composite;
    # 1-D: 2*9 + 2*9 + 4*2*4 = 68 floats; 2-D (ceil mode): 2*8*9 * 2 + 4 * 2*4*4 = 416 floats
    Case("lp_pool1d", (2, 9), ("{op: conv1d, out: 2, kernel: 1}", "{op: lp_pool1d, norm_type: 2, kernel: 3, stride: 2}"),
         lambda nn: nn.Sequential(nn.Conv1d(2, 2, 1), nn.LPPool1d(2, 3, 2)), 2 * 9 * 4 + 68 * 4),
    Case("lp_pool2d ceil", (2, 8, 9), ("{op: conv2d, out: 2, kernel: 1}", "{op: lp_pool2d, norm_type: 3, kernel: 3, stride: 2, ceil_mode: true}"),
         lambda nn: nn.Sequential(nn.Conv2d(2, 2, 1), nn.LPPool2d(3, 3, 2, ceil_mode=True)), 2 * 72 * 4 + 416 * 4),
    Case("lp_pool3d", (2, 4, 5, 6), ("{op: conv3d, out: 2, kernel: 1}", "{op: lp_pool3d, norm_type: 1.5, kernel: 2}"),
         lambda nn: nn.Sequential(nn.Conv3d(2, 2, 1), nn.LPPool3d(1.5, 2)), 2 * 120 * 4 + (2 * 240 + 4 * 24) * 4),
    # a frozen linear layer keeps nothing per example (mm keeps its input only for the weight
    # gradient); a frozen convolution still keeps its input (convolution saves it regardless)
    Case("frozen linear after", (2, 7, 9), (C1, "{op: flatten}", "{op: linear, out: 5, frozen: true}"),
         lambda nn: nn.Sequential(c1(nn), nn.Flatten(), _frozen(nn.Linear(252, 5))), 504),
    Case("frozen linear per position", (2, 7, 9), (C1, "{op: linear, out: 5, frozen: true}", "{op: relu}"),
         lambda nn: nn.Sequential(c1(nn), _frozen(nn.Linear(9, 5)), nn.ReLU()), 504 + 4 * 7 * 5 * 4),
    Case("frozen conv after", (2, 7, 9), (C1, "{op: conv2d, out: 3, kernel: 3, frozen: true}"),
         lambda nn: nn.Sequential(c1(nn), _frozen(nn.Conv2d(4, 3, 3))), 504 + 1008),
    Case("frozen conv_transpose after", (2, 7, 9), (C1, "{op: conv_transpose2d, out: 3, kernel: 2, stride: 2, frozen: true}"),
         lambda nn: nn.Sequential(c1(nn), _frozen(nn.ConvTranspose2d(4, 3, 2, 2))), 504 + 1008),
    Case("frozen batchnorm after", (2, 7, 9), (C1, "{op: batchnorm2d, frozen: true}"),
         lambda nn: nn.Sequential(c1(nn), _frozen(nn.BatchNorm2d(4))), 504 + 1008),
    Case("linear trains after frozen", (2, 7, 9), ("{op: conv2d, out: 4, kernel: 1, frozen: true}", "{op: linear, out: 5}"),
         lambda nn: nn.Sequential(_frozen(c1(nn)), nn.Linear(9, 5)), 1008),
    # ops checked unchanged: pools in ceil mode, adaptive pools, norms, activations, merges
    Case("max_pool2d ceil", (2, 7, 9), (C1, "{op: max_pool2d, kernel: 3, stride: 2, ceil_mode: true}"),
         lambda nn: nn.Sequential(c1(nn), nn.MaxPool2d(3, 2, ceil_mode=True)), 1896),
    Case("avg_pool2d pad", (2, 7, 9), (C1, "{op: avg_pool2d, kernel: 3, stride: 2, padding: 1, count_include_pad: false}"),
         lambda nn: nn.Sequential(c1(nn), nn.AvgPool2d(3, 2, 1, count_include_pad=False)), 1512),
    Case("adaptive_avg_pool2d", (2, 7, 9), (C1, "{op: adaptive_avg_pool2d, output: [3, 4]}"),
         lambda nn: nn.Sequential(c1(nn), nn.AdaptiveAvgPool2d((3, 4))), 1512),
    Case("adaptive_max_pool2d", (2, 7, 9), (C1, "{op: adaptive_max_pool2d, output: [3, 4]}"),
         lambda nn: nn.Sequential(c1(nn), nn.AdaptiveMaxPool2d((3, 4))), 1896),
    Case("softmax", (2, 7, 9), (C1, "{op: softmax, dim: 1}"), lambda nn: nn.Sequential(c1(nn), nn.Softmax(1)), 1512),
    Case("layernorm", (2, 7, 9), (C1, "{op: layernorm, normalized_shape: [7, 9]}"),
         lambda nn: nn.Sequential(c1(nn), nn.LayerNorm([7, 9])), 1544),
    # RMSNorm over the last axis of c1's [4, 7, 9]: 28 rows. torch.nn.RMSNorm and HF's
    # LlamaRMSNorm are both recorded op by op and keep, in float32: the input (for pow and for
    # the product with the rsqrt; the same storage as c1's output, 1,008 bytes), rsqrt(mean + eps)
    # per row (28 x 4 = 112) and the normalised result for the weight's gradient (1,008); plus
    # c1's input (504). Without the weight, no result is kept; over [7, 9], 4 rows.
    Case("rmsnorm", (2, 7, 9), (C1, "{op: rmsnorm}"), lambda nn: nn.Sequential(c1(nn), nn.RMSNorm(9)), 504 + 1008 + 112 + 1008),
    Case("rmsnorm hf", (2, 7, 9), (C1, "{op: rmsnorm, eps: 1.0e-6, implementation: hf}"),
         lambda nn: nn.Sequential(c1(nn), _llama_rmsnorm(9)), 504 + 1008 + 112 + 1008),
    Case("rmsnorm two axes", (2, 7, 9), (C1, "{op: rmsnorm, normalized_shape: [7, 9]}"),
         lambda nn: nn.Sequential(c1(nn), nn.RMSNorm([7, 9])), 504 + 1008 + 16 + 1008),
    Case("rmsnorm without weight", (2, 7, 9), (C1, "{op: rmsnorm, elementwise_affine: false}"),
         lambda nn: nn.Sequential(c1(nn), nn.RMSNorm(9, elementwise_affine=False)), 504 + 1008 + 112),
    Case("groupnorm", (2, 7, 9), (C1, "{op: groupnorm, groups: 2}"), lambda nn: nn.Sequential(c1(nn), nn.GroupNorm(2, 4)), 1528),
    Case("dropout", (2, 7, 9), (C1, "{op: dropout, p: 0.3}"), lambda nn: nn.Sequential(c1(nn), nn.Dropout(0.3)), 1512),
    # in place on a view (MViT's head drops x[:, 0]): the next layer keeps the whole storage, the
    # conv's [4, 7, 9] output (1,008), besides the conv's input (504) and the [1, 7, 9] mask (252)
    Case("dropout in place on a slice", (2, 7, 9),
         (C1, "{op: slice, dim: 1, start: 0, end: 1}", "{op: dropout, p: 0.3, inplace: true}", "{op: conv2d, out: 2, kernel: 1}"),
         lambda nn: nn.Sequential(c1(nn), _first_channel(nn), nn.Dropout(0.3, inplace=True), nn.Conv2d(1, 2, 1)),
         504 + 252 + 1008),
    # MViT's pooling of one head's tokens: the heads folded into the batch; the conv keeps its input
    Case("head_conv3d", (3, 2, 2, 4, 4), ("{op: head_conv3d, out: 2, kernel: 3, stride: [1, 2, 2], padding: 1, groups: 2, bias: false}",),
         lambda nn: _heads_folded(nn, nn.Conv3d(2, 2, 3, stride=(1, 2, 2), padding=1, groups=2, bias=False)), 3 * 2 * 2 * 4 * 4 * 4),
    Case("gelu", (2, 7, 9), (C1, "{op: gelu}"), lambda nn: nn.Sequential(c1(nn), nn.GELU()), 1512),
    Case("gelu tanh", (2, 7, 9), (C1, "{op: gelu, approximate: tanh}"),
         lambda nn: nn.Sequential(c1(nn), nn.GELU(approximate="tanh")), 1512),
    # GPT-2's gelu_new, transformers' NewGELUActivation: 0.5 x (1 + tanh(c (x + 0.044715 x^3)))
    # in Python ops keeps x (pow's input), tanh's result, and both factors of the last product,
    # 0.5 x and 1 + tanh: the conv's input (504) and four [4, 7, 9] tensors (4 x 1,008)
    Case("gelu_new", (2, 7, 9), (C1, "{op: gelu, approximate: tanh, implementation: hf}"),
         lambda nn: nn.Sequential(c1(nn), _transformers_activation("gelu_new")), 504 + 4 * 1008),
    Case("hardswish inplace", (2, 7, 9), (C1, "{op: hardswish, inplace: true}"),
         lambda nn: nn.Sequential(c1(nn), nn.Hardswish(inplace=True)), 1512),
    Case("channel_shuffle", (2, 7, 9), (C1, "{op: channel_shuffle, groups: 2}"),
         lambda nn: nn.Sequential(c1(nn), nn.ChannelShuffle(2)), 504),
    Case("mul", (2, 7, 9), (C1, "{name: gate, op: sigmoid}", "{op: mul, from: [c1, gate]}"),
         lambda nn: nn.Sequential(c1(nn), _branches(nn, nn.Identity(), nn.Sigmoid(), lambda a, b: a * b)), 504 + 1008 + 1008),
    # x * conv(x): only the product's factor that needs a gradient (conv's output) is
    # multiplied by the other one, so torch.mul keeps x (already conv's input), not conv(x)
    Case("mul by the input", (2, 7, 9), ("{name: c, op: conv2d, out: 2, kernel: 1}", "{op: mul, from: [input, c]}"),
         lambda nn: _branches(nn, nn.Identity(), nn.Conv2d(2, 2, 1), lambda a, b: a * b), 504),
    # a @ b^T of two trained branches: bmm keeps both factors, c1's output [4, 7, 9] and the
    # transposed view of c2's [4, 7, 9] (1,008 bytes each), plus the shared input (504)
    Case("matmul", (2, 7, 9), (C1, "{name: c2, op: conv2d, out: 4, kernel: 1, from: input}",
                               "{name: t, op: transpose, dim0: 2, dim1: 3}", "{op: matmul, from: [c1, t]}"),
         lambda nn: _branches(nn, c1(nn), c1(nn), lambda a, b: a @ b.transpose(-2, -1)), 504 + 1008 + 1008),
    # input @ conv(input)^T: only the second factor needs a gradient, so only the input is kept
    Case("matmul by the input", (2, 7, 9), ("{name: c, op: conv2d, out: 2, kernel: 1}", "{name: t, op: transpose, dim0: 2, dim1: 3}",
                                            "{op: matmul, from: [input, t]}"),
         lambda nn: _branches(nn, nn.Identity(), nn.Conv2d(2, 2, 1), lambda a, b: a @ b.transpose(-2, -1)), 504),
    Case("add", (2, 7, 9), (C1, "{name: r, op: relu}", "{op: add, from: [c1, r]}"),
         lambda nn: nn.Sequential(c1(nn), _branches(nn, nn.Identity(), nn.ReLU(), lambda a, b: a + b)), 504 + 1008),
    Case("concat and slice", (2, 7, 9), (C1, "{name: s, op: slice, start: 0, end: 2}", "{name: r, op: relu}", "{op: concat, from: [c1, r]}"),
         lambda nn: nn.Sequential(c1(nn), _branches(nn, nn.Identity(), nn.Sequential(_Narrow(nn, 2), nn.ReLU()), lambda a, b: __import__("torch").cat([a, b], 1))),
         504 + 2 * 63 * 4),
    # Windowed attention's pieces (Swin), after c1's [4, 7, 9] (its input: 504 bytes).
    # F.normalize over the last axis keeps its input (c1's output, 1,008), the norm per row and
    # the clamped norm per row (28 rows x 4 bytes each)
    Case("normalize", (2, 7, 9), (C1, "{op: normalize, dim: -1}"),
         lambda nn: nn.Sequential(c1(nn), _function(nn, lambda x: nn.functional.normalize(x, dim=-1))), 504 + 1008 + 2 * 112),
    # x * constant keeps nothing per example; a contiguous copy keeps nothing
    Case("scale", (2, 7, 9), (C1, "{op: scale, factor: 0.5}"), lambda nn: nn.Sequential(c1(nn), _function(nn, lambda x: x * 0.5)), 504),
    Case("contiguous", (2, 7, 9), (C1, "{op: permute, dims: [0, 2, 3, 1]}", "{op: contiguous}"),
         lambda nn: nn.Sequential(c1(nn), _function(nn, lambda x: x.permute(0, 2, 3, 1).contiguous())), 504),
    Case("exp", (2, 7, 9), (C1, "{op: exp}"), lambda nn: nn.Sequential(c1(nn), _function(nn, lambda x: x.exp())), 504 + 1008),
    Case("clamp", (2, 7, 9), (C1, "{op: clamp, max: 0.5}"),
         lambda nn: nn.Sequential(c1(nn), _function(nn, lambda x: x.clamp(max=0.5))), 504 + 1008),
    # c1(x) times a learned [4, 1, 1] the batch shares (Swin V2's logit scale): torch.mul keeps
    # c1's output for the parameter's gradient and the parameter (no bytes per example)
    Case("mul by a shared parameter", (2, 7, 9), (C1, "{name: p, op: parameter, shape: [4, 1, 1], batch_axis: false}", "{op: mul, from: [c1, p]}"),
         lambda nn: _shared(nn, lambda m, x: m.c1(x) * m.p), 504 + 1008),
    # c1(x) plus a learned table [9, 4] read by 63 ids and arranged as [4, 7, 9] (Swin's relative
    # position bias): the index keeps the ids (shared: none per example), the add nothing
    Case("add a shared bias", (2, 7, 9), (C1, "{name: table, op: parameter, shape: [9, 4], batch_axis: false}",
                                          "{name: ids, op: buffer, shape: [63], dtype: int64, batch_axis: false}",
                                          "{name: rows, op: index, from: [table, ids]}", "{op: reshape, shape: [7, 9, 4]}",
                                          "{name: bias, op: permute, dims: [0, 3, 1, 2]}", "{op: add, from: [c1, bias]}"),
         lambda nn: _shared(nn, lambda m, x: m.c1(x) + m.table[m.ids].view(7, 9, 4).permute(2, 0, 1)), 504),
]


def _transformers_activation(name: str) -> Any:
    """transformers' activation module of that name (ACT2FN), skipping where it is not installed."""
    return pytest.importorskip("transformers.activations").ACT2FN[name]


def _llama_rmsnorm(size: int) -> Any:
    """transformers' LlamaRMSNorm (eps 1e-6), skipping where transformers is not installed."""
    llama = pytest.importorskip("transformers.models.llama.modeling_llama")
    return llama.LlamaRMSNorm(size)


def _padded(nn: Any, pads: tuple[int, ...], mode: str, conv: Any) -> Any:
    """F.pad(x, pads, mode) then `conv`."""

    class Padded(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.conv = conv

        def forward(self, x: Any) -> Any:
            return self.conv(nn.functional.pad(x, pads, mode))

    return Padded()


def _Narrow(nn: Any, end: int) -> Any:
    class Narrow(nn.Module):  # type: ignore[misc]
        def forward(self, x: Any) -> Any:
            return x[:, :end]

    return Narrow()


def _function(nn: Any, f: Callable[[Any], Any]) -> Any:
    """A module computing f(x)."""

    class Function(nn.Module):  # type: ignore[misc]
        def forward(self, x: Any) -> Any:
            return f(x)

    return Function()


def _shared(nn: Any, f: Callable[[Any, Any], Any]) -> Any:
    """A module with c1, a [4, 1, 1] parameter `p`, a [9, 4] parameter `table` and 63 int64 ids
    below 9 as a buffer, computing f(module, x)."""
    import torch

    class Shared(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.c1 = c1(nn)
            self.p = nn.Parameter(torch.ones(4, 1, 1))
            self.table = nn.Parameter(torch.zeros(9, 4))
            self.register_buffer("ids", torch.arange(63) % 9)

        def forward(self, x: Any) -> Any:
            return f(self, x)

    return Shared()


def _spec(case: Case) -> str:
    entries = "".join(f"  - {entry}\n" for entry in case.layers)
    return f"name: case\ninput: {list(case.input)}\nlayers:\n{entries}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_saved_bytes_equal_pytorch(case: Case, tmp_path: Any) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(_spec(case))
    analysis = analyze(load(str(path)), MemoryOptions(batch=1))
    assert analysis.memory.training_activations == case.measured


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_recorded_figures_are_what_torch_measures(case: Case) -> None:
    torch = pytest.importorskip("torch")
    from torch_reference import saved_bytes

    torch.manual_seed(0)
    model = case.torch(torch.nn).train()
    per_example = saved_bytes(torch, model, case.input, 2) - saved_bytes(torch, model, case.input, 1)
    assert per_example == case.measured
