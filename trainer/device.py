"""Where a run trains and with which precision: chosen by device, never by library defaults.

TRL's SFTConfig defaults to bf16=True and gradient_checkpointing=True; on this CPU that made
training ~12x slower (0.45 vs 5.5 steps/s), so both follow the device unless set explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainer.config import TrainConfig

__all__ = ["Plan", "plan_device"]


@dataclass
class Plan:
    device: str                  # cpu | cuda
    method: str                  # lora | qlora (after any fallback)
    bf16: bool
    gradient_checkpointing: bool
    notices: list[str]


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
    return Plan(device=device, method=method, bf16=bool(bf16), gradient_checkpointing=bool(gc),
                notices=notices)
