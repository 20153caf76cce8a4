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
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.dedup.config import DedupConfig
from pipelines.dedup.decisions import decide
from pipelines.dedup.facts import Facts, compare_facts, extract_facts, jaccard, loose_key, shingles
from pipelines.dedup.index import choose_index, knn_pairs
from pipelines.embed import EmbedConfig, embed_records
from pipelines.errors import DedupError
from pipelines.store import Workspace, finish_run, start_run
from pipelines.store.dedup import (
    MemberRow, cluster_records, cluster_sizes, dedup_decision, dedup_inputs, read_filter_flags,
    read_members, read_overrides, replace_members, set_override_row, write_decisions,
)

log = logging.getLogger(__name__)

__all__ = ["DedupResult", "Cluster", "PairCheck", "run_dedup", "set_override", "list_clusters",
           "verify_pair", "refresh_decisions"]


@dataclass
class PairCheck:
    """Why a candidate pair did or did not merge (shown to reviewers)."""

    merged: bool
    cosine: float
    lexical: float | None
    facts: str
    shared: int
    rule: str            # cosine | facts | lexical | conflict | weak
    detail: str = ""


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
    conflicts: int = 0             # candidates refused because their facts conflict
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
    pair_cache: bool = False       # candidates and checks reused from an identical earlier run
    run_id: int | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    cluster_list: list[Cluster] = field(default_factory=list, repr=False)

    def to_dict(self, *, include_clusters: bool = False) -> dict[str, Any]:
        d = asdict(self)
        d.pop("cluster_list")
        if include_clusters:
            d["cluster_list"] = [c.to_dict() for c in self.cluster_list]
        return d


def verify_pair(cos: float, fa: Facts, fb: Facts, text_a: str, text_b: str,
                config: DedupConfig) -> PairCheck:
    """Decide one candidate pair; see the module docstring."""
    if not config.verify:
        ok = cos >= config.threshold
        return PairCheck(ok, cos, None, "unchecked", 0, "cosine" if ok else "weak")
    fc = compare_facts(fa, fb)
    if fc.status == "conflict":
        return PairCheck(False, cos, None, "conflict", fc.shared, "conflict", fc.detail)
    lex = jaccard(shingles(text_a), shingles(text_b))
    if cos >= config.threshold:
        return PairCheck(True, cos, lex, fc.status, fc.shared, "cosine")
    if fc.status == "agree" and fc.shared >= config.min_shared_facts:
        return PairCheck(True, cos, lex, fc.status, fc.shared, "facts")
    if lex >= config.lexical_threshold:
        return PairCheck(True, cos, lex, fc.status, fc.shared, "lexical")
    return PairCheck(False, cos, lex, fc.status, fc.shared, "weak")


