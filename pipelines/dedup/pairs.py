"""From records to a verified pair graph: exact units -> candidate pairs -> checks.

Pure functions over typed data (no SQL, no model); the one file they touch is the candidate cache
(`indexes/dedup-pairs.json`). `pipelines.dedup.clusters` turns the graph into stars.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pipelines.dedup.config import DedupConfig
from pipelines.dedup.facts import Facts, compare_facts, jaccard, loose_key, shingles
from pipelines.dedup.index import choose_index, knn_pairs
from pipelines.embed import Embeddings
from pipelines.store import Workspace

log = logging.getLogger(__name__)

__all__ = ["Unit", "exact_units", "PairCheck", "verify_pair", "Candidates", "find_candidates",
           "Pair", "PairGraph", "verify_pairs", "candidates_key", "load_candidates",
           "save_candidates"]

FactsOf = Callable[[str], Facts]   # extract_facts, memoised for the run


@dataclass
class Unit:
    """An exact group: its head (most sources, then earliest ingested) and the records folded in."""

    head: dict[str, Any]                       # a `dedup_inputs` row
    # (row, "exact" | "same_prompt")
    copies: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.head["id"]

    @property
    def ids(self) -> list[str]:
        return [self.id] + [r["id"] for r, _ in self.copies]


def exact_units(recs: list[dict[str, Any]], same_prompt: bool) -> list[Unit]:
    """Group records by the exact levels (loose text; with `same_prompt`, an instruction's prompt),
    in order of each head's ingestion."""
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for r in recs:
        loose = loose_key(r["text"])
        key = loose
        if same_prompt and r["kind"] == "instruction" and r["prompt"]:
            key = "\x00prompt\x00" + loose_key(r["prompt"])
        groups[key].append((loose, r))
    units = []
    for members in groups.values():
        members.sort(key=lambda m: (-m[1]["n_sources"], m[1]["pos"]))
        head_loose, head = members[0]
        units.append(Unit(head, [(r, "exact" if loose == head_loose else "same_prompt")
                                 for loose, r in members[1:]]))
    units.sort(key=lambda u: u.head["pos"])
    return units


# -- verification of one pair --------------------------------------------------------------------
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


def verify_pair(cos: float, fa: Facts, fb: Facts, text_a: str, text_b: str,
                config: DedupConfig) -> PairCheck:
    """Decide one candidate pair: facts must not conflict; then cosine >= threshold, or agreeing
    facts, or high lexical overlap (see `pipelines.dedup.facts`)."""
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


# -- candidates: FAISS neighbours plus fact blocking ------------------------------------------------
@dataclass
class Candidates:
    """The semantic candidates of a run, over unit indices (i < j): what the cache holds."""

    index: str                                # the FAISS index kind searched
    pairs: list[tuple[int, int, float]]       # (unit i, unit j, cosine)


def head_vectors(emb: Embeddings, units: list[Unit]) -> np.ndarray:
    if not units:
        return emb.vectors[:0]
    pos_of = {rid: i for i, rid in enumerate(emb.ids)}
    return emb.vectors[np.fromiter((pos_of[u.id] for u in units), dtype=np.int64,
                                   count=len(units))]


def find_candidates(vectors: np.ndarray, texts: list[str], facts_of: FactsOf,
                    config: DedupConfig) -> Candidates:
    """Each head's `neighbours` nearest at cosine >= `candidate_threshold`, plus (with the checks
    on) the pairs that share a rare exact fact."""
    index = choose_index(len(vectors), config.index, config.flat_max)
    a, b, sims = knn_pairs(vectors, config.neighbours, config.candidate_threshold, index)
    if config.verify and config.fact_blocking:
        a, b, sims = _add_blocked_pairs(a, b, sims, vectors, [facts_of(t) for t in texts], config)
    return Candidates(index, list(zip(a.tolist(), b.tolist(), sims.tolist())))


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


# -- the pair graph ------------------------------------------------------------------------------
@dataclass
class Pair:
    """Two records compared: the heads of two units (`semantic`), or a unit's head and a copy
    with the same prompt (`same_prompt`: the responses are compared)."""

    a: str                        # record ids
    b: str
    kind: str                     # semantic | same_prompt
    cosine: float
    check: PairCheck | None = None   # None until verified

    @property
    def merged(self) -> bool:
        return self.check is not None and self.check.merged


@dataclass
class PairGraph:
    """Every pair a run compared, verified: what clustering reads."""

    index: str
    pairs: list[Pair]

    def semantic(self) -> list[Pair]:
        return [p for p in self.pairs if p.kind == "semantic"]

    def prompt_checks(self) -> dict[str, PairCheck]:
        """Same-prompt copy id -> the check of its response against its head's."""
        return {p.b: p.check for p in self.pairs if p.kind == "same_prompt" and p.check}


def verify_pairs(units: list[Unit], candidates: Candidates, emb: Embeddings, facts_of: FactsOf,
                 config: DedupConfig) -> PairGraph:
    """The candidates and every same-prompt copy, each with its `verify_pair` check."""
    pairs = [Pair(units[i].id, units[j].id, "semantic", cos) for i, j, cos in candidates.pairs]
    # Same prompt, different response: a duplicate only if the responses pass the same checks
    # as a semantic pair; otherwise kept, and clustered for a reviewer to choose.
    pairs += [Pair(u.id, rec["id"], "same_prompt", float(emb.get(u.id) @ emb.get(rec["id"])))
              for u in units for rec, level in u.copies if level == "same_prompt"]
    record = {r["id"]: r for u in units for r in [u.head] + [c for c, _ in u.copies]}
    for p in pairs:
        ra, rb = record[p.a], record[p.b]
        if p.kind == "same_prompt":   # the prompts are the same: compare what differs
            ta, tb = ra["response"] or "", rb["response"] or ""
        else:
            ta, tb = ra["text"], rb["text"]
        fa, fb = (facts_of(ta), facts_of(tb)) if config.verify else (Facts(), Facts())
        p.check = verify_pair(p.cosine, fa, fb, ta, tb, config)
    return PairGraph(candidates.index, pairs)


# -- the candidate cache -------------------------------------------------------------------------
def candidates_key(model_key: str, config: DedupConfig, units: list[Unit]) -> str:
    """Candidates depend only on the records (ids are content hashes), the model's files and the
    config's embedding and candidate fields (`DedupConfig.cache_key`), not on verification."""
    h = hashlib.sha256(model_key.encode())
    h.update(config.cache_key("candidates").encode())
    for unit in units:
        h.update(("|".join(unit.ids) + "\n").encode())
    return h.hexdigest()[:24]


def _cache_path(ws: Workspace) -> Path:
    return ws.subdir("indexes") / "dedup-pairs.json"


def load_candidates(ws: Workspace, key: str) -> Candidates | None:
    """The stored candidates if stored under `key`; None if absent, stale or unreadable."""
    path = _cache_path(ws)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("key") != key:
            return None
        return Candidates(raw["index"], [(int(i), int(j), float(s)) for i, j, s in raw["pairs"]])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # recompute
        log.warning("dedup candidate cache %s unreadable (%s); recomputing", path, exc)
        return None


def save_candidates(ws: Workspace, key: str, candidates: Candidates) -> None:
    """Write atomically (temp file, then rename); JSON floats round-trip exactly."""
    path = _cache_path(ws)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".dedup-pairs-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"key": key, "index": candidates.index,
                       "pairs": [list(p) for p in candidates.pairs]}, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
