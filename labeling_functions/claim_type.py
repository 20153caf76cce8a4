"""Labeling functions for the `claim_type` scheme: what kind of loss an adjuster's note reports.

Each LF returns a class index (the constants below, in the order of the scheme's `classes` in
curation.yaml) or ABSTAIN. Some are deliberately broad (`lf_fire_words` also fires on burn
injuries and on water damage from firefighting): the label model learns how far to trust each.
"""

from __future__ import annotations

import re

import numpy as np
from snorkel.labeling import labeling_function

from labeling_functions._patterns import field
from labeling_functions._preprocess import note_lower

ABSTAIN = -1
AUTO_COLLISION = 0
PROPERTY_WATER = 1
PROPERTY_FIRE = 2
THEFT = 3
MEDICAL_INJURY = 4
CLASSES = ("auto_collision", "property_water", "property_fire", "theft", "medical_injury")
SCHEME = "claim_type"


def _note(x) -> str:
    """The adjuster's note: the prompt of instruction data, else the text."""
    return field(x, "prompt") or field(x, "text")


def _rx(*words: str) -> re.Pattern:
    """Any of `words` (lower-case regexes) as whole words; matched against lower-cased text."""
    return re.compile(r"(?<![a-z])(?:" + "|".join(words) + r")(?![a-z])")


_COLLISION = _rx(r"rear-end(?:ed)?", r"collision", r"collided", r"t-bone", r"sideswiped?",
                 r"struck", r"hit a deer", r"deer strike", r"guardrail", r"hydroplan\w*",
                 r"airbags?", r"hit-and-run", r"backing", r"ran the stop sign")
_WATER = _rx(r"burst", r"water heater", r"leak\w*", r"sewer", r"flooded", r"supply (?:line|hose)",
             r"standing water", r"dry-out", r"mitigation", r"moisture", r"gray water",
             r"sprinkler head", r"discharged?")
_FIRE = _rx(r"fire", r"smoke", r"soot", r"charred", r"burned", r"flames?", r"embers?",
            r"ignited", r"lightning")
_THEFT = _rx(r"stolen", r"theft", r"thieves", r"burglary", r"break-in", r"forced", r"taken",
             r"smashed")
_INJURY = _rx(r"injur\w*", r"fractured", r"sprained", r"concussion", r"torn acl", r"stitches",
              r"\ber\b", r"ambulance", r"physical therapy", r"chiropractor", r"medical",
              r"bit", r"burns?\b", r"orthopedic\w*", r"whiplash")
_VEHICLE = re.compile(r"\b(?:19|20)\d\d (?:Honda|Toyota|Ford|Chevy|Subaru|Nissan|Jeep|Hyundai|"
                      r"Kia|Tesla|Ram|Mazda)\b")


# -- keyword LFs (broad, some deliberately noisy) --------------------------------------------
@labeling_function(pre=[note_lower])
def lf_collision_words(x):
    """Collision vocabulary: also fires for injured passengers and flooded-road crashes."""
    return AUTO_COLLISION if _COLLISION.search(x.note_lc) else ABSTAIN


@labeling_function(pre=[note_lower])
def lf_water_words(x):
    return PROPERTY_WATER if _WATER.search(x.note_lc) else ABSTAIN


@labeling_function(pre=[note_lower])
def lf_fire_words(x):
    """Fire vocabulary: also fires on water damage from firefighting and on burn injuries."""
    return PROPERTY_FIRE if _FIRE.search(x.note_lc) else ABSTAIN


@labeling_function(pre=[note_lower])
def lf_theft_words(x):
    return THEFT if _THEFT.search(x.note_lc) else ABSTAIN


@labeling_function(pre=[note_lower])
def lf_injury_words(x):
    return MEDICAL_INJURY if _INJURY.search(x.note_lc) else ABSTAIN


@labeling_function()
def lf_vehicle_model_mentioned(x):
    """A 'YYYY Make' vehicle in the note: a collision, says the analyst (often a theft)."""
    return AUTO_COLLISION if _VEHICLE.search(_note(x)) else ABSTAIN


# -- precise phrases: what the claim is *for* ------------------------------------------------
_FOR_WATER = _rx(r"claim is for the water damage", r"water from the fire hoses",
                 r"discharged although there was no fire")
_FOR_FIRE = _rx(r"claim is for the fire", r"sprinklers activated and contained")
_FOR_MEDICAL = _rx(r"claim is for medical bills", r"medical bills", r"was a passenger",
                   r"burn unit", r"medical payments coverage")
_FOR_THEFT = _rx(r"claim is mainly for the stolen items", r"catalytic converter",
                 r"was stolen overnight", r"were taken from the car", r"not recovered")


