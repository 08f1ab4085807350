"""Record what PyTorch measures on the zoo and on fixed hand-built networks, for CI (no torch).

    python tests/record_torch.py              # everything (a few minutes on 2 cores)
    python tests/record_torch.py unet random  # only these entries; the others are kept

Writes tests/data/torch_measurements.json: the torch and torchvision versions, then for every
torchvision spec in specs/ (its builder, build arguments and input) and every hand-built network
(the U-Net of specs/unet.yaml, built in tests/torch_unet.py; seeded random networks from
tests/random_networks.py, their specs included): parameters, buffers, output shape,
torch.utils.flop_counter FLOPs (one example, eval mode) and the bytes autograd saves for
backward per example (train mode, float32, saved_tensors_hooks with each storage counted once),
and for the models in PRECISIONS the same under torch.autocast or cast to bf16 (--precision).
tests/test_torch_measurements.py compares archcalc with it.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from random_networks import random_network, torch_module
from torch_reference import measure_module, saved_bytes_under
from torch_unet import unet_module

DATA = Path(__file__).resolve().parent / "data" / "torch_measurements.json"

IMAGENET = [3, 224, 224]
REGNET_X = ["400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf"]
REGNET_Y = [*REGNET_X, "128gf"]
NO_WEIGHTS = {"weights": None}
SEGMENTATION = {"weights": None, "weights_backbone": None, "num_classes": 21}
# spec name: (torchvision builder, its keyword arguments, input without the batch axis)
TORCHVISION: dict[str, tuple[str, dict[str, Any], list[int]]] = {
    **{name: (f"torchvision.models.{name}", NO_WEIGHTS, IMAGENET) for name in [
        "alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19",
        "vgg19_bn", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
        "resnext50_32x4d", "resnext101_32x8d", "wide_resnet50_2", "densenet121", "densenet161",
        "densenet169", "densenet201", "squeezenet1_0", "squeezenet1_1", "mobilenet_v2",
        "mobilenet_v3_large", "mobilenet_v3_small", "mnasnet0_5", "mnasnet1_0",
        "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
        "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
        "efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l", "shufflenet_v2_x0_5",
        "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "wide_resnet101_2",
        "resnext101_64x4d", "mnasnet0_75", "mnasnet1_3", *(f"regnet_x_{size}" for size in REGNET_X),
        *(f"regnet_y_{size}" for size in REGNET_Y), "convnext_tiny", "convnext_small",
        "convnext_base", "convnext_large", "swin_t", "swin_s", "swin_b", "swin_v2_t", "swin_v2_s",
        "swin_v2_b", "maxvit_t"]},
    # without the auxiliary heads (and their slow truncated-normal initialisation)
    "googlenet": ("torchvision.models.googlenet",
                  {**NO_WEIGHTS, "aux_logits": False, "init_weights": False}, IMAGENET),
    "inception_v3": ("torchvision.models.inception_v3",
                     {**NO_WEIGHTS, "aux_logits": False, "init_weights": False}, [3, 299, 299]),
    **{name: (f"torchvision.models.segmentation.{name}", SEGMENTATION, [3, 520, 520]) for name in [
        "fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101",
        "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"]},
    # [C, T, H, W]: 16-frame clips at the weights' crop
    **{name: (f"torchvision.models.video.{name}", NO_WEIGHTS, [3, 16, 112, 112]) for name in [
        "r3d_18", "mc3_18", "r2plus1d_18"]},
    "s3d": ("torchvision.models.video.s3d", NO_WEIGHTS, [3, 16, 224, 224]),
    # Video Swin at its weights' clip (16 frames of 224x224)
    **{name: (f"torchvision.models.video.{name}", NO_WEIGHTS, [3, 16, 224, 224]) for name in [
        "swin3d_t", "swin3d_s", "swin3d_b"]},
    # MViT at its weights' clip (16 frames of 224x224)
    **{name: (f"torchvision.models.video.{name}", NO_WEIGHTS, [3, 16, 224, 224]) for name in [
        "mvit_v2_s", "mvit_v1_b"]},
}
# Vision transformers: FLOPs with attention decomposed into its matmuls (sdpa_kernel MATH, the
# MHA fast path off), saved bytes with the default kernel; torchvision's builders at 224x224
VIT = ["vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14"]
TORCHVISION.update({name: (f"torchvision.models.{name}", NO_WEIGHTS, IMAGENET) for name in VIT})
# Saved bytes per example from batches 1 and 2, except where batch norm trains on a 1x1 map
# (DeepLabV3's image pooling), which torch refuses at batch 1, and where a matmul's factor is
# copied at every batch but 1 (Swin's last stage and MaxViT's last block, one window: at batch 1
# torch.matmul folds [1, heads, N, d] into [heads, N, d] as a view and bmm keeps the input).
SAVED_BATCHES = {name: (2, 3) for name in [
    "deeplabv3_resnet50", "deeplabv3_resnet101", "deeplabv3_mobilenet_v3_large", "swin_t", "swin_s",
    "swin_b", "swin_v2_t", "swin_v2_s", "swin_v2_b", "swin3d_t", "swin3d_s", "swin3d_b", "maxvit_t", "mvit_v2_s", "mvit_v1_b"]}
# Saved bytes per example under other --precision policies (torch_reference.saved_bytes_under):
# torch.autocast's lists on the CPU, and a model cast to bf16
PRECISIONS: dict[str, tuple[str, ...]] = {
    "resnet50": ("bf16-mixed", "fp16-mixed"), "resnet18": ("bf16-mixed", "bf16"),
    "mobilenet_v2": ("bf16-mixed",),
}
HAND_BUILT: dict[str, tuple[str, list[int]]] = {
    "unet": ("tests/torch_unet.py:unet_module", [1, 256, 256]),
}
RANDOM_SEEDS = range(30)


def _build(torch: Any, dotted: str, kwargs: dict[str, Any]) -> Any:
    import importlib

    module, _, name = dotted.rpartition(".")
    torch.manual_seed(0)
    return getattr(importlib.import_module(module), name)(**kwargs)


def record_torchvision(torch: Any, name: str) -> dict[str, Any]:
    builder, kwargs, shape = TORCHVISION[name]
    model = _build(torch, builder, kwargs)
    batches = SAVED_BATCHES.get(name, (1, 2))
    measured = measure_module(torch, model, tuple(shape), batches, attention=name in VIT)
    del measured["layers"]  # hundreds of layers each: the zoo tests compare them against torch
    if name in PRECISIONS:
        model.train()
        measured["saved_bytes_per_example_by_precision"] = {
            precision: saved_bytes_under(torch, model, tuple(shape), precision, batches) for precision in PRECISIONS[name]}
    counted = {"flops_with": "sdpa_kernel(SDPBackend.MATH), MHA fast path off"} if name in VIT else {}
    return {"builder": builder, "build": kwargs, "input": shape, **counted, **measured}


def record_hand_built(torch: Any, name: str) -> dict[str, Any]:
    builder, shape = HAND_BUILT[name]
    torch.manual_seed(0)
    return {"builder": builder, "input": shape,
            **measure_module(torch, unet_module(torch), tuple(shape))}


def record_random(torch: Any, seed: int) -> dict[str, Any]:
    """The first network drawn from Random(seed) that torch runs (some draws shrink a size
    below 1 or pad beyond what reflect allows)."""
    rng = random.Random(seed)
    while True:
        spec = random_network(rng, f"random-{seed}")
        torch.manual_seed(0)
        try:
            model = torch_module(torch, spec)
            measured = measure_module(torch, model, tuple(spec["input"]), (2, 4))
        except (RuntimeError, ValueError):
            continue
        return {"seed": seed, "spec": spec, **measured}


def record(name: str) -> None:
    """Measure one entry (a spec name, or `random` for the seeded set) into the data file."""
    import torch
    import torchvision

    torch.set_num_threads(1)
    data = json.loads(DATA.read_text()) if DATA.exists() else {}
    data.update({"torch": torch.__version__, "torchvision": torchvision.__version__,
                 "recorded_by": "python tests/record_torch.py"})
    zoo = data.setdefault("zoo", {})
    if name == "random":
        data["random_networks"] = [record_random(torch, seed) for seed in RANDOM_SEEDS]
    elif name in HAND_BUILT:
        zoo[name] = record_hand_built(torch, name)
    else:
        zoo[name] = record_torchvision(torch, name)
    data["zoo"] = dict(sorted(zoo.items()))
    DATA.parent.mkdir(exist_ok=True)
    DATA.write_text(json.dumps(data, indent=1) + "\n")


def main(names: list[str]) -> None:
    """Each entry in its own process, so each model's memory is returned before the next."""
    if len(names) == 1:
        record(names[0])
        return
    for name in names or [*TORCHVISION, *HAND_BUILT, "random"]:
        print(name, file=sys.stderr, flush=True)
        subprocess.run([sys.executable, __file__, name], check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
