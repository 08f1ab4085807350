"""The key/value cache of Hugging Face transformers' decoders (DynamicCache), as it acts in a
forward that starts it: use_cache=True, the default of GPT2Config and LlamaConfig, in training too."""

from __future__ import annotations

from typing import Any

from archcalc.arith import Shape
from archcalc.ops.base import Op, TorchCode


class KVCache(Op):
    """Keys or values [S, kv_heads*D] as the attention reads them back from a new cache:
    DynamicLayer.update concatenates them to the empty cache (torch.cat along the sequence), so
    attention sees a contiguous copy, a new tensor, and not the projection's output. The copy
    keeps nothing for backward (cat's gradient is a slice) and does no arithmetic; it is what
    the flash kernel then keeps for backward instead of the projection's output (measured on
    GPT2LMHeadModel with saved_tensors_hooks: two [S, E] copies per layer beside c_attn's)."""

    kind = "kv_cache"
    caches = True

    def forward(self, xs: list[Any], weights: dict[str, Any]) -> Any:
        return xs[0].copy()

    def torch_code(self, inputs: list[Shape]) -> TorchCode:
        """A copy, as the cache's cat gives (CloneBackward0 keeps nothing either)."""
        return TorchCode(call="{0}.clone()")
