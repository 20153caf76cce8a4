"""Exact and semantic deduplication of a workspace: clusters, representatives, reversible flags.

Levels, cheapest first:
1. *exact*: the same text ignoring case, spacing and punctuation (ingest already folded byte-
   identical content after whitespace/Unicode normalisation);
2. *same prompt* (instruction data): one prompt with different responses;
3. *semantic*: FAISS nearest neighbours of the sentence embeddings above a generous
   `candidate_threshold`, each pair verified (facts must not conflict; then cosine >= threshold,
   or agreeing facts, or high lexical overlap: see `pipelines.dedup.facts`).

Clusters are stars: every member was verified against the cluster's centre itself, so A~B and
B~C never glue A to C through B. The centre is the record verified as a duplicate of the most
others (then the one with most sources, most facts, earliest ingested); it is the representative
unless a person drops it. Nothing is deleted: `excluded` flags feed export, and `keep`/`drop`
overrides win over every later run.

A run, top to bottom (`run_dedup`): records -> exact units (`pairs.exact_units`) -> embeddings ->
candidates (`pairs.find_candidates`, cached) -> verified `PairGraph` (`pairs.verify_pairs`, cached
by `cache.py`) -> stars and member rows (`clusters`) -> decisions (`decisions.decide`) -> one
transaction (skipped but for the run row when the rows are unchanged). `on_progress` follows the
stages (`progress.py`).
"""

from __future__ import annotations

import copy
import functools
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from pipelines.dedup.cache import (
    cached_units, gc_paused, load_verified, save_verified, verification_key,
)
from pipelines.dedup.clusters import find_stars, member_rows
from pipelines.dedup.config import DedupConfig
from pipelines.dedup.decisions import decide
from pipelines.dedup.facts import FactTable, extract_facts
from pipelines.dedup.pairs import (
    RULES, PairCheck, PairGraph, candidates_key, find_candidates, head_vectors,
    load_candidates, save_candidates, verify_pair, verify_pairs,
)
from pipelines.dedup.progress import ProgressCallback, StageProgress, StageReporter
from pipelines.embed import embed_records
from pipelines.errors import DedupError
from pipelines.store import Workspace, finish_run, start_run
from pipelines.store.dedup import (
    MemberRow, cluster_records, cluster_sizes, dedup_decision, dedup_inputs, read_filter_flags,
    read_members, read_overrides, record_exists, replace_members, set_override_row, stamp_run,
    stored_unchanged, write_decisions,
)

__all__ = ["DedupResult", "Cluster", "PairCheck", "run_dedup", "set_override", "list_clusters",
           "verify_pair", "refresh_decisions", "StageProgress"]


@dataclass
class Cluster:
    cluster_id: str
    representative_id: str
    members: list[dict[str, Any]]   # MemberRow fields (+ text etc. from list_clusters)

    @property
    def size(self) -> int:
        return len(self.members)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DedupResult:
    records: int = 0
    skipped_empty: int = 0
    units: int = 0                 # records left after the exact levels
    embedded: int = 0              # vectors computed this run (the rest came from the cache)
    cache_hits: int = 0
    index: str = ""
    candidates: int = 0            # candidate pairs from FAISS
    merged_pairs: int = 0
    conflicts: int = 0             # candidates refused: conflicting facts or a divergent text
    segments: int = 0              # candidates refused: segments of one source conversation
    rules: dict[str, int] = field(default_factory=dict)   # candidates per deciding rule
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)   # the cascade, per stage
    model: str = ""                # the embedding model used (a path for the static model)
    conflicts_above_threshold: int = 0   # ... of which cosine alone would have merged
    clusters: int = 0
    exact: int = 0                 # records excluded as exact duplicates
    same_prompt: int = 0           # ... as one prompt with a response that is a duplicate too
    review: int = 0                # same prompt, distinct response: kept, clustered for a reviewer
    semantic: int = 0              # ... as semantic duplicates
    filtered: int = 0              # ... by the similarity filter
    excluded: int = 0              # all excluded records after overrides
    overrides: int = 0
    committed: bool = False
    units_cache: bool = False      # exact units reused (same records and sources)
    pair_cache: bool = False       # candidates reused (same records, model, search settings)
    verify_cache: bool = False     # checked pairs reused (... and the same verification fields)
    unchanged: bool = False        # members and decisions as stored: not rewritten, run id stamped
    run_id: int | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    cluster_list: list[Cluster] = field(default_factory=list, repr=False)

    def to_dict(self, *, include_clusters: bool = False) -> dict[str, Any]:
        # field by field: asdict() would deep-copy every cluster only to drop them
        d = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)
             if f.name != "cluster_list"}
        if include_clusters:
            d["cluster_list"] = [c.to_dict() for c in self.cluster_list]
        return d


