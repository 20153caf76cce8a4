"""Similarity search (`curate search`) and the on-topic filter (`curate filter`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.dedup.config import FilterConfig
from pipelines.embed import EmbedConfig, embed_records, encode_texts
from pipelines.errors import DedupError, InputError
from pipelines.store import Workspace, finish_run, list_records, record_ids, start_run
from pipelines.store.dedup import clear_filter_flags, replace_filter_flags

__all__ = ["SearchHit", "FilterResult", "search", "run_filter", "clear_filter", "parse_like"]


@dataclass
class SearchHit:
    record_id: str
    score: float
    text: str
    excluded: bool
    cluster_id: str | None


@dataclass
class FilterResult:
    records: int = 0
    exemplars: int = 0
    flagged: int = 0
    min_sim: float = 0.0
    run_id: int | None = None
    committed: bool = False
    similarity: dict[str, float] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("similarity")
        return d


def _all_embeddings(ws: Workspace, model: str, progress: bool):
    with ws.connect() as conn:
        ids = record_ids(conn)
    if not ids:
        raise DedupError(f"workspace {ws.path} has no records; ingest data first")
    return embed_records(ws, EmbedConfig(model=model), record_ids=ids, progress=progress)


def search(ws: Workspace, query: str, k: int = 20, *, model: str = "auto",
           progress: bool = False) -> list[SearchHit]:
    """The `k` records most similar to `query` (cosine), best first.

    `model` defaults to dedup's default (`auto`), so a search after `curate dedup` reads the
    embeddings dedup cached instead of encoding every record again."""
    if not isinstance(query, str) or not query.strip():
        raise DedupError("search query is empty; give some text to look for")
    if k < 1:
        raise DedupError(f"k must be a positive number of results, got {k}")
    import faiss

    from pipelines.embed import embed as embed_module   # the one alias rule embed_records uses

    emb = _all_embeddings(ws, model, progress)
    q = encode_texts([query], embed_module.resolve_alias(ws.path, model))
    index = faiss.IndexFlatIP(emb.dim)
    index.add(emb.vectors)
    scores, nb = index.search(q, min(k, len(emb.ids)))
    hit_ids = [emb.ids[i] for i in nb[0] if i >= 0]
    with ws.connect() as conn:
        rows = {r["id"]: r for r in list_records(conn, ids=hit_ids)}
    return [SearchHit(rid, round(float(s), 4), rows[rid]["text"], rows[rid]["excluded"],
                      rows[rid]["cluster_id"])
            for rid, s in zip(hit_ids, scores[0].tolist()) if rid in rows]


def parse_like(ws: Workspace, like: str | list[str]) -> tuple[list[str], list[str]]:
    """Exemplars as (record ids, texts) from a file (one per line: a record id or a text; JSONL
    lines may be objects with `id` or `text`), a comma-separated list of ids, or a list."""
    with ws.connect() as conn:
        known = set(record_ids(conn))
    items: list[str]
    if isinstance(like, str):
        path = Path(like).expanduser()
        if path.is_file():
            items = []
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                line = line.strip()
                if not line:
                    continue
                if path.suffix == ".jsonl":
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise InputError(f"invalid JSON: {exc.msg}", file=str(path), line=n) from None
                    if isinstance(obj, dict):
                        value = obj.get("id") or obj.get("text")
                        if not isinstance(value, str) or not value.strip():
                            raise InputError("expected an `id` or `text` string", file=str(path),
                                             line=n)
                        items.append(value)
                        continue
                    if not isinstance(obj, str):
                        raise InputError("expected a string or an object", file=str(path), line=n)
                    line = obj
                items.append(line)
        elif path.suffix in (".txt", ".jsonl", ".csv") or "/" in like:
            raise DedupError(f"like: file {like} does not exist")
        else:
            items = [x.strip() for x in like.split(",") if x.strip()]
    else:
        items = [x for x in like if isinstance(x, str) and x.strip()]
    if not items:
        raise DedupError("like: no exemplars given; it needs record ids, texts, or a file of them")
    ids = [x for x in items if x in known]
    texts = [x for x in items if x not in known]
    return ids, texts


def run_filter(ws: Workspace, like: str | list[str], min_sim: float = 0.5, *,
               model: str = "default", commit: bool = True, progress: bool = False) -> FilterResult:
    """Flag records whose best cosine to any exemplar is below `min_sim` (excluded, reversible).

    A later run replaces the flags; `clear_filter` removes them. Overrides still win.
    """
    from pipelines.dedup.dedup import refresh_decisions

    config = FilterConfig(min_sim=min_sim, model=model)
    ex_ids, ex_texts = parse_like(ws, like)
    emb = _all_embeddings(ws, config.model, progress)
    parts = []
    if ex_ids:
        pos = {rid: i for i, rid in enumerate(emb.ids)}
        parts.append(emb.vectors[[pos[r] for r in ex_ids]])
    if ex_texts:
        parts.append(encode_texts(ex_texts, config.model))
    exemplars = np.concatenate(parts)
    best = np.empty(len(emb.ids), dtype=np.float32)
    for start in range(0, len(emb.ids), 8192):  # bounded memory: (8192 x exemplars)
        best[start:start + 8192] = (emb.vectors[start:start + 8192] @ exemplars.T).max(axis=1)
    flags = {rid: (round(float(s), 4), bool(s < config.min_sim))
             for rid, s in zip(emb.ids, best.tolist())}
    result = FilterResult(records=len(emb.ids), exemplars=len(exemplars),
                          flagged=sum(f for _, f in flags.values()), min_sim=config.min_sim,
                          similarity={r: s for r, (s, _) in flags.items()})
    if commit:
        with ws.transaction() as conn:
            params = {"min_sim": config.min_sim, "model": config.model,
                      "exemplar_ids": ex_ids, "exemplar_texts": ex_texts[:50]}
            run_id = start_run(conn, "filter", params)
            replace_filter_flags(conn, flags, run_id)
            refresh_decisions(conn)
            result.run_id, result.committed = run_id, True
            finish_run(conn, run_id, result.to_dict())
    return result


def clear_filter(ws: Workspace) -> int:
    """Remove every filter flag (the records come back unless a dedup decision excludes them)."""
    from pipelines.dedup.dedup import refresh_decisions

    with ws.transaction() as conn:
        n = clear_filter_flags(conn)
        refresh_decisions(conn)
        run_id = start_run(conn, "filter", {"clear": True})
        finish_run(conn, run_id, {"cleared": n})
    return n
