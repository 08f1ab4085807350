"""Each op's PyTorch form (Op.torch_code, what `archcalc export --to pytorch` writes) computes what
its NumPy forward computes, with the executor's seeded weights loaded by the op's own array names:
activations, attention, the key/value cache, tables (embedding, parameter, buffer, index), matmul,
MViT's pieces, sequence ids, reductions, resampling, roll, rotary embedding and Swin's shift mask.

The torch side runs in float64 where torch is installed (CI has none: those tests skip); that
every op of these families has a PyTorch form is checked without torch.
"""

from __future__ import annotations

import ast
import zlib
from typing import Any

import numpy as np
import pytest
from torch_code import run

from archcalc.ops import REGISTRY
from archcalc.ops.base import TorchCode
from archcalc.ops.conv import Conv3d

FAMILIES = {
    f"archcalc.ops.{name}"
    for name in (
        "activation", "attention", "cache", "embedding", "matmul", "multiscale", "positions", "reduce",
        "resample", "roll", "rotary", "shifted_windows",
    )
}

Shapes = list[tuple[int, ...]]  # batched input shapes


def case(kind: str, *shapes: tuple[int, ...], ids: tuple[int, ...] = (), **fields: Any) -> Any:
    """(kind, fields, batched input shapes, which inputs are integer ids) with a readable id."""
    settings = ",".join(f"{k}={v}" for k, v in fields.items()).replace(" ", "")
    inputs = "*".join(str(s).replace(" ", "") for s in shapes)
    return pytest.param(kind, fields, list(shapes), ids, id=f"{kind}[{settings}]{inputs}")


ACTIVATION = [
    *(
        case(kind, shape, **fields)
        for kind, fields in [
            ("relu", {}), ("relu", {"inplace": True}), ("rectlin", {}), ("relu6", {"inplace": True}),
            ("leaky_relu", {"negative_slope": 0.2}), ("leaky_relu", {"inplace": True}),
            ("elu", {"alpha": 0.5}), ("elu", {"inplace": True}),
            ("softplus", {}), ("softplus", {"beta": 2.0, "threshold": 10.0}), ("softplus", {"inplace": True}),
            ("softplus", {"threshold": float("inf")}),  # never linear: written float('inf')
            ("sigmoid", {}), ("sigmoid", {"inplace": True}), ("tanh", {}), ("tanh", {"inplace": True}),
            ("silu", {}), ("swish", {"inplace": True}), ("mish", {}), ("mish", {"inplace": True}),
            ("gelu", {}), ("gelu", {"approximate": "tanh"}), ("gelu", {"inplace": True}),
            ("gelu", {"approximate": "tanh", "implementation": "hf"}),  # GPT-2's gelu_new
            ("gelu", {"implementation": "hf"}),  # transformers' "gelu": F.gelu
            ("hardswish", {}), ("hardswish", {"inplace": True}),
            ("hardsigmoid", {}), ("hardsigmoid", {"inplace": True}),
            ("scale", {"factor": 0.125}), ("scale", {"factor": -3.0, "inplace": True}),
            ("exp", {}), ("exp", {"inplace": True}),
            ("clamp", {"max": 0.5}), ("clamp", {"min": -0.5, "max": 1.0, "inplace": True}), ("clamp", {"min": 0.0}),
            ("acon_c", {}), ("acon_c", {"beta_init": 0.5, "inplace": True}),
        ]
        for shape in ((2, 3, 5), (1, 2, 3, 4))
    ),
    case("softmax", (2, 3, 5)),
    case("softmax", (2, 3, 4, 5), dim=1),
    case("softmax", (2, 3, 4, 5), dim=-2),
    case("softmax", (3, 7), dim=1, inplace=True),
    case("acon_c", (3, 7)),
    case("meta_acon", (2, 20, 3, 4)),  # hidden max(16, 20 // 16) = 16
    case("meta_acon", (2, 20, 3, 4), implementation="yolov5"),
    case("meta_acon", (1, 40, 2, 3), r=4),  # hidden max(4, 10) = 10
]

