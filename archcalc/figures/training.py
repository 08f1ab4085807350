"""Training FLOPs per step: the forward, the backward and the recomputation of checkpointed blocks,
per layer and in total, as torch.utils.flop_counter counts a training step (docs/flops.md).

Backward: each product computes the gradient of each input that needs one and of its weights
when they train, each as large as the forward (Op.gradient_macs): 2x the forward for a layer
that trains behind another that does, less where autograd skips work (a frozen layer's weight
gradient, the first layer's input gradient). Recomputation: a checkpointed block's forward run
again in backward, up to the layer making its last saved tensor, where torch.utils.checkpoint's
early stop ends it. Element-wise work is forward only, reported apart (flops.LayerFlops).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from archcalc.arith import Dim, Shape
from archcalc.dtypes import INTEGER
from archcalc.figures.checkpointing import owners
from archcalc.figures.figure import Figure, Formula, Sweepable, Total, walk
from archcalc.figures.flops import LayerFlops
from archcalc.figures.memory import Gradients, gradients
from archcalc.figures.params import ParamCount
from archcalc.ops.base import AttentionKernel, elements
from archcalc.spec.graph import Layer, Network

if TYPE_CHECKING:
    from archcalc.analysis import Analysis


@dataclass(frozen=True)
class StepFlops:
    """Per example: a layer's FLOPs in one training step (2 per multiply-accumulate)."""

    forward: Dim
    backward: Dim
    recomputation: Dim

    @property
    def total(self) -> Dim:
        return self.forward + self.backward + self.recomputation


def _keeps(layer: Layer, grad: Gradients, shapes: dict[str, Shape], attention: AttentionKernel) -> tuple[bool, bool]:
    """Whether autograd saves a tensor of the layer (an activation, or its weights), and whether
    that happens after its product ran (an output or a statistic; inputs are saved before)."""
    if not grad.recorded:
        return False, False
    op = layer.op
    saved = op.saved_for_backward_with([shapes[i] for i in layer.inputs], shapes[layer.path], attention)
    after = saved.output or bool(saved.extra)
    weights = bool(op.parameters([shapes[i] for i in layer.inputs])) or layer.tied_to is not None
    return bool(saved.kept_inputs(grad.trains, grad.inputs)) or after or weights, after


def step_flops(
    network: Network, shapes: dict[str, Shape], counts: dict[str, ParamCount], flops: Mapping[str, LayerFlops],
    blocks: tuple[str, ...], attention: AttentionKernel,
) -> dict[str, StepFlops]:
    """Forward, backward and recomputation FLOPs per layer for one example (`blocks`: the
    checkpointed block instances, figures.checkpointing)."""
    grads = gradients(network, counts)
    owner = owners(network, blocks)
    # per checkpointed block: the position of its last saving layer, and whether that one's product runs
    stop: dict[str, tuple[int, bool]] = {}
    for position, layer in enumerate(network.layers):
        block = owner[layer.path]
        if block is not None:
            keeps, after = _keeps(layer, grads[layer.path], shapes, attention)
            if keeps:
                stop[block] = (position, after)
    positions = {layer.path: i for i, layer in enumerate(network.layers)}

    def step(layer: Layer) -> StepFlops:
        grad = grads[layer.path]
        forward = flops[layer.path].flops
        inputs = [shapes[i] for i in layer.inputs]
        backward = 2 * layer.op.gradient_macs(inputs, shapes[layer.path], grad.trains, grad.inputs) if grad.recorded else 0
        block = owner[layer.path]
        last, runs = stop.get(block, (-1, False)) if block is not None else (-1, False)
        position = positions[layer.path]
        again = position < last or (position == last and runs)
        return StepFlops(forward, backward, forward if again else 0)

    return walk(network, step)


def tokens(network: Network) -> Dim | None:
    """Tokens per example of a language model (its input is token ids): the input's elements."""
    return elements(network.input_shape) if network.dtype in INTEGER else None


def non_embedding_params(analysis: Analysis) -> Dim:
    """N of Kaplan et al. (2020): the parameters of every layer but the lookup tables (Op.looks_up)."""
    network = analysis.network
    counts = analysis.values["params"]
    return sum((counts[layer.path].params for layer in network.layers if not layer.op.looks_up), 0)


def _sum(attribute: str) -> Any:
    """Per example, the layers' figures summed."""
    return lambda analysis: sum((getattr(f, attribute) for f in analysis.values["training_flops"].values()), 0)


def per_step(analysis: Analysis) -> Dim:
    """FLOPs of one training step of the whole batch: (forward + backward + recomputation) x batch."""
    return analysis.total("training_flops") * analysis.memory.options.batch


def training_json(analysis: Analysis) -> dict[str, Any]:
    """The step's figures per example and per batch; for a language model its tokens per step
    and Kaplan et al.'s 6N per token beside the exact figure."""
    from archcalc.figures.figure import plain

    batch = analysis.memory.options.batch
    parts = {key: analysis.total(f"training_{key}_flops") for key in ("forward", "backward", "recomputation")}
    result: dict[str, Any] = {
        "checkpointed_blocks": list(analysis.memory.checkpointed),
        **{f"{key}_flops": plain(value) for key, value in parts.items()},
        "step_flops": plain(analysis.total("training_flops")),
        **{f"{key}_flops_at_batch": plain(batch * value) for key, value in parts.items()},
        "step_flops_at_batch": plain(per_step(analysis)),
    }
    count = tokens(analysis.network)
    if count is not None:
        n = non_embedding_params(analysis)
        result.update({
            "tokens_per_step": plain(batch * count),
            "non_embedding_params": plain(n),
            "six_n_flops_at_batch": plain(6 * n * batch * count),
        })
    return result


TRAINING = Figure(
    "training_flops", "Training FLOPs", "flops", lower_is_better=True,
    needs=("shapes", "params", "flops", "memory"),
    run=lambda network, done, options: step_flops(
        network, done["shapes"], done["params"], done["flops"], done["memory"].checkpointed, options.attention),
    totals=(
        Total("training_forward_flops", "Forward FLOPs per example", "flops", _sum("forward"), lower_is_better=True, json=False),
        Total("training_backward_flops", "Backward FLOPs per example", "flops", _sum("backward"), lower_is_better=True, json=False),
        Total("training_recomputation_flops", "Recomputation FLOPs per example", "flops", _sum("recomputation"), lower_is_better=True, json=False),
        Total("training_flops", "Training FLOPs per example", "flops", _sum("total"), lower_is_better=True, json=False),
    ),
    formula=Formula(
        lambda f: {"forward": f.forward, "backward": f.backward, "recomputation": f.recomputation} if f.total != 0 else {},
        lambda a: {
            "forward": a.total("training_forward_flops"), "backward": a.total("training_backward_flops"),
            "recomputation": a.total("training_recomputation_flops"), "step": a.total("training_flops"),
            "step_at_batch": per_step(a),
        },
    ),
    sweeps=(Sweepable("training_flops", "training FLOPs per step", "FLOPs", per_step),),
)
