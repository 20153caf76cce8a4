"""From records to a verified pair graph: exact units -> candidate pairs -> checks.

Pure functions over typed data (no SQL, no model); the one file they touch is the candidate cache
(`indexes/dedup-pairs.npz`). `pipelines.dedup.clusters` turns the graph into stars.
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
    Facts, FactTable, compare_facts, divergence, gram_size, jaccard, loose_key, shingles,
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
    """The candidate pairs of a run, over unit indices (i < j), as columns sorted by (i, j):
    what the cache holds.

    Columns, not tuples: ~12 pairs a record, so 1M records give ~12M pairs (13 bytes each here,
    ~150 as Python tuples). `cosine` is NaN where there are no vectors. `stages` counts the
    pairs each stage proposed first (fuzzy, semantic, blocking).
    """

    index: str                                     # the FAISS index kind searched ("" if none)
    i: np.ndarray                                  # int32 unit indices, i < j
    j: np.ndarray
    cosine: np.ndarray                             # float32, NaN: no vectors
    stages: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.i)

    @property
    def pairs(self) -> list[tuple[int, int, float | None]]:
        """(i, j, cosine or None) per pair: for small collections and tests."""
        return [(i, j, None if c != c else c) for i, j, c in
                zip(self.i.tolist(), self.j.tolist(), self.cosine.tolist())]

    @classmethod
    def from_keys(cls, index: str, n: int, keys: np.ndarray, cosine: np.ndarray,
                  **kw) -> "Candidates":
        """From sorted pair keys `i * n + j` (`_pair_keys`) and their cosines."""
        return cls(index, (keys // max(n, 1)).astype(np.int32), (keys % max(n, 1)).astype(np.int32),
                   np.asarray(cosine, dtype=np.float32), **kw)


def _pair_keys(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """Each pair (i < j) as one int64, `i * n + j`: sorting keys sorts pairs by (i, j), and
    `np.unique` / `np.searchsorted` dedupe and look them up without a Python set."""
    return np.asarray(i, dtype=np.int64) * n + np.asarray(j, dtype=np.int64)


def head_vectors(emb: Embeddings | None, units: list[Unit]) -> np.ndarray | None:
    if emb is None:
        return None
    if not units:
        return emb.vectors[:0]
    pos_of = {rid: i for i, rid in enumerate(emb.ids)}
    rows = np.fromiter((pos_of[u.id] for u in units), dtype=np.int64, count=len(units))
    if len(rows) == len(emb.vectors) and np.array_equal(rows, np.arange(len(rows))):
        return emb.vectors    # every record its own unit, in order: no copy (1 GB at 1M)
    return emb.vectors[rows]


def fuzzy_pairs(texts: list[str], threshold: float, num_perm: int = 64,
                progress: bool = False, scheduler: str | None = None,
                on_progress: Callable[[int, int], None] | None = None) -> set[tuple[int, int]]:
    """Pairs whose character 5-gram sets look alike to MinHash-LSH (`datasketch`) at `threshold`.

    LSH proposes; the exact Jaccard in `verify_pair` decides. Cost grows linearly with the data
    (one MinHash per text, banded buckets), unlike comparing every pair. A set of (i, j), i < j:
    `fuzzy_keys` gives the same pairs as sorted int64 keys (what `find_candidates` reads).
    """
    n = len(texts)
    return {(k // n, k % n) for k in fuzzy_keys(texts, threshold, num_perm, progress, scheduler,
                                                on_progress).tolist()}


def fuzzy_keys(texts: list[str], threshold: float, num_perm: int = 64,
               progress: bool = False, scheduler: str | None = None,
               on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """`fuzzy_pairs` as sorted, distinct pair keys `i * n + j` (`_pair_keys`).

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
        return np.zeros(0, dtype=np.int64)
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
    keys = []
    for band in range(lsh.b):
        rows = np.ascontiguousarray(signatures[:, band * lsh.r:(band + 1) * lsh.r])
        _, bucket = np.unique(rows.view(np.dtype((np.void, rows.dtype.itemsize * lsh.r))),
                              return_inverse=True)
        keys.append(_bucket_pairs(bucket.reshape(-1), n))
    return np.unique(np.concatenate(keys))


