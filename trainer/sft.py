"""Causal-LM SFT head: TRL `SFTTrainer` + a peft `LoraConfig`, loss on every assistant turn.

Chat and alpaca exports become whole conversations, tokenised by `trainer.sft_data` with the
tokenizer's chat template: every assistant turn is trained, system and user turns are masked
out of the loss (-100), and each conversation is fitted to `max_seq_length` keeping its final
answer (the length comes from the data unless the config sets it). `qlora` loads the base in
4-bit NF4 through `trainer._bnb` and runs peft's `prepare_model_for_kbit_training`, except under
a memory budget on CUDA: then the base stays bf16 and frozen, and `autotune_sft` picks the
micro-batch x accumulation, checkpointed layers and liger from measured trials (docs/gpu.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from pipelines.errors import TrainError
from pipelines.offline import hub_offline
from trainer.config import SFT_DEFAULTS, TrainConfig
from trainer.device import Plan
from trainer.sft_data import WARN_CUT_SHARE, LengthReport, prepare_examples, row_messages

__all__ = ["to_prompt_completion", "trl_args", "load_causal_lm", "build_sft_trainer", "cut_warning",
           "autotune_sft", "apply_tune_choice", "generate", "compare_generations"]


def to_prompt_completion(row: dict[str, Any], fmt: str) -> dict[str, Any] | None:
    """An export row (chat or alpaca) -> {"prompt": [messages], "completion": [final answer]}
    (the base/tuned generations); None when it holds no user -> assistant exchange."""
    msgs = row_messages(row, fmt)
    if not msgs:
        return None
    return {"prompt": msgs[:-1], "completion": [msgs[-1]]}


def trl_args(cfg: TrainConfig, plan: Plan, output_dir: Path) -> dict[str, Any]:
    """The TrainingArguments both TRL heads (sft, dpo) share: budget, checkpoints, device."""
    return dict(
        output_dir=str(output_dir),
        max_steps=cfg.max_steps,
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio,   # transformers 5: a float below 1 is a share of the steps
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        eval_strategy="no",
        report_to="none",
        use_cpu=plan.device == "cpu",
        bf16=plan.bf16,
        gradient_checkpointing=plan.gradient_checkpointing,
    )


def load_causal_lm(cfg: TrainConfig, base: str, plan: Plan) -> tuple[Any, Any, list[str]]:
    """Load tokenizer and model from a local folder (or the offline HF cache); check they fit."""
    offline = hub_offline()   # before transformers is imported, if it is not yet
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from trainer.tiny import DEFAULT_CHAT_TEMPLATE

    notices: list[str] = []
    local = Path(base).expanduser()
    if not local.exists() and (base.startswith((".", "/", "~")) or base.count("/") != 1):
        raise TrainError(f"base model {base!r} does not exist (not a local folder, not a hub id)")
    try:
        config = AutoConfig.from_pretrained(str(local) if local.exists() else base,
                                            local_files_only=offline)
    except (OSError, ValueError) as exc:
        hint = ("offline: only local folders and the HF cache are readable; --allow-download "
                "fetches it from the hub" if offline else "downloads allowed")
        raise TrainError(f"cannot load base model {base!r}: "
                         f"{(str(exc).splitlines() or [type(exc).__name__])[0]} ({hint})") from None
    archs = config.architectures or []
    if archs and not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        raise TrainError(f"base model {base!r} is not a causal language model (architectures: "
                         f"{', '.join(archs)}); the sft head needs e.g. a *ForCausalLM model")
    max_pos = getattr(config, "max_position_embeddings", None)
    if max_pos and cfg.max_seq_length is not None and cfg.max_seq_length > max_pos:
        raise TrainError(f"max_seq_length {cfg.max_seq_length} exceeds what {base} can take "
                         f"(max_position_embeddings {max_pos}); lower train.max_seq_length")
    tok = AutoTokenizer.from_pretrained(str(local) if local.exists() else base,
                                        local_files_only=offline)
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
        model = AutoModelForCausalLM.from_pretrained(str(local) if local.exists() else base,
                                                     local_files_only=offline, **kwargs)
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
    """A ready `SFTTrainer` (LoRA applied) and its tokenizer; also the loader's notices.

    The trainer's `length_report` (`trainer.sft_data.LengthReport`) says which
    `max_seq_length` the run uses and what fitting the train split to it cut.
    """
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    cfg = cfg.with_defaults(**SFT_DEFAULTS)   # fields left unset (None) take the sft defaults

    if not progress:
        import datasets

        datasets.disable_progress_bars()
    model, tok, notices = load_causal_lm(cfg, base, plan)
    max_pos = getattr(model.config, "max_position_embeddings", None)
    train_ex, report = prepare_examples(tok, train_rows, fmt, cfg.max_seq_length, max_pos)
    max_len = report.max_seq_length
    if not train_ex:
        raise TrainError(f"nothing to train: with max_seq_length={max_len} every train "
                         f"example's completion is cut off ({report.line()}); raise "
                         f"max_seq_length")
    eval_ds = None
    if eval_rows:
        eval_ex, _ = prepare_examples(tok, eval_rows, fmt, max_len, max_pos)
        if not eval_ex:
            raise TrainError(f"no eval loss: with max_seq_length={max_len} every eval example's "
                             f"completion is cut off (the loss is on assistant turns only); "
                             f"raise max_seq_length")
        eval_ds = Dataset.from_list(eval_ex)
    train_ds = Dataset.from_list(train_ex)
    args = SFTConfig(
        **trl_args(cfg, plan, output_dir),
        max_length=max_len,       # the examples already fit; TRL's truncation is a no-op
        packing=cfg.packing,
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
    trainer.length_report = report
    return trainer, tok, notices


def cut_warning(report: LengthReport) -> str | None:
    """The line to show before training when too many final answers would be cut."""
    if report.cut_share <= WARN_CUT_SHARE:
        return None
    return (f"{report.completions_cut} of {report.n} conversations ({report.cut_share:.0%}) "
            f"would lose part of their final answer at max_seq_length "
            f"{report.max_seq_length} (longest {report.tokens.get('max', 0)} tokens); raise "
            f"max_seq_length to train on whole answers")


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
                         f"it or lower max_seq_length (now {trainer.args.max_length})") from None
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


def generate(model, tok, prompts: list[list[dict]], max_new_tokens: int, *, batch_size: int = 1,
             on_done: Callable[[int], None] | None = None) -> list[str]:
    """Greedy continuations of chat prompts (the base/tuned side-by-side, `curate generate`).

    Args:
        batch_size: prompts per `model.generate` call, left-padded (greedy decoding gives the
            same text as one at a time, up to float rounding).
        on_done: called with the number of prompts finished after each batch (a progress bar).
    """
    import torch

    outs: list[str] = []
    model.eval()
    side = tok.padding_side
    tok.padding_side = "left"   # generation continues from the right end of every row
    try:
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start:start + batch_size]
            texts = [tok.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
                     for p in chunk]
            ids = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            ids = {k: v.to(model.device) for k, v in ids.items()}
            with torch.no_grad():
                out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=tok.pad_token_id)
            width = ids["input_ids"].shape[1]
            outs += [tok.decode(row[width:], skip_special_tokens=True).strip() for row in out]
            if on_done is not None:
                on_done(len(chunk))
    finally:
        tok.padding_side = side
    return outs


def compare_generations(rd, prompts: list[list[dict]], *, max_new_tokens: int | None = None,
                        batch_size: int = 4, on_done: Callable[[int], None] | None = None
                        ) -> list[dict[str, str]]:
    """Base vs tuned greedy generations of a finished SFT run (`rd`: a `trainer.runs.RunDir`).

    Loads the run's base model (its config.yaml) once, wraps it with the saved adapter, and
    generates with the adapter disabled (the base) and enabled (the tuned model).

    Raises:
        TrainError: the run is not an SFT run or has no saved adapter yet.
    """
    from peft import PeftModel

    from trainer.device import plan_device

    if not rd.config_yaml.is_file():
        raise TrainError(f"run {rd.id} has no config.yaml ({rd.config_yaml})")
    cfg = TrainConfig.from_yaml(rd.config_yaml)
    if cfg.head != "sft":
        raise TrainError(f"run {rd.id} trained the {cfg.head} head; generation needs an sft run")
    if not (rd.adapter / "adapter_config.json").is_file():
        raise TrainError(f"run {rd.id} has no adapter yet ({rd.adapter}): wait for it to finish")
    plan = plan_device(cfg.replace(method="lora"))   # generation needs no 4-bit base
    model, tok, _ = load_causal_lm(cfg.replace(method="lora"), cfg.base_model, plan)
    model = PeftModel.from_pretrained(model, str(rd.adapter))
    n_tokens = max_new_tokens or cfg.max_new_tokens
    with model.disable_adapter():
        base = generate(model, tok, prompts, n_tokens, batch_size=batch_size, on_done=on_done)
    tuned = generate(model, tok, prompts, n_tokens, batch_size=batch_size, on_done=on_done)
    return [{"prompt": p[-1]["content"], "base": b, "tuned": t}
            for p, b, t in zip(prompts, base, tuned)]
