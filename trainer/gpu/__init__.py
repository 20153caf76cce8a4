"""QLoRA on a GPU within a memory budget: autotuner, packing, switches, memory model.

The trainer calls :func:`autotune_model` on its PEFT model before training; the choice
(micro-batch x accumulation, checkpointed layers, liger-kernel) is applied to the model in place
and returned with a human-readable ``why``. See docs/gpu.md.
"""

from __future__ import annotations

from typing import Callable

from .autotune import Candidate, NoFitError, TrialResult, TuneChoice, autotune
from .memory import GIB, MemoryModel, Probe, fmt_gib, parse_bytes
from .packing import PackedBatch, pack_examples, pad_examples, plan_rows
from .switches import (LigerSwitch, checkpoint_positions, liger_available, lora_compute_in_bf16,
                       set_checkpoint_layers)

__all__ = [
    "Candidate", "GIB", "LigerSwitch", "MemoryModel", "NoFitError", "PackedBatch", "Probe",
    "TrialResult", "TuneChoice", "autotune", "autotune_model", "checkpoint_positions", "fmt_gib",
    "limit_process_memory", "liger_available", "lora_compute_in_bf16", "pack_examples",
    "pad_examples", "parse_bytes", "plan_rows", "set_checkpoint_layers", "trainer_batches",
    "training_overrides",
]


def limit_process_memory(budget_bytes: int) -> float:
    """Make the CUDA caching allocator refuse to grow past ``budget_bytes`` (so a budget is a
    hard promise, not an estimate). Returns the fraction of the device set."""
    import torch

    total = torch.cuda.get_device_properties(0).total_memory
    frac = min(1.0, budget_bytes / total)
    torch.cuda.set_per_process_memory_fraction(frac)
    return frac


def autotune_model(model, batches: Callable, *, budget_bytes: int, effective_batch: int,
                   device: str = "cuda", try_liger: bool = True, max_micro_batch: int | None = None,
                   timed_steps: int = 2, time_limit_s: float | None = 120.0,
                   loss_fn: Callable | None = None, fused_linear_cross_entropy: bool = True,
                   log: Callable[[str], None] | None = print) -> TuneChoice:
    """Autotune a live PEFT model (bf16 compute, 4-bit base) and leave the choice applied to it.

    Args:
        model: the PEFT-wrapped causal LM, already on ``device``.
        batches: ``batches(start_row, n_rows) -> (inputs, real_tokens)``, rows of real data.
        budget_bytes: memory the run may use (see :func:`parse_bytes` for "24GiB").
        effective_batch: rows per optimizer step, kept exactly.
        loss_fn: ``loss_fn(model, inputs) -> loss`` when the run does not take ``model(**inputs).loss``
            (a trainer's ``compute_loss``); trials then measure the run's own step.
        fused_linear_cross_entropy: let liger replace the model's forward with its fused loss;
            False where a trainer bound its own fused LM head there (TRL's ``SFTTrainer``).
    """
    from .runtime import make_trial
    from .switches import decoder_layers

    liger = (LigerSwitch.for_model(model, fused_linear_cross_entropy=fused_linear_cross_entropy)
             if try_liger and liger_available() else None)
    options = (True, False) if liger else (False,)
    trial = make_trial(model, batches, device=device, liger=liger, loss_fn=loss_fn)
    choice = autotune(trial, num_layers=len(decoder_layers(model)), budget_bytes=budget_bytes,
                      effective_batch=effective_batch, max_micro_batch=max_micro_batch,
                      liger_options=options, timed_steps=timed_steps, time_limit_s=time_limit_s,
                      log=log)
    set_checkpoint_layers(model, choice.candidate.ckpt_layers)
    if liger:
        liger.set(choice.candidate.liger)
    if log:
        log("autotune: " + choice.why)
    return choice


def trainer_batches(trainer) -> Callable:
    """``batches(start_row, n_rows)`` over a transformers/TRL Trainer's own training rows and
    collator, so the autotuner measures the exact rows (packed or padded) the run will train on.
    Real tokens: the attention mask's sum when there is one, else every non-pad input token."""
    ds, collate = trainer.train_dataset, trainer.data_collator
    pad = getattr(getattr(trainer, "processing_class", None), "pad_token_id", None)

    def rows(start: int, n: int):
        batch = collate([ds[(start + i) % len(ds)] for i in range(n)])
        inputs = {k: batch[k] for k in ("input_ids", "labels", "attention_mask", "position_ids")
                  if k in batch}
        if "attention_mask" in batch:
            real = int(batch["attention_mask"].sum())
        elif pad is not None:
            real = int((batch["input_ids"] != pad).sum())
        else:
            real = int(batch["input_ids"].numel())
        return inputs, real

    return rows


def training_overrides(choice: TuneChoice) -> dict:
    """Keyword arguments for transformers ``TrainingArguments`` / TRL ``SFTConfig``.

    Checkpointing and liger are already applied to the model by :func:`autotune_model`, so the
    Trainer must not re-enable them for every layer.
    """
    return {
        "per_device_train_batch_size": choice.candidate.micro_batch,
        "gradient_accumulation_steps": choice.candidate.grad_accum,
        "gradient_checkpointing": False,
        "use_liger_kernel": False,
        "bf16": True,
    }
