"""Privacy-safe synthetic copies: surrogates on inline records, then the workspace step."""

from __future__ import annotations

import pytest

from pipelines.errors import ConfigError, SynthError
from pipelines.pii import detect, metadata_names
from pipelines.store import NewRecord, Workspace, get_record, iter_records, upsert_record, utcnow
from pipelines.synth import PrivateCopyConfig, Surrogates, make_private_copies

NOTE = ("On March 3, 2026, Maria Lopez of Tampa, FL reported a burst pipe at her home; policy "
        "POL-FL-20481 active. Call (813) 555-0142 or maria.lopez@example.com. Ms. Lopez says the "
        "water ran for hours. Claimed amount is $4,250.00.")
GOOD = ("Water damage claim: Maria Lopez (Tampa, FL) reports a burst pipe on 03/03/2026; "
        "claimed amount $4,250, policy POL-FL-20481.")
BAD = ("Water damage claim: Maria Lopez (Tampa, FL) reports a burst pipe on 03/03/2026; "
       "claimed amount $9,999.")
META = {"claimant": "Maria Lopez", "adjuster": "K. Patel", "state": "FL", "amount": "4,250.00",
        "claim_date": "2026-03-03", "policy_id": "POL-FL-20481"}
PLAIN = ("Hail dented the roof and two gutters; the insured wants an inspection before winter.",
         "Hail damage to roof and gutters; inspection requested.")

CURATION = """
schema: instruction
schemes:
  summary_quality:
    classes: [ACCEPT, REJECT]
    lf_modules: [labeling_functions.summary_quality]
"""


def make_ws(tmp_path) -> Workspace:
    ws = Workspace.create(tmp_path / "ws")
    ws.config_path.write_text(CURATION, encoding="utf-8")
    rows = [("good", NOTE, GOOD, {"summary_quality": "ACCEPT"}, "property_water"),
            ("bad", NOTE, BAD, {}, "property_water"),
            ("plain", PLAIN[0], PLAIN[1], {}, "property_hail")]
    with ws.transaction() as conn:
        for i, (rid, note, summary, gold, raw) in enumerate(rows):
            upsert_record(conn, NewRecord(id=rid, kind="instruction", text=f"{note}\n\n{summary}",
                                          prompt=note, response=summary, gold=gold, raw_label=raw,
                                          meta=dict(META) if rid != "plain" else {},
                                          file="x", row=i + 1), utcnow())
    return ws


def pii_values(text: str, meta) -> set[str]:
    return {s.value for s in detect(text, names=metadata_names(meta))}


def test_every_identifying_value_is_replaced_consistently():
    sur = Surrogates(salt="s1")
    out, done = sur.replace_all({"prompt": NOTE, "response": GOOD, "meta.state": "FL",
                                 "meta.amount": "4,250.00", "meta.claim_date": "2026-03-03",
                                 "meta.adjuster": "K. Patel"},
                                names=["Maria Lopez", "K. Patel"],
                                bare=["meta.state", "meta.amount", "meta.claim_date",
                                      "meta.adjuster"])
    copy = "\n".join(out.values())
    for real in ("Maria Lopez", "Lopez", "Tampa", "POL-FL-20481", "(813) 555-0142",
                 "maria.lopez@example.com", "$4,250", "4,250.00", "March 3", "03/03/2026",
                 "2026-03-03", "K. Patel"):
        assert real not in copy, real
    assert {r.kind for r in done} >= {"PERSON", "PHONE", "EMAIL", "place", "ident", "date",
                                      "amount"}
    person = sur.mapping[("PERSON", "maria lopez")]
    # the same real value -> the same fake, in the note, the summary and alone ("Ms. Lopez")
    assert out["prompt"].count(person) == 1 and person in out["response"]
    assert f"Ms. {person.split()[-1]}" in out["prompt"]
    ident = sur.mapping[("ident", "pol-fl-20481")]
    assert ident in out["prompt"] and ident in out["response"]
    state = ident.split("-")[1]            # the state inside the policy number follows the place
    assert out["meta.state"] == state and f", {state})" in out["response"]
    # dates move by one offset whatever their format; amounts keep their format
    d = out["meta.claim_date"]
    assert f"{d[5:7]}/{d[8:10]}/{d[:4]}" in out["response"]
    assert out["meta.amount"].count(",") == 1 and out["meta.amount"].endswith(".00")
    cents = out["meta.amount"].replace(",", "")[:-3]
    assert f"${int(cents):,}." in out["prompt"] and f"${int(cents):,}," in out["response"]
    assert out["meta.adjuster"][1:3] == ". "                   # an initialled name stays one
    # across records (scope "set") the same value meets the same fake; another salt differs
    again, _ = sur.replace_all({"t": "Maria Lopez called."})
    assert again["t"] == f"{person} called."
    other, _ = Surrogates(salt="s2").replace_all({"t": "Maria Lopez called."})
    assert other["t"] != again["t"]


