"""The summary_quality LFs on hand-written notes and summaries."""

import pytest

import labeling_functions.summary_quality as sq
from pipelines.weak_supervision import Row, lfs_from_module

NOTE = ("On March 3, 2026, Maria Lopez of Tampa, FL reported a burst pipe at her home. "
        "Water ran for hours; drywall soaked. Claimed amount is $4,250.00. "
        "Adjuster K. Patel assigned; inspection scheduled.")
GOOD = "Water damage claim: Maria Lopez reports a burst pipe on March 3, 2026 in Tampa, FL; claimed amount $4,250."


def x(summary, note=NOTE):
    return Row(id="r", text=note + "\n\n" + summary, prompt=note, response=summary)


def test_module_exports_classes_matching_the_sample_scheme():
    assert sq.CLASSES == ("ACCEPT", "REJECT") and (sq.ACCEPT, sq.REJECT, sq.ABSTAIN) == (0, 1, -1)
    assert len(lfs_from_module(sq)) >= 8


def test_a_faithful_summary_gets_no_reject_and_some_accepts():
    votes = {lf.name: lf(x(GOOD)) for lf in lfs_from_module(sq)}
    assert sq.REJECT not in votes.values()
    assert votes["lf_grounded_amount"] == sq.ACCEPT
    assert votes["lf_facts_grounded"] == sq.ACCEPT
    assert votes["lf_mentions_claim_facts"] == sq.ACCEPT


@pytest.mark.parametrize("lf,summary", [
    (sq.lf_amount_not_in_note, GOOD.replace("$4,250", "$42,500")),
    (sq.lf_name_not_in_note, GOOD.replace("Maria Lopez", "Karen Walker")),
    (sq.lf_state_mismatch, GOOD.replace("Tampa, FL", "Tampa, GA")),
    (sq.lf_pii_in_summary, GOOD + " Contact: (813) 555-0142."),
    (sq.lf_pii_in_summary, GOOD + " Claimant email maria.lopez@example.com."),
    (sq.lf_too_short, "see file"),
    (sq.lf_copies_note, NOTE),
    (sq.lf_date_not_in_note, GOOD.replace("March 3", "March 9")),
    (sq.lf_identifier_not_in_note, GOOD + " Policy POL-FL-55555."),
    (sq.lf_drops_note_amount, GOOD.replace("; claimed amount $4,250", "")),
])
def test_each_flaw_is_rejected(lf, summary):
    assert lf(x(summary)) == sq.REJECT
    assert lf(x(GOOD)) == sq.ABSTAIN


def test_amounts_compare_as_money_not_text():
    assert sq.lf_amount_not_in_note(x(GOOD.replace("$4,250", "$4250.00"))) == sq.ABSTAIN


def test_state_written_out_in_the_note_matches_its_code():
    note = NOTE.replace("Tampa, FL", "Tampa, Florida")
    assert sq.lf_state_mismatch(x(GOOD, note)) == sq.ABSTAIN
    assert sq.lf_state_mismatch(x(GOOD.replace("FL", "TX"), note)) == sq.REJECT


def test_missing_fields_abstain_instead_of_raising():
    row = Row(id="r", text="only text", prompt=None, response=float("nan"))
    for lf in lfs_from_module(sq):
        assert lf(row) in (sq.ABSTAIN, sq.REJECT)


def test_dates_compare_by_month_and_day_in_any_spelling():
    assert sq.lf_date_not_in_note(x(GOOD.replace("March 3, 2026", "3/3/2026"))) == sq.ABSTAIN
    assert sq.lf_date_not_in_note(x(GOOD.replace("March 3, 2026", "2026-03-03"))) == sq.ABSTAIN
    assert sq.lf_date_not_in_note(x(GOOD.replace("March 3, 2026", "2026-03-04"))) == sq.REJECT
    # a note without a readable date gives the LF nothing to compare with
    assert sq.lf_date_not_in_note(x(GOOD, NOTE.replace("On March 3, 2026, ", ""))) == sq.ABSTAIN
