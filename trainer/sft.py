"""Causal-LM SFT head: TRL `SFTTrainer` + a peft `LoraConfig`, loss on completions only.

Chat and alpaca exports both become conversational prompt/completion pairs, so the tokenizer's
chat template renders them and TRL masks the prompt out of the loss. `qlora` loads the base in
4-bit NF4 through `trainer._bnb` and runs peft's `prepare_model_for_kbit_training`, except under
a memory budget on CUDA: then the base stays bf16 and frozen, and `autotune_sft` picks the
micro-batch x accumulation, checkpointed layers and liger from measured trials (docs/gpu.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.errors import TrainError
from trainer.config import SFT_DEFAULTS, TrainConfig
from trainer.device import Plan

__all__ = ["to_prompt_completion", "load_causal_lm", "build_sft_trainer", "autotune_sft",
           "apply_tune_choice", "generate"]


def to_prompt_completion(row: dict[str, Any], fmt: str) -> dict[str, Any]:
    """An export row (chat or alpaca) -> {"prompt": [messages], "completion": [assistant msg]}."""
    if fmt == "chat":
        msgs = row["messages"]
        if not msgs or msgs[-1]["role"] != "assistant":
            raise TrainError("a chat export row must end with an assistant message")
        return {"prompt": msgs[:-1], "completion": [msgs[-1]]}
    if fmt == "alpaca":
        user = row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")
        return {"prompt": [{"role": "user", "content": user}],
                "completion": [{"role": "assistant", "content": row["output"]}]}
    raise TrainError(f"the sft head trains on chat or alpaca exports, not {fmt!r} "
                     f"(use head=classifier for a classification export)")


def load_causal_lm(cfg: TrainConfig, base: str, plan: Plan) -> tuple[Any, Any, list[str]]:
    """Load tokenizer and model from a local folder (or the offline HF cache); check they fit."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from trainer.tiny import DEFAULT_CHAT_TEMPLATE

    notices: list[str] = []
    local = Path(base).expanduser()
    if not local.exists() and (base.startswith((".", "/", "~")) or base.count("/") != 1):
        raise TrainError(f"base model {base!r} does not exist (not a local folder, not a hub id)")
    try:
        config = AutoConfig.from_pretrained(str(local) if local.exists() else base)
    except (OSError, ValueError) as exc:
        raise TrainError(f"cannot load base model {base!r}: {str(exc).splitlines()[0]} "
                         f"(offline: only local folders and the HF cache are readable)") from None
    archs = config.architectures or []
    if archs and not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        raise TrainError(f"base model {base!r} is not a causal language model (architectures: "
                         f"{', '.join(archs)}); the sft head needs e.g. a *ForCausalLM model")
    max_pos = getattr(config, "max_position_embeddings", None)
    if max_pos and cfg.max_seq_length > max_pos:
        raise TrainError(f"max_seq_length {cfg.max_seq_length} exceeds what {base} can take "
                         f"(max_position_embeddings {max_pos}); lower train.max_seq_length")
    tok = AutoTokenizer.from_pretrained(str(local) if local.exists() else base)
    if tok.chat_template is None:
        tok.chat_template = DEFAULT_CHAT_TEMPLATE
        notices.append(f"{base}: tokenizer has no chat template; using the default "
                       f"<|role|> template (see docs/training.md)")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    kwargs: dict[str, Any] = {}
    if plan.method == "qlora":
        from trainer._bnb import quantization_config

        kwargs["quantization_config"] = quantization_config(plan.device)
        kwargs["device_map"] = {"": 0} if plan.device == "cuda" else {"": "cpu"}
        kwargs["dtype"] = torch.bfloat16 if plan.device == "cuda" else torch.float32
    elif plan.bf16:
        kwargs["dtype"] = torch.bfloat16
    try:
        model = AutoModelForCausalLM.from_pretrained(str(local) if local.exists() else base, **kwargs)
    except ValueError as exc:
        raise TrainError(f"base model {base!r} is not a causal language model "
                         f"({str(exc).splitlines()[0]})") from None
    if plan.method == "qlora":
        from peft import prepare_model_for_kbit_training

        if plan.device == "cpu":
            from trainer._bnb import disable_cpu_weight_packing

            disable_cpu_weight_packing(model)

        if plan.budget_bytes is None:
            model = prepare_model_for_kbit_training(
                model, use_gradient_checkpointing=plan.gradient_checkpointing)
        else:
            # The autotuner's recipe (trainer.gpu.runtime.tuned_recipe): no fp32 norms/embeddings,
            # no blanket checkpointing; the base is frozen before peft adds the adapters.
            for p in model.parameters():
                p.requires_grad_(False)
    return model, tok, notices


