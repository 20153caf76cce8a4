"""Labeling functions for the `summary_quality` scheme: is the summary faithful to the note?

REJECT when the summary states something the note does not (an amount, a name, a state, a date,
a policy/claim number), drops the note's amount, leaks
contact details, copies the note or says nothing; ACCEPT when it looks like a grounded summary.
The ACCEPT LFs are deliberately naive (they ignore hallucinations): the label model weighs them.
"""

from __future__ import annotations

from snorkel.labeling import labeling_function

from labeling_functions._patterns import EMAIL_RE, PHONE_RE, has_word, norm, words
from labeling_functions._preprocess import summary_facts

ABSTAIN = -1
ACCEPT = 0
REJECT = 1
CLASSES = ("ACCEPT", "REJECT")
SCHEME = "summary_quality"


# -- REJECT: the summary says what the note does not -----------------------------------------
@labeling_function(pre=[summary_facts])
def lf_amount_not_in_note(x):
    """A dollar amount in the summary that appears nowhere in the note (hallucinated figure)."""
    if not x.summary_amounts:
        return ABSTAIN
    return REJECT if x.summary_amounts - x.note_amounts else ABSTAIN


@labeling_function(pre=[summary_facts])
def lf_name_not_in_note(x):
    """A capitalised name or place in the summary that the note never mentions."""
    if not x.note:
        return ABSTAIN
    missing = [w for w in x.summary_names if not has_word(w, x.note)]
    return REJECT if missing else ABSTAIN


@labeling_function(pre=[summary_facts])
def lf_state_mismatch(x):
    """The summary's 'Town, ST' state differs from every state the note names."""
    if not x.summary_states or not x.note_states:
        return ABSTAIN
    return REJECT if x.summary_states - x.note_states else ABSTAIN


@labeling_function(pre=[summary_facts])
def lf_date_not_in_note(x):
    """A date in the summary that the note does not give (month and day compared)."""
    if not x.summary_dates or not x.note_dates:
        return ABSTAIN
    return REJECT if x.summary_dates - x.note_dates else ABSTAIN


@labeling_function(pre=[summary_facts])
def lf_identifier_not_in_note(x):
    """A policy or claim number in the summary that the note does not contain."""
    return REJECT if x.summary_ids - x.note_ids else ABSTAIN


@labeling_function(pre=[summary_facts])
def lf_drops_note_amount(x):
    """The note states an amount and the summary none: the figure the task asks for is gone."""
    if not x.note_amounts or x.summary_n_words < 5:
        return ABSTAIN
    return REJECT if not x.summary_amounts else ABSTAIN


@labeling_function(pre=[summary_facts])
def lf_pii_in_summary(x):
    """A phone number or an e-mail address in the summary (training data must not carry it)."""
    return REJECT if PHONE_RE.search(x.summary) or EMAIL_RE.search(x.summary) else ABSTAIN


@labeling_function(pre=[summary_facts])
def lf_too_short(x):
    """Fewer than five words: 'see file', 'TBD', 'n/a'."""
    return REJECT if x.summary_n_words < 5 else ABSTAIN


@labeling_function(pre=[summary_facts])
def lf_copies_note(x):
    """The summary is the note (or nearly all of it): nothing was summarised."""
    note, summary = norm(x.note), norm(x.summary)
    if not note or not summary:
        return ABSTAIN
    if summary == note or (len(summary) >= 0.9 * len(note) and summary[:80] == note[:80]):
        return REJECT
    return ABSTAIN


@labeling_function(pre=[summary_facts])
def lf_summary_too_long(x):
    """Over 45 words is no summary (noisy: a long but faithful summary is rare, not impossible)."""
    return REJECT if x.summary_n_words > 45 else ABSTAIN


# -- ACCEPT: shapes of a good summary ----------------------------------------------------------
@labeling_function(pre=[summary_facts])
def lf_grounded_amount(x):
    """Every amount in the summary is in the note, and there is at least one."""
    if not x.summary_amounts:
        return ABSTAIN
    return ACCEPT if x.summary_amounts <= x.note_amounts else ABSTAIN


@labeling_function(pre=[summary_facts])
def lf_facts_grounded(x):
    """Every amount, name/place and state in a 5-45 word summary is in the note, and it carries
    no contact details: a faithful summary, as far as regexes can tell.

    Misses a summary that copies most of the note: lf_copies_note disagrees with it there.
    """
    if not x.note or not 5 <= x.summary_n_words <= 45:
        return ABSTAIN
    if not x.summary_amounts <= x.note_amounts or not x.summary_states <= x.note_states:
        return ABSTAIN
    if PHONE_RE.search(x.summary) or EMAIL_RE.search(x.summary):
        return ABSTAIN
    if any(not has_word(w, x.note) for w in x.summary_names):
        return ABSTAIN
    return ACCEPT


@labeling_function(pre=[summary_facts])
def lf_short_and_shares_words(x):
    """A much shorter text sharing most of its words with the note (ignores made-up facts)."""
    note_words, summary_words = set(words(x.note)), words(x.summary)
    if len(summary_words) < 8 or not note_words:
        return ABSTAIN
    shared = sum(w in note_words for w in summary_words) / len(summary_words)
    ratio = len(summary_words) / max(1, len(x.note.split()))
    return ACCEPT if shared >= 0.6 and ratio <= 0.7 else ABSTAIN


@labeling_function(pre=[summary_facts])
def lf_mentions_claim_facts(x):
    """Mentions an amount, a date and a 'Town, ST' place: the shape the task asks for."""
    summary = x.summary
    has_date = any(ch.isdigit() for ch in summary) and (
        "/" in summary or "-20" in summary or ", 20" in summary)
    if x.summary_amounts and has_date and x.summary_states:
        return ACCEPT
    return ABSTAIN