class _Stopwatch:
    """Seconds per stage, for `DedupResult.timings`."""

    def __init__(self):
        self.start = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name], self.last = now - self.last, now

    def finish(self, result: DedupResult) -> None:
        result.seconds = time.perf_counter() - self.start
        result.timings = {k: round(v, 3) for k, v in self.laps.items()}


def run_dedup(ws: Workspace, config: DedupConfig | None = None, *, progress: bool = False,
              commit: bool = True, on_progress: ProgressCallback | None = None) -> DedupResult:
    """Find duplicate clusters and (if `commit`) store them with per-record decisions.

    With ``commit=False`` nothing is written except the embedding, candidate and verification
    caches: a preview (the studio's threshold slider), whose `cluster_list` and counts say what a
    committed run would do. `progress`: tqdm bars on a terminal; `on_progress`: called with a
    `StageProgress` as each stage (`progress.STAGES`) starts, advances and ends.
    """
    config = config or DedupConfig()
    progress = progress and sys.stderr.isatty()   # bars for a person, not for a log file
    report = StageReporter(on_progress)
    clock = _Stopwatch()
    result = DedupResult(params=config.params())
    with ws.connect() as conn, gc_paused():
        recs = dedup_inputs(conn)
    if not recs:
        raise DedupError(f"workspace {ws.path} has no records; ingest data first "
                         f"(curate ingest FILE --workspace {ws.path})")
    usable = [r for r in recs if r["text"] and r["text"].strip()]
    report.update("exact", 0, len(usable))
    units, result.units_cache = cached_units(ws, usable, config.same_prompt, config.exact)
    result.records, result.skipped_empty = len(recs), len(recs) - len(usable)
    result.units = len(units)
    report.end("exact", "" if config.exact else "off")
    clock.lap("exact")

    emb = None
    model_key = "no-model"
    if config.semantic:
        emb = embed_records(ws, config.embed_config(), record_ids=[r["id"] for r in usable],
                            progress=progress, on_progress=report.updater("embed"))
        result.embedded, result.cache_hits = emb.embedded, emb.cache_hits
        result.model, model_key = emb.model, emb.key
    report.end("embed", "off" if emb is None else "" if emb.embedded else "cached")
    clock.lap("embed")

    # The search is the costly part after embedding; it depends on no verification setting, so
    # an unchanged workspace (or one at another threshold) reuses the stored candidates.
    # Facts: one compact row per unit (`FactTable`, built once, for blocking and the bulk
    # refusals); a `Facts` object only for the texts a pair is checked on, memoised and bounded
    # (a `Facts` is ~2.7 KB: 1M of them would not fit the memory a run is allowed).
    facts_of = functools.lru_cache(maxsize=1 << 17)(extract_facts)
    texts = [u.head["text"] for u in units]
    # built on first use (not at all when both caches hold), then the same table
    table = functools.cache(
        lambda: FactTable(texts, extract_facts, blocking=config.fact_blocking)
        if config.verify else None)
    key = candidates_key(model_key, config, units)
    candidates = load_candidates(ws, key)
    result.pair_cache = candidates is not None
    if not config.fuzzy:
        report.end("fuzzy", "off")
    if candidates is None:
        vectors = head_vectors(emb, units)
        candidates = find_candidates(vectors, texts, table() if vectors is not None else None,
                                     config, progress=progress, on_progress=report.update)
        del vectors
        save_candidates(ws, key, candidates)
    report.end("fuzzy", "cached" if result.pair_cache else "")
    report.end("semantic", "off" if emb is None else "cached" if result.pair_cache else "")
    clock.lap("pairs_cached" if result.pair_cache else "search")

    graph, sizes = _verified(ws, verification_key(key, config), units, candidates, emb,
                             facts_of, table, config, result, progress, report)
    _count_pairs(result, graph, config)
    _count_stages(result, units, candidates, graph, clock, config)
    clock.lap("verified_cached" if result.verify_cache else "verify")

    report.end("verify", "cached" if result.verify_cache else "")
    report.update("cluster", 0, len(units))
    with gc_paused():   # rows for every member: many small objects, no cycles
        members = member_rows(units, find_stars(units, graph, lambda u: sizes.get(u, 0)), graph)
    report.end("cluster")
    clock.lap("cluster")

    with ws.connect() as conn:
        overrides, flags = read_overrides(conn), read_filter_flags(conn)
    with gc_paused():
        decisions = decide(members, overrides, flags)
        _count(result, members, decisions, overrides)
        result.cluster_list = _clusters_from(members, decisions)
    clock.lap("decide")
    if not commit:
        report.end("write", "preview: nothing stored")
        clock.laps["write"] = 0.0
        clock.finish(result)
        return result
    with ws.transaction() as conn:
        run_id = start_run(conn, "dedup", config.params())
        for d in decisions:
            d.run_id = run_id
        report.update("write", 0, len(members) + len(decisions))
        result.unchanged = stored_unchanged(conn, members, decisions)
        if result.unchanged:   # a re-run on unchanged data: the same rows, this run's id
            stamp_run(conn, run_id)
        else:
            replace_members(conn, members, run_id)
            write_decisions(conn, decisions)
        report.end("write", "unchanged: run id stamped" if result.unchanged else "")
        result.run_id, result.committed = run_id, True
        clock.lap("write")
        clock.finish(result)
        finish_run(conn, run_id, result.to_dict())
    return result


