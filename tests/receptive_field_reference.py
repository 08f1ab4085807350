"""Receptive fields measured by PyTorch's gradients, for tests with and without torch.

Each network is written twice: as a spec and as torch modules with positive weights, max pooling
replaced by average pooling (the same windows, and a gradient for every element). The gradient of
one output unit, summed over its channels, is nonzero exactly on the input elements it depends
on; its bounding box per axis is that unit's receptive field as torch measures it.

`python tests/receptive_field_reference.py` (torch needed) rewrites receptive_field_torch.json,
which CI, without torch, compares archcalc against. Nothing here imports torch at load time.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

RECORDED = Path(__file__).with_name("receptive_field_torch.json")

UNET = """
name: unet
input: [1, 16, 16]
layers:
  - {name: e1, op: conv2d, out: 2, kernel: 3, padding: 1}
  - {name: r1, op: relu}
  - {name: d1, op: max_pool2d, kernel: 2}
  - {name: e2, op: conv2d, out: 2, kernel: 3, padding: 1}
  - {name: d2, op: max_pool2d, kernel: 2}
  - {name: mid, op: conv2d, out: 2, kernel: 3, padding: 1}
  - {name: u2, op: conv_transpose2d, out: 2, kernel: 2, stride: 2}
  - {name: c2, op: concat, from: [u2, e2]}
  - {name: dec2, op: conv2d, out: 2, kernel: 3, padding: 1}
  - {name: u1, op: conv_transpose2d, out: 2, kernel: 2, stride: 2}
  - {name: c1, op: concat, from: [u1, r1]}
  - {name: dec1, op: conv2d, out: 2, kernel: 3, padding: 1}
  - {name: head, op: conv2d, out: 2, kernel: 1}
"""

PADDED_1D = """
name: padded
input: [2, 23]
layers:
  - {name: c1, op: conv1d, out: 3, kernel: 3, padding: 1, padding_mode: circular}
  - {name: c2, op: conv1d, out: 3, kernel: 3, dilation: 2, padding: [[3, 1]], padding_mode: reflect}
  - {name: p, op: avg_pool1d, kernel: 3, stride: 2, padding: 1, ceil_mode: true}
  - {name: a, op: adaptive_avg_pool1d, output: 7}
  - {name: up, op: conv_transpose1d, out: 3, kernel: 3, stride: 2, padding: 1, output_padding: 1}
  - {name: skip, op: adaptive_max_pool1d, output: 14, from: c1}
  - {name: cat, op: concat, from: [up, skip]}
  - {name: head, op: conv1d, out: 2, kernel: 1}
"""


UNET_BILINEAR = """
name: unet_bilinear
input: [1, 16, 16]
layers:
  - {name: e1, op: conv2d, out: 2, kernel: 3, padding: 1}
  - {name: r1, op: relu}
  - {name: d1, op: max_pool2d, kernel: 2}
  - {name: e2, op: conv2d, out: 2, kernel: 3, padding: 1}
  - {name: d2, op: max_pool2d, kernel: 2}
  - {name: mid, op: conv2d, out: 2, kernel: 3, padding: 1}
  - {name: u2, op: upsample, scale_factor: 2, mode: bilinear, align_corners: true}
  - {name: c2, op: concat, from: [u2, e2]}
  - {name: dec2, op: conv2d, out: 2, kernel: 3, padding: 1}
  - {name: u1, op: upsample, scale_factor: 2, mode: bilinear, align_corners: true}
  - {name: c1, op: concat, from: [u1, r1]}
  - {name: dec1, op: conv2d, out: 2, kernel: 3, padding: 1}
  - {name: head, op: conv2d, out: 2, kernel: 1}
"""

RESAMPLE_2D = """
name: resample
input: [2, 9, 10]
layers:
  - {name: p, op: pad, padding: [[2, 1], [1, 3]], mode: reflect}
  - {name: c1, op: conv2d, out: 4, kernel: 3}
  - {name: down, op: interpolate, size: [5, 5], mode: nearest-exact}
  - {name: up, op: upsample, scale_factor: 2, mode: bicubic}
  - {name: c2, op: conv2d, out: 4, kernel: 3, padding: 1}
  - {name: shuffle, op: pixel_shuffle, upscale_factor: 2}
  - {name: area, op: interpolate, size: [7, 9], mode: area}
  - {name: wrap, op: pad, padding: [[1, 1], [2, 0]], mode: circular}
  - {name: head, op: conv2d, out: 2, kernel: 1}