def test_private_copies_with_lineage_labels_and_unchanged_records(tmp_path):
    ws = make_ws(tmp_path)
    preview = make_private_copies(ws, PrivateCopyConfig(seed=7), commit=False)
    assert len(preview.copies) == 2 and preview.skipped == {"gold (held out)": 1}
    with ws.connect() as conn:
        assert len(list(iter_records(conn))) == 3                       # nothing stored
    res = make_private_copies(ws, PrivateCopyConfig(seed=7))
    assert res.stored == 2 and res.unchanged == 1 and res.run_id
    with ws.connect() as conn:
        by_src = {}
        for rec in iter_records(conn, with_gold=True):
            if rec.synthetic:
                by_src[rec.synthetic["source_id"]] = rec
        src = get_record(conn, "bad", with_gold=True)
        run = conn.execute("SELECT params, metrics FROM runs WHERE id = ?", (res.run_id,)).fetchone()
    copy = by_src["bad"]
    for value in pii_values(src.text, src.meta):                        # no detected PII survives
        assert value not in copy.text and value not in str(copy.meta), value
    syn = copy.synthetic
    assert syn["method"] == "private" and syn["source_id"] == "bad" and not syn["unchanged"]
    assert syn["replaced"]["PERSON"] >= 2 and syn["replaced"]["amount"] >= 2
    assert syn["labels_valid"] == {"summary_quality": True} and syn["changed_votes"] == {}
    assert "Maria" not in str(syn) and "4,250" not in str(syn)          # lineage: counts only
    assert copy.raw_label == "property_water" and copy.kind == "instruction"
    assert copy.meta["state"] != "FL" and set(copy.meta) == set(src.meta) | {"synthetic"}
    plain = by_src["plain"]                                             # nothing to replace
    assert plain.id != "plain" and plain.prompt == PLAIN[0] and plain.response == PLAIN[1]
    assert plain.synthetic["unchanged"] and plain.synthetic["replaced"] == {}
    assert "7" not in run["params"].replace("date_shift_days", "")     # the seed is not kept
    assert '"unchanged": 1' in run["metrics"] and "Maria" not in run["metrics"]
    again = make_private_copies(ws, PrivateCopyConfig(seed=7))          # copies are no source
    assert again.sources == 2 and again.stored == 0                     # same seed, same copies


def test_gold_is_kept_only_with_include_gold_and_only_where_the_lfs_agree(tmp_path):
    ws = make_ws(tmp_path)
    res = make_private_copies(ws, PrivateCopyConfig(seed=3, include_gold=True, ids=["good"]))
    assert res.stored == 1 and not res.labels_changed()
    with ws.connect() as conn:
        copy = get_record(conn, res.copies[0].record_id, with_gold=True)
    assert copy.gold == {"summary_quality": "ACCEPT"}
    # a faithful summary stays faithful and a hallucinated one hallucinated: the LFs vote alike
    from pipelines.weak_supervision import apply_lfs, load_lfs

    lfs = load_lfs(ws, "summary_quality")
    rows = [r.to_dict() for r in (res.copies[0].source, copy)]
    L, _ = apply_lfs(rows, lfs.lfs, ["ACCEPT", "REJECT"])
    assert (L[0] == L[1]).all() and (L[0] != -1).any()


def test_record_scope_draws_fakes_per_record():
    a = Surrogates(salt="0:r1").replace_all({"t": "Maria Lopez of Tampa, FL"})[0]["t"]
    b = Surrogates(salt="0:r2").replace_all({"t": "Maria Lopez of Tampa, FL"})[0]["t"]
    assert a != b and "Maria" not in a + b


def test_bad_options_and_no_sources_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="synth.scope must be one of set, record"):
        PrivateCopyConfig(scope="world")
    with pytest.raises(ConfigError, match="synth.amount_jitter"):
        PrivateCopyConfig(amount_jitter=1.5)
    ws = make_ws(tmp_path)
    with pytest.raises(SynthError, match="no record 'nope'"):
        make_private_copies(ws, PrivateCopyConfig(ids=["nope"]))
    with pytest.raises(SynthError, match=r"no record to make a private copy of \(left out: gold"):
        make_private_copies(ws, PrivateCopyConfig(ids=["good"]))


def test_the_overview_lists_copies_with_their_source_and_counts(tmp_path):
    from pipelines.synth.browse import synthetic_overview

    ws = make_ws(tmp_path)
    assert synthetic_overview(ws).rows == []
    make_private_copies(ws, PrivateCopyConfig(seed=1))
    ov = synthetic_overview(ws)
    assert ov.real == 3 and ov.by_method == {"private": 2}
    assert {r["source_id"] for r in ov.rows} == {"bad", "plain"}
    assert ov.by_kind["private"]["PERSON"] >= 2
    assert {r["change"] for r in ov.rows if r["source_id"] == "plain"} == {"copied unchanged (nothing to replace)"}


def test_chat_and_text_records_are_copied_turn_by_turn(tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    ws.config_path.write_text(CURATION, encoding="utf-8")
    turns = [{"role": "user", "content": "I am Maria Lopez, my phone is (813) 555-0142."},
             {"role": "assistant", "content": "Thanks Maria Lopez, noted (813) 555-0142."}]
    with ws.transaction() as conn:
        upsert_record(conn, NewRecord(id="c", kind="chat", text="x", messages=turns, file="x",
                                      row=1), utcnow())
        upsert_record(conn, NewRecord(id="t", kind="text", text="Email maria.lopez@example.com",
                                      file="x", row=2), utcnow())
    res = make_private_copies(ws, PrivateCopyConfig(seed=2, check_labels=False))
    assert res.stored == 2
    with ws.connect() as conn:
        chat = get_record(conn, next(c.record_id for c in res.copies if c.source.id == "c"))
        text = get_record(conn, next(c.record_id for c in res.copies if c.source.id == "t"))
    assert chat.kind == "chat" and [t.role for t in chat.turns] == ["user", "assistant"]
    fake = res.copies[0].fields["turn.0"].split(",")[0].removeprefix("I am ")
    assert "Maria" not in chat.text and fake in chat.turns[1].content       # one person, twice
    assert "(813) 555-0142" not in chat.text and chat.response == chat.turns[1].content
    assert text.kind == "text" and "maria.lopez" not in text.text and "@example.com" in text.text
