"""Switches the autotuner turns on a live model: per-layer checkpointing, liger-kernel, bf16 LoRA.

Each switch can be flipped back and forth on the same model instance, so the autotuner can time
alternatives without rebuilding a 7B model.
"""

from __future__ import annotations

import importlib
import types

import torch
from torch import nn


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The repeated transformer blocks (transformers' ``GradientCheckpointingLayer``s), in order."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    return [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]


def checkpoint_positions(num_layers: int, ckpt_layers: int) -> list[int]:
    """Which layer indices to checkpoint: ``ckpt_layers`` of them, spread evenly.

    Spreading (rather than the first n) keeps the recompute of a checkpointed layer next to
    layers whose activations are kept, so the backward pass never waits on a long run of
    recomputes; for peak memory only the count matters.
    """
    if not 0 <= ckpt_layers <= num_layers:
        raise ValueError(f"ckpt_layers must be in 0..{num_layers}, got {ckpt_layers}")
    if ckpt_layers == 0:
        return []
    return sorted({round(i * num_layers / ckpt_layers) for i in range(ckpt_layers)})


def set_checkpoint_layers(model: nn.Module, ckpt_layers: int) -> list[int]:
    """Checkpoint exactly ``ckpt_layers`` decoder layers (non-reentrant), keep the rest.

    Returns the indices checkpointed. Works on a PEFT-wrapped model too.
    """
    layers = decoder_layers(model)
    if not layers:
        raise ValueError("model has no GradientCheckpointingLayer blocks to checkpoint")
    chosen = checkpoint_positions(len(layers), ckpt_layers)
    if chosen:
        base = _hf_model(model)
        # Non-reentrant checkpointing needs no `enable_input_require_grads` hack and lets
        # frozen 4-bit weights stay out of the autograd graph.
        kwargs = {"use_reentrant": False}
        if hasattr(base, "activation_checkpointing_enable"):
            base.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    keep = set(chosen)
    for i, layer in enumerate(layers):
        layer.gradient_checkpointing = i in keep
    return chosen


def _hf_model(model: nn.Module) -> nn.Module:
    """The transformers ``PreTrainedModel`` inside a PEFT wrapper (or the model itself)."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def lora_compute_in_bf16(model: nn.Module) -> int:
    """Stop PEFT from copying layer inputs to the adapters' fp32 dtype; returns layers changed.

    LoRA weights stay fp32 (AdamW updates them at full precision); the step runs under bf16
    autocast, which casts the small weights instead of every activation. Without this each LoRA
    layer would keep its own fp32 (or re-cast bf16) copy of its input for the backward pass.
    """
    n = 0
    for m in model.modules():
        if hasattr(m, "cast_input_dtype_enabled"):
            m.cast_input_dtype_enabled = False
            n += 1
    return n


def liger_available() -> bool:
    try:
        importlib.import_module("liger_kernel.transformers")
    except ImportError:
        return False
    return torch.cuda.is_available()


_BOUND = ("forward", "extra_repr", "_get_name")  # what liger binds on module instances


class LigerSwitch:
    """Apply liger-kernel's Llama patch (RoPE, RMSNorm, SwiGLU, fused linear cross-entropy)
    to one model instance, and undo it.

    liger patches by rebinding module-level functions/classes of ``modeling_llama`` and
    instance ``forward`` methods; we snapshot both and restore them on :meth:`off`.
    """

    @classmethod
    def for_model(cls, model: nn.Module, family: str = "llama", *,
                  fused_linear_cross_entropy: bool = True) -> "LigerSwitch":
        """The one switch of this model (a second one would snapshot the patched state).

        ``fused_linear_cross_entropy=False`` keeps the model's ``forward``: liger's fused loss
        replaces it, which would drop a fused LM head a trainer already bound there (TRL's
        ``SFTTrainer`` does, and its ``compute_loss`` then needs ``outputs.log_probs``).
        """
        inner = _hf_model(model)
        sw = inner.__dict__.get("_liger_switch")
        if sw is None:
            # Stored on the model (a cycle the garbage collector frees with it), not in a
            # global registry that would keep a 7B model alive.
            sw = inner.__dict__["_liger_switch"] = cls(
                model, family, fused_linear_cross_entropy=fused_linear_cross_entropy)
        elif sw.fused_linear_cross_entropy != fused_linear_cross_entropy:
            if sw.enabled:
                raise RuntimeError("liger is on with another fused_linear_cross_entropy; "
                                   "switch it off first")
            sw.fused_linear_cross_entropy = fused_linear_cross_entropy
        return sw

    def __deepcopy__(self, memo):
        # A copied model gets its own switch on first use; module objects cannot be copied.
        return None

    def __init__(self, model: nn.Module, family: str = "llama", *,
                 fused_linear_cross_entropy: bool = True):
        self.model = _hf_model(model)
        self.family = family
        self.fused_linear_cross_entropy = fused_linear_cross_entropy
        self.enabled = False
        self._saved_globals: dict | None = None
        self._saved_instances: list | None = None

    def _modeling(self) -> types.ModuleType:
        return importlib.import_module(f"transformers.models.{self.family}.modeling_{self.family}")

    def on(self) -> None:
        if self.enabled:
            return
        from liger_kernel.transformers import monkey_patch

        mod = self._modeling()
        self._saved_globals = dict(vars(mod))
        cls_forward = {c: c.__dict__.get("forward") for c in vars(mod).values()
                       if isinstance(c, type) and issubclass(c, nn.Module)}
        self._saved_cls_forward = cls_forward
        self._saved_instances = [
            (m, {k: m.__dict__[k] for k in _BOUND if k in m.__dict__},
             type(m).__name__)
            for m in self.model.modules()
        ]
        getattr(monkey_patch, f"apply_liger_kernel_to_{self.family}")(
            model=self.model, fused_linear_cross_entropy=self.fused_linear_cross_entropy)
        self.enabled = True

    def off(self) -> None:
        if not self.enabled:
            return
        mod = self._modeling()
        for k, v in self._saved_globals.items():
            if vars(mod).get(k) is not v:
                setattr(mod, k, v)
        for c, fwd in self._saved_cls_forward.items():
            if c.__dict__.get("forward") is not fwd and fwd is not None:
                c.forward = fwd
        for m, attrs, cls_name in self._saved_instances:
            for k in _BOUND:
                if k in attrs:
                    m.__dict__[k] = attrs[k]
                else:
                    m.__dict__.pop(k, None)
            type(m).__name__ = cls_name
        self.enabled = False

    def set(self, enabled: bool) -> None:
        self.on() if enabled else self.off()
