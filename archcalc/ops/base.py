"""The contract every op (layer kind) fulfils, and the registry that maps spec names to ops.

An op is a model of its spec fields (archcalc.model: pydantic's declarations, pydantic's errors)
that also answers each question a pass asks (output shape, parameter arrays, ...). Passes call
these methods and never switch on op names.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Union

from archcalc.arith import MAX_SIZE, Dim, Shape, product
from archcalc.errors import ShapeError
from archcalc.model import BeforeValidator, Field, Model, WithJsonSchema

REGISTRY: dict[str, type[Op]] = {}


def _integer(value: Any) -> Any:
    """Not true/false (ints to Python and to pydantic's int types, never sizes), below MAX_SIZE."""
    if isinstance(value, bool):
        raise ValueError(f"must be a whole number, not {str(value).lower()}")
    if isinstance(value, (int, float)) and abs(value) >= MAX_SIZE:
        raise ValueError("is beyond what any machine can hold (sizes stay below 2**1024)")
    return value


Whole = Annotated[int, BeforeValidator(_integer)]
"""Every integer field of an op or a spec: an int (or a float without a fraction), never a bool."""
PositiveInt = Annotated[Whole, Field(gt=0)]
NonNegativeInt = Annotated[Whole, Field(ge=0)]


def whole_number(value: Any, minimum: int) -> Any:
    """An int >= minimum, or in symbolic mode a sympy expression that is an integer and not
    provably below `minimum` (a width valid only above some size is fine, as for shapes)."""
    if hasattr(value, "free_symbols") and value.free_symbols:
        if value.is_integer is not True or (value - minimum).is_negative is True:
            raise ValueError(
                f"must be a whole number of at least {minimum} for every value of its symbols, "
                f"got {value} (write a floor as `//`)"
            )
        return value
    if hasattr(value, "is_Integer") and value.is_Integer:
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"must be a whole number of at least {minimum} (got {value!r})")
    return _integer(value)


def _width(value: Any) -> Any:
    """A channel or feature count: a whole number >= 1, or a sympy expression (symbolic mode)."""
    return whole_number(value, 1)


Width = Annotated[Any, BeforeValidator(_width), WithJsonSchema({"type": "integer", "minimum": 1})]
"""A channel or feature count; symbolic widths (a block argument `k`) are sympy expressions."""


@dataclass(frozen=True)
class Window:
    """One sliding-window step per spatial axis: the dilated span, the stride, the padding before
    and after; `rounds_down` when the output size floors, so trailing input can go unread."""

    spans: tuple[Dim, ...]
    strides: tuple[Dim, ...]
    before: tuple[Dim, ...]
    after: tuple[Dim, ...]
    rounds_down: bool = True


@dataclass(frozen=True)
class SlidingWindow:
    """A kernel an op slides over its input's spatial axes, one output per position (torch.nn.Conv2d's
    and MaxPool2d's `kernel_size`, `stride` and `dilation`, one value per axis); padding, which may
    depend on the input ('same'), is in the receptive step."""

    kernel_size: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]


Connectivity = Literal["dense", "convolution"]
"""How learned weights connect an op's outputs to its inputs: `dense`, each output a weighted sum
of every feature of the last axis (a fully connected layer, features last); `convolution`, a kernel
shared across spatial positions, transposed or not (channels first)."""

Init = Literal["fan_in", "scale", "shift", "variance", "count"]
"""How an array starts in a seeded run (torch.nn.init's schemes, kept bounded through deep stacks):
`fan_in` uniform in +-1/sqrt(fan_in), fan_in the product of the shape after axis 0 (the bound of
PyTorch's default kaiming_uniform_(a=sqrt(5)) for conv and linear weights); `scale` near 1 (a
norm's weight); `shift` near 0 (a bias, a running mean); `variance` in [0.5, 1.5] (a running
variance); `count` an int64 zero (num_batches_tracked)."""


