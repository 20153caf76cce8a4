"""The claim_type LFs on hand-written adjuster notes."""

import pytest

import labeling_functions.claim_type as ct
from pipelines.weak_supervision import Row, lfs_from_module


def x(note, summary="", raw_label=None):
    return Row(id="r", text=note, prompt=note, response=summary, raw_label=raw_label)


def test_class_constants_follow_the_scheme_order():
    assert ct.CLASSES == ("auto_collision", "property_water", "property_fire", "theft",
                          "medical_injury")
    for name in ct.CLASSES:
        assert ct.CLASSES.index(name) == getattr(ct, name.upper())
    assert len(lfs_from_module(ct)) >= 8


@pytest.mark.parametrize("lf,note,expected", [
    (ct.lf_collision_words, "The other vehicle rear-ended the insured at a light.", ct.AUTO_COLLISION),
    (ct.lf_water_words, "A supply line burst behind the kitchen wall.", ct.PROPERTY_WATER),
    (ct.lf_fire_words, "Heavy smoke and soot after a grease fire.", ct.PROPERTY_FIRE),
    (ct.lf_theft_words, "Rear door forced; jewelry was stolen.", ct.THEFT),
    (ct.lf_injury_words, "Guest slipped and suffered a fractured wrist.", ct.MEDICAL_INJURY),
    (ct.lf_claim_is_for_water, "Claim is for the water damage to floors, not the fire.", ct.PROPERTY_WATER),
    (ct.lf_claim_is_medical, "Claim is for medical bills only.", ct.MEDICAL_INJURY),
    (ct.lf_vehicle_theft, "Thieves cut the catalytic converter off the car.", ct.THEFT),
])
def test_keyword_lfs_vote_their_class_and_abstain_otherwise(lf, note, expected):
    assert lf(x(note)) == expected
    assert lf(x("Photos requested from the insured.")) == ct.ABSTAIN


def test_summary_type_phrase_abstains_on_ambiguity():
    assert ct.lf_summary_type_phrase(x("", "Water loss claim: A B reports a leak.")) == ct.PROPERTY_WATER
    assert ct.lf_summary_type_phrase(x("", "Bodily injury, $800.00: C D reports a fall.")) == ct.MEDICAL_INJURY
    assert ct.lf_summary_type_phrase(x("", "Water loss and fire loss claim.")) == ct.ABSTAIN
    assert ct.lf_summary_type_phrase(x("", "see file")) == ct.ABSTAIN


def test_legacy_label_maps_names_to_indices():
    assert ct.lf_legacy_label(x("", raw_label="theft")) == ct.THEFT
    assert ct.lf_legacy_label(x("", raw_label="Property_Fire ")) == ct.PROPERTY_FIRE
    assert ct.lf_legacy_label(x("", raw_label="windstorm")) == ct.ABSTAIN
    assert ct.lf_legacy_label(x("", raw_label=None)) == ct.ABSTAIN
