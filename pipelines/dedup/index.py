"""Nearest-neighbour candidates over normalised vectors with FAISS (inner product = cosine).

Exact `IndexFlatIP` up to `flat_max` vectors; above it HNSW (no training, good recall at this
k). IVF is available for memory-bound collections, or where search time matters more than the
last candidates.

The crossover, measured (`python bench/dedup.py --crossover 10000,50000,100000`): the scale set's
short templated records, the static model's 256-dim vectors, k = 16 (+ itself), all against
all, build + search seconds, and the recall of the candidate pairs (cosine >= 0.70) against the
exact search on 2,000 random queries. 2-core box under load (load average ~10, niced):

    vectors   flat            HNSW (M 32, efSearch 64)   IVF (4 sqrt(n) lists, nprobe 16)
    9,329     3.8 s           9.5 s  recall 0.996        2.8 s  recall 0.908
    46,572    77.6 s          96.1 s recall 0.992        20.5 s recall 0.921
    93,090    334 s (extrap.) 164 s  recall 0.989        80.9 s recall 0.920

Flat grows as n^2 and HNSW as ~n log n; they cross at ~55,000 (flat 78 s vs HNSW 96 s at
47k, 334 s vs 164 s at 93k), hence `flat_max` = 55,000. IVF is 2-5x faster than HNSW at
every size but finds only ~92% of the exact candidate pairs, so it is not the default.
HNSW runs with M 16 (the table's M 32 was measured first): 1.6x faster at 93k for 0.3 points
of the true duplicate pairs among the candidates (`bench/dedup_ann.py`), and what brought 1M
records under 15 minutes (docs/benchmarks.md, "Scale: 10k to 1M (session 5)").
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["choose_index", "build_index", "knn_pairs"]


def choose_index(n: int, kind: str = "auto", flat_max: int = 55_000) -> str:
    if kind != "auto":
        return kind
    return "flat" if n <= flat_max else "hnsw"


def build_index(vectors: np.ndarray, kind: str):
    import faiss

    d = vectors.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
    elif kind == "hnsw":
        # M 16, not 32: build + search 1.6x faster at 93k vectors (97 s vs 155 s) for 0.3 points
        # of the true duplicate pairs among the candidates (0.9936 vs 0.9967; bench/dedup_ann.py)
        index = faiss.IndexHNSWFlat(d, 16, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 40
        index.hnsw.efSearch = 64
    elif kind == "ivf":
        nlist = max(1, min(int(4 * math.sqrt(len(vectors))), len(vectors) // 39 or 1))
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample = vectors[rng.choice(len(vectors), min(len(vectors), nlist * 64), replace=False)]
        index.train(sample)
        index.nprobe = min(nlist, 16)
    else:  # pragma: no cover - validated by DedupConfig
        raise ValueError(kind)
    index.add(vectors)
    return index


def knn_pairs(vectors: np.ndarray, k: int, min_sim: float, kind: str,
              batch: int = 4096) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unordered pairs (i < j) among the k nearest neighbours of each vector with cosine >= min_sim.

    Returns arrays (i, j, sim); each pair once, with the larger of its two scores.
    """
    n = len(vectors)
    if n < 2:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float32)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = build_index(vectors, kind)
    k = min(k + 1, n)
    keys, sims = [], []
    for start in range(0, n, batch):  # batches keep the (batch x k) result small
        sim, nb = index.search(vectors[start:start + batch], k)
        q = np.repeat(np.arange(start, start + len(nb), dtype=np.int64), k)
        nb, sim = nb.reshape(-1).astype(np.int64), sim.reshape(-1)
        keep = (nb >= 0) & (nb != q) & (sim >= min_sim)
        q, nb = q[keep], nb[keep]
        # each pair as one int64 (i * n + j, i < j): 12 bytes a neighbour kept, not 20
        keys.append(np.minimum(q, nb) * n + np.maximum(q, nb))
        sims.append(sim[keep])
    del index
    key, s = np.concatenate(keys), np.concatenate(sims)
    del keys, sims
    order = np.lexsort((-s, key))      # by pair, the larger score first
    key, s = key[order], s[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key = key[first]
    return key // n, key % n, np.minimum(s[first], 1.0).astype(np.float32)
