"""Fact-aware counterfactuals: each edit kind on inline records, with the LF that must catch it."""

from __future__ import annotations

import random

import pytest

import labeling_functions.summary_quality as sq
from pipelines.errors import ConfigError, SynthError
from pipelines.store import NewRecord, Workspace, get_record, upsert_record, utcnow
from pipelines.store.exports import put_label
from pipelines.synth import CounterfactualConfig, apply_edit, make_counterfactuals
from pipelines.weak_supervision import Row

NOTE = ("On March 3, 2026, Maria Lopez of Tampa, FL reported a burst pipe at her home; policy "
        "POL-FL-20481 active. Water ran for hours; drywall soaked. Claimed amount is $4,250.00. "
        "Adjuster K. Patel assigned.")
GOOD = ("Water damage claim: Maria Lopez reports a burst pipe on March 3, 2026 in Tampa, FL; "
        "claimed amount $4,250.")

CURATION = """
schema: instruction
schemes:
  summary_quality:
    classes: [ACCEPT, REJECT]
    lf_modules: [labeling_functions.summary_quality]
"""


def votes(summary: str, note: str = NOTE) -> dict[str, int]:
    x = Row(id="r", text=note + "\n\n" + summary, prompt=note, response=summary)
    from pipelines.weak_supervision import lfs_from_module

    return {lf.name: lf(x) for lf in lfs_from_module(sq)}


@pytest.mark.parametrize("kind,lf", [
    ("amount", "lf_amount_not_in_note"),
    ("date", "lf_date_not_in_note"),
    ("name", "lf_name_not_in_note"),
    ("place", "lf_state_mismatch"),
    ("ident", "lf_identifier_not_in_note"),
    ("drop", "lf_drops_note_amount"),
])
def test_each_edit_is_caught_by_its_lf(kind, lf):
    assert sq.REJECT not in votes(GOOD).values()          # the source is clean
    edit = apply_edit(kind, NOTE, GOOD, random.Random(1))
    assert edit is not None and edit.kind == kind and edit.text != GOOD
    assert votes(edit.text)[lf] == sq.REJECT, edit.describe()


def test_an_added_fact_is_caught_whichever_fact_is_added():
    caught = set()
    for seed in range(8):
        edit = apply_edit("add", NOTE, GOOD, random.Random(seed))
        assert edit.text.startswith(GOOD.rstrip(".")) and edit.after and not edit.before
        v = votes(edit.text)
        hits = {k for k, y in v.items() if y == sq.REJECT}
        assert hits & {"lf_amount_not_in_note", "lf_name_not_in_note"}, edit.describe()
        caught |= hits
    assert {"lf_amount_not_in_note", "lf_name_not_in_note"} <= caught   # both templates seen


def test_edits_keep_the_rest_of_the_summary_and_never_reuse_a_note_fact():
    e = apply_edit("amount", NOTE, GOOD, random.Random(0))
    assert e.before == "$4,250" and e.after not in NOTE and e.text.replace(e.after, e.before) == GOOD
    e = apply_edit("place", NOTE, GOOD, random.Random(0))
    assert e.before == "FL" and e.after != "FL" and "Tampa, " + e.after in e.text
    e = apply_edit("drop", NOTE, GOOD, random.Random(0))
    assert "$" not in e.text and e.text.startswith("Water damage claim: Maria Lopez")


def test_wrong_amounts_are_scale_slips_and_unrelated_figures_written_alike():
    """Both kinds of invented amount (a model trained only on x10 / x2 slips learnt that
    shortcut), never the note's figure, cents kept where the original has them."""
    from pipelines.synth.edits import _new_amount

    slips = {3, 10, 2, 5, 0.5, 0.25}
    for old in (425000, 834334):            # $4,250 and $8,343.34
        new = [_new_amount(old, {old}, random.Random(seed)) for seed in range(40)]
        ratios = [n / old for n in new]
        assert old not in new and all(0.19 < r < 10.1 for r in ratios)
        scaled = [r for r in ratios if any(abs(r / f - 1) < 1e-3 for f in slips)]
        assert 5 < len(scaled) < 35            # each kind about half the time
        if old % 100:
            assert sum(n % 100 != 0 for n in new) >= 5
        else:
            assert all(n % 100 == 0 for n in new)


