"""The attention mask of shifted windows (Liu et al. 2021, Swin, §3.2): a constant the batch shares."""

from __future__ import annotations

from typing import Any

from archcalc.arith import Shape, product
from archcalc.model import Field, model_validator
from archcalc.ops.base import Op, PositiveInt, TorchCode, Whole, literal
from archcalc.ops.window import np

_SHIFT_MASK = '''\
def shifted_window_mask(size, window, shift):
    """Swin's mask of shifted windows [1, windows, 1, N, N]: -100 between two positions of a window that
    come from different regions of the shifted map, else 0 (torchvision's labels, later regions overwriting)."""
    labels = torch.zeros(size)
    for count in range(3 ** len(size)):
        region = [count // 3 ** (len(size) - 1 - axis) % 3 for axis in range(len(size))]
        bounds = [((0, -w), (-w, -s), (-s, None))[r] for r, w, s in zip(region, window, shift)]
        labels[tuple(slice(start, end) for start, end in bounds)] = count
    split = [d for n, w in zip(size, window) for d in (n // w, w)]
    order = [*range(0, 2 * len(size), 2), *range(1, 2 * len(size), 2)]
    windows = labels.reshape(split).permute(order).flatten(len(size)).flatten(0, len(size) - 1)
    return torch.where(windows[:, None, :] != windows[:, :, None], -100.0, 0.0)[None, :, None]
'''


class ShiftMask(Op):
    """After a cyclic shift by `shift`, a window of a `size` map (padded to whole windows) can
    hold positions that were not neighbours: scores between two of them get -100, the others 0.
    No input; [windows, 1, N, N] with N the window's positions, broadcast over heads and the
    batch by an add (torchvision's shifted_window_attention and video Swin's
    _compute_attention_mask_3d build it at every call: not a parameter, not a buffer)."""

    kind = "shift_mask"
    min_inputs = 0
    max_inputs = 0
    per_example = False

    size: list[PositiveInt] = Field(min_length=1, max_length=3)
    window: list[PositiveInt] = Field(min_length=1, max_length=3)
    shift: list[Whole] = Field(min_length=1, max_length=3)

    @model_validator(mode="after")
    def _aligned(self) -> ShiftMask:
        if not len(self.size) == len(self.window) == len(self.shift):
            raise ValueError(f"size {self.size}, window {self.window} and shift {self.shift} need one value per axis each")
        for n, w, s in zip(self.size, self.window, self.shift):
            if n % w or not 0 <= s < w:
                raise ValueError(
                    f"each size must be a whole number of windows and each shift in [0, window): got size "
                    f"{self.size}, window {self.window}, shift {self.shift} (pad the map to whole windows first)"
                )
        return self

    def output_shape(self, inputs: list[Shape]) -> Shape:
        windows = product([n // w for n, w in zip(self.size, self.window)])
        n = product(list(self.window))
        return (windows, 1, n, n)

    def forward_workspace(self, inputs: list[Shape], output: Shape) -> int:
        return product(list(self.size))

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        """Region labels as torchvision assigns them (later slices overwrite earlier ones), the
        labels of each window's positions, and -100 where two labels differ."""
        labels = np.zeros(self.size, dtype=np.float32)
        for count, region in enumerate(np.ndindex(*(3,) * len(self.size))):
            bounds = [((0, -w), (-w, -s), (-s, None))[r] for r, w, s in zip(region, self.window, self.shift)]
            labels[tuple(slice(a, b) for a, b in bounds)] = count
        split = [d for n, w in zip(self.size, self.window) for d in (n // w, w)]
        dims = len(self.size)
        order = [*range(0, 2 * dims, 2), *range(1, 2 * dims, 2)]
        windows = labels.reshape(split).transpose(order).reshape(-1, product(list(self.window)))
        diff = windows[:, None, :] - windows[:, :, None]
        mask = np.where(diff != 0, np.float32(-100.0), np.float32(0.0))
        return mask[None, :, None]

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """shifted_window_mask (defined in the file), built at every call as torchvision builds it."""
        sizes = ", ".join(literal(tuple(v)) for v in (self.size, self.window, self.shift))
        return TorchCode(call=f"shifted_window_mask({sizes})", defines=(_SHIFT_MASK,))

    def describe(self) -> str:
        return f"{'x'.join(map(str, self.window))} shift {'x'.join(map(str, self.shift))}"