"""

def _positive(*modules: Any) -> None:
    import torch

    with torch.no_grad():
        for module in modules:
            for p in module.parameters():
                p.uniform_(0.5, 1.5)
            module.double()


def torch_unet() -> Callable[[Any], Any]:
    """UNET in torch: the forward of its head."""
    import torch
    from torch import nn

    e1, e2, mid = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1)
    u2, dec2, u1 = nn.ConvTranspose2d(2, 2, 2, stride=2), nn.Conv2d(4, 2, 3, padding=1), nn.ConvTranspose2d(2, 2, 2, stride=2)
    dec1, head = nn.Conv2d(4, 2, 3, padding=1), nn.Conv2d(2, 2, 1)
    _positive(e1, e2, mid, u2, dec2, u1, dec1, head)

    def forward(x: Any) -> Any:
        r1 = torch.relu(e1(x))
        s2 = e2(nn.functional.avg_pool2d(r1, 2))
        d2 = dec2(torch.cat([u2(mid(nn.functional.avg_pool2d(s2, 2))), s2], 1))
        return head(dec1(torch.cat([u1(d2), r1], 1)))

    return forward


def torch_padded_1d() -> Callable[[Any], Any]:
    """PADDED_1D in torch: circular and reflect padding (F.pad), ceil mode, adaptive pools."""
    import torch
    from torch import nn

    c1 = nn.Conv1d(2, 3, 3, padding=1, padding_mode="circular")
    c2 = nn.Conv1d(3, 3, 3, dilation=2)
    up, head = nn.ConvTranspose1d(3, 3, 3, stride=2, padding=1, output_padding=1), nn.Conv1d(6, 2, 1)
    _positive(c1, c2, up, head)

    def forward(x: Any) -> Any:
        h1 = c1(x)
        h2 = c2(nn.functional.pad(h1, (3, 1), mode="reflect"))
        h = nn.functional.adaptive_avg_pool1d(nn.functional.avg_pool1d(h2, 3, 2, 1, ceil_mode=True), 7)
        skip = nn.functional.adaptive_avg_pool1d(h1, 14)  # max pooling's windows, every element's gradient
        return head(torch.cat([up(h), skip], 1))

    return forward


def torch_unet_bilinear() -> Callable[[Any], Any]:
    """UNET_BILINEAR in torch: bilinear up-sampling (align_corners, as the common U-Net code)."""
    import torch
    from torch import nn

    e1, e2, mid = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1)
    dec2, dec1, head = nn.Conv2d(4, 2, 3, padding=1), nn.Conv2d(4, 2, 3, padding=1), nn.Conv2d(2, 2, 1)
    up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
    _positive(e1, e2, mid, dec2, dec1, head)

    def forward(x: Any) -> Any:
        r1 = torch.relu(e1(x))
        s2 = e2(nn.functional.avg_pool2d(r1, 2))
        d2 = dec2(torch.cat([up(mid(nn.functional.avg_pool2d(s2, 2))), s2], 1))
        return head(dec1(torch.cat([up(d2), r1], 1)))

    return forward


def torch_resample() -> Callable[[Any], Any]:
    """RESAMPLE_2D in torch: F.pad reflect/circular, nearest-exact, bicubic, pixel_shuffle, area."""
    from torch import nn

    functional = nn.functional
    c1, c2, head = nn.Conv2d(2, 4, 3), nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(1, 2, 1)
    _positive(c1, c2, head)

    def forward(x: Any) -> Any:
        h = c1(functional.pad(x, (1, 3, 2, 1), mode="reflect"))
        h = functional.interpolate(h, size=(5, 5), mode="nearest-exact")
        h = functional.interpolate(h, scale_factor=2, mode="bicubic")
        h = functional.interpolate(functional.pixel_shuffle(c2(h), 2), size=(7, 9), mode="area")
        return head(functional.pad(h, (2, 0, 1, 1), mode="circular"))

    return forward

NETWORKS = {
    "unet": (UNET, torch_unet, (1, 16, 16)),
    "padded_1d": (PADDED_1D, torch_padded_1d, (2, 23)),
    "unet_bilinear": (UNET_BILINEAR, torch_unet_bilinear, (1, 16, 16)),
    "resample": (RESAMPLE_2D, torch_resample, (2, 9, 10)),
}


def gradient_boxes(forward: Callable[[Any], Any], shape: tuple[int, ...]) -> dict[tuple[int, ...], tuple[Any, ...]]:
    """Per output unit: the bounding box per axis where d(sum over channels)/d(input) != 0."""
    import torch

    x = torch.rand(1, *shape, dtype=torch.float64)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one backward pass per unit of tiny tensors: threads only contend
    try:
        jac = torch.autograd.functional.jacobian(lambda t: forward(t).sum(dim=1)[0], x)
    finally:
        torch.set_num_threads(threads)
    nonzero = jac.abs().sum(dim=(-len(shape) - 1, -len(shape))) > 0  # over the batch and channels
    out_sizes = nonzero.shape[: nonzero.ndim - (len(shape) - 1)]
    boxes = {}
    for u in itertools.product(*(range(m) for m in out_sizes)):
        hot = nonzero[u].nonzero()
        boxes[u] = tuple((int(hot[:, a].min()), int(hot[:, a].max())) for a in range(hot.shape[1])) if len(hot) else (None,) * (len(shape) - 1)
    return boxes


def measure() -> dict[str, dict[tuple[int, ...], tuple[Any, ...]]]:
    """Every network's output units measured by torch now."""
    return {name: gradient_boxes(build(), shape) for name, (_, build, shape) in NETWORKS.items()}


def recorded() -> dict[str, dict[tuple[int, ...], tuple[Any, ...]]]:
    """The measurements in receptive_field_torch.json, as `measure` returns them."""
    data = json.loads(RECORDED.read_text())
    return {
        name: {tuple(u): tuple(None if b is None else tuple(b) for b in box) for u, box in entries["units"]}
        for name, entries in data.items()
    }


def main() -> None:
    import torch

    data = {
        name: {"torch": torch.__version__, "units": [[list(u), [None if b is None else list(b) for b in box]] for u, box in boxes.items()]}
        for name, boxes in measure().items()
    }
    RECORDED.write_text(json.dumps(data, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
