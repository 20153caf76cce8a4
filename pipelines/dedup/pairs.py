"""From records to a verified pair graph: exact units -> candidate pairs -> checks.

Pure functions over typed data (no SQL, no model); the one file they touch is the candidate cache
(`indexes/dedup-pairs.json`). `pipelines.dedup.clusters` turns the graph into stars.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pipelines.dedup.config import DedupConfig
from pipelines.dedup.facts import (
    Facts, compare_facts, divergence, gram_size, jaccard, loose_key, shingles,
)
from pipelines.dedup.index import choose_index, knn_pairs
from pipelines.embed import Embeddings
from pipelines.store import Workspace

log = logging.getLogger(__name__)

__all__ = ["Unit", "exact_units", "PairCheck", "verify_pair", "Candidates", "find_candidates",
           "Pair", "PairGraph", "verify_pairs", "fuzzy_pairs", "conversation_key",
           "candidates_key", "load_candidates", "save_candidates", "ShingleStore"]

FactsOf = Callable[[str], Facts]   # extract_facts, memoised for the run
# a text meets many candidates: its shingles are computed once (bounded: ~100k short texts)
_shingles = functools.lru_cache(maxsize=100_000)(shingles)


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


def exact_units(recs: list[dict[str, Any]], same_prompt: bool, exact: bool = True) -> list[Unit]:
    """Group records by the exact levels (loose text; with `same_prompt`, an instruction's prompt),
    in order of each head's ingestion. `exact=False`: every record is its own unit."""
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for r in recs:
        loose = loose_key(r["text"])
        key = loose if exact else "\x00id\x00" + r["id"]
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
@dataclass(slots=True)   # one per candidate pair: ~10 million at 1M records, so no __dict__
class PairCheck:
    """Why a candidate pair did or did not merge (shown to reviewers, stored with the member).

    `rule` names the deciding evidence: lexical | cosine | near_copy | paraphrase (merged), conflict |
    divergent | segment | weak (refused); `facts` says what the facts did ("agree: amount 31000;
    name augusta", "conflict: date rel:-2d vs wd:mon").
    """

    merged: bool
    cosine: float | None
    lexical: float | None
    facts: str
    shared: int
    rule: str
    detail: str = ""

    @property
    def evidence(self) -> str:
        """One line: the deciding evidence and the scores it read."""
        bits = []
        if self.lexical is not None:
            bits.append(f"lexical {self.lexical:.2f}")
        if self.cosine is not None:
            bits.append(f"cosine {self.cosine:.3f}")
        bits.append(f"facts {self.facts}")
        if self.detail:
            bits.append(self.detail)
        return f"{self.rule}: " + ", ".join(bits)


# `DedupConfig.embedding_max_chars` (default 2,000 characters, ~500 tokens): above it a cosine is
# not evidence of a copy. Measured on 4,915 real ShareGPT conversations (docs/benchmarks.md): two
# long chats on one broad subject (marketing advice, chapters of one story) reach cosine
# 0.92-0.98 with the static model and "agree" on list numbers 1, 2 or one recurring name; 41 of
# 50 merges checked by hand were different questions, the longer text of each 3,200+ characters,
# while every true copy among long texts had a lexical Jaccard >= 0.60 (near_copy).


def verify_pair(cos: float | None, fa: Facts, fb: Facts, text_a: str, text_b: str,
                config: DedupConfig, lexical: float | None = None) -> PairCheck:
    """Decide one candidate pair: positive evidence and no contradiction.

    Vetoes: conflicting facts; a long shared text that ends differently (`divergence`).
    Evidence, in order: lexical Jaccard >= `lexical_threshold`; cosine >= `threshold` with facts
    that agree (one or more shared); cosine >= `paraphrase_threshold` with agreeing facts and
    lexical >= `near_copy_threshold` (a typo'd, reordered copy); cosine >= `paraphrase_threshold`
    sharing `min_shared_facts` facts of which one identifies (identifier, email, URL). Agreeing
    facts alone never merge. The two cosine rules (`cosine`, `paraphrase`) hold only when both
    texts have at most `embedding_max_chars` characters. `lexical`: the texts' 5-gram Jaccard if
    already known (`ShingleStore`), else computed here.
    """
    if not config.verify:
        ok = cos is not None and cos >= config.threshold
        return PairCheck(ok, cos, None, "unchecked", 0, "cosine" if ok else "weak")
    fc = compare_facts(fa, fb)
    # interned: templated records repeat the same few details ("amount 31000 vs 45000") across
    # millions of pairs, and every pair's check is kept until clustering
    facts = sys.intern(f"{fc.status}: {fc.detail}") if fc.detail else fc.status
    lex = jaccard(_shingles(text_a), _shingles(text_b)) if lexical is None else lexical
    if fc.status == "conflict":
        return PairCheck(False, cos, lex, facts, fc.shared, "conflict")
    differs = divergence(text_a, text_b)
    if differs:
        return PairCheck(False, cos, lex, facts, fc.shared, "divergent", differs)
    if lex >= config.lexical_threshold:
        return PairCheck(True, cos, lex, facts, fc.shared, "lexical")
    if cos is not None and fc.status == "agree":
        # a long text's pooled vector says what it is about, not what it says (see
        # embedding_max_chars): for long texts only the lexical evidence of near_copy counts
        short = max(len(text_a), len(text_b)) <= config.embedding_max_chars
        if short and cos >= config.threshold:
            return PairCheck(True, cos, lex, facts, fc.shared, "cosine")
        if cos >= config.paraphrase_threshold and lex >= config.near_copy_threshold:
            return PairCheck(True, cos, lex, facts, fc.shared, "near_copy")
        if short and cos >= config.paraphrase_threshold and fc.strong and \
                fc.shared >= config.min_shared_facts:
            return PairCheck(True, cos, lex, facts, fc.shared, "paraphrase")
    return PairCheck(False, cos, lex, facts, fc.shared, "weak")


class ShingleStore:
    """Every text's 5-gram shingles (`facts.shingles`), computed once and kept compact.

    A frozenset of ~100 hashed shingles costs ~12 KB, so 1M records cannot keep theirs, and a
    bounded cache misses on nearly every pair (a unit's candidates are spread over the whole
    collection). Here they are one int64 array (~0.8 KB a short record); `jaccard(i, j)` gives
    exactly `jaccard(shingles(a), shingles(b))`, fastest with pairs grouped by `i` (the order
    of `Candidates.pairs`: the set of `i` is built once for all its partners).
    """

    def __init__(self, texts: list[str]):
        lengths = np.zeros(len(texts) + 1, dtype=np.int64)

        def every_shingle():
            for k, text in enumerate(texts):
                grams = shingles(text)
                lengths[k + 1] = len(grams)
                yield from grams
        self._flat = np.fromiter(every_shingle(), dtype=np.int64)
        self._start = np.cumsum(lengths)
        self._last: tuple[int, frozenset] = (-1, frozenset())

    def _slice(self, i: int) -> np.ndarray:
        return self._flat[self._start[i]:self._start[i + 1]]

    def jaccard(self, i: int, j: int) -> float:
        if self._last[0] != i:
            self._last = (i, frozenset(self._slice(i).tolist()))
        a, b = self._last[1], self._slice(j).tolist()
        if not a or not b:
            return 0.0
        inter = len(a.intersection(b))    # b's shingles are distinct: a set's, stored
        return inter / (len(a) + len(b) - inter)


# -- segments of one conversation ---------------------------------------------------------------
_CONVERSATION_KEYS = ("conversation_id", "conversation", "conv_id", "thread_id", "session_id",
                      "dialogue_id", "chat_id")
_SEGMENT_SUFFIX = re.compile(r"^(.{6,}?)[_:#](\d{1,4})$")


def conversation_key(rec: dict[str, Any]) -> str | None:
    """The source conversation a record is a segment of, or None.

    Generic rule (docs/dedup.md): in the record's first source file, a metadata field named
    like a conversation id (`conversation_id`, `conv_id`, `thread_id`, `session_id`, ...) is the
    conversation; failing that, an `id` ending in a segment number (``QWJhYvA_0``,
    ``QWJhYvA_1``: ShareGPT's split of one long chat) names it by its prefix, when the prefix
    looks generated (has a digit or an upper-case letter, at least 6 characters), not a word.
    """
    meta = rec.get("meta") or {}
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except ValueError:
            meta = {}
    if not isinstance(meta, dict):
        return None
    file = rec.get("file") or ""
    for key in _CONVERSATION_KEYS:
        value = meta.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return f"{file}\x00{key}\x00{value}"
    value = meta.get("id")
    if isinstance(value, str):
        m = _SEGMENT_SUFFIX.match(value.strip())
        if m and any(c.isdigit() or c.isupper() for c in m.group(1)):
            return f"{file}\x00id\x00{m.group(1)}"
    return None


# -- candidates: FAISS neighbours plus fact blocking ------------------------------------------------
@dataclass
class Candidates:
    """The candidate pairs of a run, over unit indices (i < j): what the cache holds.

    `stages` counts the pairs each stage proposed first (fuzzy, semantic, blocking).
    """

    index: str                                     # the FAISS index kind searched ("" if none)
    pairs: list[tuple[int, int, float | None]]     # (unit i, unit j, cosine or None)
    stages: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def head_vectors(emb: Embeddings | None, units: list[Unit]) -> np.ndarray | None:
    if emb is None:
        return None
    if not units:
        return emb.vectors[:0]
    pos_of = {rid: i for i, rid in enumerate(emb.ids)}
    return emb.vectors[np.fromiter((pos_of[u.id] for u in units), dtype=np.int64,
                                   count=len(units))]


def fuzzy_pairs(texts: list[str], threshold: float, num_perm: int = 64,
                progress: bool = False, scheduler: str | None = None,
                on_progress: Callable[[int, int], None] | None = None) -> set[tuple[int, int]]:
    """Pairs whose character 5-gram sets look alike to MinHash-LSH (`datasketch`) at `threshold`.

    LSH proposes; the exact Jaccard in `verify_pair` decides. Cost grows linearly with the data
    (one MinHash per text, banded buckets), unlike comparing every pair.

    The same pairs as `datasketch`'s `MinHash.bulk` + `MinHashLSH` insert/query one record at a
    time (its permutations, its hash, its bands; tests/pipelines/test_dedup_scale.py checks the
    signatures and the pairs against it), computed in bulk: the permutations and minima as numpy
    over 2,048 texts at once and each band's buckets by one sort, which is what makes 1M records
    affordable (per record, datasketch spends most of its time in small numpy calls). The
    signatures are computed here or, with a Dask `scheduler`, on its workers (`minhash_blocks`);
    the bands are read here either way.
    """
    from datasketch import MinHashLSH
    from tqdm import tqdm

    n = len(texts)
    if n < 2:
        return set()
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)   # its bands: b of r rows
    signatures = np.empty((n, num_perm), dtype=np.uint32)
    bar = tqdm(total=n, desc="fuzzy (MinHash-LSH)", unit=" rec", disable=not progress)
    try:
        for start, block in minhash_blocks(texts, num_perm, scheduler):
            signatures[start:start + len(block)] = block
            bar.update(len(block))
            if on_progress:
                on_progress(start + len(block), n)
    finally:
        bar.close()
    out: set[tuple[int, int]] = set()
    for band in range(lsh.b):
        rows = np.ascontiguousarray(signatures[:, band * lsh.r:(band + 1) * lsh.r])
        _, bucket = np.unique(rows.view(np.dtype((np.void, rows.dtype.itemsize * lsh.r))),
                              return_inverse=True)
        bucket = bucket.reshape(-1)
        order = np.argsort(bucket, kind="stable")             # members in record order
        ends = np.flatnonzero(np.diff(bucket[order])) + 1
        bounds = np.concatenate([[0], ends, [n]])
        for g in np.flatnonzero(np.diff(bounds) >= 2):
            members = order[bounds[g]:bounds[g + 1]].tolist()
            for x in range(len(members)):
                for y in range(x + 1, len(members)):
                    out.add((members[x], members[y]))
    return out


