"""The SFT benchmark's summary scorer on hand-written summaries of one note."""

import pytest

from curate.roi.summary_score import (claimant_of, dates_in, rouge_l, score_summary,
                                      summary_accuracy)

NOTE = ("On 8/23/2026, Jennifer Campbell of Peoria, IL reported a rear-end collision on Elm Ave "
        "near 5th St; policy POL-IL-91109 was active at the time of loss. Claimed amount is "
        "$1,052. Recommend payment once documents are received.")
GOLD = "Auto accident, $1,052, 08/23/2026: Jennifer Campbell (Peoria, IL) reports a rear-end collision."


def test_grounded_summary_is_accurate():
    s = score_summary(NOTE, "Jennifer Campbell of Peoria, IL reported a rear-end collision on "
                            "August 23, 2026; claimed amount $1,052.00.", reference=GOLD)
    assert s.accurate, (s.missing, s.invented)
    assert s.invented == [] and s.missing == []


def test_missing_date_is_not_accurate():
    s = score_summary(NOTE, "Jennifer Campbell (Peoria, IL) reports a rear-end collision, $1,052.",
                      reference=GOLD)
    assert not s.accurate and s.missing == ["date"] and s.invented == []


def test_missing_claimant_and_type():
    s = score_summary(NOTE, "Claim filed on 8/23/2026 for $1,052 in Peoria, IL.", reference=GOLD)
    assert s.missing == ["claim_type", "claimant"]


def test_invented_amount_is_not_accurate():
    s = score_summary(NOTE, "Auto accident, $10,520, 08/23/2026: Jennifer Campbell (Peoria, IL) "
                            "reports a rear-end collision.", reference=GOLD)
    assert not s.accurate
    assert s.invented == ["amount $10,520.00"] and "amount" in s.missing


def test_wrong_state_is_invented():
    s = score_summary(NOTE, "Auto accident, $1,052, 08/23/2026: Jennifer Campbell (Peoria, TX) "
                            "reports a rear-end collision.", reference=GOLD)
    assert not s.accurate and s.invented == ["state TX"] and s.missing == []


def test_invented_name_and_date():
    s = score_summary(NOTE, "Auto accident, $1,052, 08/23/2026: Jennifer Campbell and Mark "
                            "Steele report a collision on 9/1/2026.", claim_type="auto_collision")
    assert s.invented == ["date 9/1/2026", "name Mark", "name Steele"]


def test_claim_type_comes_from_the_reference_or_label():
    summary = "Water loss, $1,052, 08/23/2026: Jennifer Campbell reports a leak."
    assert not score_summary(NOTE, summary, reference=GOLD).claim_type
    assert score_summary(NOTE, summary, claim_type="property_water").claim_type


@pytest.mark.parametrize("note, who", [
    (NOTE, "Jennifer Campbell"),
    ("Received call from Priya Miller on October 22, 2026 re a fire in Naperville, Illinois.",
     "Priya Miller"),
    ("FNOL October 7: Yolanda Delgado reports a T-bone collision in Fort Collins, CO.",
     "Yolanda Delgado"),
    ("The insured's 2014 Toyota Camry was hit. Received call from Kevin O'Brien.", "Kevin O'Brien"),
    ("Renée Chen (policy POL-FL-38463) called on 6/18/2026.", "Renée Chen"),
    ("no capitalised name here at all", None),
])
def test_claimant_of(note, who):
    assert claimant_of(note) == who


def test_dates_in_reads_the_written_forms():
    assert dates_in("8/23/2026, 2026-08-23, August 23, 2026, Aug 23 and 23 August 2026") == {
        (8, 23, 2026), (8, 23, None)}


def test_rouge_l():
    assert rouge_l("a b c d", "a b c d") == 1.0
    assert rouge_l("", "a b") == 0.0 and rouge_l("x y", "a b") == 0.0
    # LCS "a c d" = 3 of 4 candidate and 3 of 5 reference tokens: F1 = 2pr/(p+r) = 2/3
    assert rouge_l("a x c d", "a b c d e") == pytest.approx(2 * 0.75 * 0.6 / 1.35)


def test_summary_accuracy_aggregates():
    good = score_summary(NOTE, GOLD, reference=GOLD)
    bad = score_summary(NOTE, "see file", reference=GOLD)
    agg = summary_accuracy([good, bad])
    assert agg["accuracy"] == 0.5 and agg["amount_stated"] == 0.5 and agg["rouge_l"] < 1.0


def test_field_labels_are_not_invented_names():
    s = score_summary(NOTE, "Summary: Claim type: Auto collision. Amount: $1,052. Date: 8/23/2026. "
                            "Claimant: Jennifer Campbell. Location: Peoria, IL.", reference=GOLD)
    assert s.accurate, (s.missing, s.invented)
