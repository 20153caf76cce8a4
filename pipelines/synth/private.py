"""Privacy-safe synthetic copies: real records with every identifying value replaced by a
consistent fake (`surrogates.Surrogates`), stored as synthetic records with their lineage.

    result = make_private_copies(ws, PrivateCopyConfig(scope="set", seed=84121))
    result.copies      # one per source: the copy's record id and what was replaced, by kind
    result.unchanged   # sources with nothing to replace: copied as they are, and counted

A copy keeps what is still true of it: its kind, its raw label, and (only with `include_gold`)
each scheme's gold label for which the scheme's labeling functions vote on the copy exactly as
they vote on the source. Consistent fakes keep a faithful summary faithful (the note's amount
and the summary's move together) and a hallucinated one hallucinated, and the LF check is the
proof per record; a scheme whose votes change is reported and its gold label left off.

The lineage (`meta["synthetic"]`) names the source and counts the replacements by kind; it
never holds a real value, so a copy (or an export of copies) carries none. The real -> fake
mapping lives only in memory during the run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pipelines.errors import SynthError
from pipelines.ingest.normalize import normalize_text, record_id
from pipelines.pii.detect import metadata_names
from pipelines.records import Record, Turn, render_turns
from pipelines.store import NewRecord, Workspace, finish_run, start_run, upsert_record, utcnow
from pipelines.store.exports import iter_export_candidates
from pipelines.synth.config import PrivateCopyConfig
from pipelines.synth.surrogates import Replacement, Surrogates

__all__ = ["PrivateCopy", "PrivateCopyResult", "make_private_copies", "private_fields",
           "PRIVATE_FILE"]

PRIVATE_FILE = "synthetic:private"     # record_sources.file of a private copy


@dataclass
class PrivateCopy:
    """One copy: the source, the copy's fields and what was replaced (in memory only)."""

    source: Record
    fields: dict[str, str]                       # the copy's prompt/response/text/turns/meta.*
    replacements: list[Replacement] = field(default_factory=list)
    gold: dict[str, str] = field(default_factory=dict)
    changed_votes: dict[str, list[str]] = field(default_factory=dict)   # scheme -> LFs
    record_id: str | None = None

    @property
    def unchanged(self) -> bool:
        return not self.replacements

    def survivors(self) -> list[str]:
        """Real values (PII and identifiers) replaced somewhere yet still written in the copy
        (e.g. inside a longer span the detection read differently): a copy with one is not
        stored."""
        copy = "\n".join(self.fields.values())
        seen = {r.before for r in self.replacements if r.kind not in ("date", "amount", "place")}
        return sorted(v for v in seen
                      if re.search(r"(?<!\w)" + re.escape(v) + r"(?!\w)", copy))

    def replaced(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.replacements:
            out[r.kind] = out.get(r.kind, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """For the preview (this machine only: it shows the real values beside the fakes)."""
        return {"source_id": self.source.id, "record_id": self.record_id,
                "replaced": self.replaced(), "unchanged": self.unchanged,
                "changed_votes": self.changed_votes,
                "replacements": [[r.kind, r.before, r.after] for r in self.replacements[:20]],
                "copy": {k: v for k, v in self.fields.items() if not k.startswith("meta.")}}


@dataclass
class PrivateCopyResult:
    copies: list[PrivateCopy] = field(default_factory=list)
    rejected: list[PrivateCopy] = field(default_factory=list)     # a real value survived
    skipped: dict[str, int] = field(default_factory=dict)
    sources: int = 0
    stored: int = 0
    run_id: int | None = None

    @property
    def unchanged(self) -> int:
        return sum(c.unchanged for c in self.copies)

    def replaced(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.copies:
            for k, n in c.replaced().items():
                out[k] = out.get(k, 0) + n
        return dict(sorted(out.items()))

    def labels_changed(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.copies:
            for scheme in c.changed_votes:
                out[scheme] = out.get(scheme, 0) + 1
        return out

    def summary(self) -> dict[str, Any]:
        """Counts only (what the run's metrics keep: no real value)."""
        return {"sources": self.sources, "copies": len(self.copies), "stored": self.stored,
                "unchanged": self.unchanged, "replaced": self.replaced(),
                "labels_changed": self.labels_changed(), "skipped": self.skipped,
                "run_id": self.run_id}

    def to_dict(self, examples: int = 5) -> dict[str, Any]:
        return {**self.summary(), "examples": [c.to_dict() for c in self.copies[:examples]]}


def _source_fields(rec: Record) -> dict[str, str]:
    out: dict[str, str] = {}
    if rec.kind == "chat":
        for i, t in enumerate(rec.turns):
            out[f"turn.{i}"] = t.content
    elif rec.kind == "instruction":
        out["prompt"] = rec.prompt or ""
        out["response"] = rec.response or ""
        if rec.system:
            out["system"] = rec.system
    else:
        out["text"] = rec.text
    for k, v in (rec.meta or {}).items():
        if isinstance(v, str) and k != "synthetic":
            out[f"meta.{k}"] = v
    return out


def private_fields(rec: Record, surrogates: Surrogates) -> PrivateCopy:
    """The copy of one record under `surrogates` (pure: nothing is stored)."""
    src = _source_fields(rec)
    new, done = surrogates.replace_all(src, names=metadata_names(rec.meta),
                                       bare=[k for k in src if k.startswith("meta.")])
    return PrivateCopy(rec, new, done)


def _new_record(c: PrivateCopy, meta_synth: dict[str, Any], n: int) -> NewRecord:
    rec, f = c.source, c.fields
    meta = {k: v for k, v in (rec.meta or {}).items() if k != "synthetic"}
    meta.update({k[5:]: v for k, v in f.items() if k.startswith("meta.")})
    meta["synthetic"] = meta_synth
    # "copy" in the hashed parts: a copy with nothing replaced must not fold into its source
    if rec.kind == "chat":
        messages = [{"role": t.role, "content": f[f"turn.{i}"]} for i, t in enumerate(rec.turns)]
        parts = {"messages": [[m["role"], normalize_text(m["content"])] for m in messages],
                 "copy": "private"}
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
        response = messages[last]["content"] if last is not None else None
        prompt = next((m["content"] for m in reversed(messages[:last or 0]) if m["role"] == "user"),
                      None)
        system = next((m["content"] for m in messages if m["role"] == "system"), None)
        return NewRecord(id=record_id("chat", parts), kind="chat",
                         text=render_turns(Turn(m["role"], m["content"]) for m in messages),
                         prompt=prompt, response=response, system=system, messages=messages,
                         raw_label=rec.raw_label, gold=c.gold, meta=meta, file=PRIVATE_FILE,
                         row=n)
    if rec.kind == "instruction":
        system = f.get("system")
        parts = {"system": normalize_text(system or ""), "prompt": normalize_text(f["prompt"]),
                 "response": normalize_text(f["response"]), "copy": "private"}
        return NewRecord(id=record_id("instruction", parts), kind="instruction",
                         text=f"{f['prompt']}\n\n{f['response']}", prompt=f["prompt"],
                         response=f["response"], system=system, raw_label=rec.raw_label,
                         gold=c.gold, meta=meta, file=PRIVATE_FILE, row=n)
    parts = {"text": normalize_text(f["text"]), "copy": "private"}
    return NewRecord(id=record_id(rec.kind, parts), kind=rec.kind, text=f["text"],
                     raw_label=rec.raw_label, gold=c.gold, meta=meta, file=PRIVATE_FILE, row=n)


def _lf_row(rid: str, new: NewRecord | Record) -> dict[str, Any]:
    return {"id": rid, "kind": new.kind, "text": new.text, "prompt": new.prompt,
            "response": new.response, "system": new.system,
            "messages": new.messages, "raw_label": new.raw_label,
            "meta": {k: v for k, v in dict(new.meta).items() if k != "synthetic"}}


def _check_labels(ws: Workspace, schemes, copies: list[PrivateCopy],
                  news: list[NewRecord]) -> None:
    """Fill each copy's `changed_votes`: per scheme, the LFs whose vote on the copy differs
    from their vote on the source; and keep gold only for schemes without a change."""
    from pipelines.weak_supervision import apply_lfs, load_lfs

    for sc in schemes:
        lfs = load_lfs(ws, sc.name)
        if not lfs.lfs:
            continue
        rows = []
        for i, (c, new) in enumerate(zip(copies, news)):
            rows += [_lf_row(f"s{i}", c.source), _lf_row(f"c{i}", new)]
        L, _ = apply_lfs(rows, lfs.lfs, list(sc.classes))
        for i, c in enumerate(copies):
            changed = [lfs.names[j] for j in range(len(lfs.names)) if L[2 * i, j] != L[2 * i + 1, j]]
            if changed:
                c.changed_votes[sc.name] = changed
                c.gold.pop(sc.name, None)


def make_private_copies(ws: Workspace, cfg: PrivateCopyConfig | None = None, *,
                        commit: bool = True) -> PrivateCopyResult:
    """Copy real records with their identifying values replaced (see the module docstring).

    Args:
        commit: False previews (nothing is written, not even a run).
    Raises:
        SynthError: no record to copy (every one synthetic, gold, excluded or not among `ids`).
    """
    from pipelines.config import load_config

    cfg = cfg or PrivateCopyConfig()
    conf = load_config(ws.config_path)
    schemes = [conf.scheme(name) for name in conf.schemes] if conf.schemes else []
    result = PrivateCopyResult()

    def skip(why: str) -> None:
        result.skipped[why] = result.skipped.get(why, 0) + 1

    with ws.connect() as conn:
        if schemes:
            cands = list(iter_export_candidates(conn, schemes[0].name))
        else:
            from pipelines.records import Candidate, RecordState
            from pipelines.store import iter_records

            cands = [Candidate(r, RecordState()) for r in iter_records(conn, with_gold=True)]
    wanted = set(cfg.ids) if cfg.ids else None
    sources: list[Record] = []
    for cand in cands:
        rec = cand.record
        if wanted is not None and rec.id not in wanted:
            continue
        if rec.synthetic is not None:
            skip("synthetic")
            continue
        if cand.state.excluded and not cfg.include_excluded:
            skip("excluded")
            continue
        if rec.gold and not cfg.include_gold:
            skip("gold (held out)")
            continue
        sources.append(rec)
    if wanted is not None:
        missing = wanted - {c.record.id for c in cands}
        if missing:
            raise SynthError(f"no record {sorted(missing)[0]!r} in {ws.path}"
                             + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    if cfg.n is not None:
        sources = sources[:cfg.n]
    result.sources = len(sources)
    if not sources:
        why = ", ".join(f"{k}: {v}" for k, v in sorted(result.skipped.items())) or "no records"
        raise SynthError(f"no record to make a private copy of (left out: {why})")
    shared = Surrogates(salt=str(cfg.seed), date_shift_days=cfg.date_shift_days,
                        amount_jitter=cfg.amount_jitter, amounts=cfg.amounts)
    for rec in sources:
        sur = shared if cfg.scope == "set" else Surrogates(
            salt=f"{cfg.seed}:{rec.id}", date_shift_days=cfg.date_shift_days,
            amount_jitter=cfg.amount_jitter, amounts=cfg.amounts)
        c = private_fields(rec, sur)
        c.gold = dict(rec.gold or {}) if cfg.include_gold else {}
        if c.survivors():
            result.rejected.append(c)
            skip("a real value survived (not stored)")
            continue
        result.copies.append(c)
    news = [_new_record(c, {}, n) for n, c in enumerate(result.copies, 1)]
    if cfg.check_labels and schemes:
        _check_labels(ws, schemes, result.copies, news)
    for c, new in zip(result.copies, news):
        c.record_id = new.id
    if not commit:
        return result
    with ws.transaction() as conn:
        run_id = start_run(conn, "synth", {"method": "private", **cfg.to_dict()})
        now = utcnow()
        for n, c in enumerate(result.copies, 1):
            lineage = {"method": "private", "source_id": c.source.id, "replaced": c.replaced(),
                       "unchanged": c.unchanged, "scope": cfg.scope,
                       "labels_valid": {sc.name: sc.name not in c.changed_votes
                                        for sc in schemes} if cfg.check_labels else {},
                       "changed_votes": c.changed_votes, "run_id": run_id}
            new = _new_record(c, lineage, n)
            c.record_id = new.id
            result.stored += upsert_record(conn, new, now).added
        result.run_id = run_id
        finish_run(conn, run_id, result.summary())
    return result