# q [S, heads*D], k and v [S_kv, kv_heads*D]; grouped-query; a bias per head or broadcast over them
ATTENTION = [
    case("attention", (2, 4, 6), (2, 5, 6), (2, 5, 6), heads=2),
    case("sdpa", (2, 4, 6), (2, 5, 6), (2, 5, 6), heads=2, causal=True),
    case("attention", (2, 6, 4), (2, 3, 4), (2, 3, 4), heads=1, causal=True),  # more queries than keys
    case("attention", (2, 4, 12), (2, 5, 6), (2, 5, 6), heads=4, kv_heads=2),
    case("attention", (2, 4, 12), (2, 4, 3), (2, 4, 3), heads=4, kv_heads=1, causal=True),
    case("attention", (2, 4, 6), (2, 5, 6), (2, 5, 6), (2, 2, 4, 5), heads=2, scale=0.5),
    case("attention", (2, 4, 6), (2, 5, 6), (2, 5, 6), (2, 4, 5), heads=2),
    case("attention", (2, 4, 6), (2, 5, 6), (2, 5, 6), (1, 5), heads=2),  # one bias the batch shares
    case("attention", (2, 4, 6), (2, 4, 6), (2, 4, 6), (2, 1, 4, 4), heads=2, causal=True),
    case("attention", (1, 3, 4), (1, 3, 4), (1, 3, 4), heads=2, dropout=0.1),  # inference: no dropout
    case("multihead_attention", (2, 5, 12), heads=3),
    case("multihead_attention", (2, 4, 8), heads=2, bias=False),
    case("multihead_attention", (1, 3, 8), heads=4, dropout=0.1),
    case("kv_cache", (2, 5, 6)),
    case("matmul", (2, 3, 4), (2, 4, 5)),
    case("matmul", (2, 2, 3, 4), (2, 2, 4, 1)),
    case("matmul", (2, 1, 3, 4), (2, 3, 4, 2)),  # a leading 1 broadcast
    case("matmul", (2, 3, 1, 2, 4), (1, 1, 2, 4, 3)),  # broadcast on both sides and over the batch
]

TABLES = [
    case("embedding", (2, 5), ids=(0,), vocab=7, dim=3),
    case("embedding", (1, 2, 3), ids=(0,), vocab=4, dim=2, padding_idx=0),
    case("parameter", shape=[1, 4]),
    case("parameter", shape=[3, 2, 2]),
    case("parameter", shape=[9, 2], batch_axis=False),  # Swin's bias table [(2W-1)^2, heads]
    case("buffer", shape=[2, 3]),
    case("buffer", shape=[16], dtype="int64", batch_axis=False),  # Swin's relative position index
    case("index", (1, 9, 2), (1, 16), ids=(1,)),  # a shared table read by shared ids
    case("index", (1, 9, 2), (2, 3, 4), ids=(1,)),  # a shared table read per example
    case("index", (2, 5, 3), (2, 2, 4), ids=(1,)),  # per example
    case("sequence_ids", (2, 5), ids=(0,)),
    case("sequence_ids", (3, 4, 6), values="zeros", buffer=9),
    case("sequence_ids", (2, 7), ids=(0,), buffer=9),
    case("sequence_ids", (2, 3), ids=(0,), max_length=8),
    case("rotary_embedding", (1, 5), ids=(0,), head_dim=4),
    case("rotary_embedding", (2, 3), ids=(0,), head_dim=6, theta=500.0),
    case("rotary", (2, 3, 8), (1, 2, 3, 4)),
    case("rotary", (1, 4, 6), (1, 2, 4, 6)),
    case("rotary", (2, 4, 6), (2, 2, 4, 2)),
]