def _bucket_pairs(bucket: np.ndarray, n: int) -> np.ndarray:
    """Keys of every pair of records that share a bucket (`bucket[r]`: record r's bucket).

    Members sorted by bucket then record; the pairs of a bucket of s members are each member
    with the ones d = 1 .. s-1 places after it, taken a distance d at a time over the members
    of buckets larger than d: as many steps of work as pairs, and no Python loop per pair.
    """
    order = np.argsort(bucket, kind="stable").astype(np.int64)   # members in record order
    sorted_b = bucket[order]
    starts = np.flatnonzero(np.r_[True, sorted_b[1:] != sorted_b[:-1]])
    sizes = np.diff(np.r_[starts, n])
    end = np.repeat(starts + sizes, sizes)          # one past each member's bucket
    pos = np.flatnonzero(np.repeat(sizes, sizes) >= 2)
    out = []
    d = 1
    while len(pos):
        pos = pos[pos + d < end[pos]]
        if not len(pos):
            break
        out.append(order[pos] * n + order[pos + d])
        d += 1
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


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


def find_candidates(vectors: np.ndarray | None, texts: list[str], facts: "FactTable | None",
                    config: DedupConfig, progress: bool = False,
                    on_progress: Callable[[str, int, int], None] | None = None) -> Candidates:
    """The cascade after the exact level: fuzzy (MinHash-LSH) pairs, then each head's
    `neighbours` nearest at cosine >= `candidate_threshold`, plus (with the checks on, from the
    blocking keys of `facts`) the pairs that share a rare exact fact. Every pair carries its
    cosine when there are vectors. `on_progress(stage, done, total)` follows the "fuzzy" and
    "semantic" stages. Pairs stay int64 keys and numpy columns throughout (no set of tuples)."""
    report = on_progress or (lambda stage, done, total: None)
    import time

    n = len(texts)
    stages: dict[str, int] = {}
    seconds: dict[str, float] = {}
    fuzzy = np.zeros(0, dtype=np.int64)
    t = time.perf_counter()
    if config.fuzzy:
        fuzzy = fuzzy_keys(texts, config.fuzzy_threshold, progress=progress,
                           scheduler=config.scheduler,
                           on_progress=lambda d, total: report("fuzzy", d, total))
        stages["fuzzy"] = len(fuzzy)
        seconds["fuzzy"] = round(time.perf_counter() - t, 3)
    if vectors is None:
        return Candidates.from_keys("", n, fuzzy, np.full(len(fuzzy), np.nan, np.float32),
                                    stages=stages, seconds=seconds)
    t = time.perf_counter()
    report("semantic", 0, len(vectors))
    index = choose_index(len(vectors), config.index, config.flat_max)
    a, b, sims = knn_pairs(vectors, config.neighbours, config.candidate_threshold, index)
    found = _pair_keys(a, b, n)                       # sorted by (a, b), distinct
    del a, b
    if config.verify and config.fact_blocking and facts is not None:
        extra, extra_sims = _blocked_pairs(found, vectors, facts, config, n)
        stages["blocking"] = len(extra)
        if len(extra):
            found = np.concatenate([found, extra])
            sims = np.concatenate([sims, extra_sims])
            order = np.argsort(found, kind="stable")
            found, sims = found[order], sims[order]
    stages["semantic"] = int((~_isin_sorted(found, fuzzy)).sum()) - stages.get("blocking", 0)
    keys = np.union1d(fuzzy, found)
    cosine = np.full(len(keys), np.nan, dtype=np.float32)
    cosine[np.searchsorted(keys, found)] = sims
    # fuzzy-only pairs: their cosine, for the record (one dot product each, as before)
    for p in np.flatnonzero(np.isnan(cosine)).tolist():
        i, j = divmod(int(keys[p]), n)
        cosine[p] = min(float(vectors[i] @ vectors[j]), 1.0)
    seconds["semantic"] = round(time.perf_counter() - t, 3)
    report("semantic", len(vectors), len(vectors))
    return Candidates.from_keys(index, n, keys, cosine, stages=stages, seconds=seconds)


