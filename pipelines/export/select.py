"""Which records an export takes, with what final label, on which side of the split.

Pure functions over the `Candidate`s that `pipelines.store.exports.iter_export_candidates`
yields, so the rules are testable without a database.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Collection, Iterable

from pipelines.config import SchemeConfig
from pipelines.errors import ExportError
from pipelines.export.config import ExportConfig
from pipelines.export.turns import SFT_FORMATS, fit_turns
from pipelines.records import Candidate

__all__ = ["ExportRow", "Selection", "split_of", "final_label", "resolve_format",
           "resolve_accept_labels", "select_rows", "cap_synthetic", "is_synthetic_row"]


@dataclass
class ExportRow:
    """One record chosen for an export."""

    id: str
    split: str               # train | eval
    label: str | None        # the final label used
    label_source: str        # human | model | gold | none
    record: Candidate        # the record and its state under the export's scheme


@dataclass
class Selection:
    rows: list[ExportRow]
    skipped: dict[str, int]  # why records were left out -> count
    # conversation conditions (turns.CONDITIONS) among the chosen and the conversation-less
    # records -> count
    conditions: dict[str, int] = field(default_factory=dict)
    # how gold-labelled records were split: policy, eval_share, trains (bool), train, eval
    gold: dict[str, object] = field(default_factory=dict)


def split_of(record_id: str, eval_fraction: float) -> str:
    """`eval` for a stable `eval_fraction` of ids, `train` for the rest.

    The bucket is the first 8 hex digits of sha256(id) / 2**32: it depends on the id only, so a
    record stays on the same side across versions as long as the fraction does not change.
    """
    bucket = int(hashlib.sha256(record_id.encode("utf-8")).hexdigest()[:8], 16) / 2**32
    return "eval" if bucket < eval_fraction else "train"


def final_label(cand: Candidate, scheme: str) -> tuple[str | None, str]:
    """(label, source): gold for held-out gold records, else human > label model."""
    gold = (cand.record.gold or {}).get(scheme)
    if gold is not None:
        return str(gold), "gold"
    st = cand.state
    if st.review_status == "reviewed" and st.human_label:
        return st.human_label, "human"
    if st.label is not None:
        return st.label, "model"
    return None, "none"


def resolve_format(cfg: ExportConfig, scheme: SchemeConfig, kinds: set[str]) -> str:
    if cfg.format:
        return cfg.format
    conversational = bool(kinds & {"instruction", "chat"})
    return "chat" if conversational and "ACCEPT" in scheme.classes else "classification"


def resolve_accept_labels(cfg: ExportConfig, scheme: SchemeConfig, fmt: str) -> list[str]:
    if cfg.accept_labels:
        unknown = [x for x in cfg.accept_labels if x not in scheme.classes]
        if unknown:
            raise ExportError(f"accept label(s) {', '.join(unknown)} are not classes of scheme "
                              f"{scheme.name!r} ({', '.join(scheme.classes)})")
        return list(cfg.accept_labels)
    if fmt != "classification" and "ACCEPT" in scheme.classes:
        return ["ACCEPT"]
    return list(scheme.classes)


def select_rows(candidates: Iterable[Candidate], cfg: ExportConfig, scheme: SchemeConfig,
                fmt: str, rejected: Collection[str] = ()) -> Selection:
    """Apply the export rules in order; count every reason a record is left out.

    1. excluded by dedup/filter -> out (a quality rule's exclusion is counted under its reason,
       e.g. "filter: refusal"); a record in `rejected` (the rejected side of an imported
       preference pair, `store.pairs.rejected_ids`, or a private copy of one) -> out as
       "preference: rejected side", unless a reviewer labelled it (the person's label then
       decides, as in rule 3);
    2. a record with a gold label goes to eval, never train (it is the held-out evaluation set),
       and for the export's scheme its gold label is its final label;
    3. otherwise the final label (human > label model) must be one of the accepted labels, and
       a label-model label needs `confidence >= min_confidence`;
    4. in an SFT format a conversation is cut by `fit_turns` (each condition counted), and one
       with no user -> assistant exchange left is out;
    5. a synthetic record (`meta.synthetic`) is out with `synthetic: exclude`, goes to train only
       (the eval split stays real) and, with `synthetic: cap`, at most `synthetic_cap` of each
       label's rows are synthetic (`cap_synthetic`).
    6. gold may train (`gold_train`): `never` keeps every gold record in eval; `auto` (default)
       lets gold train only when no non-gold record would (an all-gold data set, which could not
       be trained on otherwise); `always` lets it train whenever. When gold trains, a stable
       `gold_eval_share` of the gold records (by record-id hash) stays in eval, the rest go to
       train. `Selection.gold` states which happened (the manifest's `counts.gold`).
    """
    accept = set(resolve_accept_labels(cfg, scheme, fmt))
    rows: list[ExportRow] = []
    skipped: dict[str, int] = {}
    conditions: dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    def trainable(cand: Candidate) -> bool:
        rec = cand.record
        if fmt not in SFT_FORMATS or rec.kind != "chat" or not rec.turns:
            return True
        fitted, found = fit_turns([t.to_dict() for t in rec.turns])
        if (rec.meta.get("conditions") or {}).get("empty_turn"):
            found = [*found, "empty_turn"]
        for name in found:
            conditions[name] = conditions.get(name, 0) + 1
        if not fitted:
            skip("no user -> assistant exchange")
        return bool(fitted)

    for cand in candidates:
        if cand.state.excluded:
            by = cand.state.excluded_by
            skip("excluded" if by in (None, "dedup") else by)
            continue
        if _rejected_side(cand, rejected) and not (cand.state.review_status == "reviewed"
                                                   and cand.state.human_label):
            skip("preference: rejected side")
            continue
        synthetic = cand.record.synthetic is not None
        if synthetic and cfg.synthetic == "exclude":
            skip("synthetic")
            continue
        label, source = final_label(cand, scheme.name)
        if fmt != "classification" and cand.record.kind == "text":
            skip("text record (no prompt/response) in a conversational format")
            continue
        if source == "none":
            if cfg.include_unlabelled and fmt != "classification" and trainable(cand):
                split = "eval" if cand.record.gold else split_of(cand.id, cfg.eval_fraction)
                split = "train" if synthetic else split
                rows.append(ExportRow(cand.id, split, None, "none", cand))
            elif not (cfg.include_unlabelled and fmt != "classification"):
                skip("unlabelled")
            continue
        if label not in accept:
            skip(f"label {label}")
            continue
        if source == "model" and (cand.state.confidence or 0.0) < cfg.min_confidence:
            skip("below min_confidence")
            continue
        if not trainable(cand):
            continue
        # Any gold label (this scheme or another) marks a held-out record: eval, unless rule 6
        # below lets part of the gold train.
        split = "eval" if cand.record.gold else split_of(cand.id, cfg.eval_fraction)
        rows.append(ExportRow(cand.id, "train" if synthetic else split, label, source, cand))
    gold = _split_gold(rows, cfg)
    if cfg.synthetic == "cap":
        rows = cap_synthetic(rows, cfg.synthetic_cap, skip)
    return Selection(rows=rows, skipped=skipped, conditions=conditions, gold=gold)


def _rejected_side(cand: Candidate, rejected: Collection[str]) -> bool:
    """Whether `cand` is an imported pair's rejected answer, or a private copy of one (the same
    answer with its PII replaced)."""
    syn = cand.record.synthetic
    copied = syn.get("source_id") if syn is not None and syn.get("method") == "private" else None
    return cand.id in rejected or (copied is not None and copied in rejected)


def is_synthetic_row(row) -> bool:
    """Whether an export row (`ExportRow` or a preference pair) holds generated data."""
    return row.synthetic if hasattr(row, "synthetic") else row.record.record.synthetic is not None


def cap_synthetic(rows: list, cap: float, skip=None, key=lambda row: row.label) -> list:
    """`rows` with synthetic ones dropped until they are at most `cap` of each label's rows.

    With r real rows of a label, s synthetic ones may stay where s / (r + s) <= cap, i.e.
    s <= cap * r / (1 - cap) (cap 0.3 and 70 real rows: 30). Which stay is decided by the id
    hash, so the same data always keeps the same ones. `key` groups the rows (default: label).
    """
    by_label: dict[Any, list] = {}
    for row in rows:
        by_label.setdefault(key(row), []).append(row)
    drop: set[int] = set()
    for group in by_label.values():
        synth = [r for r in group if is_synthetic_row(r)]
        room = int(cap * (len(group) - len(synth)) / (1.0 - cap) + 1e-9)
        ranked = sorted(synth, key=lambda r: hashlib.sha256(r.id.encode()).hexdigest())
        drop |= {id(r) for r in ranked[room:]}
    if skip is not None:
        for _ in drop:
            skip("synthetic over cap")
    return [r for r in rows if id(r) not in drop]


def _split_gold(rows: list[ExportRow], cfg: ExportConfig) -> dict[str, object]:
    """Apply rule 6 in place: move all but `gold_eval_share` of the gold rows to train when the
    policy allows it; return the summary for the manifest."""
    gold_rows = [r for r in rows if r.record.record.gold]
    non_gold_train = sum(1 for r in rows if r.split == "train" and not r.record.record.gold)
    trains = bool(gold_rows) and (cfg.gold_train == "always"
                                  or (cfg.gold_train == "auto" and non_gold_train == 0))
    if trains:
        for r in gold_rows:
            r.split = split_of(r.id, cfg.gold_eval_share)
        # A tiny gold set could hash entirely to one side: keep at least one row on each.
        sides = {r.split for r in gold_rows}
        if len(gold_rows) >= 2 and sides != {"train", "eval"}:
            ordered = sorted(gold_rows, key=lambda r: hashlib.sha256(r.id.encode()).hexdigest())
            ordered[0].split = "eval" if sides == {"train"} else "train"
    return {"policy": cfg.gold_train, "eval_share": cfg.gold_eval_share, "trains": trains,
            "train": sum(1 for r in gold_rows if r.split == "train"),
            "eval": sum(1 for r in gold_rows if r.split == "eval")}