GLOBAL: Literal["global"] = "global"
"""The receptive-field step of an op whose every output sees the whole input (linear, global pool)."""

UNDEFINED: Literal["undefined"] = "undefined"
"""The step of an op the closed forms do not cover (a transposed convolution's fractional stride)."""

ReceptiveStep = Union[Window, Literal["global", "undefined"], None]  # None: element-wise

AttentionKernel = Literal["fused", "math"]

MASK = "mask"
"""Saved.extra's dtype for a dropout mask, priced by the memory policy (`--dropout-mask`): the
activation dtype on the CPU (the scaled mask), one byte for CUDA's bool mask."""

TensorParallel = Literal["column", "row"]
"""Megatron-LM's split of a dense layer across t devices (Shoeybi et al. 2019, §3): `column`
splits the output features (its output is split t ways), `row` the input features (its input must
be split; its output is all-reduced, whole on every device)."""
"""The implementation attention runs in training (`--attention`): `fused`, what
torch.nn.functional.scaled_dot_product_attention picks on the CPU by default (the flash kernel,
which keeps a log-sum-exp), or `math`, SDPBackend.MATH (which keeps the attention matrix)."""


Autocast = Literal["lower", "fp32", "follow", "promote"]
"""How torch.autocast runs an op (CPU lists: aten/src/ATen/autocast_mode.cpp, the
`lower_precision_fp` and `fp32` lists, listed in https://pytorch.org/docs/stable/amp.html#cpu-ops-that-can-autocast-to-bfloat16):
`lower` casts its float inputs and weights to the half type and computes in it (convolutions,
linear, matmul, SDPA, PReLU); `fp32` casts them to float32 (3-d pooling, reflection and
replication padding); `follow` is on neither list and computes in the widest type of its float
inputs, as type promotion does (activations, norms, 2-d pooling, adds, views); `promote` too, its
own fp32 parameters included (an embedding's table, a learned tensor, a parametric activation)."""

PARAMETERS = "parameters"
"""A Saved.extra dtype: the type of the op's parameters as the model holds them (a norm's mean
and rstd: float32 under autocast, where the mixed-type kernels accumulate in the weight's type;
the half type in a model cast to it, as torch 2.14.1 keeps them)."""


@dataclass(frozen=True)
class Saved:
    """What an op keeps for the backward pass in training, as PyTorch's autograd does.

    `inputs`: indices of inputs it keeps; `output`: whether it keeps its output; `extra`: other
    per-example tensors as (elements, dtype), where dtype None means the type the op computes in
    (the activation dtype; under autocast its list's, figures.memory.compute_dtype) and
    PARAMETERS its parameters' type.
    `for_weights`: inputs kept only when the op's own parameters train (torch.nn.Linear's mm
    saves its input for the weight gradient alone); `for_inputs`: inputs kept only when they
    need a gradient themselves (reflection padding's backward reads its input); `for_partners`:
    inputs kept only when another input needs a gradient (a factor of a product, for the other
    factor's gradient: torch.mul keeps `other` if `self` needs a gradient and vice versa).
    """

    inputs: tuple[int, ...] = ()
    output: bool = False
    extra: tuple[tuple[Dim, str | None], ...] = ()
    for_weights: tuple[int, ...] = ()
    for_inputs: tuple[int, ...] = ()
    for_partners: tuple[int, ...] = ()

    def kept_inputs(self, trains: bool, input_grads: tuple[bool, ...]) -> tuple[int, ...]:
        """The inputs kept, given whether the op's parameters train and which inputs need a gradient."""
        return (
            *self.inputs,
            *(self.for_weights if trains else ()),
            *(i for i in self.for_inputs if input_grads[i]),
            *(i for i in self.for_partners if any(g for k, g in enumerate(input_grads) if k != i)),
        )


