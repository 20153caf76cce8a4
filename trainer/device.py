"""Where a run trains and with which precision: chosen by device, never by library defaults.

TRL's SFTConfig defaults to bf16=True and gradient_checkpointing=True; on this CPU that made
training ~12x slower (0.45 vs 5.5 steps/s), so both follow the device unless set explicitly.
A `memory_budget` on CUDA (bf16) sets `Plan.budget_bytes`: the SFT head then autotunes the
micro-batch, accumulation, checkpointed layers and liger within it (see docs/gpu.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from trainer.config import TrainConfig

__all__ = ["Plan", "plan_device", "auto_method", "base_parameters", "FULL_BELOW_PARAMS"]


@dataclass
class Plan:
    device: str                  # cpu | cuda
    method: str                  # lora | qlora | full (auto resolved, after any fallback)
    bf16: bool
    gradient_checkpointing: bool
    notices: list[str]
    budget_bytes: int | None = None   # set: autotune within it (CUDA + bf16 only)


# Bases smaller than this train every weight under method auto (the dpo head): the tiny random
# Llamas of trainer.tiny (~1M and ~4M parameters) have no pretrained weights worth freezing, and
# the reference copy full fine-tuning needs costs a few MB. SmolLM2-135M and up keep LoRA.
FULL_BELOW_PARAMS = 20_000_000


def base_parameters(base: str | None) -> int | None:
    """Parameters of a local safetensors model folder, read from the file headers (no weights
    loaded); None for a hub id or a folder without safetensors."""
    from pathlib import Path

    if not base or not Path(base).is_dir():
        return None
    files = sorted(Path(base).glob("*.safetensors"))
    if not files:
        return None
    from safetensors import safe_open

    n = 0
    for f in files:
        with safe_open(str(f), framework="pt") as st:
            n += sum(math.prod(st.get_slice(key).get_shape()) for key in st.keys())
    return n


def auto_method(cfg: TrainConfig) -> tuple[str, str | None]:
    """What method auto means for this config: lora, except full for the dpo head (without an
    SFT adapter to start from) on a base under `FULL_BELOW_PARAMS`; and why, when not lora."""
    if cfg.head != "dpo" or cfg.init_adapter is not None:
        return "lora", None
    n = base_parameters(cfg.base_model)
    if n is None or n >= FULL_BELOW_PARAMS:
        return "lora", None
    return "full", (f"method auto: full fine-tune (the base has {n / 1e6:.1f}M parameters, under "
                    f"{FULL_BELOW_PARAMS // 10**6}M; set method=lora for an adapter)")


def plan_device(cfg: TrainConfig) -> Plan:
    import torch

    from trainer._bnb import bnb_available

    notices: list[str] = []
    has_cuda = torch.cuda.is_available()
    device = cfg.device
    if device == "auto":
        device = "cuda" if has_cuda else "cpu"
    elif device == "cuda" and not has_cuda:
        notices.append("device cuda asked but CUDA is not available: training on CPU")
        device = "cpu"
    method = cfg.method
    if method == "auto":
        method, why = auto_method(cfg)
        if why:
            notices.append(why)
    if method == "qlora":
        ok, why = bnb_available()
        if not ok:
            notices.append(f"qlora needs bitsandbytes ({why}): falling back to lora")
            method = "lora"
        elif device == "cpu":
            notices.append("qlora without CUDA: using bitsandbytes' CPU 4-bit path with float32 "
                           "compute (fine for tiny models, slow for real ones)")
    on_gpu = device == "cuda"
    bf16 = cfg.bf16 if cfg.bf16 is not None else (on_gpu and torch.cuda.is_bf16_supported())
    if bf16 and not on_gpu:
        notices.append("bf16 on CPU was measured ~4x slower than float32; consider bf16=false")
    gc = cfg.gradient_checkpointing if cfg.gradient_checkpointing is not None else on_gpu
    budget = None
    if cfg.memory_budget is not None:
        if cfg.head != "sft":
            notices.append(f"memory budget {cfg.memory_budget} is autotuned for the sft head only; "
                           f"ignored for {cfg.head}")
        elif not on_gpu:
            notices.append(f"memory budget {cfg.memory_budget} applies on CUDA only; ignored on CPU")
        elif not bf16:
            notices.append(f"memory budget {cfg.memory_budget} is autotuned in bf16, and bf16 is "
                           f"off: budget ignored")
        else:
            from trainer.gpu.memory import parse_bytes

            budget = parse_bytes(cfg.memory_budget, field="train.memory_budget")
            gc = False   # the autotuner checkpoints exactly the layers the budget needs
    return Plan(device=device, method=method, bf16=bool(bf16), gradient_checkpointing=bool(gc),
                notices=notices, budget_bytes=budget)
