"""The PII step: detect spans in every record's text and store them (type, offsets, confidence).

Export does not depend on this step having run: it detects again on what it renders (the
rendered rows are what leaves the workspace), redacts by its `pii` mode and refuses leftovers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pipelines.pii.config import PiiConfig
from pipelines.pii.detect import detect, metadata_names
from pipelines.store import Workspace, finish_run, iter_records, start_run
from pipelines.store.filters import SpanRow, replace_pii_spans

__all__ = ["PiiResult", "run_pii"]


@dataclass
class PiiResult:
    records: int
    with_pii: int
    spans: dict[str, int] = field(default_factory=dict)     # type -> count
    run_id: int | None = None
    seconds: float = 0.0
    examples: dict[str, list[str]] = field(default_factory=dict)   # type -> record ids

    def to_dict(self) -> dict[str, Any]:
        return {"records": self.records, "with_pii": self.with_pii, "spans": self.spans,
                "run_id": self.run_id, "seconds": self.seconds, "examples": self.examples}


def run_pii(ws: Workspace, config: PiiConfig, *, commit: bool = True,
            progress: bool = False) -> PiiResult:
    t0 = time.perf_counter()
    with ws.connect() as conn:
        records = list(iter_records(conn))
    it = records
    if progress:
        from tqdm import tqdm

        it = tqdm(records, desc="pii", unit="rec", leave=False)
    rows: list[SpanRow] = []
    counts: dict[str, int] = {}
    examples: dict[str, list[str]] = {}
    with_pii = 0
    for rec in it:
        spans = detect(rec.text, names=metadata_names(rec.meta), types=config.types,
                       min_confidence=config.min_confidence)
        with_pii += bool(spans)
        for s in spans:
            rows.append(SpanRow(rec.id, s.start, s.end, s.type, s.confidence))
            counts[s.type] = counts.get(s.type, 0) + 1
            ex = examples.setdefault(s.type, [])
            if len(ex) < 5 and rec.id not in ex:
                ex.append(rec.id)
    result = PiiResult(records=len(records), with_pii=with_pii, spans=counts, examples=examples)
    if commit:
        with ws.transaction() as conn:
            run_id = start_run(conn, "pii", config.to_dict())
            replace_pii_spans(conn, rows, run_id)
            result.run_id = run_id
            finish_run(conn, run_id, {"records": len(records), "with_pii": with_pii,
                                      "spans": counts})
    result.seconds = round(time.perf_counter() - t0, 3)
    return result
