"""Fact-aware counterfactuals: synthetic rejected responses made from accepted ones.

    result = make_counterfactuals(ws, CounterfactualConfig(scheme="summary_quality", n=50))

For each accepted record (final label ACCEPT: human > label model with enough confidence; gold
records are the held-out set and stay out unless asked), one fact of its response is edited
(`edits.apply_edit`: an amount, a date, a name, a place, an identifier, the key figure dropped,
or a fact added). The scheme's own labeling functions then judge the edit: a counterfactual is
*caught* when at least one LF votes the reject class on it and none did on its source. Only
caught ones are stored; the others are reported (they are paraphrases as far as the LFs can
tell, so a pair made from them would teach nothing the LFs vouch for).

A stored counterfactual is an ordinary `instruction` record (same prompt, edited response) whose
`meta["synthetic"]` holds its lineage: method, source record, the edit (kind, before, after),
the LFs that caught it and the `synth` run. It then goes through labeling, review and export like
any record; export can include, exclude or cap synthetic records and builds preference pairs
(chosen = the source, rejected = the counterfactual) from them.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from pipelines.errors import SynthError
from pipelines.export.select import final_label
from pipelines.ingest.normalize import normalize_text, record_id
from pipelines.records import Candidate
from pipelines.store import NewRecord, Workspace, finish_run, start_run, upsert_record, utcnow
from pipelines.store.exports import iter_export_candidates
from pipelines.synth.config import CounterfactualConfig
from pipelines.synth.edits import Edit, apply_edit

__all__ = ["Counterfactual", "CounterfactualResult", "make_counterfactuals", "judge_edits",
           "accepted_sources", "SYNTHETIC_FILE"]

SYNTHETIC_FILE = "synthetic:counterfactual"   # record_sources.file of a counterfactual


@dataclass
class Counterfactual:
    """One edited response and the LFs' verdict on it."""

    source_id: str
    prompt: str
    chosen: str                   # the source's (accepted) response
    rejected: str                 # the edited one
    edit: Edit
    system: str | None = None
    caught_by: list[str] = field(default_factory=list)
    record_id: str | None = None  # set once stored

    @property
    def caught(self) -> bool:
        return bool(self.caught_by)

    def to_dict(self) -> dict[str, Any]:
        return {"source_id": self.source_id, "record_id": self.record_id, "edit": self.edit.kind,
                "before": self.edit.before, "after": self.edit.after,
                "describe": self.edit.describe(), "caught_by": self.caught_by,
                "chosen": self.chosen, "rejected": self.rejected}


