"""Convolutions (1-D, 2-D, 3-D, grouped, dilated, transposed) with every padding form and mode."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from archcalc.arith import Dim, Shape, equal, maximum, product, provably_below
from archcalc.errors import ShapeError
from archcalc.model import model_validator
from archcalc.ops.base import (
    INPUT,
    UNDEFINED,
    NonNegativeInt,
    Op,
    PositiveInt,
    ReceptiveStep,
    Saved,
    SlidingWindow,
    TorchCode,
    Width,
    Window,
    elements,
    expect_rank,
    literal,
    spatial_tuple,
)
from archcalc.ops.window import (
    Padding,
    check_padding_form,
    check_window_fits,
    effective_kernel,
    np,
    padded,
    padding_escapes,
    resolve_padding,
    sliding_windows,
    window_output,
    window_reads,
)

_LAYOUT = {1: "C, L", 2: "C, H, W", 3: "C, D, H, W"}


class _Conv(Op):
    """Fields shared by convolutions: `out` channels; input channels are inferred."""

    dims: ClassVar[int] = 2
    connectivity = "convolution"
    autocast = "lower"  # conv1d-3d and conv_transpose1d-3d: CPU autocast's lower_precision_fp list
    init = {"weight": "fan_in"}

    out: Width
    kernel: PositiveInt | list[PositiveInt]
    stride: PositiveInt | list[PositiveInt] = 1
    padding: Padding = 0
    dilation: PositiveInt | list[PositiveInt] = 1
    groups: PositiveInt = 1
    bias: bool = True

    @model_validator(mode="after")
    def _check_axes(self) -> _Conv:
        for field in ("kernel", "stride", "dilation"):
            spatial_tuple(getattr(self, field), self.dims, field)
        check_padding_form(self.padding, self.dims)
        if isinstance(self.out, int) and self.out % self.groups:
            raise ValueError(f"out ({self.out}) must be divisible by groups ({self.groups})")
        return self

    @property
    def kernel_size(self) -> tuple[int, ...]:
        return spatial_tuple(self.kernel, self.dims, "kernel")

    @property
    def strides(self) -> tuple[int, ...]:
        return spatial_tuple(self.stride, self.dims, "stride")

    @property
    def dilations(self) -> tuple[int, ...]:
        return spatial_tuple(self.dilation, self.dims, "dilation")

    @property
    def spans(self) -> tuple[int, ...]:
        return tuple(effective_kernel(k, d) for k, d in zip(self.kernel_size, self.dilations))

    def _in_channels(self, inputs: list[Shape]) -> int:
        shape = inputs[0]
        expect_rank(self, shape, self.dims + 1, _LAYOUT[self.dims])
        channels = shape[0]
        if isinstance(channels, int) and channels % self.groups:
            raise ShapeError(
                f"input channels ({channels}) must be divisible by groups ({self.groups})"
            )
        return channels

    def parameters(self, inputs: list[Shape]) -> dict[str, Shape]:
        weight = (self.out, self._in_channels(inputs) // self.groups, *self.kernel_size)
        return {"weight": weight, "bias": (self.out,)} if self.bias else {"weight": weight}

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        return elements(output) if self.bias else 0  # one add per output element for the bias

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        return INPUT  # the weight gradient needs the input

    def _torch_arguments(self, inputs: list[Shape], padding: Any) -> list[str]:
        """nn.ConvNd's arguments: channels in and out, kernel, and the settings that differ from
        its defaults (`padding` as the module is to take it)."""
        args = [literal(inputs[0][0]), literal(self.out), f"kernel_size={literal(self.kernel_size)}"]
        settings = {"stride": self.strides, "padding": padding, "dilation": self.dilations}
        for name, value in settings.items():
            if value != (0 if name == "padding" else 1,) * self.dims:
                args.append(f"{name}={literal(value)}")
        if self.groups != 1:
            args.append(f"groups={self.groups}")
        if not self.bias:
            args.append("bias=False")
        return args

    def describe(self) -> str:
        parts = ["x".join(map(str, self.kernel_size))]
        if any(s != 1 for s in self.strides):
            parts.append("s" + "x".join(map(str, self.strides)))
        if self.padding not in (0, "valid"):
            parts.append(f"p{self.padding}")
        if any(d != 1 for d in self.dilations):
            parts.append("d" + "x".join(map(str, self.dilations)))
        if self.groups != 1:
            parts.append(f"g{self.groups}")
        return " ".join(parts)


class _ConvForward(_Conv):
    """A convolution: floor((n + before + after - d*(k-1) - 1) / stride) + 1 per axis."""

    padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = "zeros"

    @property
    def window(self) -> SlidingWindow:
        return SlidingWindow(self.kernel_size, self.strides, self.dilations)

    def output_shape(self, inputs: list[Shape]) -> Shape:
        self._in_channels(inputs)
        sizes = inputs[0][1:]
        pads = resolve_padding(self.padding, sizes, self.spans, self.strides)
        out: list = [self.out]
        for axis, (n, (before, after), span, s) in enumerate(
            zip(sizes, pads, self.spans, self.strides), start=1
        ):
            self._check_mode(n, before, after, axis)
            check_window_fits(n, before, after, span, axis)
            out.append(window_output(n, span, s, before, after))
        return tuple(out)

    def macs(self, inputs: list[Shape], output: Shape) -> Dim:
        """Each output element: (in/groups) * prod(kernel) multiply-adds."""
        return elements(output) * (inputs[0][0] // self.groups) * product(list(self.kernel_size))

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        pads = resolve_padding(self.padding, inputs[0][1:], self.spans, self.strides)
        return Window(self.spans, self.strides, tuple(p[0] for p in pads), tuple(p[1] for p in pads))

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        """The input, or the padded copy PyTorch convolves instead of it.

        A padding mode other than zeros is F.pad(x, all sides, mode) then a convolution with
        padding 0 (torch/nn/modules/conv.py, _conv_forward): the convolution keeps the padded
        copy, and reflection and replication padding also keep x when a gradient flows on to it
        (their backward reads it; circular padding's slices do not). An asymmetric zero padding
        (an even kernel with padding 'same', or a per-side padding) is constant_pad_nd by the
        difference after - before, then the symmetric rest in the convolution
        (aten/src/ATen/native/Convolution.cpp, _convolution_mode): the copy is n + |after - before|.
        """
        channels, sizes = inputs[0][0], inputs[0][1:]
        pads = resolve_padding(self.padding, sizes, self.spans, self.strides)
        if self.padding_mode != "zeros":
            copy = channels * product([n + b + a for n, (b, a) in zip(sizes, pads)])
            reads_input = (0,) if self.padding_mode in ("reflect", "replicate") else ()
            return Saved(extra=((copy, None),), for_inputs=reads_input)
        if all(equal(b, a) for b, a in pads):
            return INPUT
        copy = channels * product([n + maximum(a - b, b - a) for n, (b, a) in zip(sizes, pads)])
        return Saved(extra=((copy, None),))

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
        """Taps unit*s - before + t*d, t < k, with padding mapped back by `padding_mode`."""
        before = resolve_padding(self.padding, inputs[0][1:], self.spans, self.strides)[axis][0]
        return [window_reads(
            inputs[0][axis + 1], unit, self.kernel_size[axis], self.strides[axis], before,
            self.dilations[axis], self.padding_mode,
        )]

    def receptive_varies(self, inputs: list[Shape]) -> str:
        if self.padding_mode == "zeros":
            return ""
        pads = resolve_padding(self.padding, inputs[0][1:], self.spans, self.strides)
        reasons = (padding_escapes(self.padding_mode, b, a, span) for (b, a), span in zip(pads, self.spans))
        return next((r for r in reasons if r), "")

    def forward_workspace(self, inputs: list[Shape], output: Shape) -> Dim:
        """The padded input, the im2col columns (Cin * prod(kernel) per output position) and the
        matmul's result."""
        pads = resolve_padding(self.padding, inputs[0][1:], self.spans, self.strides)
        padded_input = inputs[0][0] * product([n + b + a for n, (b, a) in zip(inputs[0][1:], pads)])
        columns = inputs[0][0] * product(list(self.kernel_size)) * product(list(output[1:]))
        return padded_input + columns + elements(output)

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        """im2col by a strided window view, then one batched matmul: kernel (G, O/G, Cg*K) times
        columns (N, G, Cg*K, P) gives (N, G, O/G, P), already in channels-first order."""
        x = xs[0]
        n, dims, g = x.shape[0], self.dims, self.groups
        out_sizes = self.output_shape([x.shape[1:]])[1:]
        pads = resolve_padding(self.padding, x.shape[2:], self.spans, self.strides)
        windows = sliding_windows(
            padded(x, pads, self.padding_mode), self.kernel_size, self.strides, self.dilations, out_sizes
        )
        cin = x.shape[1] // g
        grouped = windows.reshape(n, g, cin, *windows.shape[2:])  # (N, G, Cg, *O, *K)
        order = (0, 1, 2, *range(3 + dims, 3 + 2 * dims), *range(3, 3 + dims))
        cols = grouped.transpose(order).reshape(n, g, cin * int(np.prod(self.kernel_size)), -1)
        kernel = weights["weight"].reshape(1, g, self.out // g, -1)
        result = np.matmul(kernel, cols).reshape(n, self.out, *out_sizes)
        if self.bias:
            result += weights["bias"].reshape(1, -1, *(1,) * dims)
        return result

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """nn.ConvNd; a padding torch's module cannot take (uneven sides, 'same' with a stride)
        is F.pad first, in the padding mode (zeros: constant), then the module pads nothing."""
        pads = resolve_padding(self.padding, inputs[0][1:], self.spans, self.strides)
        mode = "" if self.padding_mode == "zeros" else f", padding_mode={self.padding_mode!r}"
        if self.padding == "same" and all(s == 1 for s in self.strides):
            padding: Any = "same"
        elif all(b == a for b, a in pads):
            padding = tuple(b for b, _ in pads)
        else:
            flat = tuple(side for pair in reversed(pads) for side in pair)  # F.pad: last axis first
            fill = "constant" if self.padding_mode == "zeros" else self.padding_mode
            args = ", ".join(self._torch_arguments(inputs, (0,) * self.dims))
            return TorchCode(f"nn.Conv{self.dims}d({args})", f"{{m}}(F.pad({{0}}, {literal(flat)}, mode={fill!r}))")
        return TorchCode(f"nn.Conv{self.dims}d({', '.join(self._torch_arguments(inputs, padding))}{mode})")

    def _check_mode(self, n: object, before: object, after: object, axis: int) -> None:
        """PyTorch's limits: reflect padding must be < the size, circular at most the size."""
        if self.padding_mode == "reflect":
            limit = 1  # pad <= n - 1
        elif self.padding_mode == "circular":
            limit = 0  # pad <= n
        else:
            return
        for pad in (before, after):
            if provably_below(n - pad, limit):  # type: ignore[operator]
                rule = "smaller than" if limit else "at most"
                raise ShapeError(
                    f"{self.padding_mode} padding of {pad} on spatial axis {axis} must be "
                    f"{rule} the input size {n}"
                )


class Conv1d(_ConvForward):
    kind = "conv1d"
    dims = 1


class Conv2d(_ConvForward):
    kind = "conv2d"
    dims = 2


class Conv3d(_ConvForward):
    kind = "conv3d"
    dims = 3


class _ConvTranspose(_Conv):
    """A transposed convolution: (n-1)*stride - before - after + d*(k-1) + output_padding + 1."""

    output_padding: NonNegativeInt | list[NonNegativeInt] = 0

    @model_validator(mode="after")
    def _check_transpose(self) -> _ConvTranspose:
        if isinstance(self.padding, str):
            raise ValueError("a transposed convolution takes explicit padding, not 'same'/'valid'")
        for op_, s, d in zip(self.output_paddings, self.strides, self.dilations):
            if op_ >= max(s, d):
                raise ValueError("output_padding must be smaller than stride or dilation")
        return self

    @property
    def output_paddings(self) -> tuple[int, ...]:
        return spatial_tuple(self.output_padding, self.dims, "output_padding")

    def parameters(self, inputs: list[Shape]) -> dict[str, Shape]:
        weight = (self._in_channels(inputs), self.out // self.groups, *self.kernel_size)
        return {"weight": weight, "bias": (self.out,)} if self.bias else {"weight": weight}

    def macs(self, inputs: list[Shape], output: Shape) -> Dim:
        """Each input element scatters into (out/groups) * prod(kernel) outputs (torch's count)."""
        return elements(inputs[0]) * (self.out // self.groups) * product(list(self.kernel_size))

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        """Stride 1: a convolution with the flipped kernel and padding span-1-p (output_padding
        after); a larger stride inserts zeros between inputs, a fractional stride 1/s."""
        if any(s != 1 for s in self.strides):
            return UNDEFINED
        pads = resolve_padding(self.padding, inputs[0][1:], self.spans, self.strides)
        before = tuple(span - 1 - b for span, (b, _) in zip(self.spans, pads))
        after = tuple(span - 1 - a + e for span, (_, a), e in zip(self.spans, pads, self.output_paddings))
        return Window(self.spans, self.strides, before, after, rounds_down=False)

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
        """Output o (o + before uncropped) sums input i times tap t where i*s + t*d = o + before."""
        n, s, d = inputs[0][axis + 1], self.strides[axis], self.dilations[axis]
        full = unit + resolve_padding(self.padding, inputs[0][1:], self.spans, self.strides)[axis][0]
        taps = (full - t * d for t in range(self.kernel_size[axis]))
        return [tuple(sorted(x // s for x in taps if x % s == 0 and 0 <= x // s < n))]

    def receptive_varies(self, inputs: list[Shape]) -> str:
        stride = next((s for s in self.strides if s != 1), 1)
        if stride == 1:
            return ""
        return (
            f"a transposed convolution with stride {stride} steps 1/{stride} of an input position "
            "per output, so neighbouring outputs read different numbers of inputs"
        )

    def forward_workspace(self, inputs: list[Shape], output: Shape) -> Dim:
        """The input as columns, every contribution (input positions x out x prod(kernel)), the
        uncropped output and one strided slice of it."""
        positions = product(list(inputs[0][1:]))
        full = [(n - 1) * s + span + extra for n, s, span, extra in zip(inputs[0][1:], self.strides, self.spans, self.output_paddings)]
        uncropped = self.out * product(full)
        return elements(inputs[0]) + positions * self.out * product(list(self.kernel_size)) + 2 * uncropped

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        """Each input element scatters weight x value into the output: one matmul, then one
        strided add per kernel element (a loop over the kernel, never over pixels)."""
        x = xs[0]
        n, dims, g = x.shape[0], self.dims, self.groups
        sizes = x.shape[2:]
        cin, cout = x.shape[1] // g, self.out // g
        k = self.kernel_size
        cols = np.moveaxis(x.reshape(n, g, cin, -1), 2, -1).transpose(1, 0, 2, 3).reshape(g, -1, cin)
        w = weights["weight"].reshape(g, cin, cout * int(np.prod(k)))
        contrib = np.matmul(cols, w).reshape(g, n, *sizes, cout, *k)  # (G, N, *I, O/G, *K)
        full = [(s_ - 1) * st + span + extra for s_, st, span, extra in zip(sizes, self.strides, self.spans, self.output_paddings)]
        out = np.zeros((n, g, cout, *full), dtype=x.dtype)
        for offsets in np.ndindex(*k):
            region = tuple(
                slice(o * d, o * d + (s_ - 1) * st + 1, st)
                for o, d, s_, st in zip(offsets, self.dilations, sizes, self.strides)
            )
            part = contrib[(slice(None), slice(None), *(slice(None),) * dims, slice(None), *offsets)]
            out[(slice(None), slice(None), slice(None), *region)] += np.moveaxis(np.moveaxis(part, 0, 1), -1, 2)
        pads = resolve_padding(self.padding, sizes, self.spans, self.strides)
        crop = tuple(slice(b, f - a) for (b, a), f in zip(pads, full))
        result = np.ascontiguousarray(out.reshape(n, self.out, *full)[(slice(None), slice(None), *crop)])
        if self.bias:
            result += weights["bias"].reshape(1, -1, *(1,) * dims)
        return result

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """nn.ConvTransposeNd; uneven sides (which it cannot take) crop its uncropped output."""
        pads = resolve_padding(self.padding, inputs[0][1:], self.spans, self.strides)
        even = all(b == a for b, a in pads)
        args = self._torch_arguments(inputs, tuple(b for b, _ in pads) if even else (0,) * self.dims)
        if any(self.output_paddings):
            args.append(f"output_padding={literal(self.output_paddings)}")
        module = f"nn.ConvTranspose{self.dims}d({', '.join(args)})"
        if even:
            return TorchCode(module)
        full = [(n - 1) * s + span + e for n, s, span, e in zip(inputs[0][1:], self.strides, self.spans, self.output_paddings)]
        crop = ", ".join(f"{b}:{f - a}" for (b, a), f in zip(pads, full))
        return TorchCode(module, f"{{m}}({{0}})[:, :, {crop}]")

    def output_shape(self, inputs: list[Shape]) -> Shape:
        self._in_channels(inputs)
        sizes = inputs[0][1:]
        pads = resolve_padding(self.padding, sizes, self.spans, self.strides)
        out: list = [self.out]
        for axis, (n, (before, after), span, s, extra) in enumerate(
            zip(sizes, pads, self.spans, self.strides, self.output_paddings), start=1
        ):
            size = (n - 1) * s - before - after + span + extra
            if provably_below(size, 1):
                raise ShapeError(f"spatial axis {axis}: output size {size} is below 1")
            out.append(size)
        return tuple(out)


class ConvTranspose1d(_ConvTranspose):
    kind = "conv_transpose1d"
    dims = 1


class ConvTranspose2d(_ConvTranspose):
    kind = "conv_transpose2d"
    dims = 2


class ConvTranspose3d(_ConvTranspose):
    kind = "conv_transpose3d"
    dims = 3
