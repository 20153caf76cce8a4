"""The quality-filter step: compute every record's signals, apply the rules, store both.

Signals are kept whatever the rules say, so a person can inspect them and change a rule without
recomputing (`preview` evaluates new rules over fresh signals and stores nothing). Exclusion is
a flag (`quality_signals.excluded`), never a deletion; a person's keep/drop wins over every run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pipelines.errors import InputError
from pipelines.filters.config import FilterConfig
from pipelines.filters.rules import fired_rules, parse_rule
from pipelines.filters.signals import compute_signals
from pipelines.store import Workspace, finish_run, iter_records, start_run
from pipelines.store.dedup import record_exists
from pipelines.store.filters import (
    SignalRow, read_quality_overrides, read_signals, replace_signals, set_quality_override,
)

__all__ = ["FilterResult", "run_quality_filters", "set_filter_override", "signals_for",
           "preview_rules", "stored_signals"]


@dataclass
class FilterResult:
    records: int
    excluded: int
    fired: dict[str, int] = field(default_factory=dict)     # rule -> records it holds for
    overrides: int = 0
    rules: list[str] = field(default_factory=list)
    run_id: int | None = None
    seconds: float = 0.0
    examples: dict[str, list[str]] = field(default_factory=dict)   # rule -> a few record ids

    def to_dict(self) -> dict[str, Any]:
        return {"records": self.records, "excluded": self.excluded, "fired": self.fired,
                "overrides": self.overrides, "rules": self.rules, "run_id": self.run_id,
                "seconds": self.seconds, "examples": self.examples}


def signals_for(records, config: FilterConfig, root) -> list[SignalRow]:
    """Signals and fired rules of `records` (an iterable of `Record`): the pure part of a run."""
    refusal, boilerplate = config.phrase_lists(root)
    enabled = config.enabled_signals()
    rules = [parse_rule(r, enabled) for r in config.rules]
    langs = tuple(config.languages) if config.languages else None
    out = []
    for rec in records:
        sig = compute_signals(rec, enabled=enabled, refusal=refusal, boilerplate=boilerplate,
                              langs=langs)
        out.append(SignalRow(rec.id, sig.values, sig.details, fired_rules(rules, sig.values)))
    return out


def run_quality_filters(ws: Workspace, config: FilterConfig, *, commit: bool = True,
                        progress: bool = False) -> FilterResult:
    """Compute signals for every record and flag those a rule holds for (one transaction)."""
    t0 = time.perf_counter()
    with ws.connect() as conn:
        records = list(iter_records(conn))
        overrides = read_quality_overrides(conn)
    if progress:
        from tqdm import tqdm

        records_iter = tqdm(records, desc="filters", unit="rec", leave=False)
    else:
        records_iter = records
    rows = signals_for(records_iter, config, ws.path)
    fired: dict[str, int] = {r: 0 for r in config.rules}
    examples: dict[str, list[str]] = {}
    excluded = 0
    for row in rows:
        for rule in row.fired:
            fired[rule] += 1
            if len(examples.setdefault(rule, [])) < 5:
                examples[rule].append(row.record_id)
        decision = overrides.get(row.record_id)
        if decision == "drop" or (row.fired and decision != "keep"):
            excluded += 1
    result = FilterResult(records=len(rows), excluded=excluded, fired=fired,
                          overrides=len(overrides), rules=list(config.rules), examples=examples)
    if commit:
        with ws.transaction() as conn:
            run_id = start_run(conn, "quality_filter", config.to_dict())
            replace_signals(conn, rows, run_id)
            result.run_id = run_id
            result.seconds = round(time.perf_counter() - t0, 3)
            finish_run(conn, run_id, {k: v for k, v in result.to_dict().items()
                                      if k != "examples"})
    result.seconds = round(time.perf_counter() - t0, 3)
    return result


def set_filter_override(ws: Workspace, record_id: str, decision: str | None) -> dict[str, Any]:
    """A person's keep/drop (None: reset) of the quality filters' decision on one record."""
    with ws.transaction() as conn:
        if not record_exists(conn, record_id):
            raise InputError(f"no record with id {record_id!r} in {ws.path}")
        return set_quality_override(conn, record_id, decision)


def stored_signals(ws: Workspace) -> dict[str, dict[str, Any]]:
    """Every record's stored signals, fired rules, exclusion and override (the last filter run)."""
    with ws.connect() as conn:
        rows = read_signals(conn)
        overrides = read_quality_overrides(conn)
    for rid, row in rows.items():
        row["override"] = overrides.get(rid)
    return rows


def preview_rules(ws: Workspace, rules: list[str]) -> dict[str, Any]:
    """What `rules` would exclude over the *stored* signals, without recomputing or storing:
    per rule the records it holds for, and the total a person's overrides leave excluded (the
    studio's live count)."""
    parsed = [parse_rule(r) for r in rules]
    rows = stored_signals(ws)
    hits: dict[str, list[str]] = {r.text: [] for r in parsed}
    excluded = 0
    for rid, row in rows.items():
        fired = fired_rules(parsed, row["signals"])
        for text in fired:
            hits[text].append(rid)
        if row["override"] == "drop" or (fired and row["override"] != "keep"):
            excluded += 1
    return {"records": len(rows), "excluded": excluded, "hits": hits}