_MINHASH_BLOCK = 2048


def minhash_block(texts: list[str], num_perm: int, hashes: "_GramHashes | None" = None
                  ) -> np.ndarray:
    """The MinHash signatures of one block of texts (texts x num_perm), datasketch's values;
    also a Dask task."""
    from datasketch import MinHash

    perm_a, perm_b = MinHash(num_perm=num_perm, seed=1).permutations
    hv, offsets = (hashes or _GramHashes()).of([loose_key(t) for t in texts])
    # permutation x gram (wraps mod 2^32, as datasketch), minimum over each text's
    # grams along the rows (contiguous: ~20x faster than down the columns)
    phv = np.multiply.outer(perm_a, _fmix32(hv))
    phv += perm_b[:, None]
    return np.minimum.reduceat(phv, offsets, axis=1).T


def minhash_blocks(texts: list[str], num_perm: int, scheduler: str | None = None):
    """(start, signatures) per block of `_MINHASH_BLOCK` texts, in order: computed here (one
    gram-hash memo across blocks), or on the workers of the Dask `scheduler` (the same values)."""
    starts = range(0, len(texts), _MINHASH_BLOCK)
    if scheduler is None:
        hashes = _GramHashes()
        for start in starts:
            yield start, minhash_block(texts[start:start + _MINHASH_BLOCK], num_perm, hashes)
        return
    from pipelines.distributed import dask_client, map_ordered
    from pipelines.errors import DedupError

    with dask_client(scheduler, DedupError) as client:
        blocks = [texts[s:s + _MINHASH_BLOCK] for s in starts]
        yield from zip(starts, map_ordered(client, minhash_block, blocks, num_perm=num_perm))