def test_an_edit_with_nothing_to_edit_is_not_applicable():
    plain = "Water damage claim after a burst pipe; drywall soaked for hours."
    for kind in ("amount", "date", "name", "place", "drop"):
        assert apply_edit(kind, NOTE, plain, random.Random(0)) is None, kind
    with pytest.raises(ValueError, match="unknown edit"):
        apply_edit("tone", NOTE, GOOD, random.Random(0))


def make_ws(tmp_path, n: int = 6, name: str = "Maria Lopez") -> Workspace:
    ws = Workspace.create(tmp_path / "ws")
    ws.config_path.write_text(CURATION, encoding="utf-8")
    with ws.transaction() as conn:
        for i in range(n):
            note = NOTE.replace("$4,250.00", f"${4250 + i},00".replace(",00", ".00"))
            summary = GOOD.replace("$4,250", f"${4250 + i}")
            note, summary = note.replace("Maria Lopez", name), summary.replace("Maria Lopez", name)
            upsert_record(conn, NewRecord(id=f"r{i}", kind="instruction", text=note + summary,
                                          prompt=note, response=summary, file="x", row=i + 1),
                          utcnow())
            put_label(conn, f"r{i}", "summary_quality", "ACCEPT", 0.95)
        # not a source: rejected, and a gold (held-out) record
        upsert_record(conn, NewRecord(id="bad", kind="instruction", text="t", prompt=NOTE,
                                      response="see file", file="x", row=99), utcnow())
        put_label(conn, "bad", "summary_quality", "REJECT", 0.95)
        upsert_record(conn, NewRecord(id="gold", kind="instruction", text="g", prompt=NOTE,
                                      response=GOOD + " ", gold={"summary_quality": "ACCEPT"},
                                      file="x", row=100), utcnow())
    return ws


def test_make_counterfactuals_stores_caught_ones_with_lineage(tmp_path):
    ws = make_ws(tmp_path)
    preview = make_counterfactuals(ws, CounterfactualConfig(n=4), commit=False)
    assert len(preview.created) == 4 and preview.run_id is None
    with ws.connect() as conn:
        assert conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 8   # nothing stored
    res = make_counterfactuals(ws, CounterfactualConfig(n=6))
    assert res.sources == 6 and len(res.created) == 6 and res.stored == 6 and not res.missed
    assert res.skipped == {"label REJECT": 1, "gold (held out)": 1}
    assert len({c.edit.kind for c in res.created}) == 6        # kinds rotate over the sources
    with ws.connect() as conn:
        rec = get_record(conn, res.created[0].record_id)
        run = conn.execute("SELECT step, metrics FROM runs WHERE id = ?", (res.run_id,)).fetchone()
    syn = rec.synthetic
    assert syn["method"] == "counterfactual" and syn["source_id"] == res.created[0].source_id
    assert syn["edit"] == res.created[0].edit.kind and syn["caught_by"] and syn["run_id"] == res.run_id
    assert rec.prompt == res.created[0].prompt and rec.response == res.created[0].rejected
    assert run["step"] == "synth"
    again = make_counterfactuals(ws, CounterfactualConfig(n=6))   # synthetic records are no source
    assert again.sources == 6 and again.stored == 0               # same seed: the same records