@labeling_function(pre=[note_lower])
def lf_claim_is_for_water(x):
    return PROPERTY_WATER if _FOR_WATER.search(x.note_lc) else ABSTAIN


@labeling_function(pre=[note_lower])
def lf_claim_is_for_fire(x):
    return PROPERTY_FIRE if _FOR_FIRE.search(x.note_lc) else ABSTAIN


@labeling_function(pre=[note_lower])
def lf_claim_is_medical(x):
    return MEDICAL_INJURY if _FOR_MEDICAL.search(x.note_lc) else ABSTAIN


@labeling_function(pre=[note_lower])
def lf_vehicle_theft(x):
    return THEFT if _FOR_THEFT.search(x.note_lc) else ABSTAIN


# -- the summary's own claim-type phrase ------------------------------------------------------
_SUMMARY_TYPES = [
    (MEDICAL_INJURY, _rx(r"bodily injury", r"medical injury", r"injury (?:claim|loss)")),
    (PROPERTY_WATER, _rx(r"water damage", r"water loss", r"property water")),
    (PROPERTY_FIRE, _rx(r"fire damage (?:claim|loss|,)", r"fire loss", r"property fire")),
    (THEFT, _rx(r"theft(?: loss)?(?: claim|,)", r"burglary/theft", r"stolen property (?:claim|loss)")),
    (AUTO_COLLISION, _rx(r"auto collision", r"auto accident", r"vehicle accident",
                         r"collision (?:claim|loss)", r"^collision,")),
]


@labeling_function(pre=[note_lower])
def lf_summary_type_phrase(x):
    """The summary names the claim type ('Water loss claim: ...'); abstain if none or several."""
    hits = {cls for cls, rx in _SUMMARY_TYPES if rx.search(x.summary_lc)}
    return hits.pop() if len(hits) == 1 else ABSTAIN


# -- the legacy system's label (noisy: about a quarter wrong) ---------------------------------
@labeling_function()
def lf_legacy_label(x):
    raw = field(x, "raw_label").strip().lower()
    return CLASSES.index(raw) if raw in CLASSES else ABSTAIN


# -- nearest exemplar in embedding space ------------------------------------------------------
EXEMPLARS = {
    AUTO_COLLISION: ["The insured's car was rear-ended at a red light; bumper and trunk damaged.",
                     "Two vehicles collided at an intersection; the car was towed."],
    PROPERTY_WATER: ["A pipe burst and water flooded the basement, soaking drywall and floors.",
                     "The water heater leaked and water damaged the flooring."],
    PROPERTY_FIRE: ["A kitchen fire spread to the cabinets; smoke and soot throughout the house.",
                    "An electrical fire burned the wall and charred the framing."],
    THEFT: ["Burglars broke in and stole jewelry and a laptop from the home.",
            "The car window was smashed and items were stolen from the vehicle."],
    MEDICAL_INJURY: ["The claimant slipped and fell and broke a wrist; ER visit and X-rays.",
                     "A guest was injured and needed surgery and physical therapy."],
}
_EXEMPLAR_CACHE: dict[str, np.ndarray] = {}


def _exemplar_vectors() -> tuple[np.ndarray, np.ndarray] | None:
    """(vectors, class per row) of the exemplars, encoded once per process."""
    if "vectors" not in _EXEMPLAR_CACHE:
        try:
            from pipelines.embed import encode_texts
        except ImportError:
            return None
        texts, classes = [], []
        for cls, examples in EXEMPLARS.items():
            texts += examples
            classes += [cls] * len(examples)
        _EXEMPLAR_CACHE["vectors"] = np.asarray(encode_texts(texts), dtype=np.float32)
        _EXEMPLAR_CACHE["classes"] = np.asarray(classes)
    return _EXEMPLAR_CACHE["vectors"], _EXEMPLAR_CACHE["classes"]


@labeling_function()
def lf_nearest_exemplar(x):
    """Class of the most similar exemplar, if clearly closer than any other class's.

    Reads `x.embedding` (the record's cached embedding, attached by the labeling step when the
    dedup step has embedded the workspace); abstains when there is none.
    """
    vec = getattr(x, "embedding", None)
    if vec is None or not isinstance(vec, np.ndarray):
        return ABSTAIN
    found = _exemplar_vectors()
    if found is None:
        return ABSTAIN
    vectors, classes = found
    sims = vectors @ vec.astype(np.float32)
    best = {int(c): float(sims[classes == c].max()) for c in np.unique(classes)}
    ranked = sorted(best.items(), key=lambda kv: kv[1], reverse=True)
    (top, s1), (_, s2) = ranked[0], ranked[1]
    return top if s1 >= 0.35 and s1 - s2 >= 0.05 else ABSTAIN
