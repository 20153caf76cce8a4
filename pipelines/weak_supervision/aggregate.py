"""Turning `L` into one label per record: snorkel's `LabelModel` or `MajorityLabelVoter`.

Both are scored on the gold-labelled records (the label model never sees gold: it learns LF
accuracies from their agreements alone), and `auto` keeps the label model only when it beats
majority vote there: the label model is worth its complexity only when it measurably helps
(snorkel#1713).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines.metrics import accuracy, confusion_matrix

__all__ = ["MIN_LFS_FOR_LABEL_MODEL", "ModelScore", "Aggregation", "majority_proba",
           "label_model_proba", "aggregate", "decide"]

MIN_LFS_FOR_LABEL_MODEL = 3   # snorkel's LabelModel needs at least 3 LFs


@dataclass
class ModelScore:
    """A model's labels against gold, over the covered records and counting abstentions.

    `accuracy` is over the gold records the model labelled (`n_gold` of them); `accuracy_all`
    counts every gold record, an abstention as wrong (`n_gold_total`). `per_class[i]` and
    `confusion` rows are by gold class index; the confusion's last column counts abstentions.
    """

    accuracy: float | None      # on gold records that got a label; None without gold
    n_gold: int                 # gold records that got a label
    correct: int
    n_gold_total: int = 0       # every gold record, labelled or not
    accuracy_all: float | None = None   # correct / n_gold_total
    per_class: list[dict[str, Any]] = field(default_factory=list)  # n, covered, correct, accuracy
    confusion: list[list[int]] = field(default_factory=list)       # k x (k + 1), last: abstained

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "n_gold": self.n_gold, "correct": self.correct,
                "n_gold_total": self.n_gold_total, "accuracy_all": self.accuracy_all,
                "per_class": self.per_class, "confusion": self.confusion}


@dataclass
class Aggregation:
    chosen: str                               # label_model | majority
    labels: np.ndarray                        # class index per record, -1: every LF abstained
    confidence: np.ndarray                    # probability of that label (0.0 when abstained)
    scores: dict[str, ModelScore] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def majority_proba(L: np.ndarray, k: int) -> np.ndarray:
    """Vote shares per class (ties split evenly), as `MajorityLabelVoter.predict_proba`."""
    from snorkel.labeling.model import MajorityLabelVoter

    if len(L) == 0:
        return np.zeros((0, k))
    return MajorityLabelVoter(cardinality=k).predict_proba(L)


def label_model_proba(L: np.ndarray, k: int, *, epochs: int, lr: float, seed: int) -> np.ndarray:
    import torch
    from snorkel.labeling.model import LabelModel

    # The model is tiny (m x k parameters): torch's intra-op threads only fight over the cores.
    # Measured on 2 busy cores: 55 s with 2 threads, 2.2 s with 1 (2,730 x 13 L, 500 epochs).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        model = LabelModel(cardinality=k, verbose=False, device="cpu")
        model.fit(L_train=L, n_epochs=epochs, lr=lr, seed=seed, log_freq=max(epochs, 1),
                  progress_bar=False)
        return model.predict_proba(L)
    finally:
        torch.set_num_threads(threads)


def _decide_rows(L: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    covered = (L != -1).any(axis=1)
    labels = np.where(covered, proba.argmax(axis=1) if len(proba) else -1, -1)
    confidence = np.where(covered, proba.max(axis=1) if len(proba) else 0.0, 0.0)
    return labels.astype(int), confidence.astype(float)


def _score(labels: np.ndarray, gold: np.ndarray, k: int) -> ModelScore:
    has_gold = gold >= 0
    mask = has_gold & (labels >= 0)
    n_total, correct = int(has_gold.sum()), int((labels[mask] == gold[mask]).sum())
    # Abstention is a column of its own (-1), so the confusion shows where coverage is missing.
    conf = confusion_matrix(gold[has_gold].tolist(), labels[has_gold].tolist(),
                            classes=[*range(k), -1])[:k].tolist()
    per_class = []
    for i in range(k):
        n_i = int((gold == i).sum())
        hit = int(conf[i][i])
        per_class.append({"n": n_i, "covered": n_i - int(conf[i][k]), "correct": hit,
                          "accuracy": hit / n_i if n_i else None})
    return ModelScore(accuracy=accuracy(gold[mask], labels[mask]), n_gold=int(mask.sum()),
                      correct=correct, n_gold_total=n_total,
                      accuracy_all=correct / n_total if n_total else None,
                      per_class=per_class, confusion=conf)


def decide(requested: str, n_lfs: int, scores: dict[str, ModelScore]) -> tuple[str, list[str]]:
    """Which model labels the records, and why (the notes are shown to the user)."""
    notes: list[str] = []
    if n_lfs < MIN_LFS_FOR_LABEL_MODEL:
        notes.append(f"only {n_lfs} LF(s): the label model needs at least "
                     f"{MIN_LFS_FOR_LABEL_MODEL}; using majority vote")
        return "majority", notes
    if requested in ("label_model", "majority"):
        return requested, notes
    lm, mv = scores.get("label_model"), scores.get("majority")
    if lm is None or lm.accuracy is None or mv is None or mv.accuracy is None:
        notes.append("no gold labels to compare the models on: using the label model")
        return "label_model", notes
    if lm.accuracy > mv.accuracy:
        notes.append(f"label model beats majority vote on {lm.n_gold} gold records "
                     f"({lm.accuracy:.3f} vs {mv.accuracy:.3f})")
        return "label_model", notes
    notes.append(f"label model does no better than majority vote on {lm.n_gold} gold records "
                 f"({lm.accuracy:.3f} vs {mv.accuracy:.3f}): using majority vote")
    return "majority", notes


def aggregate(L: np.ndarray, k: int, gold: np.ndarray, *, model: str = "auto", epochs: int = 500,
              lr: float = 0.01, seed: int = 123) -> Aggregation:
    """Fit/score both models (the label model only with >= 3 LFs) and keep the chosen one's labels.

    Args:
        gold: class index per record, -1 where the record has no gold label.
    """
    n_lfs = L.shape[1]
    results: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    scores: dict[str, ModelScore] = {}
    results["majority"] = _decide_rows(L, majority_proba(L, k))
    scores["majority"] = _score(results["majority"][0], gold, k)
    if n_lfs >= MIN_LFS_FOR_LABEL_MODEL and len(L):
        proba = label_model_proba(L, k, epochs=epochs, lr=lr, seed=seed)
        results["label_model"] = _decide_rows(L, proba)
        scores["label_model"] = _score(results["label_model"][0], gold, k)
    chosen, notes = decide(model, n_lfs, scores)
    labels, confidence = results[chosen]
    return Aggregation(chosen=chosen, labels=labels, confidence=confidence, scores=scores,
                       notes=notes)