MULTISCALE = [
    case("shift_mask", size=[8, 8], window=[4, 4], shift=[2, 2]),
    case("shift_mask", size=[12, 8], window=[4, 4], shift=[2, 0]),
    case("shift_mask", size=[4, 6, 6], window=[2, 3, 3], shift=[1, 1, 1]),  # video Swin
    case("shift_mask", size=[6], window=[3], shift=[1]),
    case("relative_distance", q=4, k=4),
    case("relative_distance", q=8, k=2),  # keys pooled 4 times more: MViTv2's first block
    case("relative_distance", q=2, k=4),
    case("relative_distance", q=3, k=2),  # ratios 1 and 1.5
    case("relative_distance", q=7, k=3),
    case("head_conv3d", (2, 3, 2, 3, 4, 4), out=2, kernel=3, stride=[1, 2, 2], padding=1, groups=2, bias=False),  # MViT's pool
    case("head_conv3d", (1, 2, 2, 2, 3, 3), out=4, kernel=[1, 2, 2]),
]

RESHAPING = [
    case("mean", (2, 5, 3), dim=1),  # over the tokens of [S, D]
    case("mean", (2, 3, 4, 5), dim=[-1, -2], keepdim=True),  # ConvNeXt's and Swin's pooling
    case("mean", (2, 3, 4, 5), dim=[3, 1]),
    case("sum", (2, 3, 4), dim=-1, keepdim=True),
    case("sum", (2, 3, 4, 2), dim=[1, 2]),
    case("roll", (2, 3, 5, 4), shifts=[-2, -2], dims=[2, 3]),  # Swin's shift by -window // 2
    case("roll", (2, 7, 3), shifts=9, dims=-2),  # more than the size: wraps
    case("roll", (2, 6, 4), shifts=[1, 2], dims=[1, 1]),  # one axis twice
    case("interpolate", (2, 2, 5), scale_factor=2),
    case("interpolate", (2, 2, 6), scale_factor=2.1),
    case("interpolate", (1, 2, 6, 5), scale_factor=2.1),
    case("interpolate", (1, 2, 3, 5), scale_factor=1.2),
    case("interpolate", (1, 2, 3, 4, 5), size=[5, 3, 7]),
    case("interpolate", (1, 2, 7, 5), scale_factor=[0.5, 1.7], mode="nearest-exact"),
    case("interpolate", (2, 2, 7), size=4, mode="nearest-exact"),
    case("interpolate", (2, 2, 5), scale_factor=2.5, mode="linear"),
    case("interpolate", (2, 2, 5), size=9, mode="linear", align_corners=True),
    case("interpolate", (1, 2, 7), scale_factor=0.6, mode="linear", recompute_scale_factor=True),
    case("interpolate", (1, 2, 4, 5), scale_factor=2, mode="bilinear"),
    case("interpolate", (1, 2, 4, 5), size=[7, 3], mode="bilinear", align_corners=False),
    case("interpolate", (2, 1, 6, 5), scale_factor=[0.7, 1.3], mode="bilinear"),
    case("interpolate", (1, 2, 5, 4), size=[3, 7], mode="bicubic", align_corners=True),
    case("interpolate", (1, 2, 5, 6), scale_factor=1.3, mode="bicubic", recompute_scale_factor=True),
    case("interpolate", (1, 2, 3, 4, 3), scale_factor=2, mode="trilinear"),
    case("interpolate", (2, 2, 7), size=3, mode="area"),
    case("interpolate", (1, 2, 6, 5), scale_factor=0.5, mode="area"),
    case("upsample", (1, 2, 3, 4), scale_factor=2),  # the alias, as nn.Upsample
    case("pixel_shuffle", (2, 8, 3, 2), upscale_factor=2),
    case("pixel_shuffle", (1, 2, 9, 2, 2), upscale_factor=3),  # a leading axis
    case("pixel_unshuffle", (2, 2, 4, 6), downscale_factor=2),
    case("pixel_unshuffle", (1, 1, 3, 6), downscale_factor=3),
]

CASES = ACTIVATION + ATTENTION + TABLES + MULTISCALE + RESHAPING


def arrays(kind: str, fields: dict[str, Any], shapes: Shapes, ids: tuple[int, ...]) -> list[Any]:
    """Seeded float64 inputs, three times a normal draw (activations' edges and tails), and int64
    ids below the bound each integer input has: the op's table, an index's table rows."""
    op = REGISTRY[kind](**fields)
    rng = np.random.default_rng(zlib.crc32(f"{kind}{fields}{shapes}".encode()))
    xs = [3 * rng.standard_normal(shape) for shape in shapes]
    for i in ids:
        bound = getattr(op, op.index_bound) if op.index_bound else shapes[0][1] if kind == "index" else 64
        xs[i] = rng.integers(0, bound, shapes[i])
    return xs


