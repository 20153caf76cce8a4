"""Deduplication: facts, exact and semantic clusters, no chaining, overrides, search, filter."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest

from pipelines.dedup import (
    DedupConfig, clear_filter, compare_facts, extract_facts, jaccard, knn_pairs, list_clusters,
    run_dedup, run_filter, search, set_override, shingles, verify_pair,
)
from pipelines.dedup.clusters import find_stars, member_rows
from pipelines.dedup.index import choose_index
from pipelines.dedup.facts import loose_key
from pipelines.dedup.pairs import Pair, PairCheck, PairGraph, exact_units, fuzzy_pairs
from pipelines.embed import EmbedConfig
from pipelines.errors import ConfigError, DedupError
from pipelines.store import NewRecord, list_records, upsert_record, utcnow

CLAIM = ("Jessica Novak (policy POL-CA-93434) called on May 26, 2026 to report a sewer backup at "
         "the insured dwelling in Santa Rosa, CA. Repair estimate totals $1,500.00 (less the $500 "
         "deductible).")
CLAIM_TYPO = CLAIM.replace("called", "calld").replace("insured", "insurred")
CLAIM_PARAPHRASE = ("Loss date 05/26/2026. Jessica Novak (Santa Rosa, CA; POL-CA-93434) reports a "
                    "sewer backup. Total claimed $1500 (less the $500 deductible).")
OTHER_CLAIM = CLAIM.replace("May 26", "June 8").replace("1,500.00", "2,250.00")


def rid(text: str) -> str:
    return "r" + hashlib.sha256(text.encode()).hexdigest()[:16]


def add(ws, texts, kind="text", prompts=None):
    with ws.transaction() as conn:
        for n, t in enumerate(texts, 1):
            rec = NewRecord(id=rid(t), kind=kind, text=t, file="inline.jsonl", row=n)
            if prompts:
                rec.prompt, rec.response = prompts[n - 1], t.split("\n\n", 1)[1]
            upsert_record(conn, rec, utcnow())
    return [rid(t) for t in texts]


class TableEncoder:
    """Vectors from a table (to construct exact geometry), else a bag-of-words hash."""

    def __init__(self, table=None):
        self.table = table or {}

    def __call__(self, texts, model="default", **kw):
        out = np.zeros((len(texts), 8), dtype=np.float32)
        for i, t in enumerate(texts):
            if t in self.table:
                out[i, :len(self.table[t])] = self.table[t]
                continue
            for tok in t.lower().split():
                out[i, int(hashlib.md5(tok.encode()).hexdigest(), 16) % 8] += 1
            out[i] += 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture
def encoder(monkeypatch):
    enc = TableEncoder()
    monkeypatch.setattr("pipelines.embed.embed.encode_texts", enc)
    monkeypatch.setattr("pipelines.dedup.similarity.encode_texts", enc)
    # `auto` would distill the static model: these tests need no model at all
    monkeypatch.setattr("pipelines.embed.embed.resolve_alias",
                        lambda ws_path, model: "default" if model in ("auto", "static") else model)
    return enc


def unit(deg: float) -> list[float]:
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


# -- facts and pair checks (hand-checked) ---------------------------------------------------------
def test_facts_normalise_spelling():
    a, b = extract_facts(CLAIM), extract_facts(CLAIM_PARAPHRASE)
    assert a.amount == {"150000", "50000"} and b.amount == a.amount
    assert a.date == b.date == {"05-26"}
    assert a.ident == b.ident == {"pol-ca-93434"}
    assert {"novak", "rosa"} <= a.name
    assert compare_facts(a, b).status == "agree" and compare_facts(a, b).shared >= 4


def test_facts_conflict_on_other_amount_or_date():
    check = compare_facts(extract_facts(CLAIM), extract_facts(OTHER_CLAIM))
    assert check.status == "conflict" and "amount" in check.detail
    assert compare_facts(extract_facts("no numbers here"), extract_facts("none here")).status == "none"
    # a paraphrase that drops a detail (a subset) still agrees
    assert compare_facts(extract_facts("Paid $500 on 3/8/26 for the 2016 Prius"),
                         extract_facts("Paid $500 on March 8, 2026")).status == "agree"
    # different people, no other facts
    assert compare_facts(extract_facts("Call from John Smith about the Acme roof."),
                         extract_facts("Call from Mary Jones about the Brick roof.")).status == "conflict"


def test_verify_pair_fixes_what_cosine_gets_wrong():
    cfg = DedupConfig()
    fa = extract_facts(CLAIM)
    typo = verify_pair(0.77, fa, extract_facts(CLAIM_TYPO), CLAIM, CLAIM_TYPO, cfg)
    assert typo.merged and typo.rule == "lexical" and typo.lexical > 0.8
    other = verify_pair(0.98, fa, extract_facts(OTHER_CLAIM), CLAIM, OTHER_CLAIM, cfg)
    assert not other.merged and other.rule == "conflict"
    baseline = verify_pair(0.98, fa, extract_facts(OTHER_CLAIM), CLAIM, OTHER_CLAIM,
                           DedupConfig(verify=False))
    assert baseline.merged   # what a cosine threshold alone would do
    assert jaccard(shingles(CLAIM), shingles(CLAIM_TYPO)) > jaccard(shingles(CLAIM),
                                                                    shingles("unrelated text"))


# -- the hard negatives of issue 15: a merge needs positive evidence and no contradiction ----------
AUGUSTA = ("The driver filed for a broken wrist after a fall near Augusta two days ago. Estimated "
           "loss $310. No injuries.")
ATLANTA = ("The driver filed for a broken wrist after a fall near Atlanta on Monday. Estimated "
           "loss $310. Estimate is pending.")
SCHEMA = ("CREATE TABLE employees (emp_id INT PRIMARY KEY, full_name TEXT, dept_id INT, salary "
          "INT, hired DATE); CREATE TABLE departments (dept_id INT PRIMARY KEY, dept_name TEXT, "
          "budget INT, city TEXT); CREATE TABLE projects (proj_id INT, dept_id INT, title TEXT, "
          "starts DATE, ends DATE);\n")


def check(a, b, cos):
    return verify_pair(cos, extract_facts(a), extract_facts(b), a, b, DedupConfig())


def test_facts_cover_places_relative_dates_times_contacts_and_code():
    f = extract_facts(AUGUSTA)
    assert f.amount == {"31000"} and f.date == {"rel:-2d"} and f.name == {"augusta"}
    assert extract_facts(ATLANTA).date == {"wd:mon"}
    g = extract_facts("Call bob@x.com at 3pm or 15:30 about https://a.io/t, 5 kg, `run_all()` "
                      "and getUser(id).")
    assert g.email == {"bob@x.com"} and g.url == {"a.io/t"} and g.time == {"15:00", "15:30"}
    assert g.quantity == {"5kg"} and {"run_all()", "getUser"} <= g.code
    assert extract_facts("paid yesterday").date == {"rel:yesterday"}
    # a name at a sentence start is not extracted but still counts as present in the other text
    assert compare_facts(extract_facts("Claim filed near Augusta."),
                         extract_facts("Augusta police filed the claim.")).status != "conflict"


def test_augusta_and_atlanta_do_not_merge_however_close_their_vectors():
    c = check(AUGUSTA, ATLANTA, 0.99)
    assert not c.merged and c.rule == "conflict" and "date" in c.facts
    assert 0.4 < c.lexical < 0.6   # the issue measured 0.47-0.50: not lexical evidence either


def test_agreeing_facts_alone_never_merge():
    a = "The homeowner reported water damage near Augusta two days ago. Estimated loss $310."
    b = "A cyclist reported a stolen bike near Augusta two days ago. Estimated loss $310."
    c = check(a, b, 0.85)   # amount, date, place agree; nothing else says "same"
    assert c.facts.startswith("agree") and not c.merged and c.rule in ("weak", "divergent")


def test_typo_whitespace_and_reordered_copies_merge_with_their_evidence():
    typo = AUGUSTA.replace("driver", "drivr").replace("Estimated", "Estimatd")
    space = "  " + AUGUSTA.replace(" ", "   ").replace(".", " .")
    reordered = ("Estimated loss $310. No injuries. The driver filed for a broken wrist after a "
                 "fall near Augusta two days ago.")
    for copy in (typo, space, reordered):
        c = check(AUGUSTA, copy, 0.75)
        assert c.merged and c.rule == "lexical" and c.lexical >= 0.8, (copy, c)
        assert c.evidence.startswith("lexical: lexical ") and "facts agree" in c.evidence
    # a paraphrase with other words: a high cosine with agreeing facts is the evidence
    para = "Near Augusta, two days ago, a driver fell and broke a wrist; loss estimated at $310."
    c = check(AUGUSTA, para, 0.95)
    assert c.merged and c.rule == "cosine" and c.lexical < 0.8


ZH = "我家厨房的水管昨天晚上突然爆裂，地板和橱柜都被水泡坏了，维修费5000元，需要申请保险理赔。"
JA = "昨日の夜、台所の水道管が破裂して床と戸棚が水浸しになりました。修理費は5000円です。"


def test_scripts_without_word_spaces_get_short_shingles_and_their_numbers():
    # a one-character insertion is a typo'd copy in Chinese and Japanese as in English ...
    for text, typo in ((ZH, ZH.replace("爆裂", "爆裂了")), (JA, JA.replace("破裂して", "破裂し"))):
        c = check(text, typo, 0.75)
        assert c.merged and c.rule == "lexical" and c.lexical >= 0.8, (typo, c)
    # ... where the same template with another amount is another claim: the number next to
    # 元 / 円 is read as a fact, and it conflicts
    for text, other in ((ZH, ZH.replace("5000元", "8000元")), (JA, JA.replace("5000円", "8000円"))):
        assert extract_facts(text).number == {"5000"}
        c = check(text, other, 0.99)
        assert not c.merged and c.rule == "conflict", (other, c)
    # a text mostly in Latin script keeps its 5-grams; the MinHash grams follow the same sizes
    from pipelines.dedup.facts import gram_size

    assert (gram_size(loose_key(ZH)), gram_size(loose_key("Café 水 and more words"))) == (2, 5)
    assert (0, 1) in fuzzy_pairs([ZH, ZH.replace("爆裂", "爆裂了"), JA], 0.7)


def test_a_long_shared_schema_with_different_questions_does_not_merge():
    a = SCHEMA + "Question: how many employees earn more than their department's budget?"
    b = SCHEMA + "Question: list the titles of projects that end before they start."
    c = check(a, b, 1.0)
    assert not c.merged and c.rule in ("divergent", "conflict")
    assert c.lexical >= 0.5
    same = SCHEMA + "Question: how many employees earn more than their departments budget?"
    assert check(a, same, 1.0).merged   # the same question, one apostrophe off


def _advice(question, tips):
    # a long chat answer in a numbered list, as ShareGPT has thousands of
    body = "".join(f"{n}. {tip} " * 9 + "\n" for n, tip in enumerate(tips, 1))
    return f"user: {question}\nassistant: here are some steps you can take.\n{body}"


def test_two_long_chats_on_one_subject_with_a_high_cosine_do_not_merge():
    # issue 15, real ShareGPT: different questions at cosine 0.92-0.98 (long texts pool to one
    # topic vector), "agreeing" only on the list numbers 1, 2, 3
    drawing = _advice("how can i develop a habit of drawing daily?", [
        "set a small goal, such as one sketch before breakfast, and keep it visible.",
        "carry a pocket sketchbook so that waiting rooms become practice sessions.",
        "draw from life: mugs, shoes and plants teach proportion and shading."])
    manager = _advice("pretend you are my manager until i say otherwise.", [
        "my priority is your success and productivity in your role on this team.",
        "bring questions about projects, deadlines or workload to our weekly sync.",
        "we will review your goals each quarter and adjust the plan together."])
    assert min(len(drawing), len(manager)) > 2000
    c = check(drawing, manager, 0.95)
    assert not c.merged and c.rule == "weak", c
    assert c.facts.startswith("agree") and "number 1" in c.facts and c.lexical < 0.3
    # a long copy still merges on lexical evidence, and a short pair on its cosine
    assert check(drawing, drawing.replace("breakfast", "brekfast"), 0.95).rule == "lexical"
    continued = drawing + "user: thanks!\nassistant: you are welcome, happy drawing today."
    assert check(drawing, continued, 0.95).merged
    hello = "user: hey\nassistant: Hello! How can I help you today?"
    assert check(hello, "user: test\nassistant: Hello! How can I help you today?", 0.94).merged
    # the length is a setting: raised above both texts, the cosine merges them again
    wide = DedupConfig(embedding_max_chars=10 * len(drawing))
    fd, fm = extract_facts(drawing), extract_facts(manager)
    assert verify_pair(0.95, fd, fm, drawing, manager, wide).rule == "cosine"


@pytest.mark.parametrize("bad", [0, 1.5, -0.1, "0.9", True])
def test_threshold_outside_unit_interval(bad):
    with pytest.raises(ConfigError, match="threshold"):
        DedupConfig(threshold=bad)


def test_config_rejects_unknown_index_and_yaml_keys():
    with pytest.raises(ConfigError, match="index"):
        DedupConfig(index="annoy")
    with pytest.raises(ConfigError, match="unknown key"):
        DedupConfig.from_section({"treshold": 0.9})
    assert DedupConfig.from_section({"threshold": 0.9}, threshold=None).threshold == 0.9


def test_cache_key_follows_the_fields_that_feed_the_search():
    base = DedupConfig().cache_key()
    for changed in (dict(model="other-model"), dict(neighbours=8), dict(index="hnsw"),
                    dict(candidate_threshold=0.8), dict(same_prompt=False), dict(verify=False),
                    dict(threshold=0.6)):   # below candidate_threshold: it clamps the search
        assert DedupConfig(**changed).cache_key() != base, changed
    for same in (dict(threshold=0.95), dict(lexical_threshold=0.5), dict(min_shared_facts=3),
                 dict(batch_size=8)):
        assert DedupConfig(**same).cache_key() == base, same
    assert DedupConfig(neighbours=8).cache_key("embeddings") == \
        DedupConfig().cache_key("embeddings") != DedupConfig(model="x").cache_key("embeddings")
    assert DedupConfig(threshold=0.95).cache_key("verification") != \
        DedupConfig().cache_key("verification")
    assert DedupConfig(model="m", batch_size=8).embed_config() == EmbedConfig(model="m",
                                                                             batch_size=8)


def test_stars_and_member_rows_on_a_literal_graph():
    # units a..d in ingestion order; a~b, b~c, c~d merged (a chain), a~c refused; d has an exact copy
    def row(i, text):
        return {"id": f"r{i}", "pos": i, "kind": "text", "text": text, "prompt": None,
                "response": None, "n_sources": 1}
    units = exact_units([row(1, "a"), row(2, "b"), row(3, "c"), row(4, "d"), row(5, "D!")],
                        same_prompt=True)
    assert [u.ids for u in units] == [["r1"], ["r2"], ["r3"], ["r4", "r5"]]

    def pair(a, b, cos, rule):
        return Pair(a, b, "semantic", cos, PairCheck(rule != "conflict", cos, 0.1, "none", 0, rule))
    graph = PairGraph("flat", [pair("r1", "r2", 0.95, "cosine"), pair("r2", "r3", 0.93, "cosine"),
                               pair("r3", "r4", 0.97, "cosine"), pair("r1", "r3", 0.98, "conflict")])
    stars = find_stars(units, graph, fact_size=lambda u: 0)
    # b and c have two merges each; b is earlier. c joins b's star, so d (only c's) stays out of it
    assert [(s.centre, [v for v, _ in s.members]) for s in stars] == [(1, [0, 2])]   # by cosine
    rows = member_rows(units, stars, graph)
    assert [(m.record_id, m.cluster_id, m.rank, m.method, m.rule) for m in rows] == [
        ("r2", "c2", 0, "centre", None), ("r1", "c2", 1, "semantic", "cosine"),
        ("r3", "c2", 2, "semantic", "cosine"), ("r4", "c4", 0, "centre", None),
        ("r5", "c4", 1, "exact", "exact")]
    assert [m.similarity for m in rows] == [1.0, 0.95, 0.93, 1.0, 1.0]


# -- index choice (the scale path, at a small size) ---------------------------------------------
def test_index_choice_and_agreement():
    assert choose_index(100) == "flat" and choose_index(10**6) == "hnsw"
    assert choose_index(100, "ivf") == "ivf"
    rng = np.random.default_rng(0)
    base = rng.normal(size=(300, 32)).astype(np.float32)
    near = base[:40] + 0.05 * rng.normal(size=(40, 32)).astype(np.float32)
    x = np.concatenate([base, near])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    found = {}
    for kind in ("flat", "hnsw", "ivf"):
        a, b, s = knn_pairs(x, 5, 0.9, kind)
        assert (a < b).all() and (s >= 0.9).all()
        found[kind] = set(zip(a.tolist(), b.tolist()))
    expected = {(i, 300 + i) for i in range(40)}
    assert expected <= found["flat"]
    assert len(expected & found["hnsw"]) >= 38 and len(expected & found["ivf"]) >= 36


# -- run_dedup on inline data ---------------------------------------------------------------------
def test_empty_workspace(fresh_ws):
    with pytest.raises(DedupError, match="no records"):
        run_dedup(fresh_ws)


def test_exact_levels_and_empty_text(fresh_ws, encoder):
    ids = add(fresh_ws, ["The roof leaked in March.", "the roof leaked, in march!",
                         "A completely different note about a stolen bike.", "   "])
    result = run_dedup(fresh_ws, DedupConfig())
    assert result.skipped_empty == 1
    assert (result.clusters, result.exact, result.semantic, result.excluded) == (1, 1, 0, 1)
    with fresh_ws.connect() as conn:
        rows = {r["id"]: r for r in list_records(conn)}
    assert not rows[ids[0]]["excluded"] and rows[ids[1]]["excluded"]   # earliest kept
    assert rows[ids[1]]["representative_id"] == ids[0] and rows[ids[1]]["method"] == "exact"
    assert not rows[ids[2]]["excluded"] and rows[ids[2]]["cluster_id"] is None


def test_same_prompt_distinct_responses_are_kept_for_review(fresh_ws, encoder):
    prompts = ["Summarise: pipe burst on 3/8/26, $900.", "Summarise: pipe burst on 3/8/26, $900.",
               "Summarise: pipe burst on 3/8/26, $900."]
    texts = [prompts[0] + "\n\nPipe burst on March 8, 2026; claim $900.",
             prompts[1] + "\n\nPipe burst on 3/8/26 -- claim of $900.00.",
             prompts[2] + "\n\nFire in the garage on June 1, claim $4,000."]
    encoder.table.update({texts[0]: unit(0), texts[1]: unit(5), texts[2]: unit(30)})
    ids = add(fresh_ws, texts, kind="instruction", prompts=prompts)
    result = run_dedup(fresh_ws)
    assert result.same_prompt == 1 and result.review == 1 and result.excluded == 1
    with fresh_ws.connect() as conn:
        rows = {r["id"]: r for r in list_records(conn)}
    assert rows[ids[1]]["excluded"] and not rows[ids[2]]["excluded"]
    assert rows[ids[2]]["method"] == "same_prompt" and rows[ids[2]]["cluster_id"]


def test_semantic_clusters_without_chaining(fresh_ws, encoder):
    # A path A~B~C~D: 20 degrees apart (cos 0.94), A-C at 40 (0.77), one agreeing fact (the
    # place: a cosine merge needs one), low overlap.
    texts = ["apples oranges pears in Paris", "bread butter jam in Paris", "cars trucks vans in Paris",
             "dogs cats mice in Paris", "unrelated singleton note"]
    for t, deg in zip(texts, (0, 20, 40, 60, 150)):
        encoder.table[t] = unit(deg)
    a, b, c, d, e = add(fresh_ws, texts)
    result = run_dedup(fresh_ws, DedupConfig(threshold=0.92, candidate_threshold=0.7))
    clusters = result.cluster_list
    assert len(clusters) == 1
    members = {m["record_id"] for m in clusters[0].members}
    assert members == {a, b, c} and clusters[0].representative_id == b
    assert d not in members and e not in members       # no glue through C
    for m in clusters[0].members:
        if m["record_id"] != b:
            assert m["similarity"] >= 0.92 and m["rule"] == "cosine"
    # the same geometry with the baseline: the same star, it never chains either
    assert run_dedup(fresh_ws, DedupConfig(verify=False), commit=False).clusters == 1


def test_preview_writes_nothing(fresh_ws, encoder):
    add(fresh_ws, ["Hello World.", "hello world"])
    preview = run_dedup(fresh_ws, commit=False)
    assert preview.excluded == 1 and not preview.committed and preview.run_id is None
    with fresh_ws.connect() as conn:
        assert conn.execute("SELECT COUNT(*) FROM dedup").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM runs WHERE step='dedup'").fetchone()[0] == 0


def test_overrides_survive_rerun_and_never_lose_the_example(fresh_ws, encoder):
    ids = add(fresh_ws, ["Storm damage to the fence.", "storm damage to the fence",
                         "STORM damage -- to the fence!"])
    run_dedup(fresh_ws)
    rep = list_clusters(fresh_ws)[0].representative_id
    assert rep == ids[0]
    # dropping the representative promotes the next member: the example stays in the data
    row = set_override(fresh_ws, ids[0], "drop")
    assert row["excluded"] == 1
    with fresh_ws.connect() as conn:
        kept = [r["id"] for r in list_records(conn, excluded=False)]
    assert kept == [ids[1]]
    set_override(fresh_ws, ids[2], "keep")
    for _ in range(2):   # a later run respects both overrides
        result = run_dedup(fresh_ws)
        with fresh_ws.connect() as conn:
            rows = {r["id"]: r for r in list_records(conn)}
        assert rows[ids[0]]["excluded"] and not rows[ids[1]]["excluded"]
        assert not rows[ids[2]]["excluded"] and result.overrides == 2
    set_override(fresh_ws, ids[0], None)
    with fresh_ws.connect() as conn:
        assert not {r["id"]: r for r in list_records(conn)}[ids[0]]["excluded"]
    with pytest.raises(DedupError, match="no record"):
        set_override(fresh_ws, "rnope", "keep")
    with pytest.raises(DedupError, match="keep"):
        set_override(fresh_ws, ids[0], "maybe")


def test_search_and_filter(fresh_ws, encoder, tmp_path):
    texts = ["water heater leak basement", "water heater burst basement flood",
             "stolen bicycle garage", "quarterly revenue report"]
    ids = add(fresh_ws, texts)
    hits = search(fresh_ws, "water heater leak basement", k=2)
    assert hits[0].record_id == ids[0] and hits[0].score == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(DedupError, match="empty"):
        search(fresh_ws, "  ")
    like = tmp_path / "onTopic.txt"
    like.write_text(f"{ids[0]}\nstolen bicycle garage\n")
    result = run_filter(fresh_ws, str(like), min_sim=0.9)
    assert result.exemplars == 2 and result.flagged >= 1
    with fresh_ws.connect() as conn:
        rows = {r["id"]: r for r in list_records(conn)}
    assert rows[ids[3]]["excluded"] and not rows[ids[0]]["excluded"] and not rows[ids[2]]["excluded"]
    set_override(fresh_ws, ids[3], "keep")   # a person wins over the filter
    with fresh_ws.connect() as conn:
        assert not {r["id"]: r for r in list_records(conn)}[ids[3]]["excluded"]
    set_override(fresh_ws, ids[3], None)
    assert clear_filter(fresh_ws) == 4
    with fresh_ws.connect() as conn:
        assert not any(r["excluded"] for r in list_records(conn))
    with pytest.raises(DedupError, match="like: file .*missing.txt does not exist"):
        run_filter(fresh_ws, str(tmp_path / "missing.txt"))


def test_cli_dedup_json_and_bad_threshold(fresh_ws, encoder, capsys):
    from curate.cli import main

    add(fresh_ws, ["Same words here.", "same words here"])
    assert main(["dedup", "--workspace", str(fresh_ws.path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"clusters", "excluded", "exact", "semantic"} <= set(summary)
    assert summary["exact"] == 1 and summary["excluded"] == 1
    assert main(["dedup", "clusters", "--workspace", str(fresh_ws.path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(out["clusters"]) == 1 and len(out["clusters"][0]["members"]) == 2
    assert main(["dedup", "--workspace", str(fresh_ws.path), "--threshold", "1.5"]) == 2
    assert "threshold" in capsys.readouterr().err


def test_cli_dedup_says_before_the_run_that_the_model_is_english_only(fresh_ws, encoder,
                                                                      capsys):
    from curate.cli import main
    from pipelines.embed.languages import language_note

    add(fresh_ws, [ZH, JA, ZH.replace("厨房", "浴室"), "Der Keller ist nach dem Regen voll Wasser."])
    assert main(["dedup", "--workspace", str(fresh_ws.path), "--preview", "--json"]) == 0
    err = capsys.readouterr().err
    assert "note: 100% of a 4-record sample is not English (zh" in err and "--model" in err
    english = ["The insured reported a water leak in the kitchen on Monday."] * 30
    assert language_note(english + [ZH], "auto") is None          # one foreign text of 31
    assert language_note([ZH] * 10, "/models/my-multilingual") is None   # the user's own model


# -- the real model ------------------------------------------------------------------------------
@pytest.mark.slow
def test_real_model_merges_copies_not_lookalikes(fresh_ws, monkeypatch):
    texts = [CLAIM, CLAIM_TYPO, CLAIM_PARAPHRASE, OTHER_CLAIM,
             "Theft of a bicycle from the garage in Buffalo, NY on 3/8/26; value $400."]
    ids = add(fresh_ws, texts)
    result = run_dedup(fresh_ws)
    assert result.clusters == 1 and result.conflicts >= 1
    members = {m["record_id"] for m in result.cluster_list[0].members}
    assert members == set(ids[:3])
    assert result.cluster_list[0].representative_id == ids[0]
    again = run_dedup(fresh_ws)
    assert again.embedded == 0 and again.cache_hits == 5
    hits = search(fresh_ws, "bike stolen from a garage", k=1)
    assert hits[0].record_id == ids[4]

    # search's default model is dedup's, so it reads the vectors dedup cached: none encoded again
    import pipelines.dedup.similarity as sim
    from pipelines.dedup import DedupConfig

    seen = []
    real = sim._all_embeddings

    def spy(ws, model, progress):
        emb = real(ws, model, progress)
        seen.append((model, emb.embedded))
        return emb

    monkeypatch.setattr(sim, "_all_embeddings", spy)
    search(fresh_ws, "bike stolen from a garage", k=1)
    assert seen == [(DedupConfig().model, 0)]


def test_fact_blocking_finds_a_copy_beyond_the_nearest_neighbours(fresh_ws, encoder):
    # The copy (same policy, amount, date) ranks behind two different claims from the template.
    other1 = CLAIM.replace("POL-CA-93434", "POL-CA-11111").replace("May 26", "July 2")
    other2 = CLAIM.replace("POL-CA-93434", "POL-CA-22222").replace("May 26", "Aug 9")
    for t, deg in ((CLAIM, 0), (other1, 5), (other2, 8), (CLAIM_PARAPHRASE, 30)):
        encoder.table[t] = unit(deg)
    a, _, _, d = add(fresh_ws, [CLAIM, other1, other2, CLAIM_PARAPHRASE])
    plain = run_dedup(fresh_ws, DedupConfig(neighbours=1, fact_blocking=False), commit=False)
    assert plain.clusters == 0 and plain.conflicts >= 1
    blocked = run_dedup(fresh_ws, DedupConfig(neighbours=1), commit=False)
    assert blocked.clusters == 1
    assert {m["record_id"] for m in blocked.cluster_list[0].members} == {a, d}
    assert blocked.cluster_list[0].members[1]["rule"] == "paraphrase"   # cosine 0.87 + the policy


def test_rerun_on_unchanged_data_reuses_candidates(fresh_ws, encoder):
    texts = [CLAIM, CLAIM_PARAPHRASE, OTHER_CLAIM, "A stolen bicycle, no amount given."]
    add(fresh_ws, texts)
    first = run_dedup(fresh_ws)
    again = run_dedup(fresh_ws)
    assert not first.pair_cache and again.pair_cache
    assert [c.to_dict() for c in again.cluster_list] == [c.to_dict() for c in first.cluster_list]
    assert (again.candidates, again.conflicts) == (first.candidates, first.conflicts)
    # another threshold only re-verifies: the stored candidates serve, the answer is a fresh one's
    cached = run_dedup(fresh_ws, DedupConfig(threshold=0.95, min_shared_facts=20), commit=False)
    (fresh_ws.path / "indexes" / "dedup-pairs.npz").unlink()
    fresh = run_dedup(fresh_ws, DedupConfig(threshold=0.95, min_shared_facts=20), commit=False)
    assert cached.pair_cache and not fresh.pair_cache
    assert [c.to_dict() for c in cached.cluster_list] == [c.to_dict() for c in fresh.cluster_list]
    assert cached.clusters < first.clusters   # the settings did change the verdicts
    assert not run_dedup(fresh_ws, DedupConfig(neighbours=4), commit=False).pair_cache
    (fresh_ws.path / "indexes" / "dedup-pairs.npz").write_text("{broken")
    rebuilt = run_dedup(fresh_ws)   # a corrupt cache is recomputed, not fatal
    assert not rebuilt.pair_cache and rebuilt.clusters == first.clusters
    add(fresh_ws, ["A new record arrives about a hailstorm."])
    assert not run_dedup(fresh_ws).pair_cache


def test_rerun_on_unchanged_data_reuses_the_verified_pairs_and_the_stored_rows(
        fresh_ws, encoder, monkeypatch):
    import pipelines.dedup.dedup as dedup_mod

    texts = [CLAIM, CLAIM_TYPO, CLAIM_PARAPHRASE, OTHER_CLAIM, "A stolen bicycle, no amount."]
    add(fresh_ws, texts)
    first = run_dedup(fresh_ws)
    assert (first.pair_cache, first.verify_cache, first.unchanged) == (False, False, False)
    assert first.clusters >= 1
    calls = []
    real = dedup_mod.verify_pairs
    monkeypatch.setattr(dedup_mod, "verify_pairs", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = run_dedup(fresh_ws)
    assert (again.pair_cache, again.verify_cache, again.unchanged) == (True, True, True)
    assert not first.units_cache and again.units_cache
    assert calls == [] and "verified_cached" in again.timings
    assert [c.to_dict() for c in again.cluster_list] == [c.to_dict() for c in first.cluster_list]
    assert (again.candidates, again.rules, again.excluded) == (first.candidates, first.rules,
                                                             first.excluded)
    with fresh_ws.connect() as conn:   # not rewritten, but stamped with the re-run's id
        assert {r[0] for r in conn.execute("SELECT run_id FROM dedup")} == {again.run_id}
        assert {r[0] for r in conn.execute("SELECT run_id FROM dedup_members")} == {again.run_id}
    # a verification field changes the key: verified again, the search reused
    stricter = run_dedup(fresh_ws, DedupConfig(threshold=0.95, lexical_threshold=0.99),
                         commit=False)
    assert stricter.pair_cache and not stricter.verify_cache and calls == [1]
    back = run_dedup(fresh_ws)   # one entry is kept: the defaults verify again, same answer
    assert not back.verify_cache and back.unchanged
    assert [c.to_dict() for c in back.cluster_list] == [c.to_dict() for c in first.cluster_list]
    assert run_dedup(fresh_ws).verify_cache
    add(fresh_ws, [CLAIM.replace("report", "reprot")])   # a new record misses both caches
    grown = run_dedup(fresh_ws)
    assert not grown.pair_cache and not grown.verify_cache and not grown.unchanged
    assert grown.excluded == first.excluded + 1 and not grown.units_cache
    with fresh_ws.transaction() as conn:   # the same text from a second file: one more source
        upsert_record(conn, NewRecord(id=rid(OTHER_CLAIM), kind="text", text=OTHER_CLAIM,
                                      file="second.jsonl", row=1), utcnow())
    sourced = run_dedup(fresh_ws, commit=False)
    assert not sourced.units_cache and run_dedup(fresh_ws, commit=False).units_cache


@pytest.mark.slow
def test_a_dask_run_gives_the_clusters_of_a_local_run(tmp_path, encoder, monkeypatch):
    import logging

    from distributed import LocalCluster

    from pipelines.dedup import pairs as pairs_mod
    from pipelines.store import Workspace

    monkeypatch.setattr(pairs_mod, "_MINHASH_BLOCK", 2)    # several blocks, on both workers
    texts = [CLAIM, CLAIM_TYPO, CLAIM_PARAPHRASE, OTHER_CLAIM, OTHER_CLAIM.replace("the", "teh"),
             "A stolen bicycle, no amount.", "A stolen bicycle, no amount!!", "Hail on a roof."]
    local_ws, dask_ws = Workspace.create(tmp_path / "local"), Workspace.create(tmp_path / "dask")
    add(local_ws, texts)
    add(dask_ws, texts)
    local = run_dedup(local_ws, DedupConfig(exact=False), commit=False)
    with LocalCluster(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=":0",
                      silence_logs=logging.CRITICAL) as cluster:
        on_dask = run_dedup(dask_ws, DedupConfig(exact=False, scheduler=cluster.scheduler_address),
                            commit=False)
        ran = set(cluster.scheduler.task_prefixes)   # what the workers were given
    assert {"minhash_block", "encode_part"} <= ran   # (dask drops the leading "_")
    assert on_dask.embedded == len(texts) and local.clusters >= 2
    assert [c.to_dict() for c in on_dask.cluster_list] == [c.to_dict() for c in local.cluster_list]
    assert (on_dask.rules, on_dask.stages["fuzzy"]["candidates"]) == (
        local.rules, local.stages["fuzzy"]["candidates"])
    assert local.stages["fuzzy"]["candidates"] >= 2


@pytest.mark.slow
def test_a_scheduler_that_does_not_answer_is_one_error(fresh_ws, encoder):
    add(fresh_ws, [CLAIM, CLAIM_TYPO])
    with pytest.raises(DedupError, match="no Dask scheduler answers at 'tcp://127.0.0.1:9'"):
        run_dedup(fresh_ws, DedupConfig(scheduler="tcp://127.0.0.1:9"), commit=False)
    with pytest.raises(ConfigError, match="dedup.scheduler"):
        DedupConfig(scheduler="  ")


def test_cached_exact_units_are_the_computed_ones(fresh_ws):
    from pipelines.dedup.cache import cached_units
    from pipelines.store.dedup import dedup_inputs

    texts = ["Q: pipe burst?\n\nYes, on May 2.", "Q: pipe burst?\n\nNo.",
             "Q: PIPE burst!\n\nYes, on May 2.", "Q: roof?\n\nHail, $300."]
    add(fresh_ws, texts, kind="instruction", prompts=[t.split("\n\n")[0] for t in texts])
    add(fresh_ws, [CLAIM, CLAIM.upper(), OTHER_CLAIM])
    with fresh_ws.connect() as conn:
        recs = dedup_inputs(conn)
    for same_prompt, exact in ((True, True), (False, True), (True, False)):
        computed = exact_units(recs, same_prompt, exact)
        first, hit = cached_units(fresh_ws, recs, same_prompt, exact)
        again, hit_again = cached_units(fresh_ws, recs, same_prompt, exact)
        assert (hit, hit_again) == (False, True)
        shape = [(u.id, [(r["id"], level) for r, level in u.copies]) for u in computed]
        assert [(u.id, [(r["id"], level) for r, level in u.copies]) for u in again] == shape
        levels = {level for _, copies in shape for _, level in copies}
        assert levels == {(True, True): {"exact", "same_prompt"}, (False, True): {"exact"},
                          (True, False): {"exact", "same_prompt"}}[(same_prompt, exact)]


def test_progress_callback_reports_every_stage_in_order_ending_at_one(fresh_ws, encoder):
    from pipelines.dedup import PROGRESS_STAGES, StageProgress

    add(fresh_ws, [CLAIM, CLAIM_TYPO, CLAIM_PARAPHRASE, OTHER_CLAIM, "A stolen bicycle."])
    seen: list[StageProgress] = []
    first = run_dedup(fresh_ws, on_progress=seen.append)
    order = list(dict.fromkeys(p.stage for p in seen))
    assert order == list(PROGRESS_STAGES)
    for stage in PROGRESS_STAGES:
        fractions = [p.fraction for p in seen if p.stage == stage]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0, (stage, fractions)
    # one stage at a time: once a stage has begun, the earlier ones report nothing more
    rank = [PROGRESS_STAGES.index(p.stage) for p in seen]
    assert rank == sorted(rank)
    embed = [p for p in seen if p.stage == "embed"]
    assert embed[0].fraction == 0.0 and embed[-1].done == 5 and "5 / 5 records" in \
        embed[-1].describe()
    # a re-run: the cached stages say so, and still end at 1.0
    seen.clear()
    again = run_dedup(fresh_ws, on_progress=seen.append)
    notes = {p.stage: p.note for p in seen if p.fraction == 1.0}
    assert (notes["embed"], notes["fuzzy"], notes["semantic"], notes["verify"]) == (
        "cached", "cached", "cached", "cached")
    assert notes["write"].startswith("unchanged") and again.unchanged and not first.unchanged
    seen.clear()
    run_dedup(fresh_ws, DedupConfig(fuzzy=False, semantic=False), commit=False,
              on_progress=seen.append)
    notes = {p.stage: p.note for p in seen if p.fraction == 1.0}
    assert [p.stage for p in seen if p.fraction == 1.0] == list(PROGRESS_STAGES)
    assert (notes["embed"], notes["fuzzy"], notes["semantic"]) == ("off", "off", "off")
    assert notes["write"] == "preview: nothing stored"
    eta = StageProgress("verify", 25, 100, 10.0)
    assert eta.eta_s == pytest.approx(30.0) and "ETA 30 s" in eta.describe()


# -- whole records, conversation segments, the cascade -------------------------------------------
def test_segments_of_one_conversation_stay_apart(fresh_ws, encoder):
    a = "Step 1 of the Paris itinerary: visit the Louvre at 9am, lunch near the Seine."
    b = "Step 1 of the Paris itinerary: visit the Louvre at 9am, lunch near the Seine!!"
    with fresh_ws.transaction() as conn:
        for n, (t, meta) in enumerate([(a, {"id": "QWJhYvA_0"}), (b, {"id": "QWJhYvA_1"})], 1):
            upsert_record(conn, NewRecord(id=rid(t), kind="text", text=t, file="chat.jsonl", row=n,
                                          meta=meta), utcnow())
    result = run_dedup(fresh_ws, DedupConfig(exact=False), commit=False)
    assert result.clusters == 0 and result.segments == 1 and result.rules == {"segment": 1}
    merged = run_dedup(fresh_ws, DedupConfig(exact=False, same_conversation=True), commit=False)
    assert merged.clusters == 1


def test_conversation_key_rule():
    from pipelines.dedup.pairs import conversation_key

    def rec(meta, file="f.jsonl"):
        return {"meta": json.dumps(meta), "file": file}
    assert conversation_key(rec({"id": "QWJhYvA_0"})) == conversation_key(rec({"id": "QWJhYvA_3"}))
    assert conversation_key(rec({"id": "QWJhYvA_0"})) != conversation_key(rec({"id": "QWJhYvA_0"},
                                                                              "g.jsonl"))
    assert conversation_key(rec({"conversation_id": 7})) == conversation_key(
        rec({"conversation_id": 7, "id": "x"}))
    assert conversation_key(rec({"id": "claim_1"})) is None      # a word, not a generated id
    assert conversation_key(rec({"id": "17"})) is None and conversation_key(rec({})) is None


def test_cascade_stages_switch_and_their_counts_add_up(fresh_ws, encoder):
    texts = [AUGUSTA, AUGUSTA.replace("driver", "drivr"), ATLANTA,
             "A cyclist reported a stolen bike in Boston on 3/8/26; value $400."]
    add(fresh_ws, texts + [AUGUSTA.upper()])
    full = run_dedup(fresh_ws, commit=False)
    st = full.stages
    assert st["exact"]["records"] == 5 and st["exact"]["units"] == 4 == full.units
    assert st["fuzzy"]["candidates"] >= 1 and st["fuzzy"]["merged_pairs"] == 1
    assert st["fuzzy"]["candidates"] + st["semantic"]["candidates"] == full.candidates
    assert sum(full.rules.values()) == full.candidates
    assert (full.exact, full.semantic, full.excluded) == (1, 1, 2)
    # fuzzy alone (no model at all) still finds the typo'd copy; cosine is then absent
    lexical_only = run_dedup(fresh_ws, DedupConfig(semantic=False), commit=False)
    assert lexical_only.embedded == 0 and lexical_only.stages["semantic"]["candidates"] == 0
    assert lexical_only.semantic == 1 and lexical_only.index == ""
    member = next(m for m in lexical_only.cluster_list[0].members if m["method"] == "semantic")
    assert member["rule"] == "lexical" and member["similarity"] >= 0.8
    no_exact = run_dedup(fresh_ws, DedupConfig(exact=False, semantic=False), commit=False)
    assert no_exact.units == 5 and no_exact.exact == 0 and no_exact.excluded >= 1
    nothing = run_dedup(fresh_ws, DedupConfig(exact=False, fuzzy=False, semantic=False),
                        commit=False)
    assert nothing.candidates == 0 and nothing.excluded == 0


def test_cli_shows_stages_and_evidence_and_ctrl_c_keeps_caches(fresh_ws, encoder, capsys,
                                                               monkeypatch):
    from curate.cli import main

    add(fresh_ws, [AUGUSTA, AUGUSTA.replace("driver", "drivr"), ATLANTA])
    assert main(["dedup", "--workspace", str(fresh_ws.path), "--no-semantic", "--json"]) == 0
    out = capsys.readouterr().out
    assert "semantic: off" in out and "fuzzy: " in out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["stages"]["fuzzy"]["merged_pairs"] == 1 and summary["semantic"] == 1
    assert main(["dedup", "clusters", "--workspace", str(fresh_ws.path)]) == 0
    assert "evidence: lexical (facts agree: amount 31000" in capsys.readouterr().out

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr("curate.cli.dedup.run_dedup", interrupted)
    assert main(["dedup", "--workspace", str(fresh_ws.path)]) == 130
    assert "embedding cache" in capsys.readouterr().err