def _exact_units(recs: list[dict[str, Any]], same_prompt: bool) -> list[list[tuple[dict, str]]]:
    """Group records by the exact levels. Each unit: [(record, method)], the first is its head."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in recs:
        r["_loose"] = loose_key(r["text"])
        key = r["_loose"]
        if same_prompt and r["kind"] == "instruction" and r["prompt"]:
            key = "\x00prompt\x00" + loose_key(r["prompt"])
        groups[key].append(r)
    units = []
    for members in groups.values():
        # head: most sources, then earliest ingested
        members.sort(key=lambda r: (-r["n_sources"], r["pos"]))
        head = members[0]
        units.append([(head, "centre")] + [
            (r, "exact" if r["_loose"] == head["_loose"] else "same_prompt") for r in members[1:]])
    units.sort(key=lambda u: u[0][0]["pos"])
    return units


def _add_blocked_pairs(a: np.ndarray, b: np.ndarray, sims: np.ndarray, vectors: np.ndarray,
                       facts: list[Facts], config: DedupConfig):
    """Add candidates that share a rare exact fact: an identifier, or an amount on a date.

    In templated data a reworded copy can rank below dozens of *different* claims from the same
    template (measured: rank 20-2000 at 20k-100k records), beyond any practical k. Records that
    share a policy number, or the same amount on the same date, are compared directly (blocking);
    the fact check then refuses the ones that differ elsewhere. Buckets larger than
    `block_max` (a common value, not an identifying one) are skipped.
    """
    buckets: dict[str, list[int]] = defaultdict(list)
    for u, f in enumerate(facts):
        for ident in f.ident:
            buckets["i" + ident].append(u)
        for amount in f.amount:
            for date in f.date:
                buckets[f"a{amount}d{date}"].append(u)
    seen = set(zip(a.tolist(), b.tolist()))
    extra: set[tuple[int, int]] = set()
    for members in buckets.values():
        if 2 <= len(members) <= config.block_max:
            for x in range(len(members)):
                for y in range(x + 1, len(members)):
                    p = (min(members[x], members[y]), max(members[x], members[y]))
                    if p not in seen:
                        extra.add(p)
    if not extra:
        return a, b, sims
    ea = np.fromiter((p[0] for p in extra), dtype=np.int64, count=len(extra))
    eb = np.fromiter((p[1] for p in extra), dtype=np.int64, count=len(extra))
    es = np.einsum("ij,ij->i", vectors[ea], vectors[eb]).astype(np.float32)
    keep = es >= config.candidate_threshold
    return (np.concatenate([a, ea[keep]]), np.concatenate([b, eb[keep]]),
            np.concatenate([sims, np.minimum(es[keep], 1.0)]))


_CACHE_KEYS = ("threshold", "candidate_threshold", "lexical_threshold", "min_shared_facts",
               "verify", "same_prompt", "index", "flat_max", "neighbours", "fact_blocking",
               "block_max")


def _fingerprint(model_key: str, config: DedupConfig, units) -> str:
    h = hashlib.sha256(model_key.encode())
    h.update(json.dumps({k: getattr(config, k) for k in _CACHE_KEYS}, sort_keys=True).encode())
    for unit in units:
        h.update(("|".join(r["id"] for r, _ in unit) + "\n").encode())
    return h.hexdigest()[:24]


def _pair_cache_path(ws: Workspace) -> Path:
    return ws.subdir("indexes") / "dedup-pairs.json"


def _load_pair_cache(ws: Workspace, fingerprint: str) -> dict | None:
    path = _pair_cache_path(ws)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("fingerprint") != fingerprint:
            return None
        adj: dict[int, dict[int, PairCheck]] = defaultdict(dict)
        for i, j, check in raw["edges"]:
            adj[i][j] = adj[j][i] = PairCheck(**check)
        return {"adj": adj, "counts": raw["counts"],
                "prompt_checks": {k: PairCheck(**v) for k, v in raw["prompt_checks"].items()},
                "fact_size": {int(k): v for k, v in raw["fact_size"].items()}}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:  # corrupt: recompute, overwrite
        log.warning("dedup pair cache %s unreadable (%s); recomputing", path, exc)
        return None


def _save_pair_cache(ws: Workspace, fingerprint: str, found: dict, result: "DedupResult") -> None:
    adj = found["adj"]
    edges = [[i, j, asdict(c)] for i in adj for j, c in adj[i].items() if i < j]
    blob = {"fingerprint": fingerprint, "edges": edges,
            "counts": {"candidates": result.candidates, "conflicts": result.conflicts,
                       "conflicts_above_threshold": result.conflicts_above_threshold,
                       "index": result.index},
            "prompt_checks": {k: asdict(v) for k, v in found["prompt_checks"].items()},
            "fact_size": found["fact_size"]}
    path = _pair_cache_path(ws)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".dedup-pairs-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(blob, fh)
    os.replace(tmp, path)


def _find_pairs(emb, heads, units, config: DedupConfig, result: "DedupResult",
                timings: dict[str, float]) -> dict:
    """FAISS candidates (+ fact blocking), each verified; same-prompt members checked."""
    t = time.perf_counter()
    pos_of = {rid: i for i, rid in enumerate(emb.ids)}
    vectors = emb.vectors[np.fromiter((pos_of[h["id"]] for h in heads), dtype=np.int64,
                                      count=len(heads))] if heads else emb.vectors[:0]
    result.index = choose_index(len(heads), config.index, config.flat_max)
    a, b, sims = knn_pairs(vectors, config.neighbours, config.candidate_threshold, result.index)
    timings["search"] = time.perf_counter() - t

    # Same prompt, different response: a duplicate only if the responses pass the same checks
    # as a semantic pair; otherwise kept, and clustered for a reviewer to choose.
    t = time.perf_counter()
    prompt_checks: dict[str, PairCheck] = {}
    for unit in units:
        head = unit[0][0]
        for rec, level in unit[1:]:
            if level == "same_prompt":
                # the prompts are the same: compare what differs, the responses
                cos = float(emb.vectors[pos_of[head["id"]]] @ emb.vectors[pos_of[rec["id"]]])
                ra, rb = head["response"] or "", rec["response"] or ""
                prompt_checks[rec["id"]] = verify_pair(cos, extract_facts(ra), extract_facts(rb),
                                                       ra, rb, config)
    facts: dict[int, Facts] = {}

    def facts_of(u: int) -> Facts:
        f = facts.get(u)
        if f is None:
            f = facts[u] = extract_facts(heads[u]["text"])
        return f

    if config.verify and config.fact_blocking:
        a, b, sims = _add_blocked_pairs(a, b, sims, vectors,
                                        [facts_of(u) for u in range(len(heads))], config)
    result.candidates = len(a)
    adj: dict[int, dict[int, PairCheck]] = defaultdict(dict)
    for i, j, s in zip(a.tolist(), b.tolist(), sims.tolist()):
        check = verify_pair(s, facts_of(i) if config.verify else Facts(),
                            facts_of(j) if config.verify else Facts(),
                            heads[i]["text"], heads[j]["text"], config)
        if check.rule == "conflict":
            result.conflicts += 1
            if s >= config.threshold:
                result.conflicts_above_threshold += 1
        if check.merged:
            adj[i][j] = adj[j][i] = check
    fact_size = {u: facts[u].size for u in adj if u in facts}
    timings["verify"] = time.perf_counter() - t
    return {"adj": adj, "prompt_checks": prompt_checks, "fact_size": fact_size}


def run_dedup(ws: Workspace, config: DedupConfig | None = None, *, progress: bool = False,
              commit: bool = True) -> DedupResult:
    """Find duplicate clusters and (if `commit`) store them with per-record decisions.

    With ``commit=False`` nothing is written except the embedding cache: a preview (the studio's
    threshold slider), whose `cluster_list` and counts say what a committed run would do.
    """
    config = config or DedupConfig()
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    result = DedupResult(params=config.params())
    with ws.connect() as conn:
        recs = dedup_inputs(conn)
    if not recs:
        raise DedupError(f"workspace {ws.path} has no records; ingest data first "
                         f"(curate ingest FILE --workspace {ws.path})")
    result.records = len(recs)
    usable = [r for r in recs if r["text"] and r["text"].strip()]
    result.skipped_empty = len(recs) - len(usable)
    units = _exact_units(usable, config.same_prompt)
    result.units = len(units)
    timings["exact"] = time.perf_counter() - t0

    t = time.perf_counter()
    heads = [u[0][0] for u in units]
    emb = embed_records(ws, EmbedConfig(model=config.model, batch_size=config.batch_size),
                        record_ids=[r["id"] for r in usable], progress=progress)
    result.embedded, result.cache_hits = emb.embedded, emb.cache_hits
    timings["embed"] = time.perf_counter() - t

    # Candidates and their checks depend only on the records (ids are content hashes), the
    # model and these settings: an unchanged workspace reuses them (re-runs cost a fraction).
    t = time.perf_counter()
    fingerprint = _fingerprint(emb.key, config, units)
    cached = _load_pair_cache(ws, fingerprint)
    if cached is None:
        found = _find_pairs(emb, heads, units, config, result, timings)
        _save_pair_cache(ws, fingerprint, found, result)
    else:
        found = cached
        for key in ("candidates", "conflicts", "conflicts_above_threshold"):
            setattr(result, key, found["counts"][key])
        result.index = found["counts"]["index"]
        result.pair_cache = True
        timings["pairs_cached"] = time.perf_counter() - t
    adj, prompt_checks, fact_size = found["adj"], found["prompt_checks"], found["fact_size"]
    result.merged_pairs = sum(len(v) for v in adj.values()) // 2

    # Stars: centres by degree, then most sources, most facts, earliest.
    t = time.perf_counter()
    order = sorted(adj, key=lambda u: (-len(adj[u]), -heads[u]["n_sources"],
                                       -fact_size.get(u, 0), heads[u]["pos"]))
    assigned: dict[int, int] = {}
    stars: list[tuple[int, list[int]]] = []
    for u in order:
        if u in assigned:
            continue
        members = sorted((v for v in adj[u] if v not in assigned),
                         key=lambda v: (-adj[u][v].cosine, heads[v]["pos"]))
        if not members:
            continue
        assigned[u] = u
        for v in members:
            assigned[v] = u
        stars.append((u, members))
    starred = set(assigned)
    member_rows: list[MemberRow] = []

    def add_unit(unit_idx: int, cluster_id: str, rank: int, method: str,
                 check: PairCheck | None) -> int:
        for k, (rec, level) in enumerate(units[unit_idx]):
            if k == 0:
                m = MemberRow(rec["id"], cluster_id, rank, method)
                if check is not None:
                    m.similarity, m.lexical = round(check.cosine, 4), (
                        None if check.lexical is None else round(check.lexical, 4))
                    m.facts, m.shared_facts, m.rule = check.facts, check.shared, check.rule
                else:
                    m.similarity = 1.0
            elif method == "centre" and level == "same_prompt":
                c = prompt_checks[rec["id"]]
                m = MemberRow(rec["id"], cluster_id, rank, level, round(c.cosine, 4),
                              None if c.lexical is None else round(c.lexical, 4), c.facts,
                              c.shared, c.rule if c.merged else "review")
            elif method == "centre":
                m = MemberRow(rec["id"], cluster_id, rank, level, 1.0, None, None, None, level)
            else:  # an exact copy of a semantic member: it goes where its head goes
                m = MemberRow(rec["id"], cluster_id, rank, "semantic", member_rows[-1].similarity,
                              member_rows[-1].lexical, member_rows[-1].facts,
                              member_rows[-1].shared_facts, f"{level} copy of {units[unit_idx][0][0]['id']}")
            member_rows.append(m)
            rank += 1
        return rank

    for u, members in stars:
        cid = "c" + heads[u]["id"][1:]
        rank = add_unit(u, cid, 0, "centre", None)
        for v in members:
            rank = add_unit(v, cid, rank, "semantic", adj[u][v])
    for idx, unit in enumerate(units):
        if idx not in starred and len(unit) > 1:
            add_unit(idx, "c" + unit[0][0]["id"][1:], 0, "centre", None)
    timings["cluster"] = time.perf_counter() - t

    t = time.perf_counter()
    with ws.connect() as conn:
        overrides = read_overrides(conn)
        flags = read_filter_flags(conn)
    decisions = decide(member_rows, overrides, flags)
    _count(result, member_rows, decisions, overrides)
    result.cluster_list = _clusters_from(member_rows, decisions)
    if commit:
        with ws.transaction() as conn:
            run_id = start_run(conn, "dedup", config.params())
            replace_members(conn, member_rows, run_id)
            for d in decisions:
                d.run_id = run_id
            write_decisions(conn, decisions)
            result.run_id, result.committed = run_id, True
            result.seconds = time.perf_counter() - t0
            timings["write"] = time.perf_counter() - t
            result.timings = {k: round(v, 3) for k, v in timings.items()}
            finish_run(conn, run_id, result.to_dict())
    else:
        timings["write"] = 0.0
        result.seconds = time.perf_counter() - t0
        result.timings = {k: round(v, 3) for k, v in timings.items()}
    return result


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
            d = asdict(m)
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
        if conn.execute("SELECT 1 FROM records WHERE id = ?", (record_id,)).fetchone() is None:
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
