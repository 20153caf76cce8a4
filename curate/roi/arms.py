"""The arms of the ROI benchmark: training sets that differ only in curation.

Everything here is pure: a `Pool` (one `PoolRecord` per workspace record, with the raw label,
the weak labels, the dedup flag, the ground truth that simulates the reviewer) goes in, an
`ArmSet` (the gold evaluation set and one `Arm` per dataset) comes out. `prepare.py` fills the
pool from a workspace; the tests fill it inline.

Arms (every one excludes gold records and near-duplicates of them, see leakage.py):
    raw           every record, the raw label as ingested, exact duplicates kept (one copy per
                  source row)
    majority      every labelled record, majority vote over the LFs
    label_model   every labelled record, the label model
    curated_<N>   dedup-excluded records dropped, label model labels, and the N least-confident
                  records relabelled by a (simulated) reviewer
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from pipelines.errors import ConfigError

__all__ = ["PoolRecord", "Pool", "Arm", "ArmSet", "build_arms", "review_order", "cap_arm"]


@dataclass
class PoolRecord:
    id: str
    text: str
    raw_label: str | None = None
    gold: str | None = None              # held-out gold label of the scheme: evaluation only
    n_sources: int = 1                   # source rows folded into this record (exact duplicates)
    excluded: bool = False               # dedup says drop
    cluster_id: str | None = None        # dedup cluster
    majority: str | None = None
    majority_conf: float = 0.0
    label_model: str | None = None
    label_model_conf: float = 0.0
    truth: str | None = None             # what the simulated reviewer answers


@dataclass
class Pool:
    scheme: str
    classes: list[str]
    records: list[PoolRecord]
    near_gold: set[str] = field(default_factory=set)   # non-gold ids too close to a gold record
    notes: list[str] = field(default_factory=list)

    @property
    def gold(self) -> list[PoolRecord]:
        return [r for r in self.records if r.gold is not None]

    @property
    def trainable(self) -> list[PoolRecord]:
        """Records any arm may train on: not gold, not a near-duplicate of gold."""
        return [r for r in self.records if r.gold is None and r.id not in self.near_gold]


@dataclass
class Arm:
    name: str
    ids: list[str]                       # may repeat (raw keeps exact duplicates)
    labels: list[str]
    reviewed: int = 0                    # records whose label came from the simulated review
    notes: list[str] = field(default_factory=list)

    @property
    def n_train(self) -> int:
        return len(self.ids)

    def label_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for lab in self.labels:
            out[lab] = out.get(lab, 0) + 1
        return dict(sorted(out.items()))


@dataclass
class ArmSet:
    """What the trainer needs: texts by id, the gold evaluation set, the arms."""

    scheme: str
    classes: list[str]
    texts: dict[str, str]
    eval_ids: list[str]
    eval_labels: list[str]
    arms: list[Arm]
    leakage: dict[str, Any] = field(default_factory=dict)
    pool_stats: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def arm(self, name: str) -> Arm:
        for a in self.arms:
            if a.name == name:
                return a
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "classes": self.classes, "texts": self.texts,
                "eval_ids": self.eval_ids, "eval_labels": self.eval_labels,
                "arms": [asdict(a) for a in self.arms], "leakage": self.leakage,
                "pool_stats": self.pool_stats, "notes": self.notes}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ArmSet":
        return cls(scheme=d["scheme"], classes=list(d["classes"]), texts=dict(d["texts"]),
                   eval_ids=list(d["eval_ids"]), eval_labels=list(d["eval_labels"]),
                   arms=[Arm(**a) for a in d["arms"]], leakage=dict(d.get("leakage") or {}),
                   pool_stats=dict(d.get("pool_stats") or {}), notes=list(d.get("notes") or []))


def review_order(records: Iterable[PoolRecord]) -> list[PoolRecord]:
    """Least confident first, as the review queue routes them: abstained records (no label,
    confidence 0) lead; ties break on id so the order is deterministic."""
    return sorted(records, key=lambda r: (r.label_model_conf if r.label_model else 0.0, r.id))


def _weak_arm(name: str, pool_records: list[PoolRecord], attr: str) -> Arm:
    kept = [r for r in pool_records if getattr(r, attr) is not None]
    arm = Arm(name, [r.id for r in kept], [getattr(r, attr) for r in kept])
    if len(kept) < len(pool_records):
        arm.notes.append(f"{len(pool_records) - len(kept)} records every LF abstained on: "
                         f"left out")
    return arm


def _curated_arm(n_review: int, pool_records: list[PoolRecord]) -> Arm:
    kept = [r for r in pool_records if not r.excluded]
    # Simulated review: the N least-confident records that the reviewer can answer get the true
    # label (records without ground truth are skipped, as a reviewer would skip an unclear one).
    answerable = [r for r in review_order(kept) if r.truth is not None]
    reviewed = {r.id: r.truth for r in answerable[:n_review]}
    ids, labels = [], []
    for r in kept:
        label = reviewed.get(r.id, r.label_model)
        if label is not None:
            ids.append(r.id)
            labels.append(label)
    arm = Arm(f"curated_{n_review}", ids, labels, reviewed=len(reviewed))
    arm.notes.append(f"{len(pool_records) - len(kept)} dedup-excluded records dropped")
    if len(reviewed) < n_review:
        arm.notes.append(f"only {len(reviewed)} of {n_review} review slots could be simulated "
                         f"(no ground truth for the rest)")
    return arm


def why_empty(arm: Arm) -> str:
    """Why an arm has no training records (its notes say; else the generic reason)."""
    for n in arm.notes:
        if n.startswith("skipped: "):
            return n[len("skipped: "):]
    if arm.name in ("majority", "label_model"):
        return "every LF abstained on every trainable (non-gold, non-near-gold) record"
    return ("no trainable record is left once gold records and their near-duplicates are "
            "held out")


def build_arms(pool: Pool, review_budgets: Iterable[int]) -> list[Arm]:
    """The arms in report order (raw, majority, label_model, curated_<N>...), uncapped."""
    train = pool.trainable
    allowed = set(pool.classes)
    raw_ids, raw_labels, bad = [], [], 0
    for r in train:
        if r.raw_label is None or r.raw_label not in allowed:
            bad += 1
            continue
        raw_ids += [r.id] * max(1, r.n_sources)   # raw keeps every source row, duplicates too
        raw_labels += [r.raw_label] * max(1, r.n_sources)
    raw = Arm("raw", raw_ids, raw_labels)
    if bad and not raw_ids:
        raw.notes.append(f"skipped: none of the {bad} trainable records has a raw label in the "
                         f"scheme's classes (ingest the file with --label-field COLUMN to compare "
                         f"against raw labels)")
    elif bad:
        raw.notes.append(f"{bad} records without a usable raw label left out")
    arms = [raw, _weak_arm("majority", train, "majority"),
            _weak_arm("label_model", train, "label_model")]
    arms += [_curated_arm(n, train) for n in review_budgets]
    for a in arms:
        unknown = sorted(set(a.labels) - allowed)
        if unknown:
            raise ConfigError(f"arm {a.name}: labels {unknown} are not classes of scheme "
                              f"{pool.scheme} ({', '.join(pool.classes)})")
    return arms


def cap_arm(arm: Arm, max_train: int, seed: int = 0) -> Arm:
    """At most `max_train` records, a seeded sample (kept in pool order) when over."""
    if arm.n_train <= max_train:
        return arm
    keep = sorted(random.Random(seed).sample(range(arm.n_train), max_train))
    return Arm(arm.name, [arm.ids[i] for i in keep], [arm.labels[i] for i in keep],
               reviewed=arm.reviewed,
               notes=arm.notes + [f"sampled {max_train} of {arm.n_train} records (max_train)"])