def test_a_counterfactual_the_lfs_do_not_catch_is_reported_not_stored(tmp_path):
    ws = make_ws(tmp_path, n=2)
    # Without its date LF the scheme cannot tell a moved date from the source.
    (ws.path / "lfs").mkdir(exist_ok=True)
    ws.config_path.write_text(CURATION.replace("lf_modules: [labeling_functions.summary_quality]",
                                               "lf_modules: []"), encoding="utf-8")
    (ws.path / "lfs" / "only_amounts.py").write_text(
        "from labeling_functions.summary_quality import lf_amount_not_in_note\n"
        "def lf_amounts(x):\n    return lf_amount_not_in_note(x)\n", encoding="utf-8")
    res = make_counterfactuals(ws, CounterfactualConfig(n=2, edits=["date", "amount"]))
    assert [c.edit.kind for c in res.missed] == ["date"]
    assert [c.edit.kind for c in res.created] == ["amount"] and res.stored == 1
    assert res.by_edit() == {"date": {"caught": 0, "missed": 1}, "amount": {"caught": 1, "missed": 0}}


def test_bad_options_and_no_sources_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="synth.edits"):
        CounterfactualConfig(edits=["tone"])
    with pytest.raises(ConfigError, match="synth.n"):
        CounterfactualConfig(n=0)
    ws = Workspace.create(tmp_path / "empty")
    ws.config_path.write_text(CURATION, encoding="utf-8")
    with pytest.raises(SynthError, match="no accepted summary_quality record"):
        make_counterfactuals(ws)


# -- export: synthetic records and preference pairs -------------------------------------------
def _with_counterfactuals(tmp_path, n=6):
    from pipelines.store.exports import put_review

    ws = make_ws(tmp_path, n=n)
    make_counterfactuals(ws, CounterfactualConfig(n=n))
    with ws.transaction() as conn:   # a reviewer's correction: chosen = edit, rejected = original
        put_review(conn, "r0", "summary_quality", human_label="ACCEPT",
                   edited_response=GOOD.replace("$4,250", "$4250") + " Inspection booked.")
    return ws


def test_preference_export_pairs_counterfactuals_and_corrections(tmp_path):
    import datasets

    from pipelines.export import export_dataset, load_manifest

    ws = _with_counterfactuals(tmp_path)
    # PII left in (the texts are compared below); redaction of pairs is tested next.
    res = export_dataset(ws, scheme="summary_quality", format="preference", eval_fraction=0.0,
                         pii="none", allow_pii=True)
    assert res.train == 7 and res.labels["train"] == {"counterfactual": 6, "correction": 1}
    ds = datasets.load_dataset("json", data_files=str(res.path / "train.jsonl"), split="train")
    assert set(ds.column_names) == {"prompt", "chosen", "rejected"}
    rows = list(ds)
    original = GOOD.replace("$4,250", "$4250")
    corr = [r for r in rows if r["rejected"][0]["content"] == original]
    assert len(corr) == 1 and corr[0]["chosen"][0]["content"].endswith("Inspection booked.")
    # the counterfactual of the corrected record pairs against the correction, the best answer
    assert sum("Inspection booked." in r["chosen"][0]["content"] for r in rows) == 2
    for r in rows:
        assert r["prompt"][-1]["role"] == "user" and r["chosen"][0]["role"] == "assistant"
        assert r["chosen"] != r["rejected"]
    m = load_manifest(ws, res.version)
    assert m["counts"]["synthetic"] == {"train": 6, "eval": 0}
    assert m["lengths"]["p50"] > 20                           # prompt + the longer answer
    std = export_dataset(ws, scheme="summary_quality", format="preference", eval_fraction=0.0,
                         preference_style="standard")
    row = datasets.load_dataset("json", data_files=str(std.path / "train.jsonl"), split="train")[0]
    assert isinstance(row["prompt"], str) and isinstance(row["chosen"], str)
    capped = export_dataset(ws, scheme="summary_quality", format="preference", eval_fraction=0.0,
                            synthetic="cap", synthetic_cap=0.5)   # 1 real pair -> 1 synthetic
    assert capped.labels["train"] == {"counterfactual": 1, "correction": 1}
    assert capped.skipped["synthetic over cap"] == 5
    none = export_dataset(ws, scheme="summary_quality", format="preference", eval_fraction=0.0,
                          synthetic="exclude")
    assert none.labels["train"] == {"correction": 1}


