"""Receptive fields against PyTorch's gradient support (skipped without torch).

The same network is written as a spec and as torch modules with positive weights, max pooling
replaced by average pooling (same windows, and a gradient for every element); the gradient of one
output unit, summed over its channels, is nonzero exactly on the input elements it depends on.
Its bounding box per axis must equal archcalc's interval for every unit (`rf --at`), and the
largest and smallest over all units must equal the layer's reported sizes.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from archcalc.receptive_field import ReceptiveField, unit_field  # noqa: E402
from archcalc.shapes import output_shapes  # noqa: E402


def positive(*modules: Any) -> None:
    with torch.no_grad():
        for module in modules:
            for p in module.parameters():
                p.uniform_(0.5, 1.5)


def gradient_boxes(forward: Any, shape: tuple[int, ...]) -> dict[tuple[int, ...], tuple[Any, ...]]:
    """Per output unit: the bounding box per axis where d(sum over channels)/d(input) != 0."""
    x = torch.rand(1, *shape, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda t: forward(t).sum(dim=1)[0], x, vectorize=True)
    nonzero = jac.abs().sum(dim=(-len(shape) - 1, -len(shape))) > 0  # over the batch and channels
    out_sizes = nonzero.shape[: nonzero.ndim - (len(shape) - 1)]
    boxes = {}
    for u in itertools.product(*(range(m) for m in out_sizes)):
        hot = nonzero[u].nonzero()
        boxes[u] = tuple((int(hot[:, a].min()), int(hot[:, a].max())) for a in range(hot.shape[1])) if len(hot) else (None,) * (len(shape) - 1)
    return boxes


def check(result: Any, layer: str, boxes: dict[tuple[int, ...], tuple[Any, ...]]) -> None:
    network = result.network
    shapes = output_shapes(network)
    for u, box in boxes.items():
        assert unit_field(network, shapes, layer, u) == box, (u, box)
    field = next(r.receptive_field for r in result.layers if r.path == layer)
    assert isinstance(field, ReceptiveField) and field.position_dependent
    spans = [[b[a][1] - b[a][0] + 1 for b in boxes.values() if b[a] is not None] for a in range(len(u))]
    assert field.size == tuple(map(max, spans)) and field.smallest == tuple(map(min, spans))


UNET = """
name: unet
input: [1, 24, 24]
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


def test_unet_head_field_is_torch_gradient_support(analyse_text: Any) -> None:
    # Before this rule the head reported the skip path's 5x5 and no warning.
    e1, e2, mid = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1)
    u2, dec2, u1 = nn.ConvTranspose2d(2, 2, 2, stride=2), nn.Conv2d(4, 2, 3, padding=1), nn.ConvTranspose2d(2, 2, 2, stride=2)
    dec1, head = nn.Conv2d(4, 2, 3, padding=1), nn.Conv2d(2, 2, 1)
    modules = (e1, e2, mid, u2, dec2, u1, dec1, head)
    positive(*modules)
    for m in modules:
        m.double()

    def forward(x: Any) -> Any:
        r1 = torch.relu(e1(x))
        s2 = e2(nn.functional.avg_pool2d(r1, 2))
        d2 = dec2(torch.cat([u2(mid(nn.functional.avg_pool2d(s2, 2))), s2], 1))
        return head(dec1(torch.cat([u1(d2), r1], 1)))

    boxes = gradient_boxes(forward, (1, 24, 24))
    result = analyse_text(UNET)
    check(result, "head", boxes)
    # an interior unit sees the deep path's 22x22 or more, far beyond the skip's 5x5
    assert max(b[0][1] - b[0][0] + 1 for b in boxes.values()) >= 22


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


def test_padding_modes_pools_and_upsampling_in_1d(analyse_text: Any) -> None:
    c1 = nn.Conv1d(2, 3, 3, padding=1, padding_mode="circular")
    c2 = nn.Conv1d(3, 3, 3, dilation=2)
    up, head = nn.ConvTranspose1d(3, 3, 3, stride=2, padding=1, output_padding=1), nn.Conv1d(6, 2, 1)
    modules = (c1, c2, up, head)
    positive(*modules)
    for m in modules:
        m.double()

    def forward(x: Any) -> Any:
        h1 = c1(x)
        h2 = c2(nn.functional.pad(h1, (3, 1), mode="reflect"))
        h = nn.functional.adaptive_avg_pool1d(nn.functional.avg_pool1d(h2, 3, 2, 1, ceil_mode=True), 7)
        skip = nn.functional.adaptive_avg_pool1d(h1, 14)  # max pooling's windows, every element's gradient
        return head(torch.cat([up(h), skip], 1))

    boxes = gradient_boxes(forward, (2, 23))
    check(analyse_text(PADDED_1D), "head", boxes)
