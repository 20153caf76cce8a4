"""Build QLoRA models from a shape, run training steps, and time autotuner trials.

Used by ``bench/train_gpu.py`` and by the trainer (``trainer.gpu.autotune_model``). Everything
works on CPU with a tiny shape (memory then comes from a saved-tensor meter instead of the CUDA
allocator), so the device run is never the first time this code runs.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from torch import nn

from trainer._bnb import nf4_linear

from .autotune import Candidate, TrialResult
from .switches import LigerSwitch, set_checkpoint_layers

SHAPES: dict[str, dict] = {
    # Llama-2-7B
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=32, vocab_size=32000),
    # TinyLlama-1.1B
    "1.1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                 num_attention_heads=32, num_key_value_heads=4, vocab_size=32000),
    # for CPU dry runs and tests
    "tiny": dict(hidden_size=64, intermediate_size=172, num_hidden_layers=4,
                 num_attention_heads=4, num_key_value_heads=2, vocab_size=256),
}

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def llama_config(shape: str, seq_len: int, attn: str = "sdpa"):
    from transformers import LlamaConfig

    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {sorted(SHAPES)}, got {shape!r}")
    cfg = LlamaConfig(**SHAPES[shape], max_position_embeddings=max(seq_len, 2048),
                      rms_norm_eps=1e-5, tie_word_embeddings=False)
    cfg._attn_implementation = attn
    return cfg


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def quantize_nf4_(model: nn.Module, *, compute_dtype=torch.bfloat16, double_quant: bool = True,
                  skip: tuple[str, ...] = ("lm_head",)) -> int:
    """Replace every ``nn.Linear`` (but ``skip``) by a bitsandbytes NF4 ``Linear4bit``, in place,
    one layer at a time, on the layer's own device. Returns how many were replaced.

    This is what ``from_pretrained(quantization_config=BitsAndBytesConfig(load_in_4bit=True,
    bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, ...))`` produces, without writing
    a 13 GB checkpoint first.
    """
    n = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is not nn.Linear or name in skip:
                continue
            q = nf4_linear(child, compute_dtype=compute_dtype, double_quant=double_quant)
            setattr(parent, name, q)
            del child
            n += 1
    try:  # what peft reads to wrap Linear4bit layers and prepare k-bit training
        model.is_loaded_in_4bit = True
    except AttributeError:  # a read-only property in some transformers versions
        model.__dict__["is_loaded_in_4bit"] = True
    return n


def build_qlora_base(shape: str, *, seq_len: int, device: str, seed: int = 0,
                     attn: str = "sdpa") -> nn.Module:
    """A random-init Llama of ``shape``: bf16 weights created on ``device``, linears in NF4."""
    from transformers import LlamaForCausalLM

    cfg = llama_config(shape, seq_len, attn)
    torch.manual_seed(seed)
    with _default_dtype(torch.bfloat16), torch.device(device):
        model = LlamaForCausalLM(cfg)
    quantize_nf4_(model)
    model.config.use_cache = False
    return model


def add_lora(model: nn.Module, *, r: int = 16, alpha: int = 32, dropout: float = 0.0, seed: int = 1):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=LORA_TARGETS,
                     task_type="CAUSAL_LM")
    return get_peft_model(model, cfg)


def plain_recipe(model: nn.Module, **lora) -> nn.Module:
    """What most users write: ``prepare_model_for_kbit_training`` (fp32 norms and embeddings,
    gradient checkpointing on every layer) then LoRA."""
    from peft import prepare_model_for_kbit_training

    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    return add_lora(model, **lora)


def tuned_recipe(model: nn.Module, **lora) -> nn.Module:
    """Ours: bf16 everywhere but the fp32 LoRA weights, no per-layer input recasts; the
    autotuner then sets checkpointing, liger and the micro-batch."""
    from .switches import lora_compute_in_bf16

    for p in model.parameters():
        p.requires_grad_(False)
    model = add_lora(model, **lora)
    lora_compute_in_bf16(model)
    return model


# ---------------------------------------------------------------------------------------------
# memory accounting

def trainable_params(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def adamw_state_bytes(model: nn.Module) -> int:
    """AdamW keeps two fp32 moments per trainable parameter (allocated at its first step)."""
    return sum(2 * p.numel() * 4 for p in trainable_params(model))


class SavedTensorMeter:
    """Counts bytes of distinct tensors autograd saves for backward (CPU stand-in for the CUDA
    allocator's peak: activations are what grows with batch and shrinks with checkpointing)."""

    def __init__(self, model: nn.Module):
        self._skip = {p.untyped_storage().data_ptr() for p in model.parameters()
                      if p.device.type != "meta"}
        self.seen: set[int] = set()
        self.bytes = 0

    def _pack(self, t: torch.Tensor):
        try:
            s = t.untyped_storage()
            key = s.data_ptr()
            if key not in self._skip and key not in self.seen:
                self.seen.add(key)
                self.bytes += s.nbytes()
        except (RuntimeError, NotImplementedError):  # tensor subclasses without storage
            pass
        return t

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)


