"""The bitsandbytes boundary: 4-bit NF4 quantisation config and availability checks.

bitsandbytes is imported only here. On CUDA, QLoRA follows the paper (NF4, double quantisation,
bfloat16 compute). On CPU bitsandbytes 0.50's 4-bit path works too, and float32 compute was
measured 4x faster than bfloat16 there, so CPU runs use float32 compute.
"""

from __future__ import annotations

__all__ = ["bnb_available", "quantization_config", "nf4_linear", "disable_cpu_weight_packing"]


def bnb_available() -> tuple[bool, str]:
    """(True, version) when bitsandbytes imports, else (False, why)."""
    try:
        import bitsandbytes  # noqa: F401
    except (ImportError, RuntimeError, OSError) as exc:  # a broken binary raises OSError/RuntimeError
        return False, f"bitsandbytes unavailable: {exc}"
    return True, getattr(bitsandbytes, "__version__", "?")


def quantization_config(device: str):
    """`BitsAndBytesConfig` for NF4 with double quantisation; compute dtype chosen by device."""
    import torch
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if device == "cuda" else torch.float32
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=compute,
                              bnb_4bit_quant_storage=torch.uint8)


def nf4_linear(linear, *, compute_dtype, double_quant: bool = True):
    """An NF4 `Linear4bit` holding `linear`'s weight (and bias), quantised on the weight's device.

    What `from_pretrained(quantization_config=quantization_config(...))` builds for one layer,
    without a checkpoint on disk first.
    """
    import bitsandbytes as bnb
    from torch import nn

    dev = linear.weight.device
    q = bnb.nn.Linear4bit(linear.in_features, linear.out_features, bias=linear.bias is not None,
                          compute_dtype=compute_dtype, compress_statistics=double_quant,
                          quant_type="nf4", device="meta")
    q.weight = bnb.nn.Params4bit(linear.weight.data, requires_grad=False,
                                 compress_statistics=double_quant, quant_type="nf4")
    if linear.bias is not None:
        q.bias = nn.Parameter(linear.bias.data, requires_grad=False)
    q.weight = q.weight.to(dev)  # quantizes here
    return q


def disable_cpu_weight_packing(model) -> int:
    """Keep 4-bit CPU inference on the same dequantise path that training uses.

    On CPUs with AVX512-BF16, bitsandbytes 0.50 repacks a `Linear4bit` weight in place the first
    time it runs in eval mode without gradients; that repacking asserts on shapes that are not
    multiples of its 32/64 blocks (any evaluation before training hit it) and would leave the
    weights in a layout the training step does not expect. Returns how many layers it changed.
    """
    import bitsandbytes as bnb

    n = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit) and getattr(module, "support_avx512bf16_for_cpu", False):
            module.support_avx512bf16_for_cpu = False
            n += 1
    return n
