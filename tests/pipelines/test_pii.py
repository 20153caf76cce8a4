"""PII: detection per type with look-alikes, redaction (placeholder, consistent surrogates), and
the export refusing detected PII unless allowed."""

from __future__ import annotations

import pytest

from pipelines.errors import ConfigError, ExportError
from pipelines.export import export_dataset, load_manifest, read_split
from pipelines.pii import (PiiConfig, Redactor, detect, iban_ok, luhn_ok, metadata_names,
                          pair_names, run_pii)
from pipelines.store import NewRecord, Workspace, upsert_record, utcnow
from pipelines.store.exports import put_label
from pipelines.store.filters import pii_counts, read_pii_spans


def types(text: str, **kw) -> list[tuple[str, str]]:
    return [(s.type, s.value) for s in detect(text, **kw)]


@pytest.mark.parametrize("text, expected", [
    ("write to jane.doe+claims@example.co.uk today", [("EMAIL", "jane.doe+claims@example.co.uk")]),
    ("call (480) 555-0163 or 480.555.0199", [("PHONE", "(480) 555-0163"), ("PHONE", "480.555.0199")]),
    ("from +44 20 7946 0958 yesterday", [("PHONE", "+44 20 7946 0958")]),
    ("card 4111 1111 1111 1111 on file", [("CREDIT_CARD", "4111 1111 1111 1111")]),
    ("IBAN GB82 WEST 1234 5698 7654 32 please", [("IBAN", "GB82 WEST 1234 5698 7654 32")]),
    ("SSN 123-45-6789.", [("SSN", "123-45-6789")]),
    ("host 10.0.12.7 and 2001:db8::8a2e:370:7334", [("IP_ADDRESS", "10.0.12.7"),
                                                    ("IP_ADDRESS", "2001:db8::8a2e:370:7334")]),
    ("see https://admin:hunter2@db.internal/x.", [("URL_CREDENTIALS", "https://admin:hunter2@db.internal/x")]),
    ("Ask Jennifer Campbell about it", [("PERSON", "Jennifer Campbell")]),
    ("signed by Juan Pablo Reyes today", [("PERSON", "Juan Pablo Reyes")]),
    ("a call from Karen Okafor-Smythe", [("PERSON", "Karen Okafor-Smythe")]),   # unknown surname
    ("IP 10.0.0.1.", [("IP_ADDRESS", "10.0.0.1")]),                          # sentence end
    # national formats with a trunk 0 (UK, DE, FR, AU): grouped by spaces, or after a phone word
    ("or 020 7946 0958 after six", [("PHONE", "020 7946 0958")]),
    ("Tel: (07) 3265 3888 today", [("PHONE", "(07) 3265 3888")]),
    ("unter 030 12345678 erreichbar", [("PHONE", "030 12345678")]),
    ("Tél. 06.12.34.56.78", [("PHONE", "06.12.34.56.78")]),
    ("mobile: 0425329122", [("PHONE", "0425329122")]),
])
def test_each_type_is_found(text, expected):
    assert types(text) == expected


@pytest.mark.parametrize("text", [
    "order 4111 1111 1111 1112 shipped",            # fails Luhn
    "order number 1234-5678-9012-3456",               # no issuer prefix / Luhn
    "on 2026-08-23 at 10:30",                          # a date and a time
    "upgrade to version 1.2.3.4 or v10.0.0.1",         # version strings
    "IBAN GB82 WEST 1234 5698 7654 33",                # mod-97 fails
    "policy POL-IL-91109, claim CLM-2026-566919",      # reference numbers
    "000-12-3456 is never issued",                     # SSN area 000
    "Grant Jackson Street was flooded",                # a place, not a person
    "The Insurance Company paid",                      # capitalised words, not names
    "https://example.com/path?q=1",                   # a URL without credentials
    "d) Laetitia\nCorrect answer: d)",                # two lines, not a first + last name
    "the subnet mask (255.255.0.0) of 255.255.255.255", # netmasks and broadcast, not hosts
    "Order 0612345678 shipped",                        # a 0-led run with no phone word
    "Policy 0123-4567-89 renewed",                     # a dashed reference number
    "paid 0.50 on 01.02.2023 at 10:30, born 05 03 1980",  # decimals, dates
    "Value: 4e 4c 34 35 01 06 29 01 02 04 10 0c",      # a hex dump (a real ShareGPT turn)
])
def test_look_alikes_are_not_pii(text):
    assert types(text) == []