def _static_bytes_cpu(model: nn.Module) -> int:
    total = 0
    for p in model.parameters():
        total += p.numel() * p.element_size()
        if p.requires_grad:
            total += p.numel() * 4  # its gradient
    return total


# ---------------------------------------------------------------------------------------------
# steps

Batch = tuple[dict[str, torch.Tensor], int]
"""Model inputs for one micro-step and the number of real (trained-on) tokens in it."""


@dataclass
class RunResult:
    """One recipe's training run: timing over the timed steps, loss per optimizer step."""

    tokens_per_s: float
    peak_bytes: int
    reserved_bytes: int
    losses: list[float]
    step_seconds: list[float]
    real_tokens: int
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("tokens_per_s", "peak_bytes", "reserved_bytes",
                                                "losses", "step_seconds", "real_tokens", "extra")}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _autocast(device: str):
    return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu",
                          dtype=torch.bfloat16)


LossFn = Callable[[nn.Module, dict], torch.Tensor]


def micro_step(model: nn.Module, inputs: dict[str, torch.Tensor], scale: float, device: str,
               loss_fn: LossFn | None = None) -> torch.Tensor:
    """Forward + backward of one micro-batch under bf16 autocast (as HF Trainer's bf16=True).

    ``loss_fn(model, inputs)`` replaces ``model(**inputs).loss`` where the run computes its loss
    another way (a trainer's ``compute_loss``: TRL's fused LM head never builds the logits, so a
    trial through the plain forward would measure memory the run does not use).
    """
    with _autocast(device):
        loss = loss_fn(model, inputs) if loss_fn is not None else model(**inputs).loss
    (loss * scale).backward()
    return loss.detach()


def train_steps(model: nn.Module, batches: Callable[[int, int], Batch], *, micro_batch: int,
                grad_accum: int, steps: int, warmup: int, device: str, lr: float = 2e-4,
                progress: Callable[[str], None] | None = None) -> RunResult:
    """Run ``steps`` optimizer steps (the first ``warmup`` untimed) of ``micro_batch x grad_accum``.

    ``batches(start_row, n_rows)`` returns the same rows for every recipe, so losses compare.
    """
    cuda = device.startswith("cuda")
    params = trainable_params(model)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    model.train()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    losses, times = [], []
    timed_tokens = 0
    meter_peak = 0
    rows_per_step = micro_batch * grad_accum
    for s in range(steps):
        _sync(device)
        t0 = time.perf_counter()
        total = torch.zeros((), device=device)
        step_tokens = 0
        for a in range(grad_accum):
            inputs, real = batches(s * rows_per_step + a * micro_batch, micro_batch)
            inputs = {k: v.to(device, non_blocking=True) for k, v in inputs.items()}
            meter = SavedTensorMeter(model) if not cuda else None
            with (meter.hooks() if meter else contextlib.nullcontext()):
                total += micro_step(model, inputs, 1.0 / grad_accum, device)
            if meter:
                meter_peak = max(meter_peak, meter.bytes)
            step_tokens += real
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss = float(total) / grad_accum  # float() synchronizes
        _sync(device)
        dt = time.perf_counter() - t0
        losses.append(loss)
        if s >= warmup:
            times.append(dt)
            timed_tokens += step_tokens
        if progress:
            progress(f"    step {s + 1}/{steps}: loss {loss:.4f}, {dt:.2f} s")
    if cuda:
        peak = torch.cuda.max_memory_allocated()
        reserved = torch.cuda.max_memory_reserved()
    else:
        peak = _static_bytes_cpu(model) + adamw_state_bytes(model) + meter_peak
        reserved = peak
    del opt
    tps = timed_tokens / sum(times) if times else float("nan")
    return RunResult(tps, int(peak), int(reserved), losses, times, timed_tokens)


