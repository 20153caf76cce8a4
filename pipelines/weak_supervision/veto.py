"""Hard rules that win: vetoes applied after aggregation, whatever the label model learned.

A label model weighs LFs by how reliable they look; when ACCEPT-voting LFs look reliable it can
outvote a refusal detector, so "any refusal -> REJECT" does not hold. A veto makes it hold:

- a veto LF (`veto(lf)`, or any LF with `lf.veto = True`): wherever it votes, its vote is the
  final label, confidence 1.0;
- a rule veto (`label.vetoes` in curation.yaml, `{"refusal": "REJECT"}`): a quality-filter rule
  over the stored signals (`curate filter` computes them) that forces a label.

Vetoes are applied in order (LF vetoes in LF order, then rule vetoes); the first one that fires
on a record decides it. The count of labels each veto changed goes into the run's analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from pipelines.errors import ConfigError

__all__ = ["veto", "Veto", "VetoOutcome", "collect_vetoes", "apply_vetoes"]


def veto(lf):
    """Mark a labeling function as a veto: `lf_refusal = veto(labeling_function()(f))`, or
    `@veto` above `@labeling_function()`."""
    lf.veto = True
    return lf


@dataclass(frozen=True)
class Veto:
    name: str                    # the LF's name, or "rule: <rule text>"
    lf_index: int | None = None  # column of L (LF veto)
    rule: Any = None             # a pipelines.filters Rule (rule veto)
    label: int | None = None     # class index the rule forces


@dataclass
class VetoOutcome:
    labels: np.ndarray
    confidence: np.ndarray
    stats: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> fired, changed

    def notes(self) -> list[str]:
        return [f"veto {name}: fired on {s['fired']} records, changed {s['changed']} labels"
                for name, s in self.stats.items()]


def collect_vetoes(lfs: Sequence[Any], lf_names: Sequence[str], classes: Sequence[str],
                   rule_vetoes: Mapping[str, str] | None) -> list[Veto]:
    """The vetoes of a run: LFs marked `veto`, then `rule -> class` pairs (checked here)."""
    from pipelines.filters.rules import parse_rule

    out = [Veto(name, lf_index=j) for j, (lf, name) in enumerate(zip(lfs, lf_names))
           if getattr(lf, "veto", False)]
    for text, label in (rule_vetoes or {}).items():
        if label not in classes:
            raise ConfigError(f"label.vetoes: {text!r} -> {label!r}: {label!r} is not a class "
                              f"({', '.join(classes)})")
        out.append(Veto(f"rule: {text}", rule=parse_rule(text), label=list(classes).index(label)))
    return out


def apply_vetoes(labels: np.ndarray, confidence: np.ndarray, L: np.ndarray,
                 vetoes: Sequence[Veto],
                 signals: Sequence[Mapping[str, Any] | None] | None = None) -> VetoOutcome:
    """Labels and confidences with every veto applied (inputs are not modified).

    Args:
        L: the label matrix (n x m, -1 abstain) the LF vetoes read.
        signals: per record, the stored quality signals (None where none); rule vetoes read them.
    """
    labels, confidence = labels.copy(), confidence.astype(float).copy()
    decided = np.zeros(len(labels), dtype=bool)
    stats: dict[str, dict[str, int]] = {}
    for v in vetoes:
        if v.lf_index is not None:
            votes = L[:, v.lf_index]
            fires = votes >= 0
            forced = votes
        else:
            fires = np.array([bool(s) and v.rule.holds(s) for s in (signals or [None] * len(labels))],
                             dtype=bool)
            forced = np.full(len(labels), v.label)
        act = fires & ~decided
        changed = act & (labels != forced)
        labels[act] = forced[act]
        confidence[act] = 1.0
        decided |= act
        stats[v.name] = {"fired": int(fires.sum()), "changed": int(changed.sum())}
    return VetoOutcome(labels, confidence, stats)