@dataclass
class CounterfactualResult:
    created: list[Counterfactual] = field(default_factory=list)   # caught (stored unless preview)
    missed: list[Counterfactual] = field(default_factory=list)    # no LF caught the edit
    skipped: dict[str, int] = field(default_factory=dict)         # sources left out -> count
    sources: int = 0
    run_id: int | None = None
    stored: int = 0                                               # new records written

    def by_edit(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for name, items in (("caught", self.created), ("missed", self.missed)):
            for c in items:
                out.setdefault(c.edit.kind, {"caught": 0, "missed": 0})[name] += 1
        return out

    def to_dict(self, examples: int = 5) -> dict[str, Any]:
        return {"sources": self.sources, "created": len(self.created), "missed": len(self.missed),
                "stored": self.stored, "run_id": self.run_id, "skipped": self.skipped,
                "by_edit": self.by_edit(),
                "examples": [c.to_dict() for c in self.created[:examples]],
                "missed_examples": [c.to_dict() for c in self.missed[:examples]]}


def _order(rid: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{rid}".encode()).hexdigest()


def accepted_sources(cands: list[Candidate], cfg: CounterfactualConfig, scheme: str,
                     skipped: dict[str, int]) -> list[Candidate]:
    """The real records synthetic ones may start from (see the module docstring), in a seeded
    order; why each other record was left out is counted in `skipped`."""
    def skip(why: str) -> None:
        skipped[why] = skipped.get(why, 0) + 1

    out = []
    for cand in cands:
        rec, st = cand.record, cand.state
        if rec.synthetic is not None:
            continue
        if st.excluded:
            skip("excluded")
            continue
        label, source = final_label(cand, scheme)
        if source == "gold" and not cfg.include_gold:
            skip("gold (held out)")
            continue
        if label != cfg.accept_label:
            skip(f"label {label}" if label else "unlabelled")
            continue
        if source == "model" and (st.confidence or 0.0) < cfg.min_confidence:
            skip("below min_confidence")
            continue
        if rec.kind != "instruction" or not rec.prompt or not rec.response:
            skip(f"{rec.kind} record (counterfactuals edit prompt/response records)")
            continue
        out.append(cand)
    return sorted(out, key=lambda c: _order(c.id, cfg.seed))


def judge_edits(ws: Workspace, scheme: str, items: list[Counterfactual],
                reject_label: str = "REJECT", *, only: list[str] | None = None) -> None:
    """Fill `caught_by` of each item: the scheme's LFs that vote `reject_label` on the edited
    response and not on the source (an LF that already rejects the source proves nothing).

    Args:
        only: judge with these LF names only (benchmarks compare LF sets).
    """
    from pipelines.weak_supervision import apply_lfs, load_lfs

    lfs = load_lfs(ws, scheme)
    if only is not None:
        lfs.lfs = [lf for lf in lfs.lfs if lf.name in set(only)]
    classes = list(lfs.scheme.classes)
    if reject_label not in classes:
        raise SynthError(f"scheme {scheme!r} has no class {reject_label!r} ({', '.join(classes)}); "
                         f"set reject_label")
    reject = classes.index(reject_label)
    rows = []
    for i, c in enumerate(items):
        for side, response in (("s", c.chosen), ("c", c.rejected)):
            rows.append({"id": f"{side}{i}", "kind": "instruction", "prompt": c.prompt,
                         "response": response, "system": c.system, "meta": {},
                         "text": f"{c.prompt}\n\n{response}"})
    if not rows:
        return
    L, _ = apply_lfs(rows, lfs.lfs, classes)
    names = lfs.names
    for i, c in enumerate(items):
        src, cf = L[2 * i], L[2 * i + 1]
        c.caught_by = [names[j] for j in range(len(names)) if cf[j] == reject and src[j] != reject]


def _stored_record(c: Counterfactual, run_id: int | None, n: int) -> NewRecord:
    parts = {"system": normalize_text(c.system or ""), "prompt": normalize_text(c.prompt),
             "response": normalize_text(c.rejected)}
    meta = {"synthetic": {"method": "counterfactual", "source_id": c.source_id,
                          "edit": c.edit.kind, "before": c.edit.before, "after": c.edit.after,
                          "caught_by": c.caught_by, "run_id": run_id}}
    return NewRecord(id=record_id("instruction", parts), kind="instruction",
                     text=f"{c.prompt}\n\n{c.rejected}", prompt=c.prompt, response=c.rejected,
                     system=c.system, meta=meta, file=SYNTHETIC_FILE, row=n)


def make_counterfactuals(ws: Workspace, cfg: CounterfactualConfig | None = None, *,
                         commit: bool = True) -> CounterfactualResult:
    """Make up to `cfg.n` counterfactuals, judge them with the scheme's LFs, store the caught.

    Args:
        commit: False previews (nothing is written, not even a run).
    Raises:
        SynthError: no accepted record to start from, or the scheme lacks the reject class.
    """
    from pipelines.config import load_config

    cfg = cfg or CounterfactualConfig()
    scheme = load_config(ws.config_path).scheme(cfg.scheme)
    for label in (cfg.accept_label, cfg.reject_label):
        if label not in scheme.classes:
            raise SynthError(f"scheme {scheme.name!r} has no class {label!r} "
                             f"({', '.join(scheme.classes)}); counterfactuals need an accept and "
                             f"a reject class")
    result = CounterfactualResult()
    with ws.connect() as conn:
        cands = list(iter_export_candidates(conn, scheme.name))
    sources = accepted_sources(cands, cfg, scheme.name, result.skipped)
    result.sources = len(sources)
    if not sources:
        why = ", ".join(f"{k}: {v}" for k, v in sorted(result.skipped.items())) or "no records"
        raise SynthError(f"no accepted {scheme.name} record to make counterfactuals from "
                         f"(left out: {why}); label or review first")
    items: list[Counterfactual] = []
    kinds = list(cfg.edits)
    for i, cand in enumerate(sources):
        if len(items) >= cfg.n:
            break
        rec = cand.record
        chosen = (cand.state.edited_response if cand.state.review_status == "reviewed"
                  and cand.state.edited_response else rec.response)
        rng = random.Random(_order(rec.id, cfg.seed))
        # Rotate the first edit tried so that every kind gets its share of the sources.
        for kind in kinds[i % len(kinds):] + kinds[:i % len(kinds)]:
            edit = apply_edit(kind, rec.prompt, chosen, rng)
            if edit is not None:
                items.append(Counterfactual(rec.id, rec.prompt, chosen, edit.text, edit,
                                            system=rec.system))
                break
        else:
            result.skipped["no edit applies"] = result.skipped.get("no edit applies", 0) + 1
    judge_edits(ws, scheme.name, items, cfg.reject_label)
    result.created = [c for c in items if c.caught]
    result.missed = [c for c in items if not c.caught]
    if not commit:
        return result
    with ws.transaction() as conn:
        run_id = start_run(conn, "synth", {"method": "counterfactual", **cfg.to_dict()},
                           scheme=scheme.name)
        now = utcnow()
        for n, c in enumerate(result.created, 1):
            rec = _stored_record(c, run_id, n)
            c.record_id = rec.id
            result.stored += upsert_record(conn, rec, now).added
        result.run_id = run_id
        finish_run(conn, run_id, {k: v for k, v in result.to_dict(examples=3).items()
                                  if k not in ("examples",)})
    return result
