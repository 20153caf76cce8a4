"""Classification scores and their spread over seeds: the one place they are computed.

The trainer's `eval.json`, the ROI study and the label analysis (label model / majority vote / each
LF against gold labels) all score through these functions, so "accuracy" and "macro-F1" mean the
same thing everywhere. Plain numpy on purpose: the core must not need scikit-learn (the tests
check the numbers against it).

Labels are any hashable values (class names, or class indices as in the label matrix). Per-class
figures follow scikit-learn's `zero_division=0`: a class never predicted has precision 0, a class
never true has recall 0, and F1 is 0 whenever there is no true positive.

    report = classification_report(["A", "B", "B"], ["A", "B", "A"], classes=["A", "B"])
    report.accuracy, report.macro_f1   # 0.667, 0.667
    mean, (lo, hi) = mean_ci([0.80, 0.82, 0.84])   # over seeds
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Hashable, Sequence

import numpy as np

__all__ = ["ClassStats", "ClassificationReport", "classification_report", "accuracy", "macro_f1",
           "confusion_matrix", "mean_ci", "t_975", "T_975"]

# Two-sided 95% Student t quantiles by degrees of freedom (n seeds - 1).
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
         9: 2.262, 10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042}


def _encode(y_true: Sequence[Hashable], y_pred: Sequence[Hashable],
            classes: Sequence[Hashable]) -> tuple[np.ndarray, np.ndarray, int]:
    """Both sequences as integer codes: `classes` first (0..k-1), any other label after them,
    so a label outside `classes` still counts against accuracy and the per-class figures."""
    t, p = list(y_true), list(y_pred)
    if len(t) != len(p):
        raise ValueError(f"{len(t)} labels vs {len(p)} predictions")
    index: dict[Hashable, int] = {c: i for i, c in enumerate(classes)}
    if len(index) != len(classes):
        raise ValueError(f"classes repeat a label: {list(classes)}")
    for y in (*t, *p):
        index.setdefault(y, len(index))
    return (np.array([index[y] for y in t], dtype=int), np.array([index[y] for y in p], dtype=int),
            len(index))


def _round(x: float | None, digits: int | None) -> float | None:
    return x if x is None or digits is None else round(x, digits)


def _default_classes(y_true: Sequence[Hashable], y_pred: Sequence[Hashable]) -> list:
    return sorted(set(y_true) | set(y_pred))


@dataclass
class ClassStats:
    """One class's precision, recall and F1, and its support (how many true examples)."""

    precision: float
    recall: float
    f1: float
    support: int

    def to_dict(self, digits: int | None = 4) -> dict[str, Any]:
        return {"precision": _round(self.precision, digits),
                "recall": _round(self.recall, digits), "f1": _round(self.f1, digits),
                "support": self.support}


@dataclass
class ClassificationReport:
    """Scores of one set of predictions against the truth.

    `accuracy` and `macro_f1` are None when there is nothing to score (n = 0). `confusion` has
    one row per true class and one column per predicted class, both in `classes` order; pairs
    with a label outside `classes` count in accuracy and per-class figures but not in it.
    """

    n: int
    accuracy: float | None
    macro_f1: float | None
    per_class: dict[Hashable, ClassStats] = field(default_factory=dict)
    confusion: list[list[int]] = field(default_factory=list)

    @property
    def classes(self) -> list:
        return list(self.per_class)

    def to_dict(self, digits: int | None = 4) -> dict[str, Any]:
        """JSON-ready: n, accuracy, macro_f1, per_class {class: {precision, recall, f1,
        support}} and confusion (rows: true class, columns: predicted, in per_class order)."""
        return {"n": self.n, "accuracy": _round(self.accuracy, digits),
                "macro_f1": _round(self.macro_f1, digits),
                "per_class": {str(c): s.to_dict(digits) for c, s in self.per_class.items()},
                "confusion": [list(row) for row in self.confusion]}


def classification_report(y_true: Sequence[Hashable], y_pred: Sequence[Hashable],
                          classes: Sequence[Hashable] | None = None) -> ClassificationReport:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    Args:
        classes: the label space, in display order; macro-F1 averages over exactly these (a class
            neither true nor predicted scores F1 0, as sklearn's `labels=` does). Default: the
            sorted labels seen in either sequence.

    Raises:
        ValueError: the sequences differ in length, or `classes` repeats a label.
    """
    classes = list(classes) if classes is not None else _default_classes(y_true, y_pred)
    t, p, n_codes = _encode(y_true, y_pred, classes)
    k, n = len(classes), len(t)
    hit = t == p
    true_count = np.bincount(t, minlength=n_codes)
    pred_count = np.bincount(p, minlength=n_codes)
    tp = np.bincount(t[hit], minlength=n_codes)
    per_class = {}
    for i, c in enumerate(classes):
        precision = tp[i] / pred_count[i] if pred_count[i] else 0.0
        recall = tp[i] / true_count[i] if true_count[i] else 0.0
        f1 = 2 * tp[i] / (pred_count[i] + true_count[i]) if tp[i] else 0.0
        per_class[c] = ClassStats(float(precision), float(recall), float(f1), int(true_count[i]))
    confusion = np.zeros((k, k), dtype=int)
    inside = (t < k) & (p < k)
    np.add.at(confusion, (t[inside], p[inside]), 1)
    if n == 0:
        return ClassificationReport(0, None, None, per_class, confusion.tolist())
    macro = float(np.mean([s.f1 for s in per_class.values()])) if k else None
    return ClassificationReport(n, float(hit.mean()), macro, per_class, confusion.tolist())


def accuracy(y_true: Sequence[Hashable], y_pred: Sequence[Hashable]) -> float | None:
    """Share of predictions equal to the truth; None when there is nothing to score."""
    t, p, _ = _encode(y_true, y_pred, [])
    return float((t == p).mean()) if len(t) else None


def macro_f1(y_true: Sequence[Hashable], y_pred: Sequence[Hashable],
             classes: Sequence[Hashable] | None = None) -> float | None:
    """Unweighted mean of per-class F1 over `classes` (see `classification_report`)."""
    return classification_report(y_true, y_pred, classes).macro_f1


def confusion_matrix(y_true: Sequence[Hashable], y_pred: Sequence[Hashable],
                     classes: Sequence[Hashable] | None = None) -> np.ndarray:
    """Counts, rows: true class, columns: predicted class, both in `classes` order."""
    return np.array(classification_report(y_true, y_pred, classes).confusion, dtype=int)


def t_975(df: int) -> float:
    """The two-sided 95% Student t quantile for `df` degrees of freedom (the tabulated value at
    or below `df`, so never narrower than exact; 1.96 beyond 30)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df in T_975:
        return T_975[df]
    below = max(k for k in T_975 if k <= df)
    return T_975[below] if df < 30 else 1.96


def mean_ci(values: Sequence[float],
            bounds: tuple[float, float] | None = (0.0, 1.0)) -> tuple[float, list[float]]:
    """Mean and the 95% Student-t interval of the mean over seeds ([mean, mean] for one value).

    Args:
        bounds: clamp the interval to these (scores live in [0, 1]); None for unbounded values
            such as a loss.
    """
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = sum(values) / n
    if n == 1:
        return mean, [mean, mean]
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_975(n - 1) * sd / math.sqrt(n)
    lo, hi = mean - half, mean + half
    if bounds is not None:
        lo, hi = max(bounds[0], lo), min(bounds[1], hi)
    return mean, [lo, hi]