def test_validators():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("DE89 3704 0044 0532 0130 00") and not iban_ok("DE89 3704 0044 0532 0130 01")


def test_metadata_names_are_found_verbatim():
    names = metadata_names({"adjuster": "T. Lindqvist", "state": "IL", "claimant_name": "x"})
    assert names == ["T. Lindqvist"]
    assert types("T. Lindqvist approved it", names=names) == [("PERSON", "T. Lindqvist")]


def test_a_pair_is_redacted_alike_on_every_side():
    """A name edit whose real name the gazetteer misses ("Ngozi Kowalski": neither word listed):
    the invented name is found, so the real one at the same place is a name of the pair too, and
    it is redacted in the note as well; a name found in one string counts for all of them."""
    note = "Received call from Ngozi Kowalski on Mar 25 re a burst pipe in Tampa, FL."
    chosen = "Water damage: Ngozi Kowalski (Tampa, FL) reports a burst pipe."
    rejected = "Water damage: Jennifer Campbell (Tampa, FL) reports a burst pipe."
    assert not detect(note) and not detect(chosen)          # the gap this closes
    names = pair_names([note, chosen, rejected], chosen, rejected)
    assert set(names) == {"Jennifer Campbell", "Ngozi Kowalski"}
    red = Redactor("placeholder")
    assert [red.redact(t, names) for t in (note, chosen)] == [
        "Received call from <PERSON> on Mar 25 re a burst pipe in Tampa, FL.",
        "Water damage: <PERSON> (Tampa, FL) reports a burst pipe."]
    # only the surname edited: the shared given name is part of the name on both sides
    c, r = "Maria Lopez filed in Tampa.", "Maria Kowalski filed in Tampa."
    assert set(pair_names([c, r], c, r)) == {"Maria Lopez", "Maria Kowalski"}
    # a name found in the note but not in an answer (sentence start) is redacted in both
    c = "Maria Lopez filed a claim for $4,250."
    assert pair_names(["Call from Maria Lopez.", c, c + " Policy X."], c, c + " Policy X.") \
        == ["Maria Lopez"]
    # edits that are not names add nothing, even next to a found name
    for other in ("Jennifer Campbell (Tampa, GA) reports", "Jennifer Campbell (Tampa, FL) says"):
        a, b = f"Water damage: Jennifer Campbell (Tampa, FL) reports.", f"Water damage: {other}."
        assert pair_names([a, b], a, b) == ["Jennifer Campbell"]
    assert pair_names([], "Fire damage.", "Water damage.") == []


def test_placeholder_and_consistent_surrogates():
    text = "Jennifer Campbell (jc@example.com) called; Jennifer  Campbell will call back."
    assert Redactor("placeholder").redact(text) == \
        "<PERSON> (<EMAIL>) called; <PERSON> will call back."
    r = Redactor("surrogate")
    out = r.redact(text)
    fake = r.surrogate("PERSON", "Jennifer Campbell")
    assert out.count(fake) == 2 and "Jennifer" not in out and "jc@example.com" not in out
    # the same person gets the same fake name in another redactor (another export) too
    assert Redactor("surrogate").surrogate("PERSON", "jennifer campbell") == fake
    assert r.redacted == {"PERSON": 2, "EMAIL": 1}


def test_redaction_never_changes_text_without_pii():
    clean = "Water leak in the basement on 2026-03-04; version 1.2.3.4; order 1234-5678."
    for mode in ("placeholder", "surrogate", "none"):
        r = Redactor(mode)
        assert r.redact(clean) is clean
        assert r.redact_obj({"messages": [{"role": "user", "content": clean}]}) == \
            {"messages": [{"role": "user", "content": clean}]}
        assert not r.redacted and not r.remaining