def test_sft_export_excludes_or_caps_synthetic_and_keeps_them_out_of_eval(tmp_path):
    from pipelines.export import export_dataset, load_manifest
    from pipelines.store.exports import put_label

    ws = _with_counterfactuals(tmp_path)
    with ws.connect() as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM records WHERE meta LIKE '%synthetic%'")]
    with ws.transaction() as conn:
        for rid in ids:
            put_label(conn, rid, "summary_quality", "REJECT", 0.99)
    kw = dict(scheme="summary_quality", format="classification", eval_fraction=0.5)
    res = export_dataset(ws, **kw)
    m = load_manifest(ws, res.version)
    assert m["counts"]["synthetic"] == {"train": 6, "eval": 0}
    synth_ids = set(ids)
    assert all(e["split"] == "train" for e in m["records"] if e["id"] in synth_ids)
    ex = export_dataset(ws, synthetic="exclude", **kw)
    assert load_manifest(ws, ex.version)["counts"]["synthetic"] == {"train": 0, "eval": 0}
    assert ex.skipped["synthetic"] == 6
    cap = export_dataset(ws, synthetic="cap", synthetic_cap=0.5, **kw)   # 1 real REJECT
    assert load_manifest(ws, cap.version)["counts"]["synthetic"]["train"] == 1


def test_preference_export_redacts_a_name_the_gazetteer_misses(tmp_path):
    """The claimant "Ngozi Kowalski" is in no name list, so alone it is not found; the name
    edit's invented name is, and the pair is redacted alike: in the note, chosen and rejected."""
    from pipelines.export import export_dataset
    from pipelines.pii import detect

    assert not detect(NOTE.replace("Maria Lopez", "Ngozi Kowalski"))
    ws = make_ws(tmp_path, name="Ngozi Kowalski")
    res = make_counterfactuals(ws, CounterfactualConfig(n=6))
    assert "name" in {c.edit.kind for c in res.created}
    for pii in ("placeholder", "surrogate"):
        out = export_dataset(ws, scheme="summary_quality", format="preference",
                             eval_fraction=0.0, pii=pii, force=True)
        text = (out.path / "train.jsonl").read_text(encoding="utf-8")
        assert "Ngozi" not in text and "Kowalski" not in text, pii
    # under placeholders the name pair is one answer twice (left out); surrogates keep it
    assert out.train == 6


def test_export_synthetic_options_are_validated():
    from pipelines.export import ExportConfig

    with pytest.raises(ConfigError, match="export.synthetic must be"):
        ExportConfig(synthetic="some")
    with pytest.raises(ConfigError, match="export.synthetic_cap"):
        ExportConfig(synthetic_cap=1.0)
    with pytest.raises(ConfigError, match="export.preference_style"):
        ExportConfig(preference_style="ranked")


def test_preference_export_redacts_pii_by_default(tmp_path):
    import json

    from pipelines.export import export_dataset

    ws = _with_counterfactuals(tmp_path)
    res = export_dataset(ws, scheme="summary_quality", format="preference", eval_fraction=0.0)
    assert sum(res.pii["redacted"].values()) > 0 and not res.pii["remaining"]
    text = (res.path / "train.jsonl").read_text(encoding="utf-8")
    assert "<PERSON>" in text
    for line in text.splitlines():
        row = json.loads(line)
        assert row["chosen"][0]["content"] != row["rejected"][0]["content"]
    # a name edit is the same pair twice under placeholders: left out and counted, not written
    assert res.skipped.get("identical_after_redaction", 0) >= 1
    assert res.train == len(text.splitlines())
    sur = export_dataset(ws, scheme="summary_quality", format="preference", eval_fraction=0.0,
                         pii="surrogate", force=True)
    assert "identical_after_redaction" not in sur.skipped and sur.train == 7
