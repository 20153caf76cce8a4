"""What synthetic records the workspace holds: one row per record with its source and what made
it, and the counts by method and kind (the studio's Synthetic page, `curate synth list`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines.store import Workspace, iter_records

__all__ = ["SyntheticOverview", "synthetic_overview", "describe_lineage"]


def describe_lineage(syn: dict[str, Any]) -> tuple[str, dict[str, int]]:
    """(one line saying what made the record, its kinds -> count)."""
    method = syn.get("method")
    if method == "counterfactual":
        return (f"{syn.get('edit')}: {syn.get('before')!r} -> {syn.get('after')!r}",
                {str(syn.get("edit")): 1})
    if method == "private":
        replaced = dict(syn.get("replaced") or {})
        if not replaced:
            return "copied unchanged (nothing to replace)", {}
        return "replaced " + ", ".join(f"{k} {v}" for k, v in sorted(replaced.items())), replaced
    if method == "generate":
        return f"{syn.get('task')} by {syn.get('model')}", {str(syn.get("task")): 1}
    return str(method), {}


@dataclass
class SyntheticOverview:
    rows: list[dict[str, Any]] = field(default_factory=list)
    by_method: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)   # method -> kind -> n
    real: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"real": self.real, "synthetic": len(self.rows), "by_method": self.by_method,
                "by_kind": self.by_kind, "rows": self.rows}


def synthetic_overview(ws: Workspace) -> SyntheticOverview:
    out = SyntheticOverview()
    with ws.connect() as conn:
        for rec in iter_records(conn):
            syn = rec.synthetic
            if syn is None:
                out.real += 1
                continue
            method = str(syn.get("method"))
            change, kinds = describe_lineage(dict(syn))
            out.by_method[method] = out.by_method.get(method, 0) + 1
            per = out.by_kind.setdefault(method, {})
            for k, n in kinds.items():
                per[k] = per.get(k, 0) + n
            out.rows.append({"id": rec.id, "method": method, "source_id": syn.get("source_id"),
                             "change": change, "run_id": syn.get("run_id")})
    return out
