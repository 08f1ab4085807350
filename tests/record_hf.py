"""Record what PyTorch measures on Hugging Face transformers' language models, for CI (no torch).

    /tmp/torchenv/bin/python tests/record_hf.py              # every entry
    /tmp/torchenv/bin/python tests/record_hf.py gpt2         # only this one; the others are kept
    /tmp/torchenv/bin/python tests/record_hf.py --precisions gpt2   # only its --precision figures

Writes tests/data/hf_measurements.json: the torch and transformers versions, then per spec of
specs/ (its HF class and config, dropout set to 0): parameters, buffers (model.buffers(),
persistent or not), the output's shape per sequence, torch.utils.flop_counter FLOPs per sequence
(eval mode, sdpa_kernel(SDPBackend.MATH) so attention's products count) and the bytes autograd
saves for backward per sequence (train mode, float32, batch 3 minus batch 2, each storage counted
once: at batch 1 torch.matmul folds GPT-2's [1, heads, S, head_dim] query into three dimensions
as a view of c_attn's packed output, where any larger batch copies it, so batch 2 minus batch 1
is not what a sequence costs) for attn_implementation "eager" and "sdpa" (the kernel torch picks on the CPU: flash), and
"sdpa" restricted to the math kernel, at each sequence length in LENGTHS; for PRECISIONS, the
bytes saved per sequence under torch.autocast (sdpa) at each length; for the decoders (CACHED),
the bytes of the key/value cache model(ids, use_cache=True) returns, per "BxS" of CACHE_POINTS.
tests/test_hf_measurements.py compares archcalc with it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from torch_reference import saved_bytes, saved_bytes_under

DATA = Path(__file__).resolve().parent / "data" / "hf_measurements.json"
LENGTHS = (128, 256)
# spec name: (transformers model class, config class, config arguments besides dropout 0)
MODELS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "gpt2": ("GPT2LMHeadModel", "GPT2Config",
             {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}),
    "bert_base": ("BertModel", "BertConfig",
                  {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}),
    # a small LLaMA: 4 layers of width 512, 8 query heads sharing 2 key/value heads
    "llama_decoder": ("LlamaForCausalLM", "LlamaConfig",
                      {"vocab_size": 32000, "hidden_size": 512, "intermediate_size": 1376,
                       "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 2,
                       "attention_dropout": 0.0}),
}
KERNELS = ("eager", "sdpa", "sdpa_math")
# the decoders, and the (batch, length) at which the bytes of their key/value cache are measured
CACHED = ("gpt2", "llama_decoder")
CACHE_POINTS = ((1, 128), (3, 256))
# Saved bytes per sequence under other --precision policies (attn_implementation sdpa, the flash
# kernel), at each of LENGTHS: torch.autocast's CPU lists (torch_reference.saved_bytes_under)
PRECISIONS: dict[str, tuple[str, ...]] = {"gpt2": ("bf16-mixed",)}


def build(torch: Any, name: str, attention: str) -> Any:
    """The model of `name`, seeded, with attn_implementation `attention` (eager or sdpa)."""
    import transformers

    model_class, config_class, arguments = MODELS[name]
    config = getattr(transformers, config_class)(**arguments, attn_implementation=attention)
    torch.manual_seed(0)
    return getattr(transformers, model_class)(config)


def output_of(result: Any) -> Any:
    """The logits of a language-model head, else the last hidden state."""
    return getattr(result, "logits", None) if hasattr(result, "logits") else result.last_hidden_state


def kept(torch: Any, model: Any, kernel: str, vocab: int, length: int, batch: int) -> int:
    """Bytes saved for backward by a forward of `batch` random sequences (sdpa_math: the math kernel)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    def ids(b: int) -> Any:
        return torch.randint(0, vocab, (b, length))

    torch.manual_seed(1)
    if kernel.endswith("_math"):
        with sdpa_kernel(SDPBackend.MATH):
            return saved_bytes(torch, model, (), batch, ids)
    return saved_bytes(torch, model, (), batch, ids)


def cache_bytes(torch: Any, model: Any, ids: Any) -> int:
    """Bytes of the keys and values the DynamicCache holds after model(ids, use_cache=True) on
    token ids [batch, length] (eval mode, no autograd; on the meta device too)."""
    with torch.no_grad():
        cache = model(ids, use_cache=True).past_key_values
    return sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
def measure_precisions(torch: Any, name: str) -> dict[str, dict[str, int]]:
    """Bytes saved per sequence under each of PRECISIONS[name], batch 3 minus batch 2."""
    model = build(torch, name, "sdpa").train()
    vocab = model.config.vocab_size
    result: dict[str, dict[str, int]] = {}
    for precision in PRECISIONS.get(name, ()):
        for length in LENGTHS:
            torch.manual_seed(1)
            result.setdefault(precision, {})[str(length)] = saved_bytes_under(
                torch, model, (), precision, (2, 3), lambda b, n=length: torch.randint(0, vocab, (b, n)))
    return result


def measure(torch: Any, name: str) -> dict[str, Any]:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    model = build(torch, name, "sdpa")
    vocab = model.config.vocab_size

    def ids(batch: int, length: int) -> Any:
        return torch.randint(0, vocab, (batch, length))

    entry: dict[str, Any] = {
        "params": sum(p.numel() for p in model.parameters()),
        "buffers": sum(b.numel() for b in model.buffers()),
        "output_shape": {}, "flops": {}, "saved_bytes_per_example": {k: {} for k in KERNELS},
    }
    model.eval()
    for length in LENGTHS:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
            output = output_of(model(ids(1, length)))
        entry["output_shape"][str(length)] = list(output.shape[1:])
        entry["flops"][str(length)] = counter.get_total_flops()
    if name in CACHED:
        entry["kv_cache_bytes"] = {f"{b}x{n}": cache_bytes(torch, model, ids(b, n)) for b, n in CACHE_POINTS}
    for kernel in KERNELS:
        model = build(torch, name, kernel.removesuffix("_math")).train()
        for length in LENGTHS:
            entry["saved_bytes_per_example"][kernel][str(length)] = (
                kept(torch, model, kernel, vocab, length, 3) - kept(torch, model, kernel, vocab, length, 2))
    if name in PRECISIONS:
        entry["saved_bytes_per_example_by_precision"] = measure_precisions(torch, name)
    model_class, config_class, arguments = MODELS[name]
    return {"model": f"transformers.{model_class}", "config": f"transformers.{config_class}",
            "config_arguments": arguments, **entry}


def record(names: list[str]) -> None:
    """Measure each model (every model without names); `--precisions NAME...` measures only
    their PRECISIONS figures, keeping the rest of each entry."""
    import torch
    import transformers

    only_precisions = names[:1] == ["--precisions"]
    names = names[1:] if only_precisions else names
    torch.set_num_threads(1)
    data = json.loads(DATA.read_text()) if DATA.exists() else {}
    data.update({"torch": torch.__version__, "transformers": transformers.__version__,
                 "recorded_by": "python tests/record_hf.py"})
    models = data.setdefault("models", {})
    for name in names or list(MODELS):
        print(name, file=sys.stderr, flush=True)
        if only_precisions:
            models[name]["saved_bytes_per_example_by_precision"] = measure_precisions(torch, name)
        else:
            models[name] = measure(torch, name)
    data["models"] = dict(sorted(models.items()))
    DATA.parent.mkdir(exist_ok=True)
    DATA.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    record(sys.argv[1:])