def free_memory(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def make_trial(model: nn.Module, batches: Callable[[int, int], Batch], *, device: str,
               liger: LigerSwitch | None = None, warmup: int = 1, loss_fn: LossFn | None = None):
    """A :data:`~trainer.gpu.autotune.TrialFn` over a live PEFT model.

    Trials run forward + backward only (no optimizer step), so the LoRA weights the real run
    starts from are untouched; the AdamW state the real run will hold is added to ``static``.
    """
    cuda = device.startswith("cuda")
    params = trainable_params(model)
    opt_bytes = adamw_state_bytes(model)

    def trial(c: Candidate, steps: int) -> TrialResult:
        set_checkpoint_layers(model, c.ckpt_layers)
        if liger is not None:
            try:
                liger.set(c.liger)
            except (ImportError, AttributeError, TypeError, RuntimeError) as e:
                return TrialResult(c, error=f"liger-kernel patch failed: {type(e).__name__}: {e}")
        elif c.liger:
            return TrialResult(c, error="liger-kernel not available")
        if c.attn != getattr(model.config, "_attn_implementation", c.attn):
            return TrialResult(c, error=f"attention {c.attn} not switchable on a built model")
        model.train()
        for p in params:  # gradients live between steps in a real run: count them as static
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        free_memory(device)
        if cuda:
            static = torch.cuda.memory_allocated() + opt_bytes
            torch.cuda.reset_peak_memory_stats()
        else:
            static = _static_bytes_cpu(model) + opt_bytes
        meter_peak = 0
        tokens = 0
        elapsed = 0.0
        try:
            for i in range(warmup + steps if steps else 1):
                inputs, real = batches(0, c.micro_batch)
                inputs = {k: v.to(device) for k, v in inputs.items()}
                meter = SavedTensorMeter(model) if not cuda else None
                _sync(device)
                t0 = time.perf_counter()
                with (meter.hooks() if meter else contextlib.nullcontext()):
                    micro_step(model, inputs, 1.0, device, loss_fn)
                _sync(device)
                if meter:
                    meter_peak = max(meter_peak, meter.bytes)
                if steps and i >= warmup:
                    elapsed += time.perf_counter() - t0
                    tokens += real
        except torch.OutOfMemoryError:
            for p in params:
                p.grad = None
            free_memory(device)
            return TrialResult(c, static_bytes=int(static), oom=True)
        except RuntimeError as e:  # a kernel that fails for this switch: record, try others
            if c.liger and liger is not None:
                liger.set(False)
            return TrialResult(c, static_bytes=int(static),
                               error=f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
        finally:
            for p in params:
                if p.grad is not None:
                    p.grad.zero_()
        peak = (torch.cuda.max_memory_allocated() + opt_bytes) if cuda else static + meter_peak
        tps = tokens / elapsed if steps and elapsed > 0 else None
        return TrialResult(c, static_bytes=int(static), peak_bytes=int(peak), tokens_per_s=tps)

    return trial


def fixed_rows(vocab: int, seq_len: int, *, seed: int = 0, motif: int = 32) -> Callable[[int, int], Batch]:
    """Deterministic synthetic rows that a model can learn from: each row repeats a random motif
    (so the loss can fall) with 10% random tokens; row ``i`` is the same in every recipe."""

    def rows(start: int, n: int) -> Batch:
        out = []
        for i in range(start, start + n):
            g = torch.Generator().manual_seed(seed * 1_000_003 + i)
            m = torch.randint(3, vocab, (motif,), generator=g)
            row = m.repeat(math.ceil(seq_len / motif))[:seq_len].clone()
            noise = torch.rand(seq_len, generator=g) < 0.1
            row[noise] = torch.randint(3, vocab, (int(noise.sum()),), generator=g)
            out.append(row)
        ids = torch.stack(out)
        return {"input_ids": ids, "labels": ids.clone()}, n * seq_len

    return rows


def variable_examples(vocab: int, n: int, max_len: int, *, seed: int = 0, motif: int = 16) -> list[list[int]]:
    """``n`` synthetic examples of realistic, skewed lengths (log-normal, median max_len/4,
    clipped to 16..max_len), each a noisy repeated motif so the loss can fall."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.exp(torch.randn(n, generator=g) * 0.8 + math.log(max_len / 4))
    out = []
    for ln in lengths.clamp(16, max_len).long().tolist():
        m = torch.randint(3, vocab, (motif,), generator=g)
        row = m.repeat(math.ceil(ln / motif))[:ln].clone()
        noise = torch.rand(ln, generator=g) < 0.1
        row[noise] = torch.randint(3, vocab, (int(noise.sum()),), generator=g)
        out.append(row.tolist())
    return out


def padded_batches(examples: list[list[int]]) -> Callable[[int, int], Batch]:
    """The plain recipe's collator: ``n`` examples per micro-batch, right-padded to the longest,
    with an attention mask; only real tokens count."""
    from .packing import pad_examples

    def rows(start: int, n: int) -> Batch:
        chunk = [examples[(start + i) % len(examples)] for i in range(n)]
        pb = pad_examples(chunk)
        mask = (torch.arange(pb.input_ids.shape[1])[None, :]
                < torch.tensor([len(e) for e in chunk])[:, None]).long()
        return {"input_ids": pb.input_ids, "labels": pb.labels, "attention_mask": mask}, pb.real_tokens

    return rows


def packed_batches(examples: list[list[int]], seq_len: int) -> tuple[Callable[[int, int], Batch], float]:
    """Ours: the same examples packed padding-free into ``seq_len`` rows; returns the batch
    function and the fill ratio (real tokens / capacity)."""
    from .packing import pack_examples

    pb = pack_examples(examples, seq_len)
    per_row = (pb.input_ids != 0).sum(1)  # pad id 0 never occurs in real tokens (ids start at 3)
    R = pb.input_ids.shape[0]

    def rows(start: int, n: int) -> Batch:
        idx = torch.tensor([(start + i) % R for i in range(n)])
        return ({"input_ids": pb.input_ids[idx], "labels": pb.labels[idx],
                 "position_ids": pb.position_ids[idx]}, int(per_row[idx].sum()))

    return rows, pb.fill
