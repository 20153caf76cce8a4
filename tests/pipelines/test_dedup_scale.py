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


# -- the bulk refusals: columns give what verify_pair gives pair by pair -------------------------
HARD = [  # one claim template: copies, and distinct claims sharing event and amount
    "The driver filed for a broken wrist after a fall near Augusta two days ago. Loss $310.",
    "The drivr filed for a broken wrist after a fall near Augusta two days ago. Loss $310.",
    "The driver filed for a broken wrist after a fall near Atlanta on Monday. Loss $310.",
    "The driver filed for a broken wrist after a fall near Atlanta two days ago. Loss $310.",
    "The driver filed for a broken wrist after a fall near Augusta two days ago. Loss $450.",
    "Loss: $310. The driver filed for a broken wrist after a fall near Augusta two days ago.",
    "The driver filed for a broken wrist near Augusta. Loss $310.",         # drops the date
    "A nurse filed for hail damage on 3/8/26, policy POL-CA-93434. Loss $1,200 and $80.",
    "A nurse filed for hail damage on March 8, policy POL-CA-93434. Loss $1,200 and $95.",
    "A nurse filed for hail damage on 3/8/26, policy POL-CA-93434. Loss $1,200.",
    "A nurse filed for hail damage on 3/8/26, policy POL-CA-11111. Loss $1,200 and $80.",
    "Completely different text about SQL schemas and SELECT statements.",
]


def _units(texts, conversation=None):
    from pipelines.dedup.pairs import exact_units

    rows = [{"id": f"r{k}", "pos": k, "kind": "text", "text": t, "prompt": None,
             "response": None, "n_sources": 1, "file": "f.jsonl",
             "meta": None if conversation is None or conversation[k] is None
             else {"conversation_id": conversation[k]}} for k, t in enumerate(texts)]
    return exact_units(rows, same_prompt=True)


def test_fact_table_refuses_only_pairs_compare_facts_refuses():
    from pipelines.dedup.facts import FactTable, compare_facts, extract_facts

    table = FactTable(HARD)
    i, j = np.triu_indices(len(HARD), 1)
    got = table.conflicts(i, j)
    want = np.array([compare_facts(extract_facts(HARD[a]), extract_facts(HARD[b])).status
                     == "conflict" for a, b in zip(i.tolist(), j.tolist())])
    assert not (got & ~want).any()             # never refuses a pair the check would not
    pair = {(a, b): g for a, b, g in zip(i.tolist(), j.tolist(), got.tolist())}
    assert pair[(0, 2)] and pair[(0, 4)]       # another date; another amount
    assert pair[(7, 8)] and pair[(7, 10)]      # $80 vs $95 (two each); another policy
    assert not pair[(0, 3)] and want[list(zip(i, j)).index((0, 3))]   # the town: left to the check
    assert not pair[(0, 1)] and not pair[(0, 6)] and not pair[(7, 9)]  # a copy; subsets agree
    assert table.size.tolist() == [extract_facts(t).size for t in HARD]


def test_verify_pairs_in_columns_decides_as_verify_pair_one_by_one():
    from pipelines.dedup import DedupConfig
    from pipelines.dedup.facts import extract_facts
    from pipelines.dedup.pairs import RULES, Candidates, verify_pair, verify_pairs

    conv = [None] * len(HARD)
    conv[0] = conv[1] = "chat-1"               # two segments of one conversation
    units = _units(HARD, conv)
    i, j = np.triu_indices(len(units), 1)
    rng = np.random.default_rng(0)
    cos = rng.uniform(0.7, 1.0, len(i)).astype(np.float32)
    cos[5] = np.nan                            # a pair with no cosine
    cands = Candidates("flat", i.astype(np.int32), j.astype(np.int32), cos)
    for config in (DedupConfig(), DedupConfig(threshold=0.8, min_shared_facts=1),
                   DedupConfig(verify=False), DedupConfig(same_conversation=True)):
        graph = verify_pairs(units, cands, None, extract_facts, config)
        merged = {p.pos: p for p in graph.semantic()}
        for p, (a, b, c) in enumerate(cands.pairs):
            if not config.same_conversation and conv[a] is not None and conv[a] == conv[b]:
                assert RULES[graph.rules[p]] == "segment"
                continue
            ta, tb = HARD[a], HARD[b]
            want = verify_pair(c, extract_facts(ta), extract_facts(tb), ta, tb, config)
            assert RULES[graph.rules[p]] == want.rule, (a, b)
            assert (p in merged) == want.merged
            if want.merged:
                assert merged[p].check == want and (merged[p].a, merged[p].b) == (f"r{a}", f"r{b}")
        assert graph.cosines is cands.cosine
    rules = {RULES[r] for r in graph.rules}
    assert {"conflict", "lexical"} <= rules    # the set mixes refusals and merges


def test_bucket_pairs_are_every_pair_within_a_bucket():
    from pipelines.dedup.pairs import _bucket_pairs

    bucket = np.array([0, 1, 0, 2, 0, 1, 3, 3, 3, 3])
    n = len(bucket)
    got = {(k // n, k % n) for k in _bucket_pairs(bucket, n).tolist()}
    assert got == {(0, 2), (0, 4), (2, 4), (1, 5), (6, 7), (6, 8), (6, 9), (7, 8), (7, 9),
                   (8, 9)}
