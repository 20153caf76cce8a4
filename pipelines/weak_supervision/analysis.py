"""What the LFs did: snorkel's `LFAnalysis` plus what its users ask for.

Per LF: polarity, coverage, overlaps, conflicts (snorkel's definitions), empirical accuracy on
the gold-labelled records, its wrong examples (snorkel#1602), faults with record ids; for the
set: total coverage and the pairwise conflict matrix (snorkel#1707); and the label model vs
majority-vote scores of the run (snorkel#1713).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from pipelines.metrics import accuracy

__all__ = ["LFStat", "LFReport", "analyze_matrix", "conflict_matrix"]


@dataclass
class LFStat:
    name: str
    polarity: list[str]                 # class names it ever voted
    coverage: float                     # fraction of records it labels
    overlaps: float                     # ... that another LF also labels
    conflicts: float                    # ... that another LF labels differently
    emp_accuracy: float | None          # correct / votes on gold records; None: no such votes
    n_gold_votes: int
    correct: int
    incorrect: int
    faults: int = 0
    fault_examples: list[str] = field(default_factory=list)
    fault_message: str = ""
    wrong_examples: list[dict[str, str]] = field(default_factory=list)  # id, voted, gold
    origin: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LFReport:
    scheme: str
    classes: list[str]
    n_records: int
    n_gold: int
    coverage: float                     # records with at least one vote
    overlap: float
    conflict: float
    lfs: list[LFStat]
    conflict_matrix: list[list[float]]  # [a][b]: fraction of records where a and b disagree
    run_id: int | None = None
    models: dict[str, Any] = field(default_factory=dict)   # label_model/majority scores
    chosen: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def lf_names(self) -> list[str]:
        return [s.name for s in self.lfs]

    def lf(self, name: str) -> LFStat:
        for s in self.lfs:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lf_names"] = self.lf_names
        return d

    def to_frame(self):
        """The per-LF table as a DataFrame (what the studio and the CLI show)."""
        import pandas as pd

        cols = ["name", "polarity", "coverage", "overlaps", "conflicts", "emp_accuracy",
                "n_gold_votes", "faults"]
        return pd.DataFrame([{c: getattr(s, c) for c in cols} for s in self.lfs])


def _name(classes: Sequence[str], v: int) -> str:
    return classes[v] if 0 <= v < len(classes) else str(int(v))


def conflict_matrix(L: np.ndarray) -> np.ndarray:
    """m x m: fraction of rows where LFs a and b both vote and disagree (diagonal 0)."""
    n, m = L.shape
    out = np.zeros((m, m))
    if n == 0:
        return out
    voted = L != -1
    for a in range(m):
        both = voted[:, a:a + 1] & voted
        out[a] = (both & (L[:, a:a + 1] != L)).sum(axis=0) / n
    return out


def analyze_matrix(L: np.ndarray, lf_names: Sequence[str], classes: Sequence[str], *,
                   record_ids: Sequence[str], gold: np.ndarray,
                   faults: dict[str, Any] | None = None, origins: dict[str, str] | None = None,
                   wrong_examples: int = 10, scheme: str = "") -> LFReport:
    """The analysis of one label matrix.

    Args:
        gold: class index per row of L, -1 where the record has no gold label.
        faults: {LF name: LFFault-like with count/examples/message}.
    """
    from snorkel.labeling import LFAnalysis

    n, m = L.shape
    faults = faults or {}
    origins = origins or {}
    if n:
        with warnings.catch_warnings():  # scipy's int64 -> float64 FutureWarning inside snorkel
            warnings.simplefilter("ignore", FutureWarning)
            an = LFAnalysis(L)
            coverages, overlaps, conflicts = an.lf_coverages(), an.lf_overlaps(), an.lf_conflicts()
            total = (an.label_coverage(), an.label_overlap(), an.label_conflict())
    else:
        coverages = overlaps = conflicts = np.zeros(m)
        total = (0.0, 0.0, 0.0)
    has_gold = gold >= 0
    stats = []
    for j, name in enumerate(lf_names):
        col = L[:, j]
        votes = has_gold & (col != -1)
        right = votes & (col == gold)
        wrong_idx = np.flatnonzero(votes & (col != gold))
        n_votes = int(votes.sum())
        f = faults.get(name)
        stats.append(LFStat(
            name=name,
            polarity=[_name(classes, v) for v in sorted(set(col[col != -1].tolist()))],
            coverage=float(coverages[j]), overlaps=float(overlaps[j]),
            conflicts=float(conflicts[j]),
            emp_accuracy=accuracy(gold[votes], col[votes]),   # None without such votes
            n_gold_votes=n_votes, correct=int(right.sum()), incorrect=len(wrong_idx),
            faults=int(getattr(f, "count", 0) or 0) if f is not None else 0,
            fault_examples=list(getattr(f, "examples", []) or []) if f is not None else [],
            fault_message=str(getattr(f, "message", "") or "") if f is not None else "",
            wrong_examples=[{"record_id": str(record_ids[i]), "voted": _name(classes, col[i]),
                             "gold": _name(classes, gold[i])} for i in wrong_idx[:wrong_examples]],
            origin=origins.get(name),
        ))
    return LFReport(
        scheme=scheme, classes=list(classes), n_records=n, n_gold=int(has_gold.sum()),
        coverage=float(total[0]), overlap=float(total[1]), conflict=float(total[2]), lfs=stats,
        conflict_matrix=conflict_matrix(L).tolist(),
    )
