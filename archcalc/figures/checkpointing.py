"""Activation checkpointing: which block instances are recomputed in backward, and what each keeps.

A checkpointed block runs as `torch.utils.checkpoint(block, x, use_reentrant=False)` does: in the
forward its layers keep nothing for backward and the checkpoint keeps the block's input tensors
(torch.utils.checkpoint._CheckpointFrame.save_inputs); in backward the block is run again and its
layers' saved tensors are made afresh, one block at a time (docs/memory.md).
"""

from __future__ import annotations

from archcalc.errors import OptionError, quote
from archcalc.spec.graph import INPUT, Network

EVERY_BLOCK = "every-block"  # --checkpoint every-block: each copy of the outermost repeated blocks


def _instances(network: Network, name: str) -> list[str]:
    """The block instances `name` means: an instance's path (layer3.1), or a call's (layer3: each
    of its copies layer3.0, layer3.1, ...)."""
    if name in network.blocks:
        return [name]
    prefix = name + "."
    return [p for p in network.blocks if p.startswith(prefix) and "." not in p[len(prefix):]]


def checkpointed_blocks(network: Network, names: tuple[str, ...]) -> tuple[str, ...]:
    """The block instances recomputed in backward: those the spec marks `checkpoint: true` and
    those `names` give (paths, call names, or every-block), the outermost of them, in spec order;
    an OptionError names an unknown one with the nearest known names."""
    chosen = list(network.checkpointed)
    for name in names:
        if name == EVERY_BLOCK:
            if not network.repeated:
                raise OptionError(
                    f"--checkpoint {EVERY_BLOCK} checkpoints each copy of a repeated block, and "
                    f"{network.name} repeats none; name the blocks instead (its blocks: {_known(network)})")
            chosen += network.repeated
            continue
        found = _instances(network, name)
        if not found:
            import difflib

            near = difflib.get_close_matches(name, _calls(network), n=3, cutoff=0.6)
            hint = "did you mean " + " or ".join(map(quote, near)) + "? " if near else ""
            raise OptionError(
                f"--checkpoint names {quote(name)}, which is not a block of {network.name} ({hint}"
                f"its blocks: {_known(network)}; or {EVERY_BLOCK})")
        chosen += found
    wanted = set(chosen)
    return tuple(p for p in network.blocks if p in wanted and not _inside(p, wanted))


def _inside(path: str, blocks: set[str]) -> bool:
    """Whether `path` lies inside another of `blocks`."""
    return any(path[:i] in blocks for i, c in enumerate(path) if c == ".")


def _calls(network: Network) -> list[str]:
    """The block calls a user names: instances outside any repeat, and each repeat's call (layer3)."""
    repeated = set(network.repeated)
    calls = (p.rsplit(".", 1)[0] if p in repeated else p for p in network.blocks if not _inside(p, repeated))
    return list(dict.fromkeys(calls))


def _known(network: Network) -> str:
    """The block calls for messages (the first dozen)."""
    calls = _calls(network)
    return ", ".join(calls[:12]) + (", ..." if len(calls) > 12 else "") if calls else "none"


def owners(network: Network, blocks: tuple[str, ...]) -> dict[str, str | None]:
    """The checkpointed block each layer (and the input) belongs to, or None."""
    chosen = set(blocks)
    result: dict[str, str | None] = {INPUT: None}
    for layer in network.layers:
        path = layer.path
        result[path] = next((path[:i] for i, c in enumerate(path) if c == "." and path[:i] in chosen), None)
    return result
