"""Generation with a key/value cache (`--kv-cache`): the cache a decoder holds at context S, and
the activation peaks of its two phases, prefill over S tokens and one decoding step.

The cache is what the layers that `cache` (ops.base.Op.caches) output at S tokens: per example
2 x layers x kv_heads x head_dim x S elements, the size Kwon et al. (2023, vLLM, §3) give per
token. Hugging Face's DynamicLayer.update (transformers/cache_utils.py) writes each layer's keys,
then its values, as `torch.cat([old, new], dim=-2)`: a new tensor, the old one freed once replaced.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from archcalc.arith import Dim, Shape
from archcalc.errors import OptionError
from archcalc.figures.memory import (
    MemoryOptions,
    Storage,
    element_bytes,
    inference_candidates,
    live_storages,
    peak_of,
    storage_of,
)
from archcalc.figures.shapes import output_shapes
from archcalc.ops.base import elements
from archcalc.spec.graph import Network


@dataclass(frozen=True)
class Generation:
    """Per example, in bytes: the cache at context S, and the peak of live activations (the cache
    included) in prefill and in one decoding step, each with the layer where it occurs; `peak`
    is the larger of the two, in `phase`, at `peak_layer`."""

    context: Dim
    cache: Dim
    prefill: Dim
    prefill_layer: str
    decode: Dim
    decode_layer: str
    peak: Dim
    peak_layer: str
    phase: str

    def at(self, batch: Dim) -> Generation:
        """The same figures for `batch` examples (every one of them is per example)."""
        return replace(
            self, cache=batch * self.cache, prefill=batch * self.prefill, decode=batch * self.decode, peak=batch * self.peak,
        )


def caching_layers(network: Network) -> list[str]:
    """The paths of the layers whose output is a key/value cache; an OptionError when there are none."""
    found = [layer.path for layer in network.layers if layer.op.caches]
    if not found:
        why = (
            "its attention reads keys and values straight from their projections (an encoder's), with no cache"
            if any(layer.op.attends for layer in network.layers) else "it has no attention"
        )
        raise OptionError(
            f"--kv-cache sizes a decoder's key/value cache, but no layer of {network.name} caches keys and "
            f"values: {why}. A decoder feeds its attention from `kv_cache` layers, as specs/gpt2.yaml does"
        )
    return found


def prefill_storages(network: Network, shapes: dict[str, Shape], sizes: dict[str, int], cached: list[str], one_token: dict[str, Storage]) -> dict[str, Storage]:
    """The forward over S tokens with use_cache=True, as generate() runs it: as live_storages,
    but each cache lives to the end (returned in past_key_values), and a dense head at the
    output is computed for the last position only (`one_token`: the storages at 1 token), as
    generate() asks with logits_to_keep=1 (transformers/generation/utils.py; the model slices
    hidden_states[:, -1:, :], a view, before lm_head)."""
    ids = storage_of(network)
    storages = live_storages(network, shapes, sizes)
    end = len(network.order)
    for path in cached:
        storages[ids[path]] = storages[ids[path]]._replace(last_use=end)
    head = network.output
    if ids[head] == head and network.nodes[head].op.connectivity == "dense":
        storages[head] = storages[head]._replace(nbytes=one_token[head].nbytes)
    return storages


def decode_storages(shapes: dict[str, Shape], sizes: dict[str, int], cached: list[str], step: Network, one_token: dict[str, Storage]) -> dict[str, Storage]:
    """One decoding step at context S: the network over 1 token per example (`step`, its storages
    `one_token`), where each cache layer's output is the cache grown to S positions (`shapes`
    and `sizes` at S), held to the end, and the cache of S-1 positions it replaces lives from
    before the step until that layer's torch.cat has read it."""
    storages = dict(one_token)
    ids = storage_of(step)
    end = len(step.order)
    for path in cached:
        grown = elements(shapes[path]) * sizes[path]
        new = storages[ids[path]]
        storages[ids[path]] = new._replace(last_use=end, nbytes=grown)
        storages[f"{path}#old"] = Storage(-1, new.born, grown - new.nbytes)
    return storages


def generation(network: Network, shapes: dict[str, Shape], options: MemoryOptions) -> Generation:
    """The cache and both phases' peaks per example, at the context S the input's first axis gives."""
    cached = caching_layers(network)
    sizes = element_bytes(network, options)
    cache = sum((elements(shapes[path]) * sizes[path] for path in cached), 0)
    step = network.with_input((1, *network.input_shape[1:]))
    one_token = live_storages(step, output_shapes(step), element_bytes(step, options))
    phases = {
        "prefill": inference_candidates(network, prefill_storages(network, shapes, sizes, cached, one_token)),
        "decode": inference_candidates(step, decode_storages(shapes, sizes, cached, step, one_token)),
    }
    (prefill, prefill_layer), (decode, decode_layer) = (peak_of(network, c) for c in phases.values())
    # one peak over both phases' layers (either phase's peak may be a Max formula already)
    peak, where = peak_of(network, [(f"{phase} {layer}", value) for phase, c in phases.items() for layer, value in c])
    phase, layer = where.split(" ", 1)
    return Generation(network.input_shape[0], cache, prefill, prefill_layer, decode, decode_layer, peak, layer, phase)