@dataclass(frozen=True)
class TorchCode:
    """An op written in PyTorch, for `archcalc export --to pytorch`.

    `module`: a constructor expression built once in __init__ (e.g. `nn.Conv2d(3, 64, 7, bias=False)`),
    whose parameters and buffers are named as the op's `parameters`/`buffers` name them, or None
    for an op that is an expression of its inputs alone (torch.cat). `call`: the forward
    expression, a format string of `{m}` (the module, as an attribute of the generated class),
    `{x}` (the inputs, comma-separated) and `{0}`, `{1}`... (each input; always a plain variable
    name, so it may appear twice); a literal brace is doubled. `defines`: source of the classes or
    functions torch lacks that `module` or `call` use, each written once in the file. `functional`:
    the forward as an expression of `{m}`'s parameters (`F.linear({0}, {m}.weight)`), for a layer
    tied to another's weights (`{m}` is then that layer's module); None calls that module itself.
    An op whose one array is named '' (a `parameter`, a `buffer`: its full name is the layer's
    path) has that array itself as `module`, `nn.Parameter(...)` or a tensor, which the generated
    class assigns, or registers as a buffer, under the layer's name.
    """

    module: str | None = None
    call: str = "{m}({x})"
    defines: tuple[str, ...] = ()
    functional: str | None = None


