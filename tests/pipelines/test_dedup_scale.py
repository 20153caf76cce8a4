"""Dedup at scale: the bulk paths give what the one-at-a-time library paths give."""

from __future__ import annotations

import numpy as np

from pipelines.dedup.facts import jaccard, loose_key, shingles
from pipelines.dedup.pairs import ShingleStore, fuzzy_pairs

TEXTS = [
    "The driver filed for a broken wrist after a fall near Augusta two days ago. Loss $310.",
    "The driver filed for a broken wrist after a fall near Augusta two days ago. Loss $310!",
    "The drivr filed for a broken wrist after a fall near Augusta two days ago. Loss $310.",
    "A nurse filed for hail damage to the roof near Boston on Monday. Estimated loss $1,200.",
    "A nurse filed for hail damage to the roof near Boston on Monday. Estimated loss $1,200",
    "Completely different text about SQL schemas and SELECT statements.",
    "abc",
    "",
]


def _datasketch_pairs(texts, threshold, num_perm=64):
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    grams = [{s[i:i + 5].encode("utf-8") for i in range(max(1, len(s) - 4))}
             for s in map(loose_key, texts)]
    out = set()
    for i, mh in enumerate(MinHash.bulk(grams, num_perm=num_perm)):
        out.update((j, i) for j in lsh.query(mh))
        lsh.insert(i, mh, check_duplication=False)
    return out


def test_fuzzy_pairs_are_datasketch_minhash_lsh_pairs():
    rng = np.random.default_rng(0)
    texts = TEXTS + [t.replace("a", "") for t in TEXTS[:5]] + \
        ["".join(rng.choice(list("abcdef "), 60)) for _ in range(40)]
    for threshold in (0.5, 0.7, 0.9):
        want = _datasketch_pairs(texts, threshold)
        assert fuzzy_pairs(texts, threshold) == want
    assert (0, 1) in fuzzy_pairs(texts, 0.7)     # the near copy is proposed at all


def test_shingle_store_gives_the_exact_jaccard():
    store = ShingleStore(TEXTS)
    for i in range(len(TEXTS)):
        for j in range(len(TEXTS)):
            assert store.jaccard(i, j) == jaccard(shingles(TEXTS[i]), shingles(TEXTS[j]))
    assert 0.0 < store.jaccard(0, 2) < 1.0
    assert store.jaccard(0, 7) == 0.0
