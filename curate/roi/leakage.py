"""Leakage between the gold evaluation set and the training arms.

Two checks. `near_gold_ids` finds training candidates too close to a gold record (same dedup
cluster, or embedding cosine at or above a threshold): they are excluded from every arm before
training, because a near-copy of an evaluation record in the training set inflates the score of
whichever arm happens to keep it. `check_leakage` then verifies the finished arms: no gold id, no
near-gold id, no text identical (after whitespace/case folding) to a gold text; it raises
`LeakageError` on any hit, so a leaking benchmark never reports a number.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from pipelines.errors import StudioError

__all__ = ["LeakageError", "near_gold_ids", "check_leakage", "fold_text"]


class LeakageError(StudioError):
    """A training arm contains a gold evaluation record or a near-duplicate of one."""


def fold_text(text: str) -> str:
    """NFC, case- and whitespace-folded: two texts equal here are the same record to a reader."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text or "")).strip().casefold()


def near_gold_ids(train_ids: Sequence[str], gold_ids: Sequence[str], *,
                  vectors: Mapping[str, np.ndarray] | None = None, threshold: float = 0.92,
                  clusters: Mapping[str, str | None] | None = None,
                  texts: Mapping[str, str] | None = None) -> dict[str, str]:
    """{training id: why} for every training candidate too close to a gold record.

    Args:
        vectors: L2-normalised embeddings by id (cosine = dot product); ids without a vector
            are only checked by cluster and text.
        clusters: dedup cluster id by record id.
        texts: record texts, for the folded-text identity check.
    """
    gold = list(dict.fromkeys(gold_ids))
    gold_set = set(gold)
    why: dict[str, str] = {}
    if clusters:
        gold_clusters = {clusters.get(g) for g in gold} - {None}
        for t in train_ids:
            c = clusters.get(t)
            if t not in gold_set and c is not None and c in gold_clusters:
                why[t] = f"dedup cluster {c} holds a gold record"
    if texts:
        gold_texts = {fold_text(texts[g]) for g in gold if g in texts}
        for t in train_ids:
            if t not in why and t not in gold_set and t in texts and \
                    fold_text(texts[t]) in gold_texts:
                why[t] = "same text as a gold record"
    if vectors:
        g_ids = [g for g in gold if g in vectors]
        t_ids = [t for t in train_ids if t in vectors and t not in gold_set]
        if g_ids and t_ids:
            G = np.stack([vectors[g] for g in g_ids]).astype(np.float32)
            for start in range(0, len(t_ids), 2048):   # bounded memory: 2048 x n_gold at a time
                chunk = t_ids[start:start + 2048]
                sims = np.stack([vectors[t] for t in chunk]).astype(np.float32) @ G.T
                best = sims.argmax(axis=1)
                for t, j, s in zip(chunk, best.tolist(), sims[np.arange(len(chunk)), best]):
                    if s >= threshold and t not in why:
                        why[t] = f"cosine {float(s):.3f} to gold record {g_ids[j]}"
    return why


def check_leakage(arms: Iterable[Any], gold_ids: Iterable[str], near_gold: Iterable[str],
                  texts: Mapping[str, str]) -> dict[str, Any]:
    """Verify every arm; return the per-arm counts (all zero) or raise `LeakageError`.

    `arms` are objects with `name` and `ids` (e.g. `Arm`).
    """
    gold_set, near = set(gold_ids), set(near_gold)
    gold_texts = {fold_text(texts[g]) for g in gold_set if g in texts}
    report: dict[str, Any] = {"gold_records": len(gold_set), "near_gold_excluded": len(near),
                              "arms": {}}
    problems = []
    for arm in arms:
        ids = set(arm.ids)
        hits = {"gold_ids": sorted(ids & gold_set), "near_gold_ids": sorted(ids & near),
                "gold_texts": sorted(i for i in ids if fold_text(texts.get(i, "")) in gold_texts
                                     and i not in gold_set)}
        report["arms"][arm.name] = {k: len(v) for k, v in hits.items()}
        for kind, found in hits.items():
            if found:
                problems.append(f"arm {arm.name}: {len(found)} {kind.replace('_', ' ')} in the "
                                f"training set (first: {found[0]})")
    if problems:
        raise LeakageError("leakage between gold evaluation set and training: "
                           + "; ".join(problems))
    report["ok"] = True
    return report