def _verified(ws: Workspace, key: str, units, candidates, emb, facts_of, table,
              config: DedupConfig, result: DedupResult, progress: bool,
              report: StageReporter) -> tuple[PairGraph, dict[int, int]]:
    """The checked pair graph and the fact sizes of the units in merged pairs (the centres'
    tie-break: the richer record), from the verification cache when `key` matches."""
    cached = load_verified(ws, key, units, candidates)
    result.verify_cache = cached is not None
    if cached is not None:
        return cached
    graph = verify_pairs(units, candidates, emb, facts_of, config, progress=progress,
                         on_progress=report.updater("verify"), facts=table())
    unit_of = {u.id: i for i, u in enumerate(units)}
    sizes = {}
    if config.verify:
        fact_size = table().size
        for p in graph.semantic():
            if p.merged:
                for u in (unit_of[p.a], unit_of[p.b]):
                    sizes[u] = int(fact_size[u])
    save_verified(ws, key, graph, sizes)
    return graph, sizes


def _count_pairs(result: DedupResult, graph: PairGraph, config: DedupConfig) -> None:
    codes, cosines = graph.rule_columns()
    counts = np.bincount(codes, minlength=len(RULES)) if len(codes) else np.zeros(len(RULES), int)
    rules = {RULES[k]: int(c) for k, c in enumerate(counts) if c}
    result.index = graph.index
    result.candidates = len(codes)
    result.merged_pairs = sum(1 for p in graph.semantic() if p.merged)
    conflicts = np.isin(codes, [RULES.index("conflict"), RULES.index("divergent")])
    result.conflicts = int(conflicts.sum())
    # in float64, as each pair's check compares its cosine (NaN: no cosine, never above)
    result.conflicts_above_threshold = int(
        (conflicts & (cosines.astype(np.float64) >= config.threshold)).sum())
    result.segments = rules.get("segment", 0)
    result.rules = dict(sorted(rules.items()))


