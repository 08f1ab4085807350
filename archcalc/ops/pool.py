"""Pooling: max, average and Lp windows (ceil mode), adaptive pooling and global pooling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from archcalc.arith import Dim, Shape, ceil_div, maximum, product, provably_below
from archcalc.errors import ShapeError
from archcalc.model import Field, model_validator
from archcalc.ops.base import (
    GLOBAL,
    INPUT,
    NOTHING,
    NonNegativeInt,
    Op,
    PositiveInt,
    ReceptiveStep,
    Saved,
    SlidingWindow,
    TorchCode,
    Window,
    elements,
    expect_rank,
    literal,
    spatial_tuple,
)
from archcalc.ops.window import (
    effective_kernel,
    np,
    overhang,
    padded,
    resolve_padding,
    sliding_windows,
    window_output,
    window_reads,
    window_sizes,
)

_LAYOUT = {1: "C, L", 2: "C, H, W", 3: "C, D, H, W"}


class _Pool(Op):
    """A sliding window without parameters; stride defaults to the kernel, as in PyTorch."""

    dims: ClassVar[int] = 2
    kernel_within_input: ClassVar[bool] = False  # avg_pool3d's own check, blind to padding

    kernel: PositiveInt | list[PositiveInt]
    stride: PositiveInt | list[PositiveInt] | None = None
    padding: Literal["same", "valid"] | NonNegativeInt | list[NonNegativeInt] = 0
    ceil_mode: bool = False

    @model_validator(mode="after")
    def _check_axes(self) -> _Pool:
        _ = (self.kernel_size, self.strides, self.dilations)  # each property checks its length
        if not isinstance(self.padding, str):
            pads = spatial_tuple(self.padding, self.dims, "padding")
            for pad, k in zip(pads, self.kernel_size):
                if 2 * pad > k:
                    raise ValueError(
                        f"padding {pad} is more than half the kernel {k} (PyTorch refuses it)"
                    )
        return self

    @property
    def kernel_size(self) -> tuple[int, ...]:
        return spatial_tuple(self.kernel, self.dims, "kernel")

    @property
    def strides(self) -> tuple[int, ...]:
        return spatial_tuple(self.kernel if self.stride is None else self.stride, self.dims, "stride")

    @property
    def dilations(self) -> tuple[int, ...]:
        return (1,) * self.dims

    @property
    def spans(self) -> tuple[int, ...]:
        return tuple(effective_kernel(k, d) for k, d in zip(self.kernel_size, self.dilations))

    @property
    def window(self) -> SlidingWindow:
        return SlidingWindow(self.kernel_size, self.strides, self.dilations)

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        expect_rank(self, shape, self.dims + 1, _LAYOUT[self.dims])
        sizes = shape[1:]
        if self.kernel_within_input:
            for axis, (n, k) in enumerate(zip(sizes, self.kernel_size), start=1):
                if provably_below(n - k, 0):
                    raise ShapeError(
                        f"spatial axis {axis}: input size {n} is smaller than the kernel {k}; PyTorch's "
                        f"{self.kind}{'' if self.kind == 'avg_pool3d' else ' (through avg_pool3d)'} refuses "
                        "that whatever the padding or ceil mode"
                    )
        pads = resolve_padding(self.padding, sizes, self.spans, self.strides)
        out: list = [shape[0]]
        for axis, (n, (before, after), span, s) in enumerate(
            zip(sizes, pads, self.spans, self.strides), start=1
        ):
            size = window_output(n, span, s, before, after, self.ceil_mode)
            if provably_below(size, 1):  # in ceil mode a window may overhang the input's end
                raise ShapeError(
                    f"spatial axis {axis}: input size {n} with padding ({before}, {after}) is "
                    f"too small for the window span {span}; the output would have size {size}"
                )
            out.append(size)
        return tuple(out)

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        return elements(output) * product(list(self.kernel_size))  # one op per window element

    def forward_workspace(self, inputs: list[Shape], output: Shape) -> Dim:
        """The padded input (ceil-mode overhang is under a stride) twice (LP pooling's x**p), and
        the result and divisor as large as the output."""
        pads = resolve_padding(self.padding, inputs[0][1:], self.spans, self.strides)
        sizes = [n + b + a + s for n, (b, a), s in zip(inputs[0][1:], pads, self.strides)]
        return 2 * inputs[0][0] * product(sizes) + 2 * elements(output)

    def _windows(self, x: Any, fill: float) -> tuple[Any, list[tuple[int, int]], tuple[int, ...]]:
        """The window view over `x` padded with `fill`, extended where ceil-mode windows overhang."""
        out_sizes = self.output_shape([x.shape[1:]])[1:]
        pads = resolve_padding(self.padding, x.shape[2:], self.spans, self.strides)
        extended = [
            (b, a + overhang(n, b, a, span, s, o))
            for n, (b, a), span, s, o in zip(x.shape[2:], pads, self.spans, self.strides, out_sizes)
        ]
        view = sliding_windows(padded(x, extended, "zeros", fill), self.kernel_size, self.strides, self.dilations, out_sizes)
        return view, pads, out_sizes

    def _divisor(self, x: Any, pads: list[tuple[int, int]], out_sizes: tuple[int, ...], include_pad: bool) -> Any:
        """Elements per window as PyTorch's avg_pool divides by: a product of per-axis counts."""
        divisor = np.ones((1,) * len(out_sizes))
        for axis, (n, (b, a), k, s, o) in enumerate(zip(x.shape[2:], pads, self.kernel_size, self.strides, out_sizes)):
            shape = [1] * len(out_sizes)
            shape[axis] = o
            divisor = divisor * window_sizes(n, b, a, k, s, o, include_pad).reshape(shape)
        return divisor.astype(x.dtype)

    def _reduce(self, view: Any, combine: Any) -> Any:
        """Fold the window axes with `combine`, one kernel offset at a time: each step is a
        whole-array operation, far faster than reducing over the strided window axes."""
        offsets = np.ndindex(*self.kernel_size)
        result = np.array(view[(Ellipsis, *next(offsets))])
        for offset in offsets:
            combine(result, view[(Ellipsis, *offset)], out=result)
        return result

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        pads = resolve_padding(self.padding, inputs[0][1:], self.spans, self.strides)
        return Window(
            self.spans, self.strides, tuple(p[0] for p in pads), tuple(p[1] for p in pads), not self.ceil_mode
        )

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
        """Taps unit*s - before + t*d inside the input; padding (and a ceil-mode overhang) reads
        nothing: max pooling pads with -inf, average pooling adds zeros."""
        before = resolve_padding(self.padding, inputs[0][1:], self.spans, self.strides)[axis][0]
        return [window_reads(
            inputs[0][axis + 1], unit, self.kernel_size[axis], self.strides[axis], before, self.dilations[axis]
        )]

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        return INPUT  # avg_pool2d_backward takes the input

    torch_name: ClassVar[str] = ""  # the torch.nn module's name with {dims} for 1, 2 or 3
    pad_fill: ClassVar[float] = 0.0  # what F.pad fills uneven padding with (max pooling: -inf)

    def _torch_settings(self) -> list[str]:
        """Module arguments after kernel, stride and padding (dilation, ceil mode, counting)."""
        return ["ceil_mode=True"] if self.ceil_mode else []

    def _torch_padding(self, inputs: list[Shape]) -> tuple[tuple[int, ...] | None, tuple[int, ...]]:
        """The padding as torch's module takes it (even sides), or None and F.pad's sides."""
        pads = resolve_padding(self.padding, inputs[0][1:], self.spans, self.strides)
        if all(b == a for b, a in pads):
            return tuple(b for b, _ in pads), ()
        return None, tuple(side for pair in reversed(pads) for side in pair)

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """torch.nn's pooling module; uneven padding ('same' with an even kernel) is F.pad with
        `pad_fill` first, then the module pads nothing."""
        even, sides = self._torch_padding(inputs)
        args = [f"kernel_size={literal(self.kernel_size)}", f"stride={literal(self.strides)}"]
        padding = even if even is not None else (0,) * self.dims
        if any(padding):
            args.append(f"padding={literal(padding)}")
        module = f"nn.{self.torch_name.format(dims=self.dims)}({', '.join([*args, *self._torch_settings()])})"
        if even is not None:
            return TorchCode(module)
        return TorchCode(module, f"{{m}}(F.pad({{0}}, {literal(sides)}, value={literal(self.pad_fill)}))")

    def describe(self) -> str:
        text = "x".join(map(str, self.kernel_size))
        if self.strides != self.kernel_size:
            text += " s" + "x".join(map(str, self.strides))
        if self.padding not in (0, "valid"):
            text += f" p{self.padding}"
        return text + (" ceil" if self.ceil_mode else "")


class _MaxPool(_Pool):
    torch_name = "MaxPool{dims}d"
    pad_fill = float("-inf")

    dilation: PositiveInt | list[PositiveInt] = 1

    def _torch_settings(self) -> list[str]:
        dilation = [f"dilation={literal(self.dilations)}"] if any(d != 1 for d in self.dilations) else []
        return [*dilation, *super()._torch_settings()]

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        view, _, _ = self._windows(xs[0], -np.inf)
        return self._reduce(view, np.maximum)

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        return Saved(inputs=(0,), extra=((elements(output), "int64"),))  # input and argmax indices

    @property
    def dilations(self) -> tuple[int, ...]:
        return spatial_tuple(self.dilation, self.dims, "dilation")


class _AvgPool(_Pool):
    """Window sums divided by the elements counted (count_include_pad), or by divisor_override
    for every window, as torch.nn.AvgPool2d."""

    torch_name = "AvgPool{dims}d"

    count_include_pad: bool = True
    divisor_override: PositiveInt | None = None

    def _torch_settings(self) -> list[str]:
        settings = super()._torch_settings()
        if not self.count_include_pad:
            settings.append("count_include_pad=False")
        if self.divisor_override is not None:
            settings.append(f"divisor_override={self.divisor_override}")
        return settings

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """Uneven padding is F.pad with zeros, which the divisor then counts: torch has no form
        for uneven padding left out of the count."""
        if not self.count_include_pad and self._torch_padding(inputs)[0] is None:
            raise NotImplementedError(
                f"{self.kind} with uneven padding and count_include_pad: false has no PyTorch form"
            )
        return super().torch_code(inputs)

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        view, pads, out_sizes = self._windows(xs[0], 0.0)
        if self.divisor_override is not None:
            return self._reduce(view, np.add) / xs[0].dtype.type(self.divisor_override)
        return self._reduce(view, np.add) / self._divisor(xs[0], pads, out_sizes, self.count_include_pad)

    def describe(self) -> str:
        divisor = f" /{self.divisor_override}" if self.divisor_override is not None else ""
        return super().describe() + divisor


class _LpPool(_Pool):
    """Power-average pooling, (sum x^p)^(1/p) over the window; PyTorch's LPPool has no padding."""

    norm_type: float = Field(gt=0)
    padding: Literal[0] = 0

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """nn.LPPoolNd; the 1-D one multiplies by its kernel_size, so it takes an int there."""
        kernel, stride = (self.kernel_size[0], self.strides[0]) if self.dims == 1 else (self.kernel_size, self.strides)
        ceil = ", ceil_mode=True" if self.ceil_mode else ""
        return TorchCode(
            f"nn.LPPool{self.dims}d({literal(self.norm_type)}, kernel_size={literal(kernel)}, "
            f"stride={literal(stride)}{ceil})"
        )

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        """torch.nn.functional.lp_pool*d is Python: t = avg_pool(x.pow(p)), then
        (sign(t) * relu(abs(t))).mul(k).pow(1/p). pow keeps x, avg_pool x^p, abs t, mul sign(t)
        and relu's result (which relu keeps too), the last pow its input: x, one input-sized and
        four output-sized tensors. p = inf is max_pool(abs(x)): x, abs(x) and the indices."""
        if self.norm_type == float("inf"):
            return Saved(inputs=(0,), extra=((elements(inputs[0]), None), (elements(output), "int64")))
        return Saved(inputs=(0,), extra=((elements(inputs[0]), None), (4 * elements(output), None)))

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        """PyTorch's LPPool: avg_pool(x^p) * kernel elements, then sign(t) * relu(|t|) ^ (1/p)."""
        x = xs[0]
        view, pads, out_sizes = self._windows(x ** self.norm_type, 0.0)
        total = self._reduce(view, np.add) / self._divisor(x, pads, out_sizes, True) * float(np.prod(self.kernel_size))
        return (np.sign(total) * np.maximum(np.abs(total), 0)) ** (1.0 / self.norm_type)


class MaxPool1d(_MaxPool):
    kind = "max_pool1d"
    dims = 1


class MaxPool2d(_MaxPool):
    kind = "max_pool2d"
    dims = 2


class MaxPool3d(_MaxPool):
    kind = "max_pool3d"
    autocast = "fp32"  # CPU autocast's fp32 list
    dims = 3


class AvgPool1d(_AvgPool):
    kind = "avg_pool1d"
    dims = 1


class AvgPool2d(_AvgPool):
    kind = "avg_pool2d"
    dims = 2


class AvgPool3d(_AvgPool):
    kind = "avg_pool3d"
    autocast = "fp32"  # CPU autocast's fp32 list
    dims = 3
    kernel_within_input = True


class LpPool1d(_LpPool):
    kind = "lp_pool1d"
    dims = 1


class LpPool2d(_LpPool):
    kind = "lp_pool2d"
    dims = 2


class LpPool3d(_LpPool):
    kind = "lp_pool3d"
    autocast = "fp32"  # CPU autocast's fp32 list
    dims = 3
    kernel_within_input = True


class _AdaptivePool(Op):
    """Pools to a fixed output size; `None` on an axis keeps the input size there."""

    dims: ClassVar[int] = 2

    output: PositiveInt | list[PositiveInt | None]

    @model_validator(mode="after")
    def _check_axes(self) -> _AdaptivePool:
        spatial_tuple(self.output, self.dims, "output")  # type: ignore[arg-type]
        return self

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        expect_rank(self, shape, self.dims + 1, _LAYOUT[self.dims])
        sizes = spatial_tuple(self.output, self.dims, "output")  # type: ignore[arg-type]
        return (shape[0], *(n if o is None else o for n, o in zip(shape[1:], sizes)))

    def _windows(self, inputs: list[Shape]) -> list[tuple[Dim, Dim]]:
        """(largest window, stride) per axis; windows are [floor(i*n/o), ceil((i+1)*n/o))."""
        sizes = spatial_tuple(self.output, self.dims, "output")  # type: ignore[arg-type]
        result = []
        for n, o in zip(inputs[0][1:], sizes):
            o = n if o is None else o
            exact = isinstance(n, int) and n % o == 0
            result.append((n // o if exact else ceil_div(n, o) + 1, n // o))
        return result

    reduce: ClassVar[str] = "mean"

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        kind = "Avg" if self.reduce == "mean" else "Max"
        sizes = spatial_tuple(self.output, self.dims, "output")  # type: ignore[arg-type]
        return TorchCode(f"nn.Adaptive{kind}Pool{self.dims}d({literal(sizes)})")

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        """Separable: pool one axis at a time over windows [floor(i*n/o), ceil((i+1)*n/o))."""
        x = xs[0]
        reduce = getattr(np, self.reduce)
        sizes = spatial_tuple(self.output, self.dims, "output")  # type: ignore[arg-type]
        for axis, o in zip(range(2, 2 + self.dims), sizes):
            n = x.shape[axis]
            if o is None or o == n:
                continue
            if n % o == 0:
                split = (*x.shape[:axis], o, n // o, *x.shape[axis + 1 :])
                x = reduce(x.reshape(split), axis=axis + 1)
                continue
            parts = [
                reduce(x.take(np.arange(i * n // o, -(-(i + 1) * n // o)), axis=axis), axis=axis, keepdims=True)
                for i in range(o)
            ]
            x = np.concatenate(parts, axis=axis)
        return x.copy() if x is xs[0] else np.ascontiguousarray(x)  # a new tensor, as in torch

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        return elements(inputs[0])

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
        """Output i pools [floor(i*n/o), ceil((i+1)*n/o)), PyTorch's adaptive pooling windows."""
        n = inputs[0][axis + 1]
        o = spatial_tuple(self.output, self.dims, "output")[axis]  # type: ignore[arg-type]
        return [(unit,) if o is None else range(unit * n // o, ceil_div((unit + 1) * n, o))]

    def receptive_varies(self, inputs: list[Shape]) -> str:
        sizes = spatial_tuple(self.output, self.dims, "output")  # type: ignore[arg-type]
        for n, o in zip(inputs[0][1:], sizes):
            if o is not None and o != 1 and not (isinstance(n, int) and n % o == 0):
                return (
                    f"adaptive pooling from {n} to {o}: its windows [floor(i*n/o), ceil((i+1)*n/o)) "
                    "differ in size and spacing unless n is a multiple of o"
                )
        return ""

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        windows = self._windows(inputs)
        if all(o == 1 for o in spatial_tuple(self.output, self.dims, "output")):  # type: ignore[arg-type]
            return GLOBAL
        zeros = (0,) * self.dims
        return Window(tuple(w for w, _ in windows), tuple(maximum(s, 1) for _, s in windows), zeros, zeros, False)

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        return INPUT

    def describe(self) -> str:
        return "->" + "x".join(str(o) for o in spatial_tuple(self.output, self.dims, "output"))  # type: ignore[arg-type]


class _AdaptiveAvgPool(_AdaptivePool):
    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        # PyTorch computes a 1-sized adaptive average as a mean, whose backward keeps nothing
        ones = all(o == 1 for o in spatial_tuple(self.output, self.dims, "output"))  # type: ignore[arg-type]
        return NOTHING if ones else INPUT


class AdaptiveAvgPool1d(_AdaptiveAvgPool):
    kind = "adaptive_avg_pool1d"
    dims = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPool):
    kind = "adaptive_avg_pool2d"
    dims = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPool):
    kind = "adaptive_avg_pool3d"
    autocast = "fp32"  # CPU autocast's fp32 list
    dims = 3


class _AdaptiveMaxPool(_AdaptivePool):
    reduce = "max"

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        return Saved(inputs=(0,), extra=((elements(output), "int64"),))


class AdaptiveMaxPool1d(_AdaptiveMaxPool):
    kind = "adaptive_max_pool1d"
    dims = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPool):
    kind = "adaptive_max_pool2d"
    dims = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPool):
    kind = "adaptive_max_pool3d"
    autocast = "fp32"  # CPU autocast's fp32 list
    dims = 3


class _GlobalPool(Op):
    """Pools every spatial axis to 1: output [C], or [C, 1, ...] with keepdims (Keras' Global*)."""

    keepdims: bool = False

    def output_shape(self, inputs: list[Shape]) -> Shape:
        shape = inputs[0]
        if len(shape) < 2:
            raise ShapeError(f"{self.kind} needs spatial axes after the channels, got {list(shape)}")
        return (shape[0], *((1,) * (len(shape) - 1))) if self.keepdims else (shape[0],)

    reduce: ClassVar[str] = "mean"

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        return getattr(np, self.reduce)(xs[0], axis=tuple(range(2, xs[0].ndim)), keepdims=self.keepdims)

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """x.mean or x.amax over the spatial axes (torch counts the batch as dim 0)."""
        axes = tuple(range(2, len(inputs[0]) + 1))
        keep = ", keepdim=True" if self.keepdims else ""
        method = "mean" if self.reduce == "mean" else "amax"
        return TorchCode(call=f"{{0}}.{method}(dim={literal(axes)}{keep})")

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        return elements(inputs[0])

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        return GLOBAL


class GlobalAvgPool(_GlobalPool):
    """A mean over the spatial axes; its backward needs no saved tensor."""

    kind = "global_avg_pool"

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        return NOTHING


class GlobalMaxPool(_GlobalPool):
    """amax over the spatial axes; its backward compares the input with the result."""

    kind = "global_max_pool"
    reduce = "max"

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        return Saved(inputs=(0,), output=True)
