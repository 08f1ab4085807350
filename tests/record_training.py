"""Record what PyTorch measures of a training step, for CI (no torch): activation checkpointing's
saved bytes and the forward, backward and recomputation FLOPs.

    /tmp/torchenv/bin/python tests/record_training.py              # every entry
    /tmp/torchenv/bin/python tests/record_training.py gpt2         # only this one; the others are kept

Writes tests/data/training_measurements.json, per entry (a spec of specs/ with its torch model):
- `checkpointed`: every block wrapped in torch.utils.checkpoint(use_reentrant=False) (torchvision's
  Bottleneck/BasicBlock; GPT-2 by transformers' gradient_checkpointing_enable), in train mode,
  float32: `saved_bytes_per_example`, what saved_tensors_hooks see kept after the forward (the
  checkpoints' inputs and the layers outside the blocks), and `recomputed_bytes_per_example`, per
  block in the order backward recomputes them, the storages its recomputation holds once it
  stops (torch.utils.checkpoint's frame after recompute_fn, the block's saved inputs left out);
  each per example as (figure at the larger batch - at the smaller) / their difference;
- `flops`: torch.utils.flop_counter.FlopCounterMode's total of one example's forward, of the
  backward of `output.sum()` without checkpointing, and of that backward with every block
  checkpointed (the recomputed forwards included), `frozen` listing the modules whose parameters
  were frozen (requires_grad False). GPT-2 runs with sdpa_kernel(SDPBackend.MATH) so attention's
  products count.
tests/test_training_measurements.py compares archcalc with it.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from torch_reference import saved_bytes

DATA = Path(__file__).resolve().parent / "data" / "training_measurements.json"


@contextlib.contextmanager
def recomputations(torch: Any) -> Iterator[list[int]]:
    """Per recomputed block, in backward's order: the bytes of the distinct storages its
    recomputation holds when it stops, the block's saved inputs (already kept) left out."""
    from torch.utils.checkpoint import _CheckpointFrame

    found: list[int] = []
    check = _CheckpointFrame.check_recomputed_tensors_match

    def measure(frame: Any, gid: Any) -> None:
        inputs = {t.untyped_storage().data_ptr() for t in frame.get_inputs() if isinstance(t, torch.Tensor)}
        storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in frame.recomputed[gid].values()}
        found.append(sum(n for ptr, n in storages.items() if ptr not in inputs))
        check(frame, gid)

    _CheckpointFrame.check_recomputed_tensors_match = measure
    try:
        yield found
    finally:
        _CheckpointFrame.check_recomputed_tensors_match = check


def recomputed(torch: Any, model: Any, make_input: Callable[[int], Any], batch: int) -> list[int]:
    """Each checkpointed block's recomputation bytes in one backward of `batch` examples."""
    with recomputations(torch) as found:
        output(model(make_input(batch))).sum().backward()
    model.zero_grad(set_to_none=True)
    return found


def output(result: Any) -> Any:
    """The logits of a transformers language model, else the output itself."""
    return getattr(result, "logits", result)


def step_flops(torch: Any, model: Any, make_input: Callable[[int], Any]) -> tuple[int, int]:
    """flop_counter's FLOPs of one example's forward and of the backward of its output's sum."""
    from torch.utils.flop_counter import FlopCounterMode

    forward, backward = FlopCounterMode(display=False), FlopCounterMode(display=False)
    with forward:
        result = output(model(make_input(1))).sum()
    with backward:
        result.backward()
    model.zero_grad(set_to_none=True)
    return forward.get_total_flops(), backward.get_total_flops()


def checkpoint_blocks(torch: Any, model: Any, kind: type) -> None:
    """Wrap the forward of every module of class `kind` in torch.utils.checkpoint (non-reentrant)."""
    from torch.utils.checkpoint import checkpoint

    for module in model.modules():
        if isinstance(module, kind):
            module.forward = (lambda f: lambda x: checkpoint(f, x, use_reentrant=False))(module.forward)


def torchvision_model(torch: Any, name: str, checkpointed: bool, frozen: tuple[str, ...] = ()) -> Any:
    import torchvision
    from torchvision.models.resnet import BasicBlock, Bottleneck

    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).train()
    for prefix in frozen:
        for p in model.get_submodule(prefix).parameters():
            p.requires_grad_(False)
    if checkpointed:
        checkpoint_blocks(torch, model, (BasicBlock, Bottleneck))
    return model


