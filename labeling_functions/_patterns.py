"""Regular expressions and small pure helpers shared by the labeling-function modules.

No I/O and no state: every helper takes strings and returns plain values, so an LF built on
them is deterministic and cheap to run on millions of rows.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "AMOUNT_RE", "PHONE_RE", "EMAIL_RE", "STATE_CODES", "STATE_NAMES",
    "field", "norm", "amounts_cents", "words", "proper_words", "state_codes_in", "has_word",
    "dates_md", "identifiers",
]

# $1,234.56 | $1234 | $ 1,234
AMOUNT_RE = re.compile(r"\$\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{2}))?")
PHONE_RE = re.compile(r"(?:\(\d{3}\)\s?|\b\d{3}[-.])\d{3}[-.]\d{4}\b")
EMAIL_RE = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")

STATE_NAMES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa",
    "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland",
    "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi",
    "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire",
    "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York", "NC": "North Carolina",
    "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania",
    "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee",
    "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington",
    "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
}
STATE_CODES = frozenset(STATE_NAMES)
_NAME_TO_CODE = {v.lower(): k for k, v in STATE_NAMES.items()}

# "Town, ST" as summaries and notes write it; the code must be followed by a non-letter.
_TOWN_STATE_RE = re.compile(r",\s([A-Z]{2})(?![A-Za-z])")
_TOWN_STATE_LONG_RE = re.compile(
    r",\s(" + "|".join(sorted((re.escape(n) for n in STATE_NAMES.values()), key=len, reverse=True))
    + r")(?![A-Za-z])")

_CAP_WORD_RE = re.compile(r"(?<![\w'’-])[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]+(?:['’][A-Za-zÀ-ÿ]+)?")
# Capitalised words that start summaries, name claim types or dates: never a person's name.
_NOT_NAMES = frozenset("""
    auto collision water fire theft bodily medical injury property claimant claim burglary loss
    damage accident vehicle the on in of for from and reports reported filed contact call
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec
    monday tuesday wednesday thursday friday saturday sunday
""".split())
_WORD_RE = re.compile(r"[A-Za-zÀ-ÿ']+")


def field(x, name: str) -> str:
    """`x.<name>` as a string; '' for a missing field, None or a pandas NA/NaN."""
    value = getattr(x, name, None)
    if value is None or isinstance(value, float):  # NaN from pandas for a missing string
        return ""
    if not isinstance(value, str):
        try:
            import pandas as pd  # only for NA checks; LF modules stay free of heavy imports

            if pd.isna(value):
                return ""
        except (TypeError, ValueError):
            pass
        return str(value)
    return value


def norm(s: str) -> str:
    """NFC, lower case, whitespace folded: how two texts are compared."""
    return " ".join(unicodedata.normalize("NFC", s).lower().split())


def amounts_cents(text: str) -> set[int]:
    """Every dollar amount in `text`, as integer cents ($1,200 and $1200.00 are equal)."""
    out = set()
    for m in AMOUNT_RE.finditer(text):
        out.add(int(m.group(1).replace(",", "")) * 100 + (int(m.group(2)) if m.group(2) else 0))
    return out


def words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


def has_word(word: str, text: str) -> bool:
    return re.search(r"(?<![A-Za-zÀ-ÿ])" + re.escape(word) + r"(?![A-Za-zÀ-ÿ])", text,
                     re.IGNORECASE) is not None


def proper_words(text: str) -> list[str]:
    """Capitalised words that may be names or places (claim words, months, weekdays left out)."""
    text = unicodedata.normalize("NFC", text)
    return [w for w in _CAP_WORD_RE.findall(text) if w.lower() not in _NOT_NAMES]


def state_codes_in(text: str) -> set[str]:
    """Two-letter state codes written as 'Town, ST' (full state names mapped to codes)."""
    codes = {c for c in _TOWN_STATE_RE.findall(text) if c in STATE_CODES}
    codes |= {_NAME_TO_CODE[n.lower()] for n in _TOWN_STATE_LONG_RE.findall(text)}
    return codes


_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")
_MONTH_NUM = {**{m: i + 1 for i, m in enumerate(_MONTHS)}, **{m[:3]: i + 1 for i, m in enumerate(_MONTHS)},
              "sept": 9}
_DATE_ISO_RE = re.compile(r"\b\d{4}-(\d{1,2})-(\d{1,2})\b")
_DATE_NUM_RE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(?:\d{4}|\d{2})\b")
_DATE_WORD_RE = re.compile(r"\b(" + "|".join(sorted(_MONTH_NUM, key=len, reverse=True))
                           + r")\.?\s+(\d{1,2})(?:st|nd|rd|th)?\b", re.IGNORECASE)
# Policy and claim numbers: letters and digits joined by hyphens, with a digit (POL-IL-91109).
_IDENT_RE = re.compile(r"\b[A-Z]{2,}(?:-[A-Z0-9]+)*-\d[A-Z0-9]*(?:-[A-Z0-9]+)*\b")


def dates_md(text: str) -> set[tuple[int, int]]:
    """(month, day) of every date in `text`: 2026-03-08, 3/8/2026 and March 8 are equal (the
    year is left out: notes often omit it where the summary writes it)."""
    out = {(int(m), int(d)) for m, d in _DATE_ISO_RE.findall(text)}
    out |= {(int(m), int(d)) for m, d in _DATE_NUM_RE.findall(text)}
    out |= {(_MONTH_NUM[m.lower()], int(d)) for m, d in _DATE_WORD_RE.findall(text)}
    return {(m, d) for m, d in out if 1 <= m <= 12 and 1 <= d <= 31}


def identifiers(text: str) -> set[str]:
    """Policy / claim identifiers (`POL-IL-91109`, `CLM-2026-566919`), upper-cased."""
    return {m.upper() for m in _IDENT_RE.findall(text)}