def _count_stages(result: DedupResult, units, candidates, graph: PairGraph, clock,
                  config: DedupConfig) -> None:
    """Per stage of the cascade: on or off, what it found, and its seconds."""
    merged = defaultdict(int)
    for p in graph.semantic():
        if p.merged:
            merged["fuzzy" if p.check.rule == "lexical" else "semantic"] += 1
    result.stages = {
        "exact": {"on": config.exact, "records": result.records - result.skipped_empty,
                  "units": len(units), "seconds": round(clock.laps.get("exact", 0.0), 3)},
        "fuzzy": {"on": config.fuzzy, "candidates": candidates.stages.get("fuzzy", 0),
                  "merged_pairs": merged["fuzzy"],
                  "seconds": candidates.seconds.get("fuzzy", 0.0)},
        "semantic": {"on": config.semantic,
                     "candidates": candidates.stages.get("semantic", 0)
                     + candidates.stages.get("blocking", 0),
                     "blocked": candidates.stages.get("blocking", 0),
                     "merged_pairs": merged["semantic"],
                     "embed_seconds": round(clock.laps.get("embed", 0.0), 3),
                     "seconds": candidates.seconds.get("semantic", 0.0)},
    }


def _count(result: DedupResult, members: list[MemberRow], decisions, overrides) -> None:
    method_of = {m.record_id: m.method for m in members}
    result.clusters = len({m.cluster_id for m in members})
    result.overrides = len(overrides)
    result.review = sum(1 for m in members if m.method == "same_prompt" and m.rule == "review")
    for d in decisions:
        if not d.excluded:
            continue
        result.excluded += 1
        if d.record_id in overrides or d.representative_id == d.record_id or d.cluster_id is None:
            if d.method == "filter" or "off-topic" in d.reason:
                result.filtered += 1
            continue
        level = method_of.get(d.record_id)
        if level == "same_prompt":
            result.same_prompt += 1
            result.exact += 1
        elif level == "exact":
            result.exact += 1
        elif level == "semantic":
            result.semantic += 1


def _clusters_from(members: list[MemberRow], decisions) -> list[Cluster]:
    by_id = {d.record_id: d for d in decisions}
    groups: dict[str, list[MemberRow]] = defaultdict(list)
    for m in members:
        groups[m.cluster_id].append(m)
    out = []
    for cid, ms in groups.items():
        ms.sort(key=lambda m: m.rank)
        rows = []
        for m in ms:
            d = dict(vars(m))   # flat scalar fields: asdict()'s deep copy is 10x slower
            dec = by_id.get(m.record_id)
            d.update(excluded=bool(dec.excluded) if dec else False,
                     reason=dec.reason if dec else "")
            rows.append(d)
        rep = by_id[ms[0].record_id].representative_id if ms[0].record_id in by_id else ms[0].record_id
        out.append(Cluster(cid, rep, rows))
    out.sort(key=lambda c: (-c.size, c.cluster_id))
    return out


def refresh_decisions(conn) -> list:
    """Recompute the `dedup` table from stored members, overrides and filter flags."""
    decisions = decide(read_members(conn), read_overrides(conn), read_filter_flags(conn))
    write_decisions(conn, decisions)
    return decisions


def set_override(ws: Workspace, record_id: str, decision: str | None) -> dict[str, Any]:
    """A person's keep/drop for one record (None clears it); applied at once and by later runs.

    Returns the record's decision row after the change.
    """
    if decision not in ("keep", "drop", None):
        raise DedupError(f"override must be 'keep' or 'drop', got {decision!r}")
    with ws.transaction() as conn:
        if not record_exists(conn, record_id):
            raise DedupError(f"no record with id {record_id!r} in {ws.path}")
        set_override_row(conn, record_id, decision)
        refresh_decisions(conn)
        row = dedup_decision(conn, record_id)
    return row or {"record_id": record_id, "excluded": 0, "cluster_id": None,
                   "reason": "not a duplicate"}


def list_clusters(ws: Workspace, top: int | None = 20) -> list[Cluster]:
    """The largest stored clusters, members side by side (text, scores, decision)."""
    if top is not None and top < 1:
        raise DedupError(f"top must be a positive number of clusters, got {top}")
    with ws.connect() as conn:
        sizes = cluster_sizes(conn, top)
        rows = cluster_records(conn, [c for c, _ in sizes])
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        r["excluded"] = bool(r["excluded"])
        groups[r["cluster_id"]].append(r)
    out = []
    for cid, _ in sizes:
        ms = groups[cid]
        out.append(Cluster(cid, ms[0]["representative_id"] or ms[0]["record_id"], ms))
    return out
