"""Before/after evaluation on an export's eval split, stored in `eval.json` and printed as a table.

SFT: eval loss and perplexity (exp of the mean completion-token loss) of the base model vs the
tuned one, plus a few greedy generations side by side. Classifier and probe: accuracy and macro-F1
of the untuned model (the probe: the majority class) and of a majority-class baseline vs the tuned
model, on every eval row and on the gold-labelled subset, with per-class precision/recall/F1 and
the confusion matrix of the whole split (all from `pipelines.metrics`, the scores the ROI study
and the label analysis use too).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from pipelines.metrics import classification_report

__all__ = ["classification_metrics", "never_predicted", "majority_baseline", "perplexity",
           "format_eval_table"]


def classification_metrics(y_true: list[str], y_pred: list[str], classes: list[str]) -> dict[str, Any]:
    """n, accuracy, macro_f1 (None when n = 0), per_class {class: {precision, recall, f1,
    support}} and confusion (rows: true, columns: predicted, in `classes` order), rounded to 4."""
    return classification_report(y_true, y_pred, classes).to_dict(digits=4)


def never_predicted(y_pred: list[str], classes: list[str]) -> list[str]:
    """The classes no prediction names (a collapsed model predicts one or two of them)."""
    seen = set(y_pred)
    return [c for c in classes if c not in seen]


def majority_baseline(train_labels: list[str]) -> str:
    return Counter(train_labels).most_common(1)[0][0]


def perplexity(loss: float | None) -> float | None:
    if loss is None:
        return None
    return round(math.exp(min(loss, 50.0)), 3)


def format_eval_table(ev: dict[str, Any]) -> str:
    """A small text table of base vs tuned (and a ratio/delta column)."""
    lines = []
    base, tuned = ev.get("base", {}), ev.get("tuned", {})
    keys = [k for k in ("eval_loss", "perplexity", "accuracy", "macro_f1", "gold_accuracy",
                        "gold_macro_f1", "majority_accuracy", "majority_macro_f1",
                        "logp_accuracy", "logp_margin", "reward_accuracy", "reward_margin")
            if base.get(k) is not None or tuned.get(k) is not None]
    lines.append(f"{'metric':<20}{'base':>12}{'tuned':>12}")
    for k in keys:
        b, t = base.get(k), tuned.get(k)
        fb = f"{b:.4f}" if isinstance(b, (int, float)) else "-"
        ft = f"{t:.4f}" if isinstance(t, (int, float)) else "-"
        lines.append(f"{k:<20}{fb:>12}{ft:>12}")
    total = ev.get("n_eval_total")
    of = f" of {total}" if total and total != ev.get("n_eval") else ""
    lines.append(f"(on {ev.get('on', 'eval')}: {ev.get('n_eval', 0)}{of} examples)")
    lines.extend(_format_detail(tuned, ev.get("classes") or []))
    for g in ev.get("generations", [])[:3]:
        lines.append(f"- prompt: {g['prompt'][:80]!r}")
        lines.append(f"  base:  {g['base'][:80]!r}")
        lines.append(f"  tuned: {g['tuned'][:80]!r}")
    return "\n".join(lines)


def _format_detail(tuned: dict[str, Any], classes: list[str]) -> list[str]:
    """The tuned model's per-class table and confusion matrix, when it has them."""
    per_class, confusion = tuned.get("per_class"), tuned.get("confusion")
    if not per_class:
        return []
    width = max(12, *(len(c) + 2 for c in classes)) if classes else 12
    lines = ["", f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
    for c, m in per_class.items():
        lines.append(f"{c:<{width}}{m['precision']:>10.4f}{m['recall']:>10.4f}{m['f1']:>10.4f}"
                     f"{m['support']:>9}")
    if tuned.get("never_predicted"):
        lines.append(f"never predicted: {', '.join(tuned['never_predicted'])}")
    if confusion and classes:
        cell = max(7, *(len(str(v)) + 2 for row in confusion for v in row))
        short = [c[: cell - 1] for c in classes]
        lines += ["", "confusion (rows: true, columns: predicted)",
                  " " * width + "".join(f"{c:>{cell}}" for c in short)]
        for c, row in zip(classes, confusion):
            lines.append(f"{c:<{width}}" + "".join(f"{v:>{cell}}" for v in row))
    return lines
