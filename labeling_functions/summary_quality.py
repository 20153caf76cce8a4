"""Labeling functions for the `summary_quality` scheme: is the summary faithful to the note?

REJECT when the summary states something the note does not (an amount, a name, a state), leaks
contact details, copies the note or says nothing; ACCEPT when it looks like a grounded summary.
The ACCEPT LFs are deliberately naive (they ignore hallucinations): the label model weighs them.
"""

from __future__ import annotations

from snorkel.labeling import labeling_function

from labeling_functions._patterns import (
    EMAIL_RE, PHONE_RE, amounts_cents, field, has_word, norm, proper_words, state_codes_in, words,
)

ABSTAIN = -1
ACCEPT = 0
REJECT = 1
CLASSES = ("ACCEPT", "REJECT")
SCHEME = "summary_quality"


def _note(x) -> str:
    return field(x, "prompt") or field(x, "text")


def _summary(x) -> str:
    return field(x, "response")


# -- REJECT: the summary says what the note does not -----------------------------------------
@labeling_function()
def lf_amount_not_in_note(x):
    """A dollar amount in the summary that appears nowhere in the note (hallucinated figure)."""
    in_summary = amounts_cents(_summary(x))
    if not in_summary:
        return ABSTAIN
    return REJECT if in_summary - amounts_cents(_note(x)) else ABSTAIN


@labeling_function()
def lf_name_not_in_note(x):
    """A capitalised name or place in the summary that the note never mentions."""
    note = _note(x)
    if not note:
        return ABSTAIN
    missing = [w for w in proper_words(_summary(x)) if not has_word(w, note)]
    return REJECT if missing else ABSTAIN


@labeling_function()
def lf_state_mismatch(x):
    """The summary's 'Town, ST' state differs from every state the note names."""
    in_summary, in_note = state_codes_in(_summary(x)), state_codes_in(_note(x))
    if not in_summary or not in_note:
        return ABSTAIN
    return REJECT if in_summary - in_note else ABSTAIN


@labeling_function()
def lf_pii_in_summary(x):
    """A phone number or an e-mail address in the summary (training data must not carry it)."""
    summary = _summary(x)
    return REJECT if PHONE_RE.search(summary) or EMAIL_RE.search(summary) else ABSTAIN


@labeling_function()
def lf_too_short(x):
    """Fewer than five words: 'see file', 'TBD', 'n/a'."""
    return REJECT if len(_summary(x).split()) < 5 else ABSTAIN


@labeling_function()
def lf_copies_note(x):
    """The summary is the note (or nearly all of it): nothing was summarised."""
    note, summary = norm(_note(x)), norm(_summary(x))
    if not note or not summary:
        return ABSTAIN
    if summary == note or (len(summary) >= 0.9 * len(note) and summary[:80] == note[:80]):
        return REJECT
    return ABSTAIN


@labeling_function()
def lf_summary_too_long(x):
    """Over 45 words is no summary (noisy: a long but faithful summary is rare, not impossible)."""
    return REJECT if len(_summary(x).split()) > 45 else ABSTAIN


# -- ACCEPT: shapes of a good summary ----------------------------------------------------------
@labeling_function()
def lf_grounded_amount(x):
    """Every amount in the summary is in the note, and there is at least one."""
    in_summary = amounts_cents(_summary(x))
    if not in_summary:
        return ABSTAIN
    return ACCEPT if in_summary <= amounts_cents(_note(x)) else ABSTAIN


@labeling_function()
def lf_amounts_and_names_grounded(x):
    """Every amount and every name/place in a 5-45 word summary is in the note.

    Misses a wrong state code, leaked contact details and a copied note: the REJECT LFs above
    disagree with it there, which is how the label model learns how far to trust it.
    """
    note, summary = _note(x), _summary(x)
    if not note or not 5 <= len(summary.split()) <= 45:
        return ABSTAIN
    if not amounts_cents(summary) <= amounts_cents(note):
        return ABSTAIN
    if any(not has_word(w, note) for w in proper_words(summary)):
        return ABSTAIN
    return ACCEPT


@labeling_function()
def lf_short_and_shares_words(x):
    """A much shorter text sharing most of its words with the note (ignores made-up facts)."""
    note_words, summary_words = set(words(_note(x))), words(_summary(x))
    if len(summary_words) < 8 or not note_words:
        return ABSTAIN
    shared = sum(w in note_words for w in summary_words) / len(summary_words)
    ratio = len(summary_words) / max(1, len(_note(x).split()))
    return ACCEPT if shared >= 0.6 and ratio <= 0.7 else ABSTAIN


@labeling_function()
def lf_mentions_claim_facts(x):
    """Mentions an amount, a date and a 'Town, ST' place: the shape the task asks for."""
    summary = _summary(x)
    has_date = any(ch.isdigit() for ch in summary) and (
        "/" in summary or "-20" in summary or ", 20" in summary)
    if amounts_cents(summary) and has_date and state_codes_in(summary):
        return ACCEPT
    return ABSTAIN