def tolerance(kind: str, fields: dict[str, Any]) -> float:
    """archcalc's exact GELU uses an erf approximation (Abramowitz & Stegun, error < 1.5e-7); its
    rotary table is float32 (the activations') from int64 positions, torch's here float64."""
    if kind == "rotary_embedding" or (kind == "gelu" and fields.get("approximate", "none") == "none"):
        return 1e-6
    return 1e-10


def torch_form(kind: str, fields: dict[str, Any], shapes: Shapes) -> TorchCode:
    """The op's TorchCode for the per-example shapes; head_conv3d wraps conv3d's, which the
    convolutions' family provides: skipped until it does."""
    op = REGISTRY[kind](**fields)
    if kind == "head_conv3d":
        try:
            Conv3d(**fields).torch_code([shapes[0][2:]])
        except NotImplementedError:
            pytest.skip("conv3d has no PyTorch form yet (the convolutions' family writes it)")
    return op.torch_code([s[1:] for s in shapes])


def test_every_op_of_these_families_has_cases() -> None:
    ours = {cls.kind for cls in REGISTRY.values() if cls.__module__ in FAMILIES}
    assert ours - {REGISTRY[p.values[0]].kind for p in CASES} == set()


@pytest.mark.parametrize("kind, fields, shapes, ids", CASES)
def test_every_op_has_a_torch_form(kind: str, fields: dict[str, Any], shapes: Shapes, ids: tuple[int, ...]) -> None:
    """A TorchCode whose module and call are Python expressions (the call's inputs named x0, x1,
    ...) and whose defines are Python statements, each defining one class or function."""
    code = torch_form(kind, fields, shapes)
    assert isinstance(code, TorchCode) and (code.module is not None or "{m}" not in code.call)
    names = [f"x{i}" for i in range(len(shapes))]
    ast.parse(code.call.format(*names, m="self.layer", x=", ".join(names)), mode="eval")
    if code.module is not None:
        ast.parse(code.module, mode="eval")
    for source in code.defines:
        (definition,) = ast.parse(source).body
        assert isinstance(definition, (ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(definition)


@pytest.mark.parametrize("kind, fields, shapes, ids", CASES)
def test_torch_form_computes_the_forward(kind: str, fields: dict[str, Any], shapes: Shapes, ids: tuple[int, ...]) -> None:
    torch = pytest.importorskip("torch")
    op = REGISTRY[kind](**fields)
    torch_form(kind, fields, shapes)
    ran = run(torch, op, kind, fields, arrays(kind, fields, shapes, ids))
    got = ran.output.detach().numpy()
    assert got.shape == ran.expected.shape and got.dtype.kind == ran.expected.dtype.kind
    np.testing.assert_allclose(got, ran.expected, rtol=1e-10, atol=tolerance(kind, fields))


INPLACE = [p for p in ACTIVATION if p.values[1].get("inplace") and p.values[2][0] == (2, 3, 5)]
HAS_NO_INPLACE_FORM = {"softplus", "gelu", "softmax", "acon_c"}


@pytest.mark.parametrize("kind, fields, shapes, ids", INPLACE)
def test_inplace_is_in_place_where_torch_has_the_form(kind: str, fields: dict[str, Any], shapes: Shapes, ids: tuple[int, ...]) -> None:
    """inplace=True: the output is the input's storage (nn.ReLU(inplace=True), x.sigmoid_()), but
    for the four activations PyTorch has no in-place form of, written out of place."""
    torch = pytest.importorskip("torch")
    ran = run(torch, REGISTRY[kind](**fields), kind, fields, arrays(kind, fields, shapes, ids))
    shares = ran.output.data_ptr() == ran.inputs[0].data_ptr()
    assert shares == (REGISTRY[kind].kind not in HAS_NO_INPLACE_FORM)
