"""Facts and lexical similarity: the checks that decide whether a candidate pair is one example.

A sentence embedding sees two claims written from the same template as near-identical (measured:
0.98 cosine for a different amount, date and town) and a copy with one typo as fairly far (0.77).
So a semantic candidate is merged only when what it *asserts* agrees: the amounts, dates,
identifiers, other numbers and proper names it mentions, compared case-insensitively after
normalising their spelling (``$1,100.00`` = ``$1100``; ``3/8/26`` = ``March 8, 2026``).

Facts conflict when, for one kind of fact, neither record's set contains the other's: a paraphrase
that drops a detail sentence (a subset) still agrees, while a different amount or date conflicts.
Names are looser (a rewording moves capitalised words around): they conflict only when both
records name at least two and share none.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["Facts", "FactCheck", "extract_facts", "compare_facts", "shingles", "jaccard",
           "loose_key"]

_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december"]
_MONTH_NUM = {m: i + 1 for i, m in enumerate(_MONTHS)}
_MONTH_NUM.update({m[:3]: i + 1 for i, m in enumerate(_MONTHS)})
_MONTH_NUM["sept"] = 9
_WEEKDAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
_MONTH_RE = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|" \
            r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"

_AMOUNT = re.compile(r"(?:\$|usd\s?|eur\s?|€|£)\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?(k\b)?",
                     re.IGNORECASE)
_DATE_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_DATE_NUM = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})\b")
_DATE_MDY = re.compile(rf"\b{_MONTH_RE}\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(\d{{4}}))?\b",
                       re.IGNORECASE)
_DATE_DMY = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+{_MONTH_RE}(?:,?\s+(\d{{4}}))?\b",
                       re.IGNORECASE)
# identifiers: alphanumeric tokens mixing letters and digits, or hyphen/underscore-joined parts
# with a digit somewhere (POL-CA-93434, CLM_0042, A12B)
_IDENT = re.compile(r"\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*\b")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])")
_NAME = re.compile(r"\b[A-Z][a-zA-Z'’]+\b")
_SENT_START = re.compile(r"(?:^|[.!?:;]\s+|\n)\s*[\"'(]*([A-Z][a-zA-Z'’]+)")

KINDS = ("amount", "date", "ident", "number")


@dataclass(frozen=True)
class Facts:
    """Normalised facts a text asserts, per kind, plus capitalised names."""

    amount: frozenset = frozenset()
    date: frozenset = frozenset()
    ident: frozenset = frozenset()
    number: frozenset = frozenset()
    name: frozenset = frozenset()

    @property
    def size(self) -> int:
        return sum(len(getattr(self, k)) for k in KINDS)


@dataclass(frozen=True)
class FactCheck:
    status: str       # agree | conflict | none (neither asserts anything comparable)
    shared: int       # facts both assert
    detail: str = ""  # the first conflict, for a reviewer: "date 05-04 vs 06-08"


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def extract_facts(text: str) -> Facts:
    """The amounts, dates, identifiers, numbers and names in `text`, normalised.

    Each kind is cut out of the text once found (replaced by a space), so a date's digits are
    not counted again as numbers and an amount is not read as an identifier.
    """
    text = _fold(text or "")
    amounts: set[str] = set()
    dates: set[str] = set()
    idents: set[str] = set()
    numbers: set[str] = set()

    def amount(m: re.Match) -> str:
        value = int(m.group(1).replace(",", "")) * 100 + int((m.group(2) or "0").ljust(2, "0"))
        amounts.add(str(value * 1000 if m.group(3) else value))
        return " "

    # Dates compare as month-day; their year joins the numbers, so "March 8" (no year) agrees
    # with "3/8/26" and a wrong year still conflicts.
    def iso(m: re.Match) -> str:
        dates.add(f"{int(m.group(2)):02d}-{int(m.group(3)):02d}")
        numbers.add(m.group(1))
        return " "

    def numeric(m: re.Match) -> str:
        dates.add(f"{int(m.group(1)):02d}-{int(m.group(2)):02d}")
        year = m.group(3)
        numbers.add(year if len(year) == 4 else "20" + year)
        return " "

    def worded(mi: int, di: int):
        def sub(m: re.Match) -> str:
            month = _MONTH_NUM.get(m.group(mi).lower().rstrip("."))
            day = int(m.group(di))
            if not month or not 1 <= day <= 31:
                return m.group(0)
            dates.add(f"{month:02d}-{day:02d}")
            if m.group(3):
                numbers.add(m.group(3))   # the year, compared like any other number
            return " "
        return sub

    def ident(m: re.Match) -> str:
        idents.add(m.group(0).lower().replace("_", "-"))
        return " "

    if "$" in text or "usd" in text.lower() or "€" in text or "£" in text:
        text = _AMOUNT.sub(amount, text)
    if any(c.isdigit() for c in text):
        text = _DATE_ISO.sub(iso, text)
        text = _DATE_NUM.sub(numeric, text)
        text = _DATE_MDY.sub(worded(1, 2), text)
        text = _DATE_DMY.sub(worded(2, 1), text)
        text = _IDENT.sub(ident, text)
        numbers.update(m.group(0).replace(",", "") for m in _NUMBER.finditer(text))
    starts = {m.start(1) for m in _SENT_START.finditer(text)}
    names = {w for m in _NAME.finditer(text)
             if m.start() not in starts and (w := m.group(0).lower()) not in _MONTH_NUM
             and w not in _WEEKDAYS}
    return Facts(frozenset(amounts), frozenset(dates), frozenset(idents), frozenset(numbers),
                 frozenset(names))


def compare_facts(a: Facts, b: Facts) -> FactCheck:
    """Agree, conflict or none; see the module docstring for the rule."""
    shared = 0
    for kind in KINDS:
        x, y = getattr(a, kind), getattr(b, kind)
        if x and y and not (x <= y or y <= x):
            only_a, only_b = sorted(x - y), sorted(y - x)
            return FactCheck("conflict", len(x & y),
                             f"{kind} {','.join(only_a[:2])} vs {','.join(only_b[:2])}")
        shared += len(x & y)
    if len(a.name) >= 2 and len(b.name) >= 2 and not (a.name & b.name):
        return FactCheck("conflict", shared,
                         f"name {','.join(sorted(a.name)[:2])} vs {','.join(sorted(b.name)[:2])}")
    return FactCheck("agree" if shared else "none", shared)


_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)


def loose_key(text: str) -> str:
    """Text folded for the loose exact level: NFKC, lower case, punctuation dropped, spaces folded."""
    return " ".join(_PUNCT.sub(" ", _fold(text or "").lower()).split())


def shingles(text: str, n: int = 5) -> frozenset:
    """Character n-gram shingles of the loose text (hashed to ints to stay small)."""
    s = loose_key(text)
    if len(s) <= n:
        return frozenset({hash(s)}) if s else frozenset()
    return frozenset(hash(s[i:i + n]) for i in range(len(s) - n + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)