CURATION = """
schema: instruction
schemes:
  quality: {classes: [ACCEPT, REJECT]}
"""


def pii_ws(tmp_path) -> Workspace:
    ws = Workspace.create(tmp_path / "ws")
    ws.config_path.write_text(CURATION, encoding="utf-8")
    rows = [("Claim note: Jennifer Campbell reports a leak; reach her at (480) 555-0163.",
             "Water claim by Jennifer Campbell.")]
    rows += [(f"Claim note {i}: a leak in the basement.", f"Water claim number {i}.")
             for i in range(12)]
    with ws.transaction() as conn:
        for i, (p, r) in enumerate(rows):
            upsert_record(conn, NewRecord(id=f"r{i:04d}", kind="instruction", text=f"{p}\n\n{r}",
                                          prompt=p, response=r, file="x.jsonl", row=i + 1),
                          utcnow())
            put_label(conn, f"r{i:04d}", "quality", "ACCEPT", 0.95)
    return ws


def _all_rows(ws, version):
    return read_split(ws, version, "train") + read_split(ws, version, "eval")


def test_export_with_pii_is_refused_then_redacted_with_consistent_surrogates(tmp_path):
    ws = pii_ws(tmp_path)
    with pytest.raises(ExportError, match=r"export refused: detected PII would remain .*PERSON 2.*"
                                          r"PHONE 1.*--allow-pii"):
        export_dataset(ws, scheme="quality", format="alpaca", pii="none")
    assert not list(ws.subdir("exports").iterdir())          # nothing written

    res = export_dataset(ws, scheme="quality", format="alpaca", pii="surrogate", eval_fraction=0.0)
    rows = _all_rows(ws, res.version)
    leak = next(r for r in rows if "leak; reach" in r["instruction"])
    fake = Redactor("surrogate").surrogate("PERSON", "Jennifer Campbell")
    assert fake in leak["instruction"] and leak["output"] == f"Water claim by {fake}."
    assert "Campbell" not in str(rows) and "480" not in str(rows)
    clean = next(r for r in rows if r["instruction"] == "Claim note 3: a leak in the basement.")
    assert clean["output"] == "Water claim number 3."        # untouched
    m = load_manifest(ws, res.version)
    assert m["pii"] == {"mode": "surrogate", "allow_pii": False, "contains_pii": False,
                        "redacted": {"PERSON": 2, "PHONE": 1}, "remaining": {}}

    res = export_dataset(ws, scheme="quality", format="alpaca", pii="none", allow_pii=True)
    m = load_manifest(ws, res.version)
    assert m["pii"]["contains_pii"] is True and m["pii"]["remaining"] == {"PERSON": 2, "PHONE": 1}
    assert "Jennifer Campbell" in str(_all_rows(ws, res.version))


def test_default_export_uses_placeholders(tmp_path):
    ws = pii_ws(tmp_path)
    res = export_dataset(ws, scheme="quality", format="alpaca", eval_fraction=0.0)
    assert res.pii["mode"] == "placeholder"
    assert any(r["output"] == "Water claim by <PERSON>." for r in _all_rows(ws, res.version))


def test_pii_step_stores_spans_and_bad_config_is_one_line(tmp_path):
    ws = pii_ws(tmp_path)
    res = run_pii(ws, PiiConfig(), commit=False)
    assert res.with_pii == 1 and res.spans == {"PERSON": 2, "PHONE": 1}
    with ws.connect() as conn:
        assert pii_counts(conn) == {}
    run_pii(ws, PiiConfig())
    with ws.connect() as conn:
        spans = read_pii_spans(conn)["r0000"]
        text = conn.execute("SELECT text FROM records WHERE id = 'r0000'").fetchone()[0]
    assert [text[s.start:s.end] for s in spans] == ["Jennifer Campbell", "(480) 555-0163",
                                                    "Jennifer Campbell"]
    with pytest.raises(ConfigError, match="pii.types: unknown type"):
        PiiConfig(types=["NAMES"])
