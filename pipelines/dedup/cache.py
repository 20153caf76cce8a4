"""The verification cache: a re-run on unchanged data reads the checked pair graph back.

Verification (`pairs.verify_pairs`: fact extraction, shingles, the checks of every candidate) is
the costly part of a re-run once the embeddings and the candidates come from their caches. Its
result depends only on the candidates (keyed by `pairs.candidates_key`: records, model, search
settings), the verification fields of the config (`DedupConfig.cache_key("verification")`) and
the code that checks; the key digests all three, so a changed record, threshold or fact rule
misses and verifies again. Stored at `indexes/dedup-verified.json`, written atomically. A refused
pair read back is its rule and its cosine (the graph's columns: what the counts read), as in the
graph a run builds; a merged pair keeps its whole check.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from pipelines.dedup.config import DedupConfig
from pipelines.dedup.pairs import (
    RULES, Candidates, Pair, PairCheck, PairGraph, Unit, exact_units, write_json_atomic,
)
from pipelines.store import Workspace

log = logging.getLogger(__name__)

__all__ = ["verification_key", "load_verified", "save_verified", "gc_paused", "cached_units"]

_FORMAT = 3
_BASE = ord("a")   # rule codes: one letter per candidate, "a" + its index in RULES


@contextlib.contextmanager
def gc_paused():
    """No cyclic garbage collection while a cache is read back: building ~10^5 small objects
    otherwise triggers repeated full collections (measured: 0.6 s -> 0.12 s for the sample's
    33k pairs). Nothing read back forms a cycle, so nothing is left for the collector."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """The checking code's own files: an upgrade of the fact rules invalidates old checks."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in ("facts.py", "pairs.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def verification_key(candidates_key: str, config: DedupConfig) -> str:
    """`candidates_key` (records, model, search) + the verification fields + the checking code."""
    h = hashlib.sha256(f"{_FORMAT}\n{candidates_key}\n".encode())
    h.update(config.cache_key("verification").encode())
    h.update(_code_digest().encode())
    return h.hexdigest()[:24]


def _path(ws: Workspace) -> Path:
    return ws.subdir("indexes") / "dedup-verified.json"


def load_verified(ws: Workspace, key: str, units: list[Unit],
                  candidates: Candidates) -> tuple[PairGraph, dict[int, int]] | None:
    """The stored graph over `candidates` and the fact sizes (unit index -> facts, the centres'
    tie-break) under `key`; None if absent, stale or unreadable (then the caller verifies again).
    """
    path = _path(ws)
    try:
        with gc_paused():
            return _read_verified(path, key, units, candidates)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        log.warning("dedup verification cache %s unreadable (%s); verifying again", path, exc)
        return None


def _read_verified(path: Path, key: str, units: list[Unit], candidates: Candidates):
    raw = json.loads(path.read_text(encoding="utf-8"))
    if raw.get("key") != key or len(raw["codes"]) != len(candidates):
        return None
    codes = np.frombuffer(raw["codes"].encode("ascii"), dtype=np.uint8) - np.uint8(_BASE)
    if len(codes) and codes.max() >= len(RULES):
        raise ValueError("rule code out of range")
    ids = [u.id for u in units]
    ci, cj, ccos = candidates.i, candidates.j, candidates.cosine
    pairs = []
    for pos, row in raw["merged"].items():
        p = int(pos)
        cos = float(ccos[p])
        cos = None if cos != cos else cos
        pairs.append(Pair(ids[ci[p]], ids[cj[p]], "semantic", cos, PairCheck(True, cos, *row), p))
    pairs.sort(key=lambda p: p.pos)
    pairs += [Pair(a, b, "same_prompt", cos, PairCheck(bool(merged), cos, *rest))
              for a, b, cos, merged, *rest in raw["same_prompt"]]
    sizes = {int(u): int(n) for u, n in raw["sizes"].items()}
    return PairGraph(raw["index"], pairs, codes.copy(), ccos), sizes


def save_verified(ws: Workspace, key: str, graph: PairGraph, sizes: dict[int, int]) -> None:
    """Write atomically (temp file, then rename); JSON floats round-trip exactly.

    The semantic pairs are those of the candidate cache, in its order: each is stored as its
    rule (one character, `RULES` from "a"; tens of thousands of conflicts in templated data),
    a merged one with its whole check as well. Same-prompt pairs are stored whole.
    """
    codes, _ = graph.rule_columns()
    merged = {str(p.pos): [p.check.lexical, p.check.facts, p.check.shared, p.check.rule,
                           p.check.detail] for p in graph.semantic() if p.merged}
    same_prompt = [[p.a, p.b, p.cosine, p.check.merged, p.check.lexical, p.check.facts,
                    p.check.shared, p.check.rule, p.check.detail]
                   for p in graph.pairs if p.kind == "same_prompt"]
    write_json_atomic(_path(ws), {
        "key": key, "index": graph.index,
        "codes": (codes.astype(np.uint8) + np.uint8(_BASE)).tobytes().decode("ascii"),
        "merged": merged, "same_prompt": same_prompt,
        "sizes": {str(u): n for u, n in sizes.items()}})


# -- exact units --------------------------------------------------------------------------------
def _units_key(recs: list[dict], same_prompt: bool, exact: bool) -> str:
    """Exact units are a function of the records' ids (content hashes: kind, text, prompt), their
    source counts and order (the head is the most sourced, then the earliest), and two switches."""
    h = hashlib.sha256(f"{_FORMAT}\n{same_prompt}\n{exact}\n{_code_digest()}\n".encode())
    for r in recs:
        h.update(f"{r['id']}:{r['n_sources']}\n".encode())
    return h.hexdigest()[:24]


def cached_units(ws: Workspace, recs: list[dict], same_prompt: bool,
                 exact: bool = True) -> tuple[list[Unit], bool]:
    """`pairs.exact_units(recs, ...)`, read from `indexes/dedup-units.json` when the records are
    those of the last run (True), else computed and stored (False): folding every text (NFKC,
    case, punctuation) was the largest part of a re-run once the other caches hit."""
    path = ws.subdir("indexes") / "dedup-units.json"
    key = _units_key(recs, same_prompt, exact)
    try:
        with gc_paused():
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("key") == key:
                copies = {int(h): [(recs[c], level) for c, level in members]
                          for h, members in raw["copies"].items()}
                folded = {c for members in raw["copies"].values() for c, _ in members}
                return [Unit(r, copies.get(i, [])) for i, r in enumerate(recs)
                        if i not in folded], True
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        log.warning("dedup units cache %s unreadable (%s); recomputing", path, exc)
    units = exact_units(recs, same_prompt, exact)
    index = {r["id"]: i for i, r in enumerate(recs)}
    write_json_atomic(path, {"key": key, "copies": {
        str(index[u.id]): [[index[r["id"]], level] for r, level in u.copies]
        for u in units if u.copies}})
    return units, False

