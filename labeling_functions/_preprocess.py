"""Preprocessors shared by the sample's LFs: derived fields computed once per record.

Snorkel runs an LF's preprocessors before the LF (`@labeling_function(pre=[...])`). Our `fast`
applier runs each distinct preprocessor chain once per record and hands the result to every LF
that uses it; snorkel's `PandasLFApplier` runs it again for each LF (on a pickled copy of the
row), so the same LFs give the same `L` either way, only at different cost.
"""

from __future__ import annotations

from snorkel.preprocess import preprocessor

from labeling_functions._patterns import (amounts_cents, dates_md, field, identifiers, proper_words,
                                         state_codes_in)

__all__ = ["note_lower", "summary_facts"]


@preprocessor(memoize=False)
def note_lower(x):
    """`x.note_lc` / `x.summary_lc`: the note (prompt, else text) and summary, lower-cased."""
    x.note_lc = (field(x, "prompt") or field(x, "text")).lower()
    x.summary_lc = field(x, "response").lower()
    return x


@preprocessor(memoize=False)
def summary_facts(x):
    """The note and summary with the facts the summary_quality LFs compare."""
    note, summary = field(x, "prompt") or field(x, "text"), field(x, "response")
    x.note, x.summary = note, summary
    x.note_amounts, x.summary_amounts = amounts_cents(note), amounts_cents(summary)
    x.note_states, x.summary_states = state_codes_in(note), state_codes_in(summary)
    x.note_dates, x.summary_dates = dates_md(note), dates_md(summary)
    x.note_ids, x.summary_ids = identifiers(note), identifiers(summary)
    x.summary_names = proper_words(summary)
    x.summary_n_words = len(summary.split())
    return x
