"""Record what PyTorch keeps for backward on the GPT-style layer of tests/data/korthikanti_block.yaml.

    /tmp/torchenv/bin/python tests/record_korthikanti.py

Writes tests/data/korthikanti_measurements.json: per sequence (batch 3 minus batch 2, so the
weights autograd also keeps drop out), at s = 128, h = 64, a = 4, in train mode on the CPU, the
bytes autograd saves (saved_tensors_hooks, each storage once) with the layer in bfloat16 (every
parameter and activation: Korthikanti et al.'s 16-bit activations) and in float32, and the
tensors kept per sequence by dtype. Attention is written out as Megatron-LM's core attention
does it (q k^T scaled, softmax, dropout, times v): archcalc's `--attention math`.
tests/test_sharding_torch.py compares archcalc with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data" / "korthikanti_measurements.json"
S, H, HEADS, P = 128, 64, 4, 0.1


def layer(torch: Any) -> Any:
    """The block as a torch module: pre-norm attention and 4h GeLU MLP, dropout p after each."""
    nn = torch.nn

    class Layer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln_1, self.qkv, self.proj = nn.LayerNorm(H), nn.Linear(H, 3 * H), nn.Linear(H, H)
            self.ln_2, self.fc1, self.fc2 = nn.LayerNorm(H), nn.Linear(H, 4 * H), nn.Linear(4 * H, H)

        def forward(self, x: Any) -> Any:
            n = x.shape[0]
            q, k, v = (t.view(n, S, HEADS, H // HEADS).transpose(1, 2) for t in self.qkv(self.ln_1(x)).split(H, dim=2))
            scores = torch.matmul(q, k.transpose(-1, -2)) * (H // HEADS) ** -0.5
            probs = nn.functional.dropout(torch.softmax(scores, dim=-1), P, training=True)
            merged = torch.matmul(probs, v).transpose(1, 2).reshape(n, S, H)
            x = x + nn.functional.dropout(self.proj(merged), P, training=True)
            mlp = self.fc2(nn.functional.gelu(self.fc1(self.ln_2(x))))
            return x + nn.functional.dropout(mlp, P, training=True)

    return Layer().train()


def kept(torch: Any, model: Any, batch: int, dtype: Any) -> dict[str, int]:
    """Bytes of the storages autograd keeps, by element type, each storage once."""
    storages: dict[int, tuple[str, int]] = {}

    def pack(t: Any) -> Any:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = (str(t.dtype).removeprefix("torch."), storage.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(torch.randn(batch, S, H, dtype=dtype))
    by_dtype: dict[str, int] = {}
    for name, nbytes in storages.values():
        by_dtype[name] = by_dtype.get(name, 0) + nbytes
    return by_dtype


def main() -> None:
    import torch

    torch.manual_seed(0)
    result: dict[str, Any] = {"torch": torch.__version__, "s": S, "h": H, "heads": HEADS, "p": P}
    for name, dtype in (("bfloat16", torch.bfloat16), ("float32", torch.float32)):
        model = layer(torch).to(dtype)
        two, three = kept(torch, model, 2, dtype), kept(torch, model, 3, dtype)
        per_sequence = {k: three.get(k, 0) - two.get(k, 0) for k in sorted({*two, *three})}
        result[name] = {"saved_bytes_per_sequence": sum(per_sequence.values()), "by_dtype": per_sequence}
    DATA.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
