"""Scores of one fit and their spread over seeds.

Plain numpy on purpose: the trainer may run on a machine without scikit-learn.
"""

from __future__ import annotations

import math
from typing import Sequence

__all__ = ["accuracy", "macro_f1", "mean_ci", "T_975"]

# Two-sided 95% Student t quantiles by degrees of freedom (n seeds - 1).
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
         9: 2.262, 10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042}


def accuracy(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} labels vs {len(y_pred)} predictions")
    if not y_true:
        return 0.0
    return sum(t == p for t, p in zip(y_true, y_pred)) / len(y_true)


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]) -> float:
    """Unweighted mean of per-class F1 over `classes` (a class never predicted nor true: 0)."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} labels vs {len(y_pred)} predictions")
    f1s = []
    for c in classes:
        tp = sum(t == c and p == c for t, p in zip(y_true, y_pred))
        fp = sum(t != c and p == c for t, p in zip(y_true, y_pred))
        fn = sum(t == c and p != c for t, p in zip(y_true, y_pred))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(f1s) / len(f1s) if f1s else 0.0


def _t(df: int) -> float:
    if df in T_975:
        return T_975[df]
    below = max(k for k in T_975 if k <= df)
    return T_975[below] if df < 30 else 1.96


def mean_ci(values: Sequence[float]) -> tuple[float, list[float]]:
    """Mean and the 95% Student-t interval of the mean over seeds ([mean, mean] for one seed)."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = sum(values) / n
    if n == 1:
        return mean, [mean, mean]
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = _t(n - 1) * sd / math.sqrt(n)
    return mean, [max(0.0, mean - half), min(1.0, mean + half)]
