"""Pooling attention's pieces (Fan et al. 2021, MViT; Li et al. 2022, MViTv2), as torchvision's
video MViT builds them: a convolution run on every head, and the relative distances its
decomposed position embeddings are read by."""

from __future__ import annotations

from typing import Any

from archcalc.arith import Dim, Shape
from archcalc.ops.base import (
    Op,
    PositiveInt,
    ReceptiveStep,
    Saved,
    TorchCode,
    Window,
    expect_rank,
    literal,
)
from archcalc.ops.conv import Conv3d
from archcalc.ops.window import np


class HeadConv3d(Conv3d):
    """A Conv3d applied to each head's [C, T, H, W] of a [heads, C, T, H, W] input, with one
    weight for all heads: torchvision's MViT Pool reshapes [N, heads, tokens, C] to
    [N*heads, C, T, H, W] and pools q, k and v by a depthwise Conv3d (groups = C, no bias)."""

    kind = "head_conv3d"

    def _per_head(self, inputs: list[Shape]) -> list[Shape]:
        expect_rank(self, inputs[0], 5, "heads, C, D, H, W")
        return [inputs[0][1:]]

    @property
    def _conv(self) -> Conv3d:
        """The convolution one head runs."""
        return Conv3d(**self.model_dump())

    def parameters(self, inputs: list[Shape]) -> dict[str, Shape]:
        return self._conv.parameters(self._per_head(inputs))

    def output_shape(self, inputs: list[Shape]) -> Shape:
        return (inputs[0][0], *self._conv.output_shape(self._per_head(inputs)))

    def macs(self, inputs: list[Shape], output: Shape) -> Dim:
        """heads times one head's convolution."""
        return inputs[0][0] * self._conv.macs(self._per_head(inputs), output[1:])

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        return inputs[0][0] * self._conv.elementwise_flops(self._per_head(inputs), output[1:])

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        saved = self._conv.saved_for_backward(self._per_head(inputs), output[1:])
        return Saved(inputs=saved.inputs, for_inputs=saved.for_inputs,
                     extra=tuple((inputs[0][0] * n, dtype) for n, dtype in saved.extra))

    @property
    def window(self) -> None:
        """None: the window slides over T, H, W of each head, not over the input's first axes,
        which review rules read a window against."""
        return None

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        """The convolution's window on T, H, W; the channel axis after the heads is element-wise."""
        step = self._conv.receptive_step(self._per_head(inputs))
        assert isinstance(step, Window)
        return Window((1, *step.spans), (1, *step.strides), (0, *step.before), (0, *step.after))

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Any]:
        if axis == 0:
            return [(unit,)]
        return self._conv.receptive_reads(self._per_head(inputs), axis - 1, unit)

    def forward_workspace(self, inputs: list[Shape], output: Shape) -> Dim:
        return inputs[0][0] * self._conv.forward_workspace(self._per_head(inputs), output[1:])

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        x = xs[0]
        folded = self._conv.forward([x.reshape(-1, *x.shape[2:])], weights)
        return folded.reshape(*x.shape[:2], *folded.shape[1:])

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """Conv3d's PyTorch form on the heads folded into the batch, [N * heads, C, T, H, W], then
        unfolded, as torchvision's MViT reshapes around its pooling convolution."""
        conv = self._conv.torch_code(self._per_head(inputs))
        folded = conv.call.replace("{x}", "{0}").replace("{0}", "{0}.flatten(0, 1)")
        return TorchCode(conv.module, f"({folded}).unflatten(0, (-1, {literal(inputs[0][0])}))", conv.defines)


class RelativeDistance(Op):
    """MViTv2's relative distances between `q` query and `k` key positions along one axis, the
    int64 ids its rel_pos_h/w/t tables are read by: i * max(k/q, 1) - (j + 1 - k) * max(q/k, 1),
    truncated (torchvision's _add_rel_pos builds them at every call: neither parameter nor buffer)."""

    kind = "relative_distance"
    min_inputs = 0
    max_inputs = 0
    per_example = False

    q: PositiveInt
    k: PositiveInt

    def output_shape(self, inputs: list[Shape]) -> Shape:
        return (self.q, self.k)

    def output_dtype(self, inputs: list[str]) -> str | None:
        return "int64"

    def forward_workspace(self, inputs: list[Shape], output: Shape) -> int:
        return 0

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        """In float32, as torch multiplies its int64 aranges by Python floats."""
        q_ratio = np.float32(max(self.k / self.q, 1.0))
        k_ratio = np.float32(max(self.q / self.k, 1.0))
        i = np.arange(self.q, dtype=np.float32)[:, None]
        j = np.arange(self.k, dtype=np.float32)[None, :]
        return (i * q_ratio - (j + np.float32(1 - self.k)) * k_ratio).astype(np.int64)[None]

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """As torchvision's _add_rel_pos writes it: int64 aranges times Python floats (float32), truncated."""
        q_ratio, k_ratio = max(self.k / self.q, 1.0), max(self.q / self.k, 1.0)
        i, j = f"torch.arange({literal(self.q)})[:, None]", f"torch.arange({literal(self.k)})[None, :]"
        return TorchCode(call=f"({i} * {literal(q_ratio)} - ({j} + {literal(1.0 - self.k)}) * {literal(k_ratio)}).long()[None]")

    def describe(self) -> str:
        return f"{self.q}x{self.k}"