class _GramHashes:
    """`sha1_hash32` of each text's character 5-grams (UTF-8), as datasketch hashes them: the
    hash costs more than everything else in MinHash, so each distinct gram is hashed once (a
    bounded memo), and ASCII texts are cut into grams by numpy (5 bytes packed in an int)."""

    MAX_MEMO = 4_000_000

    def __init__(self):
        self.memo: dict[int, int] = {}

    def of(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Every text's gram hashes (repeats allowed: a minimum ignores them), concatenated,
        and where each text's start (every text has at least one gram)."""
        from datasketch.hashfunc import sha1_hash32

        parts, sizes = [], []
        fast = [len(t) >= 5 and t.isascii() for t in texts]
        if any(fast):
            ascii_ = [t for t, f in zip(texts, fast) if f]
            buf = np.frombuffer("".join(ascii_).encode("ascii"), dtype=np.uint8).astype(np.uint64)
            lens = np.fromiter(map(len, ascii_), dtype=np.int64, count=len(ascii_))
            ends = np.cumsum(lens)
            codes = buf[:-4] | buf[1:-3] << 8 | buf[2:-2] << 16 | buf[3:-1] << 24 | buf[4:] << 32
            grams = lens - 4
            first = np.repeat(ends - lens, grams)              # a text's grams start at ...
            pos = first + (np.arange(int(grams.sum())) - np.repeat(np.cumsum(grams) - grams,
                                                                    grams))
            uniq, inverse = np.unique(codes[pos], return_inverse=True)
            memo = self.memo
            if len(memo) > self.MAX_MEMO:
                memo.clear()
            hv = np.fromiter((memo[c] if c in memo else memo.setdefault(
                c, sha1_hash32(c.to_bytes(5, "little"))) for c in uniq.tolist()),
                dtype=np.uint32, count=len(uniq))[inverse.reshape(-1)]
            fast_hv = np.split(hv, np.cumsum(grams)[:-1])
        it = iter(fast_hv) if any(fast) else iter(())
        for t, f in zip(texts, fast):
            if f:
                h = next(it)
            else:   # short or non-ASCII: grams of characters, then UTF-8, as datasketch sees them
                n = gram_size(t)   # shorter for Chinese, Japanese, Thai...: as `shingles`
                h = np.fromiter((sha1_hash32(g) for g in
                                 {t[i:i + n].encode("utf-8")
                                  for i in range(max(1, len(t) - n + 1))}),
                                dtype=np.uint32)
            parts.append(h)
            sizes.append(len(h))
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        return np.concatenate(parts), offsets


def _fmix32(hv: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer: datasketch's pre-mix of each hash (scheme affine32)."""
    hv = hv ^ (hv >> np.uint32(16))
    hv = hv * np.uint32(0x85EBCA6B)
    hv = hv ^ (hv >> np.uint32(13))
    hv = hv * np.uint32(0xC2B2AE35)
    return hv ^ (hv >> np.uint32(16))


def find_candidates(vectors: np.ndarray | None, texts: list[str], facts_of: FactsOf,
                    config: DedupConfig, progress: bool = False,
                    on_progress: Callable[[str, int, int], None] | None = None) -> Candidates:
    """The cascade after the exact level: fuzzy (MinHash-LSH) pairs, then each head's
    `neighbours` nearest at cosine >= `candidate_threshold`, plus (with the checks on) the pairs
    that share a rare exact fact. Every pair carries its cosine when there are vectors.
    `on_progress(stage, done, total)` follows the "fuzzy" and "semantic" stages."""
    report = on_progress or (lambda stage, done, total: None)
    import time

    stages: dict[str, int] = {}
    seconds: dict[str, float] = {}
    found: dict[tuple[int, int], float | None] = {}
    t = time.perf_counter()
    if config.fuzzy:
        for p in sorted(fuzzy_pairs(texts, config.fuzzy_threshold, progress=progress,
                                    scheduler=config.scheduler,
                                    on_progress=lambda d, n: report("fuzzy", d, n))):
            found[p] = None
        stages["fuzzy"] = len(found)
        seconds["fuzzy"] = round(time.perf_counter() - t, 3)
    index = ""
    if vectors is not None:
        t = time.perf_counter()
        report("semantic", 0, len(vectors))
        index = choose_index(len(vectors), config.index, config.flat_max)
        a, b, sims = knn_pairs(vectors, config.neighbours, config.candidate_threshold, index)
        if config.verify and config.fact_blocking:
            a2, b2, s2 = _add_blocked_pairs(a, b, sims, vectors, [facts_of(t) for t in texts],
                                            config)
            stages["blocking"] = len(a2) - len(a)
            a, b, sims = a2, b2, s2
        new = 0
        for i, j, c in zip(a.tolist(), b.tolist(), sims.tolist()):
            new += (i, j) not in found
            found[(i, j)] = c
        stages["semantic"] = new - stages.get("blocking", 0)
        for (i, j), c in found.items():   # fuzzy-only pairs: their cosine, for the record
            if c is None:
                found[(i, j)] = min(float(vectors[i] @ vectors[j]), 1.0)
        seconds["semantic"] = round(time.perf_counter() - t, 3)
        report("semantic", len(vectors), len(vectors))
    pairs = [(i, j, c) for (i, j), c in sorted(found.items())]
    return Candidates(index, pairs, stages, seconds)


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
@dataclass(slots=True)
class Pair:
    """Two records compared: the heads of two units (`semantic`: found by the fuzzy or the
    semantic stage), or a unit's head and a copy with the same prompt (`same_prompt`: the
    responses are compared)."""

    a: str                        # record ids
    b: str
    kind: str                     # semantic | same_prompt
    cosine: float | None
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


def verify_pairs(units: list[Unit], candidates: Candidates, emb: Embeddings | None,
                 facts_of: FactsOf, config: DedupConfig, progress: bool = False,
                 on_progress: Callable[[int, int], None] | None = None) -> PairGraph:
    """The candidates and every same-prompt copy, each with its `verify_pair` check;
    `on_progress(done, total)` every 512 pairs and at the end."""
    from tqdm import tqdm

    pairs = [Pair(units[i].id, units[j].id, "semantic", cos) for i, j, cos in candidates.pairs]
    # Same prompt, different response: a duplicate only if the responses pass the same checks
    # as a semantic pair; otherwise kept, and clustered for a reviewer to choose.
    pairs += [Pair(u.id, rec["id"], "same_prompt",
                   None if emb is None else float(emb.get(u.id) @ emb.get(rec["id"])))
              for u in units for rec, level in u.copies if level == "same_prompt"]
    record = {r["id"]: r for u in units for r in [u.head] + [c for c, _ in u.copies]}
    # once per record, not per pair (it parses the record's metadata)
    conversation = {} if config.same_conversation else \
        {u.id: conversation_key(u.head) for u in units}
    store = ShingleStore([u.head["text"] for u in units]) \
        if config.verify and candidates.pairs else None
    for n, p in enumerate(tqdm(pairs, desc="verify", unit=" pair", disable=not progress,
                               mininterval=0.5)):
        if on_progress and n % 512 == 0:
            on_progress(n, len(pairs))
        ra, rb = record[p.a], record[p.b]
        if p.kind == "semantic" and not config.same_conversation:
            ka = conversation[p.a]
            if ka is not None and ka == conversation[p.b]:
                p.check = PairCheck(False, p.cosine, None, "unchecked", 0, "segment",
                                    "segments of one source conversation")
                continue
        if p.kind == "same_prompt":   # the prompts are the same: compare what differs
            ta, tb = ra["response"] or "", rb["response"] or ""
        else:
            ta, tb = ra["text"], rb["text"]
        fa, fb = (facts_of(ta), facts_of(tb)) if config.verify else (Facts(), Facts())
        lexical = None
        if store is not None and p.kind == "semantic":   # the first len(candidates.pairs)
            i, j, _ = candidates.pairs[n]
            lexical = store.jaccard(i, j)
        p.check = verify_pair(p.cosine, fa, fb, ta, tb, config, lexical)
    if on_progress:
        on_progress(len(pairs), len(pairs))
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
        return Candidates(raw["index"], [(int(i), int(j), None if s is None else float(s))
                                         for i, j, s in raw["pairs"]],
                          {k: int(v) for k, v in raw.get("stages", {}).items()})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # recompute
        log.warning("dedup candidate cache %s unreadable (%s); recomputing", path, exc)
        return None


def save_candidates(ws: Workspace, key: str, candidates: Candidates) -> None:
    """Write atomically; JSON floats round-trip exactly."""
    write_json_atomic(_cache_path(ws), {"key": key, "index": candidates.index,
                                        "stages": candidates.stages, "pairs": candidates.pairs})


def write_json_atomic(path: Path, payload: dict) -> None:
    """One of dedup's cache files: a temp file beside it, then a rename (a reader never sees half
    a file; an interrupted write leaves the old one)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            # dumps, not dump: only the one-shot encoder is the C one (~10x at millions of pairs)
            fh.write(json.dumps(payload))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