def _isin_sorted(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """`np.isin(keys, sorted_keys)` for a sorted, distinct `sorted_keys` (one binary search)."""
    if not len(sorted_keys):
        return np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[at] == keys


def _blocked_pairs(found: np.ndarray, vectors: np.ndarray, facts: "FactTable",
                   config: DedupConfig, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidates, not among `found` (sorted keys), that share a rare exact fact: an
    identifier, or an amount on a date. Sorted keys and their cosines (>= candidate_threshold).

    In templated data a reworded copy can rank below dozens of *different* claims from the same
    template (measured: rank 20-2000 at 20k-100k records), beyond any practical k. Records that
    share a policy number, or the same amount on the same date, are compared directly (blocking);
    the fact check then refuses the ones that differ elsewhere. Buckets larger than
    `block_max` (a common value, not an identifying one) are skipped.
    """
    parts = []
    for members in facts.blocks.values():
        if 2 <= len(members) <= config.block_max:
            m = np.asarray(members, dtype=np.int64)
            x, y = np.triu_indices(len(m), 1)
            lo, hi = np.minimum(m[x], m[y]), np.maximum(m[x], m[y])
            parts.append(_pair_keys(lo, hi, n))
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    extra = np.unique(np.concatenate(parts))
    extra = extra[~_isin_sorted(extra, found) & (extra // n != extra % n)]
    es = np.empty(len(extra), dtype=np.float32)
    for start in range(0, len(extra), 65536):   # two gathered rows a pair: ~130 MB a block
        part = extra[start:start + 65536]
        es[start:start + len(part)] = np.einsum("ij,ij->i", vectors[part // n],
                                                vectors[part % n])
    keep = es >= config.candidate_threshold
    return extra[keep], np.minimum(es[keep], 1.0)


# -- the pair graph ------------------------------------------------------------------------------
# What a refused candidate keeps: its rule, as an index into RULES (one byte a pair). Merged
# rules and refused rules share the list; `PairGraph.rules` holds the index per candidate.
RULES = ("conflict", "divergent", "segment", "weak", "lexical", "cosine", "near_copy",
         "paraphrase")
_RULE = {r: k for k, r in enumerate(RULES)}


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
    pos: int = -1                 # a semantic pair's position in `Candidates` (-1: none)

    @property
    def merged(self) -> bool:
        return self.check is not None and self.check.merged


@dataclass
class PairGraph:
    """Every pair a run compared, verified: what clustering reads.

    `pairs` holds the pairs checked in full: every merged semantic pair (with its `PairCheck`)
    and every same-prompt pair. A refused candidate is only its rule in `rules` (the index in
    `RULES`, one per candidate, in `Candidates` order) and its cosine in `cosines`: ~99% of the
    candidates of templated data, never a Python object. A graph built from pairs alone
    (`rules` None) counts its `pairs`.
    """

    index: str
    pairs: list[Pair]
    rules: np.ndarray | None = None        # uint8 per candidate, into RULES
    cosines: np.ndarray | None = None      # float32 per candidate, NaN: none

    def semantic(self) -> list[Pair]:
        """The semantic pairs checked in full (with `rules`: the merged ones)."""
        return [p for p in self.pairs if p.kind == "semantic"]

    def prompt_checks(self) -> dict[str, PairCheck]:
        """Same-prompt copy id -> the check of its response against its head's."""
        return {p.b: p.check for p in self.pairs if p.kind == "same_prompt" and p.check}

    def rule_columns(self) -> tuple[np.ndarray, np.ndarray]:
        """(rule index, cosine) of every semantic candidate, merged or refused."""
        if self.rules is not None:
            return self.rules, self.cosines
        sem = self.semantic()
        return (np.array([_RULE[p.check.rule] for p in sem], dtype=np.uint8),
                np.array([np.nan if p.cosine is None else p.cosine for p in sem],
                         dtype=np.float32))


def verify_pairs(units: list[Unit], candidates: Candidates, emb: Embeddings | None,
                 facts_of: FactsOf, config: DedupConfig, progress: bool = False,
                 on_progress: Callable[[int, int], None] | None = None,
                 facts: "FactTable | None" = None) -> PairGraph:
    """The candidates and every same-prompt copy, each with its `verify_pair` check;
    `on_progress(done, total)` every 512 pairs and at the end.

    The refusals that need no per-pair work come first, on whole columns: segments of one
    conversation (a conversation id per unit) and facts that conflict for certain
    (`FactTable.conflicts`). Only the rest meet `verify_pair` one by one, and only the merged
    ones keep a `PairCheck`: the result is the one `verify_pair` gives every pair
    (tests/pipelines/test_dedup_scale.py checks it on mixed hard negatives).
    """
    from tqdm import tqdm

    n_cand = len(candidates)
    rules = np.full(n_cand, _RULE["weak"], dtype=np.uint8)
    todo = np.ones(n_cand, dtype=bool)            # candidates left for verify_pair
    ci, cj, ccos = candidates.i, candidates.j, candidates.cosine
    ids = [u.id for u in units]
    if not config.verify:                         # the plain rule: cosine >= threshold
        ok = ccos.astype(np.float64) >= config.threshold     # NaN (no vectors): False
        rules[ok] = _RULE["cosine"]
        todo[:] = False
    if not config.same_conversation and n_cand:
        # once per record, not per pair (it parses the record's metadata)
        keys = [conversation_key(u.head) for u in units]
        if any(k is not None for k in keys):
            code: dict[str, int] = {}
            conv = np.array([-1 if k is None else code.setdefault(k, len(code)) for k in keys],
                            dtype=np.int64)
            seg = (conv[ci] >= 0) & (conv[ci] == conv[cj])
            rules[seg] = _RULE["segment"]
            todo &= ~seg
    if config.verify and n_cand:
        if facts is None:
            facts = FactTable([u.head["text"] for u in units], facts_of)
        conflict = todo & facts.conflicts(ci, cj)
        rules[conflict] = _RULE["conflict"]
        todo &= ~conflict
    rest = np.flatnonzero(todo)
    pairs: list[Pair] = []
    if not config.verify:
        for p in np.flatnonzero(rules == _RULE["cosine"]).tolist():
            c = float(ccos[p])
            pairs.append(Pair(ids[ci[p]], ids[cj[p]], "semantic", c,
                              PairCheck(True, c, None, "unchecked", 0, "cosine"), p))
    # Same prompt, different response: a duplicate only if the responses pass the same checks
    # as a semantic pair; otherwise kept, and clustered for a reviewer to choose.
    prompt = [(u, rec) for u in units for rec, level in u.copies if level == "same_prompt"]
    total = n_cand + len(prompt)
    done = n_cand - len(rest)
    if on_progress:
        on_progress(done, total)
    store = None
    if len(rest):   # shingles of the units the checks still read, each computed once
        local = np.unique(np.concatenate([ci[rest], cj[rest]]))
        store = ShingleStore([units[u].head["text"] for u in local.tolist()])
        slot = dict(zip(local.tolist(), range(len(local))))
    bar = tqdm(total=total, initial=done, desc="verify", unit=" pair", disable=not progress,
               mininterval=0.5)
    try:
        for n, p in enumerate(rest.tolist()):
            if on_progress and n % 512 == 0:
                on_progress(done + n, total)
            i, j = int(ci[p]), int(cj[p])
            ta, tb = units[i].head["text"], units[j].head["text"]
            cos = float(ccos[p])
            check = verify_pair(None if cos != cos else cos, facts_of(ta), facts_of(tb), ta, tb,
                                config, store.jaccard(slot[i], slot[j]))
            rules[p] = _RULE[check.rule]
            if check.merged:
                pairs.append(Pair(ids[i], ids[j], "semantic", check.cosine, check, p))
            bar.update(1)
        for u, rec in prompt:   # the prompts are the same: compare what differs
            cos = None if emb is None else float(emb.get(u.id) @ emb.get(rec["id"]))
            ta, tb = u.head["response"] or "", rec["response"] or ""
            fa, fb = (facts_of(ta), facts_of(tb)) if config.verify else (Facts(), Facts())
            pairs.append(Pair(u.id, rec["id"], "same_prompt", cos,
                              verify_pair(cos, fa, fb, ta, tb, config)))
            bar.update(1)
    finally:
        bar.close()
    if on_progress:
        on_progress(total, total)
    return PairGraph(candidates.index, pairs, rules, ccos)


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
    return ws.subdir("indexes") / "dedup-pairs.npz"


def load_candidates(ws: Workspace, key: str) -> Candidates | None:
    """The stored candidates if stored under `key`; None if absent, stale or unreadable."""
    path = _cache_path(ws)
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("key") != key:
                return None
            i, j, cosine = z["i"], z["j"], z["cosine"]
        if not len(i) == len(j) == len(cosine):
            raise ValueError("columns of different lengths")
        return Candidates(meta["index"], i.astype(np.int32), j.astype(np.int32),
                          cosine.astype(np.float32),
                          {k: int(v) for k, v in meta.get("stages", {}).items()})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # recompute
        log.warning("dedup candidate cache %s unreadable (%s); recomputing", path, exc)
        return None


def save_candidates(ws: Workspace, key: str, candidates: Candidates) -> None:
    """Write atomically (temp file, then rename): three columns, ~13 bytes a pair (the JSON
    list of triples it replaces took ~40 and a Python tuple per pair to write)."""
    path = _cache_path(ws)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps({"key": key, "index": candidates.index,
                                                   "stages": candidates.stages})),
                     i=candidates.i, j=candidates.j, cosine=candidates.cosine)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
