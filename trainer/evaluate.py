"""Before/after evaluation on an export's eval split, stored in `eval.json` and printed as a table.

SFT: eval loss and perplexity (exp of the mean completion-token loss) of the base model vs the
tuned one, plus a few greedy generations side by side. Classifier: accuracy and macro-F1 of the
untuned model and of a majority-class baseline vs the tuned model, on the whole eval split and on
its gold-labelled subset, with per-class precision/recall/F1 and the confusion matrix of the whole
split (all from `pipelines.metrics`, the scores the ROI study and the label analysis use too).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from pipelines.metrics import classification_report

__all__ = ["classification_metrics", "majority_baseline", "perplexity", "format_eval_table"]


def classification_metrics(y_true: list[str], y_pred: list[str], classes: list[str]) -> dict[str, Any]:
    """n, accuracy, macro_f1 (None when n = 0), per_class {class: {precision, recall, f1,
    support}} and confusion (rows: true, columns: predicted, in `classes` order), rounded to 4."""
    return classification_report(y_true, y_pred, classes).to_dict(digits=4)


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
    lines.append(f"(on {ev.get('on', 'eval')}: {ev.get('n_eval', 0)} examples)")
    for g in ev.get("generations", [])[:3]:
        lines.append(f"- prompt: {g['prompt'][:80]!r}")
        lines.append(f"  base:  {g['base'][:80]!r}")
        lines.append(f"  tuned: {g['tuned'][:80]!r}")
    return "\n".join(lines)
