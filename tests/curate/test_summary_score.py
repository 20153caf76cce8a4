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


# -- formats and synonyms a generated summary uses (issue 20's diagnosis of the 8-step run) --
TX_NOTE = ("Donna Robinson, policy POL-TX-52910, notified us of a dog bite injury on a neighbor's "
           "porch in Plano, TX that occurred 10/24/2026. Total claimed $2,903.00.")


def test_full_name_of_the_notes_state_is_not_invented():
    s = score_summary(TX_NOTE, "Donna Robinson claims $2,903.00 for a dog bite injury on "
                               "10/24/2026 in Plano, Texas.", claim_type="medical_injury")
    assert s.accurate, (s.missing, s.invented)


def test_another_states_full_name_is_still_invented():
    s = score_summary(TX_NOTE, "Donna Robinson claims $2,903.00 for a dog bite injury on "
                               "10/24/2026 in Plano, Oklahoma.", claim_type="medical_injury")
    assert not s.accurate and "state OK" in s.invented and "name Oklahoma" in s.invented


@pytest.mark.parametrize("written", ["2,903 dollars", "2903.00 dollars", "USD 2,903", "$2903"])
def test_amount_without_a_dollar_sign(written):
    s = score_summary(TX_NOTE, f"Bodily injury: Donna Robinson, {written}, Oct 24, 2026.",
                      claim_type="medical_injury")
    assert s.amount and s.accurate, (s.missing, s.invented)


def test_amount_in_dollars_not_in_the_note_is_invented():
    s = score_summary(TX_NOTE, "Bodily injury: Donna Robinson, 29,030 dollars, Oct 24, 2026.",
                      claim_type="medical_injury")
    assert not s.amount and s.invented == ["amount $29,030.00"]


@pytest.mark.parametrize("ctype, phrase", [
    ("medical_injury", "suffered a concussion after a fall on an icy walkway"),
    ("medical_injury", "was bitten by the insured's dog"),
    ("property_water", "reports storm-driven rain through the roof"),
    ("theft", "reports that thieves stole a bicycle"),
])
def test_claim_type_synonyms(ctype, phrase):
    note = f"On 10/24/2026 Donna Robinson of Plano, TX {phrase}. Total claimed $2,903.00."
    s = score_summary(note, f"Donna Robinson {phrase} on 10/24/2026; $2,903.00.", claim_type=ctype)
    assert s.claim_type and s.accurate, (s.missing, s.invented)


def test_a_synonym_of_another_type_does_not_count():
    s = score_summary(TX_NOTE, "Donna Robinson reports stolen property on 10/24/2026; $2,903.00.",
                      claim_type="medical_injury")
    assert not s.claim_type and not s.accurate


def test_audit_counts_scorer_mistakes_against_the_truth():
    from curate.roi.summary_score import audit_scorer

    rows = [
        {"note": NOTE, "summary": GOLD, "claim_type": "auto_collision", "flaws": []},
        {"note": NOTE, "summary": GOLD.replace("$1,052", "$9,999"), "claim_type": "auto_collision",
         "flaws": ["hallucinated_amount"]},
        {"note": NOTE, "summary": GOLD.replace("Jennifer", "Mark"), "claim_type": "auto_collision",
         "flaws": ["hallucinated_name"]},
        {"note": NOTE, "summary": "", "claim_type": "auto_collision", "flaws": ["empty"]},
        {"note": NOTE, "summary": NOTE, "claim_type": "auto_collision", "flaws": ["copies_note"]},
        # a flawed summary the scorer passes is reported as a miss
        {"note": NOTE, "summary": GOLD, "claim_type": "auto_collision", "flaws": ["wrong_state"]},
    ]
    a = audit_scorer(rows)
    assert (a["faithful"], a["faithful_accurate"]) == (1, 1)
    assert (a["flawed"], a["flawed_rejected"]) == (4, 3)
    assert [m["flaws"] for m in a["misses"]] == [["wrong_state"]]


def test_claimant_right_after_a_date():
    assert claimant_of("On 10/24/2026 Donna Robinson of Plano, TX reported a fall.") == \
        "Donna Robinson"


def test_possessive_of_a_note_name_is_not_invented():
    s = score_summary(NOTE, "Auto accident, $1,052, 08/23/2026: Jennifer Campbell's car was "
                            "rear-ended in Peoria, IL.", reference=GOLD)
    assert s.invented == [] and s.accurate
    s = score_summary(NOTE, "Auto accident, $1,052, 08/23/2026: Jennifer Campbell and Mark's "
                            "car.", reference=GOLD)
    assert s.invented == ["name Mark's"]