def build_sft_trainer(cfg: TrainConfig, base: str, plan: Plan, train_rows: list[dict],
                      eval_rows: list[dict], fmt: str, output_dir: Path,
                      callbacks: list | None = None, progress: bool = True):
    """A ready `SFTTrainer` (LoRA applied) and its tokenizer; also the loader's notices."""
    cfg = cfg.with_defaults(**SFT_DEFAULTS)   # fields left unset (None) take the sft defaults
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    if not progress:
        import datasets

        datasets.disable_progress_bars()
    model, tok, notices = load_causal_lm(cfg, base, plan)
    train_ds = Dataset.from_list([to_prompt_completion(r, fmt) for r in train_rows])
    eval_ds = Dataset.from_list([to_prompt_completion(r, fmt) for r in eval_rows]) if eval_rows else None
    args = SFTConfig(
        output_dir=str(output_dir),
        max_steps=cfg.max_steps,
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        eval_strategy="no",
        report_to="none",
        use_cpu=plan.device == "cpu",
        bf16=plan.bf16,
        gradient_checkpointing=plan.gradient_checkpointing,
        max_length=cfg.max_seq_length,
        packing=cfg.packing,
        completion_only_loss=True,
        seed=cfg.seed,
        data_seed=cfg.seed,
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=not progress,
        dataloader_num_workers=0,
    )
    peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                             target_modules=cfg.lora_targets(), task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                         processing_class=tok, peft_config=peft_config, callbacks=callbacks or [])
    if not progress:
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)   # the events file carries the progress
    return trainer, tok, notices


def autotune_sft(trainer, cfg: TrainConfig, plan: Plan, log=print):
    """Autotune a built `SFTTrainer` within `plan.budget_bytes`; returns the `TuneChoice`.

    Trials run on the trainer's own rows and collator; the choice's checkpointing and liger are
    applied to the model in place, micro-batch and accumulation to the trainer's arguments. The
    effective batch `cfg.batch_size * cfg.grad_accum` (and so the learning schedule) is kept.
    """
    from trainer.gpu import (NoFitError, autotune_model, limit_process_memory,
                             lora_compute_in_bf16, trainer_batches)

    if plan.budget_bytes is None:
        raise TrainError("autotune_sft needs a plan with a memory budget")
    if plan.device == "cuda":
        limit_process_memory(plan.budget_bytes)   # the budget is a hard cap, not an estimate
    lora_compute_in_bf16(trainer.model)
    # Trials take the trainer's own loss (TRL's fused LM head: no logits tensor), and liger must
    # keep that head, so its fused cross-entropy stays off. The trials' metrics are dropped.
    saved_tokens = getattr(trainer, "_total_train_tokens", None)
    saved_metrics = {mode: {k: list(v) for k, v in m.items()}
                     for mode, m in getattr(trainer, "_metrics", {}).items()}
    try:
        choice = autotune_model(trainer.model, trainer_batches(trainer),
                                budget_bytes=plan.budget_bytes,
                                effective_batch=cfg.batch_size * cfg.grad_accum,
                                device=plan.device, log=log, fused_linear_cross_entropy=False,
                                loss_fn=lambda model, inputs: trainer.compute_loss(model, dict(inputs)))
    except NoFitError as exc:
        raise TrainError(f"train.memory_budget {cfg.memory_budget!r} is too small: {exc}; raise "
                         f"it or lower max_seq_length (now {cfg.max_seq_length})") from None
    finally:
        if saved_tokens is not None:
            trainer._total_train_tokens = saved_tokens
        for mode, m in getattr(trainer, "_metrics", {}).items():
            m.clear()
            m.update(saved_metrics.get(mode, {}))
    apply_tune_choice(trainer, choice)
    return choice


def apply_tune_choice(trainer, choice) -> None:
    """Set the trainer's micro-batch and accumulation from `choice`; Trainer-side checkpointing
    and liger stay off (`autotune_model` applied them per layer to the model)."""
    from trainer.gpu import training_overrides

    c = choice.candidate
    if c.micro_batch * c.grad_accum != choice.effective_batch:
        raise TrainError(f"autotune chose {c.micro_batch} x {c.grad_accum}, which is not the "
                         f"effective batch {choice.effective_batch}")
    args = trainer.args
    for key, value in training_overrides(choice).items():
        if key == "bf16" and not args.bf16:
            continue   # mixed precision was fixed when the trainer was built
        setattr(args, key, value)
    args.activation_checkpointing = False   # transformers 5: gradient_checkpointing's new name
    trainer._train_batch_size = args.train_batch_size   # cached at Trainer.__init__


def generate(model, tok, prompts: list[list[dict]], max_new_tokens: int) -> list[str]:
    """Greedy continuations of chat prompts (used for the base/tuned side-by-side)."""
    import torch

    outs = []
    model.eval()
    for prompt in prompts:
        ids = tok.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt",
                                      return_dict=True)
        ids = {k: v.to(model.device) for k, v in ids.items()}
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id)
        outs.append(tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    return outs