def literal(value: Any) -> str:
    """A number, bool, None or string, or a list or tuple of them, as Python source for
    TorchCode: repr, a float that is not finite as float('inf'), float('nan'), which repr is not."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, (list, tuple)):
        items = ", ".join(literal(v) for v in value)
        return f"[{items}]" if isinstance(value, list) else f"({items}{',' if len(value) == 1 else ''})"
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    raise TypeError(f"{value!r} has no PyTorch form (a symbolic size is exported only with a value)")


NOTHING = Saved()
INPUT = Saved(inputs=(0,))
OUTPUT = Saved(output=True)


class Op(Model):
    """Base of all ops. Subclasses set `kind` (the spec name) and override what differs."""

    model_config: ClassVar[dict[str, Any]] = {"extra": "forbid", "frozen": True}

    kind: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    connectivity: ClassVar[Connectivity | None] = None
    """How learned weights multiply the input (None: no weights do, as in a norm's scale)."""
    normalizes_channels: ClassVar[bool] = False
    """Whether each channel (axis 0) is normalised by its own mean, so a constant added to a
    channel before the op is cancelled (batch norm; Ioffe & Szegedy 2015, §3.2)."""
    init: ClassVar[dict[str, Init]] = {}
    """How each parameter and buffer starts in a seeded run, by name; one not named is a `shift`."""
    per_example: ClassVar[bool] = True
    """Whether the output differs per example when an input does: False for a tensor the whole
    batch shares (a class token, positions 0..S-1), which costs no memory per example."""
    index_bound: ClassVar[str | None] = None
    """The field bounding the integer indices the op reads (an embedding's `vocab`), so a seeded
    run draws token ids in range; None for an op that reads no indices."""
    known_costs: ClassVar[bool] = True
    """Whether macs, elementwise_flops and saved_for_backward are the op's real costs: False for
    an `opaque` layer, whose costs archcalc cannot know (reports name it instead of counting 0)."""
    autocast: ClassVar[Autocast] = "follow"
    """How torch.autocast runs the op: the type it computes in and casts the inputs it keeps to."""
    attends: ClassVar[bool] = False
    """Whether the op computes attention, so what it keeps for backward depends on the attention
    kernel (`saved_for_backward_with`, `--attention`)."""
    caches: ClassVar[bool] = False
    """Whether the output is a key/value cache that generation keeps across decoding steps (Hugging
    Face's DynamicCache: one [S, kv_heads*head_dim] tensor per layer for keys, one for values),
    so `--kv-cache` holds it to the end of a forward and sizes it at the context S."""
    looks_up: ClassVar[bool] = False
    """Whether the op's parameters are a table read by index (an embedding): scaling laws leave
    them out of the parameter count N (Kaplan et al. 2020, section 2.1)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            for name in (cls.kind, *cls.aliases):
                REGISTRY[name] = cls

    def output_shape(self, inputs: list[Shape]) -> Shape:
        """The output shape (batch axis excluded) for the given input shapes."""
        return inputs[0]

    def must_match(self, inputs: list[Shape]) -> list[tuple[Dim, Dim]]:
        """Pairs of input sizes the op needs equal (a merge's aligned axes). output_shape refuses
        a pair that is never equal; a symbolic pair equal for some inputs only is a constraint
        on the input, which the shape pass collects (shapes.merge_constraints)."""
        return []

    def parameters(self, inputs: list[Shape]) -> dict[str, Shape]:
        """Learnable arrays by name, shaped as PyTorch shapes them (conv weight: out, in/g, *k)."""
        return {}

    def buffers(self, inputs: list[Shape]) -> dict[str, Shape]:
        """Non-learnable state by name (batch norm's running statistics)."""
        return {}

    @property
    def window(self) -> SlidingWindow | None:
        """The kernel the op slides over its input, one output per position (a convolution, a
        pool), or None (a transposed convolution scatters each input over a window instead)."""
        return None

    @property
    def joins_along(self) -> int | None:
        """The axis a concatenation joins its inputs along, as torch.cat counts it (0 the batch,
        1 the channels, negative from the end), or None for an op that concatenates nothing."""
        return None

    def output_dtype(self, inputs: list[str]) -> str | None:
        """The output's element type given the inputs', or None for the type the op computes in
        (figures.memory.compute_dtype): a view or an in-place op keeps its input's (token ids
        stay int64 through a reshape)."""
        return inputs[0] if self.inplace_output and inputs else None

    @property
    def inplace_output(self) -> bool:
        """True when the output is input 0's storage (inplace=True, or a view): no new tensor."""
        return False

    def macs(self, inputs: list[Shape], output: Shape) -> Dim:
        """Multiply-accumulates of a matrix product or convolution per example (bias excluded)."""
        return 0

    def elementwise_flops(self, inputs: list[Shape], output: Shape) -> Dim:
        """Other arithmetic per example (activations, norms, pooling, adds, biases), counted apart."""
        return 0

    def gradient_macs(self, inputs: list[Shape], output: Shape, trains: bool, input_grads: tuple[bool, ...]) -> Dim:
        """Multiply-accumulates of the backward pass: a product with learned weights computes its
        input's gradient (when the input needs one) and its weights' (when they train), each as
        many as the forward, as torch.utils.flop_counter counts convolution_backward and mm."""
        return self.macs(inputs, output) * ((1 if trains else 0) + (1 if any(input_grads) else 0))

    def receptive_step(self, inputs: list[Shape]) -> ReceptiveStep:
        """How this op changes the receptive field: a window, GLOBAL, or None (element-wise)."""
        return None

    def receptive_reads(self, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
        """Per input, the positions along spatial axis `axis` (0: the first after the channels)
        that output position `unit` reads, exactly (padding mapped back to the positions it
        copies; zero padding reads nothing). Derived from `receptive_step` unless overridden."""
        return step_reads(self.receptive_step(inputs), inputs, axis, unit)

    def receptive_varies(self, inputs: list[Shape]) -> str:
        """Why no window translated by a whole stride describes every output's reads ('' when
        one does): then the field depends on the unit's position and is computed per unit."""
        if self.receptive_step(inputs) == UNDEFINED:
            return f"{self.kind} has no receptive-field rule; each unit is taken to read its whole input (an upper bound)"
        return ""

    def saved_for_backward(self, inputs: list[Shape], output: Shape) -> Saved:
        """Tensors autograd keeps for backward (per example) when the op trains."""
        return NOTHING

    @property
    def tensor_parallel(self) -> TensorParallel | None:
        """How tensor parallelism splits the op (TensorParallel); None: every device holds it whole."""
        return None

    def split_parameters(self, inputs: list[Shape]) -> Dim:
        """Parameters split t ways under tensor parallelism (the rest are whole on every device)."""
        return 0

    def saved_for_backward_with(self, inputs: list[Shape], output: Shape, attention: AttentionKernel) -> Saved:
        """saved_for_backward when attention runs in the kernel `attention`: the memory pass asks
        this; only an op that `attends` keeps something that depends on it."""
        return self.saved_for_backward(inputs, output)

    def forward_workspace(self, inputs: list[Shape], output: Shape) -> Dim:
        """Elements per example `forward` allocates besides its output, at most: by default as
        many as its inputs (a padded copy or an element-wise temporary) and its output again."""
        return sum((elements(s) for s in inputs), 0) + elements(output)

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        """NumPy inference forward on batched arrays (batch on axis 0), weights shaped as PyTorch."""
        raise NotImplementedError(f"{self.kind} has no NumPy forward")

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """How the op is written in PyTorch for the input shapes given (batch excluded), for
        `archcalc export`: its forward equals `forward` with the same weights."""
        raise NotImplementedError(f"{self.kind} has no PyTorch form")

    def describe(self) -> str:
        """A short human summary of the op's settings for tables, e.g. `3x3 s2 p1`."""
        return ""


def step_reads(step: ReceptiveStep, inputs: list[Shape], axis: int, unit: int) -> list[Sequence[int]]:
    """The positions a receptive step reads: the window's span clipped to the input (zero
    padding), the unit itself (element-wise; position 0 of a broadcast size-1 axis), or every
    position (GLOBAL, and UNDEFINED as an upper bound). An input of another rank has no
    positions on this axis (its field, global or none, is taken whole by the pass); an op with
    no inputs (a `parameter`) reads none."""
    rank = max((len(s) for s in inputs), default=0)
    reads: list[Sequence[int]] = []
    for shape in inputs:
        n = shape[axis + 1] if len(shape) == rank else 0
        if n == 0:
            reads.append(())
        elif step is None:
            reads.append((0,) if n == 1 else (unit,))
        elif isinstance(step, Window):
            start = unit * step.strides[axis] - step.before[axis]
            reads.append(range(max(start, 0), min(start + step.spans[axis], n)))
        else:
            reads.append(range(n))
    return reads


def whole_axes_reads(inputs: list[Shape], axis: int, unit: int, whole: Sequence[int]) -> list[Sequence[int]]:
    """Reads of an op that mixes every position of the spatial axes `whole` (a softmax or a
    norm over them, a linear layer over the last axis) and acts element-wise on the others."""
    return step_reads(GLOBAL if axis in whole else None, inputs, axis, unit)


def expect_rank(op: Op, shape: Shape, rank: int, layout: str) -> None:
    """Raise a ShapeError unless `shape` has `rank` axes (batch excluded)."""
    if len(shape) != rank:
        raise ShapeError(
            f"{op.kind} expects an input of shape [{layout}] (batch excluded), "
            f"got {list(shape)}"
        )


def spatial_tuple(value: int | list[int], dims: int, field: str) -> tuple[int, ...]:
    """An int or per-axis list as a tuple of `dims` values; a wrong length is a ValueError."""
    if isinstance(value, int):
        return (value,) * dims
    if len(value) != dims:
        raise ValueError(f"{field} needs 1 or {dims} values, got {len(value)}")
    return tuple(value)


def elements(shape: Shape) -> Dim:
    """Number of elements of a (per-example) shape."""
    try:
        return _elements(shape)
    except TypeError:  # a list, which cannot key the cache
        return product(list(shape))


@functools.lru_cache(maxsize=4096)
def _elements(shape: Shape) -> Dim:
    """elements() of a tuple, remembered: every pass asks it of every layer's shapes, which repeat."""
    return product(list(shape))