def gpt2_model(torch: Any, checkpointed: bool) -> Any:
    from record_hf import build

    model = build(torch, "gpt2", "sdpa").train()
    if checkpointed:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()
    return model


def per_example(measure: Callable[[int], Any], batches: tuple[int, int]) -> Any:
    """(figure at the larger batch - at the smaller) / their difference, elementwise over lists."""
    small, large = (measure(b) for b in batches)
    if isinstance(small, list):
        return [(b - a) // (batches[1] - batches[0]) for a, b in zip(small, large)]
    return (large - small) // (batches[1] - batches[0])


def image(torch: Any, shape: tuple[int, ...]) -> Callable[[int], Any]:
    return lambda batch: torch.randn(batch, *shape)


def tokens(torch: Any, length: int) -> Callable[[int], Any]:
    return lambda batch: torch.randint(0, 50257, (batch, length))


def measure_torchvision(torch: Any, name: str, frozen: tuple[str, ...] = (), saved: bool = True) -> dict[str, Any]:
    shape = (3, 224, 224)
    entry: dict[str, Any] = {"model": f"torchvision.models.{name}", "input": list(shape), "frozen": list(frozen)}
    if saved:
        model = torchvision_model(torch, name, True, frozen)
        entry["checkpointed"] = {
            "saved_bytes_per_example": per_example(lambda b: saved_bytes(torch, model, shape, b), (1, 2)),
            "recomputed_bytes_per_example": per_example(lambda b: recomputed(torch, model, image(torch, shape), b), (1, 2)),
        }
    forward, backward = step_flops(torch, torchvision_model(torch, name, False, frozen), image(torch, shape))
    _, backward_checkpointed = step_flops(torch, torchvision_model(torch, name, True, frozen), image(torch, shape))
    entry["flops"] = {"forward": forward, "backward": backward, "backward_checkpointed": backward_checkpointed}
    return entry


def measure_gpt2(torch: Any, length: int = 128) -> dict[str, Any]:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    make = tokens(torch, length)
    model = gpt2_model(torch, True)
    torch.manual_seed(1)
    entry: dict[str, Any] = {"model": "transformers.GPT2LMHeadModel (tests/record_hf.py's config)", "input": [length], "frozen": []}
    entry["checkpointed"] = {
        "saved_bytes_per_example": per_example(lambda b: saved_bytes(torch, model, (), b, make), (2, 3)),
        "recomputed_bytes_per_example": per_example(lambda b: recomputed(torch, model, make, b), (2, 3)),
    }
    with sdpa_kernel(SDPBackend.MATH):
        forward, backward = step_flops(torch, gpt2_model(torch, False), make)
        _, backward_checkpointed = step_flops(torch, model, make)
    entry["flops"] = {"forward": forward, "backward": backward, "backward_checkpointed": backward_checkpointed}
    return entry


ENTRIES: dict[str, Callable[[Any], dict[str, Any]]] = {
    "resnet50": lambda torch: measure_torchvision(torch, "resnet50"),
    "resnet18": lambda torch: measure_torchvision(torch, "resnet18"),
    # transfer learning: the stem and layer1 frozen, so neither their weight gradients nor the
    # stem's input gradient are computed
    "resnet18_frozen": lambda torch: measure_torchvision(torch, "resnet18", ("conv1", "bn1", "layer1"), saved=False),
    "gpt2": measure_gpt2,
}


def record(names: list[str]) -> None:
    import torch

    torch.set_num_threads(2)
    data = json.loads(DATA.read_text()) if DATA.exists() else {}
    data.update({"torch": torch.__version__, "recorded_by": "python tests/record_training.py"})
    entries = data.setdefault("entries", {})
    for name in names or list(ENTRIES):
        print(name, file=sys.stderr, flush=True)
        entries[name] = ENTRIES[name](torch)
    data["entries"] = dict(sorted(entries.items()))
    DATA.parent.mkdir(exist_ok=True)
    DATA.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    record(sys.argv[1:])
