"""Facts, lexical similarity and divergence: the checks that decide whether a pair is one example.

A merge needs *positive evidence* and *no contradiction*:

- contradiction (a veto): the two records assert different facts of one kind, or one long shared
  text ends two different ways (`divergence`);
- positive evidence: high lexical similarity of the whole text (character 5-gram Jaccard), or a
  high embedding similarity *together with* agreeing facts. Facts that agree are never enough
  alone: two claims from one template share the event type and the amount.

Facts are generic, not one data set's: money amounts, quantities with units, dates (``3/8/26`` =
``March 8, 2026``; weekdays and relative words such as "Monday" or "two days ago" are their own
normalised values), clock times, identifiers (``POL-CA-93434``), emails, URLs, code identifiers
and literals (backtick spans, ``snake_case``, ``camelCase``, ``call(``), other numbers, and
proper nouns (capitalised words not starting a sentence: places, people, products).

Two sets of one kind conflict when neither contains the other: a paraphrase that drops a detail
(a subset) still agrees, a different amount, date or town conflicts. Proper nouns compare
loosely (a typo'd name still matches, and a name counts as present when the other text contains
the word anywhere, e.g. at a sentence start where it is not extracted).
"""

from __future__ import annotations

import difflib
import functools
import re
import sys
import unicodedata
from dataclasses import dataclass

import numpy as np

from pipelines.textscript import dense_share, spaced

__all__ = ["Facts", "FactCheck", "FactTable", "extract_facts", "compare_facts", "shingles",
           "jaccard", "loose_key", "divergence", "KINDS"]

_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december"]
_MONTH_NUM = {m: i + 1 for i, m in enumerate(_MONTHS)}
_MONTH_NUM.update({m[:3]: i + 1 for i, m in enumerate(_MONTHS)})
_MONTH_NUM["sept"] = 9
_WEEKDAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
_MONTH_RE = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|" \
            r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
_NUMBER_WORDS.update({"a": 1, "an": 1, "a couple of": 2, "a few": 3, "several": 3})

_AMOUNT = re.compile(r"(?:\$|usd\s?|eur\s?|€|£)\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?(k\b)?",
                     re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]*[^\s<>\"')\].,;:!?]", re.IGNORECASE)
_CODE_SPAN = re.compile(r"`([^`\n]{1,80})`")
_CODE_IDENT = re.compile(r"\b(?:[a-z]+_[a-z0-9_]+|[a-z]+[A-Z][a-zA-Z0-9]*|[A-Za-z_]\w*(?=\())")
_DATE_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_DATE_NUM = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})\b")
_DATE_MDY = re.compile(rf"\b{_MONTH_RE}\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(\d{{4}}))?\b",
                       re.IGNORECASE)
_DATE_DMY = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+{_MONTH_RE}(?:,?\s+(\d{{4}}))?\b",
                       re.IGNORECASE)
_UNITS_OF = {"d": "day|days", "w": "week|weeks", "m": "month|months", "y": "year|years",
             "h": "hour|hours", "min": "minute|minutes"}
_REL_AGO = re.compile(r"\b(\d+|zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|"
                      r"twelve|a couple of|a few|several|an|a)\s+(minute|hour|day|week|month|"
                      r"year)s?\s+(ago|later|before|earlier|from now)\b", re.IGNORECASE)
_REL_WORD = re.compile(r"\b(yesterday|today|tonight|tomorrow|(?:last|this|next)\s+(?:week|month|"
                       r"year|weekend|night|morning))\b", re.IGNORECASE)
_WEEKDAY = re.compile(r"\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?\b",
                      re.IGNORECASE)
_TIME = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s?([ap])\.?m\.?(?![a-z])|\b(\d{1,2}):(\d{2})\b",
                   re.IGNORECASE)
_QUANTITY = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?(kg|g|mg|lbs?|pounds?|oz|km|mi|miles?|m|cm|"
                       r"mm|ft|feet|foot|inch(?:es)?|in|%|percent|hours?|hrs?|minutes?|mins?|"
                       r"days?|weeks?|months?|years?|gb|mb|kb|tb|ms|seconds?|secs?|liters?|"
                       r"litres?|l|ml|gallons?|mph|kph|°[cf]|degrees?)(?![\w])", re.IGNORECASE)
# identifiers: alphanumeric tokens mixing letters and digits, or hyphen/underscore-joined parts
# with a digit somewhere (POL-CA-93434, CLM_0042, A12B)
_IDENT = re.compile(r"\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*\b")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])")
_NAME = re.compile(r"\b[A-Z][a-zA-Z'’]+\b")
_SENT_START = re.compile(r"(?:^|[.!?:;]\s+|\n)\s*[\"'(*#>-]*\s*([A-Z][a-zA-Z'’]+)")
# capitalised words that are not names wherever they stand
_NOT_NAMES = {"i", "i'm", "i've", "i'd", "i'll", "the", "a", "an", "this", "that", "it", "we",
              "you", "he", "she", "they", "ok", "okay", "yes", "no", "please", "thanks",
              "hello", "hi", "mr", "mrs", "ms", "dr", "am", "pm"}
_UNIT_NORM = {"lb": "lb", "lbs": "lb", "pound": "lb", "pounds": "lb", "mile": "mi", "miles": "mi",
              "feet": "ft", "foot": "ft", "inch": "in", "inches": "in", "percent": "%",
              "hour": "h", "hours": "h", "hr": "h", "hrs": "h", "minute": "min", "minutes": "min",
              "mins": "min", "second": "s", "seconds": "s", "sec": "s", "secs": "s",
              "day": "d", "days": "d", "week": "w", "weeks": "w", "month": "mo", "months": "mo",
              "year": "y", "years": "y", "liter": "l", "liters": "l", "litre": "l", "litres": "l",
              "gallon": "gal", "gallons": "gal", "degree": "deg", "degrees": "deg"}

# Kinds compared exactly (after normalisation), in the order a conflict is reported.
KINDS = ("amount", "date", "time", "quantity", "ident", "email", "url", "code", "number")


@dataclass(frozen=True)
class Facts:
    """Normalised facts a text asserts, per kind, plus proper nouns (`name`)."""

    amount: frozenset = frozenset()
    date: frozenset = frozenset()
    time: frozenset = frozenset()
    quantity: frozenset = frozenset()
    ident: frozenset = frozenset()
    email: frozenset = frozenset()
    url: frozenset = frozenset()
    code: frozenset = frozenset()
    number: frozenset = frozenset()
    name: frozenset = frozenset()
    words: frozenset = frozenset()    # every lower-cased word, to find a name anywhere

    @property
    def size(self) -> int:
        return sum(len(getattr(self, k)) for k in KINDS) + len(self.name)


@dataclass(frozen=True)
class FactCheck:
    status: str       # agree | conflict | none (neither asserts anything comparable)
    shared: int       # facts both assert
    detail: str = ""  # the first conflict ("date wd:mon vs rel:-2d"), or what is shared
    strong: int = 0   # shared identifying facts: identifiers, emails, URLs


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


DENSE_GRAM = 2   # a character of these scripts carries about what 5 Latin characters do


def gram_size(loose: str, n: int = 5) -> int:
    """The shingle length for a (loose) text: `n`, or `DENSE_GRAM` when at least a third of its
    characters are of a script without word spaces. A Chinese word is ~1.6 characters, an
    English one ~6 with its space, so a 5-gram spans ~5 Chinese words but under one English
    word: one changed character would break five grams and a typo'd copy would fall below the
    lexical threshold (measured: J 0.76 for a one-character insertion in 37 characters)."""
    return min(n, DENSE_GRAM) if 3 * dense_share(loose) >= 1 else n


def _count(word: str) -> int:
    word = " ".join(word.lower().split())
    return int(word) if word.isdigit() else _NUMBER_WORDS.get(word, 1)


def extract_facts(text: str) -> Facts:
    """The facts in `text`, normalised (see the module docstring).

    Each kind is cut out of the text once found (replaced by a space), so a date's digits are
    not counted again as numbers and an amount is not read as an identifier.
    """
    text = _fold(text or "")
    # Word boundaries around each character of a script without spaces, so that the number in
    # "5000元" or "2023年3月5日" is read as one (\b sees no edge between a digit and a Han
    # character: both are word characters).
    text = spaced(text)
    words = _frozen(re.findall(r"[a-z0-9']+", text.lower()))
    found: dict[str, set[str]] = {k: set() for k in KINDS}

    def cut(kind: str, value):
        def sub(m: re.Match) -> str:
            v = value(m)
            if v is None:
                return m.group(0)
            found[kind].add(v)
            return " "
        return sub

    def amount(m: re.Match) -> str:
        value = int(m.group(1).replace(",", "")) * 100 + int((m.group(2) or "0").ljust(2, "0"))
        return str(value * 1000 if m.group(3) else value)

    text = _EMAIL.sub(cut("email", lambda m: m.group(0).lower()), text)
    text = _URL.sub(cut("url", lambda m: m.group(0).lower().rstrip(".,;:!?").removeprefix(
        "https://").removeprefix("http://").removeprefix("www.")), text)
    if "`" in text:
        text = _CODE_SPAN.sub(cut("code", lambda m: " ".join(m.group(1).split())), text)
    if "$" in text or "usd" in text.lower() or "€" in text or "£" in text:
        text = _AMOUNT.sub(cut("amount", amount), text)

    # Relative and weekday dates are values of their own: "two days ago" is not "Monday", and a
    # paraphrase keeps the word it was written with.
    text = _REL_AGO.sub(cut("date", lambda m: "rel:{}{}{}".format(
        "-" if m.group(3).lower() in ("ago", "before", "earlier") else "+", _count(m.group(1)),
        m.group(2).lower()[0] if m.group(2).lower() != "minute" else "min")), text)
    text = _REL_WORD.sub(cut("date", lambda m: "rel:" + " ".join(m.group(1).lower().split())
                             .replace("tonight", "today")), text)
    text = _WEEKDAY.sub(cut("date", lambda m: "wd:" + m.group(1).lower()[:3]), text)
    if any(map(str.isdigit, text)):
        # Dates compare as month-day; their year joins the numbers, so "March 8" (no year)
        # agrees with "3/8/26" and a wrong year still conflicts.
        def iso(m):
            found["number"].add(m.group(1))
            return f"{int(m.group(2)):02d}-{int(m.group(3)):02d}"

        def numeric(m):
            year = m.group(3)
            found["number"].add(year if len(year) == 4 else "20" + year)
            return f"{int(m.group(1)):02d}-{int(m.group(2)):02d}"

        def worded(mi: int, di: int):
            def value(m):
                month = _MONTH_NUM.get(m.group(mi).lower().rstrip("."))
                day = int(m.group(di))
                if not month or not 1 <= day <= 31:
                    return None
                if m.group(3):
                    found["number"].add(m.group(3))   # the year, compared like any number
                return f"{month:02d}-{day:02d}"
            return value

        def clock(m):
            if m.group(3):
                hour = int(m.group(1)) % 12 + (12 if m.group(3).lower() == "p" else 0)
                minute = int(m.group(2) or 0)
            else:
                hour, minute = int(m.group(4)), int(m.group(5))
            return f"{hour:02d}:{minute:02d}" if hour < 24 and minute < 60 else None

        def quantity(m):
            unit = m.group(2).lower()
            return f"{float(m.group(1)):g}{_UNIT_NORM.get(unit, unit)}"

        text = _DATE_ISO.sub(cut("date", iso), text)
        text = _DATE_NUM.sub(cut("date", numeric), text)
        text = _DATE_MDY.sub(cut("date", worded(1, 2)), text)
        text = _DATE_DMY.sub(cut("date", worded(2, 1)), text)
        text = _TIME.sub(cut("time", clock), text)
        text = _QUANTITY.sub(cut("quantity", quantity), text)
        text = _IDENT.sub(cut("ident", lambda m: m.group(0).lower().replace("_", "-")), text)
        found["number"].update(m.group(0).replace(",", "") for m in _NUMBER.finditer(text))
    if "_" in text or "(" in text or any(map(str.isupper, text[1:])):
        found["code"].update(m.group(0) for m in _CODE_IDENT.finditer(text)
                             if "_" in m.group(0) or any(c.isupper() for c in m.group(0)[1:])
                             or text[m.end():m.end() + 1] == "(")
    starts = {m.start(1) for m in _SENT_START.finditer(text)}
    names = {w for m in _NAME.finditer(text)
             if m.start() not in starts and (w := m.group(0).lower().rstrip("'’")) not in _MONTH_NUM
             and w not in _WEEKDAYS and w not in _NOT_NAMES}
    return Facts(**{k: _frozen(v) for k, v in found.items()}, name=_frozen(names),
                 words=words)


_EMPTY: frozenset = frozenset()


def _frozen(values) -> frozenset:
    """A frozenset of interned strings, one shared empty set: a run holds the facts of every
    record (1M records: ~5 KB each without this, most of it empty sets and repeated words)."""
    return frozenset(map(sys.intern, values)) if values else _EMPTY


def _same_name(name: str, other: Facts) -> bool:
    """`name` is in `other`: extracted there, written anywhere in it, or a typo of one of its."""
    if name in other.name or name in other.words:
        return True
    # a typo'd name, capitalised or not ("Denver" / "enver"): a word of nearly the same spelling
    return any(abs(len(name) - len(o)) <= 2 and o[:1].isalpha() and _close_spelling(name, o)
               for o in other.name | other.words if len(o) >= 4)


@functools.lru_cache(maxsize=1 << 20)
def _close_spelling(a: str, b: str) -> bool:
    """difflib ratio >= 0.8, memoised: the same few thousand words meet in millions of pairs
    (measured: 2/3 of the verification time at 30k records before the memo)."""
    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.8


def compare_facts(a: Facts, b: Facts) -> FactCheck:
    """Agree, conflict or none; see the module docstring for the rule."""
    shared = strong = 0
    agreed: list[str] = []
    for kind in KINDS:
        x, y = getattr(a, kind), getattr(b, kind)
        if x and y and not (x <= y or y <= x):
            only_a, only_b = sorted(x - y), sorted(y - x)
            return FactCheck("conflict", len(x & y),
                             f"{kind} {','.join(only_a[:2])} vs {','.join(only_b[:2])}")
        both = x & y
        shared += len(both)
        if kind in ("ident", "email", "url"):
            strong += len(both)
        agreed += [f"{kind} {v}" for v in sorted(both)[:2]]
    only_a = sorted(n for n in a.name if not _same_name(n, b))
    only_b = sorted(n for n in b.name if not _same_name(n, a))
    if only_a and only_b:
        return FactCheck("conflict", shared,
                         f"name {','.join(only_a[:2])} vs {','.join(only_b[:2])}")
    names = sorted(a.name & b.name)
    shared += len(names)
    agreed += [f"name {n}" for n in names[:2]]
    return FactCheck("agree" if shared else "none", shared, "; ".join(agreed[:4]), strong)


_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)


def loose_key(text: str) -> str:
    """Text folded for the loose exact level: NFKC, lower case, punctuation dropped, spaces folded."""
    return " ".join(_PUNCT.sub(" ", _fold(text or "").lower()).split())


def shingles(text: str, n: int = 5) -> frozenset:
    """Character n-gram shingles of the loose text (hashed to ints to stay small); shorter
    grams for a text in a script without word spaces (`gram_size`)."""
    s = loose_key(text)
    n = gram_size(s, n)
    if len(s) <= n:
        return frozenset({hash(s)}) if s else frozenset()
    return frozenset(hash(s[i:i + n]) for i in range(len(s) - n + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def divergence(text_a: str, text_b: str, *, min_shared: float = 0.5, max_tail: float = 0.25,
               min_chars: int = 24, max_similar: float = 0.5) -> str:
    """Why two texts that share most of their text are still different, or "".

    Strips the longest common prefix and suffix (of the loose texts). When the shared *prefix* is
    at least `min_shared` of the shorter text, the shared suffix at most `max_tail` of it, and
    what is left differs in both by `min_chars` or more with little in common (character 3-gram
    Jaccard below `max_similar`), the two end differently after one long shared start: one
    schema with two different questions. Typos
    leave short or similar remainders; a reworded opening before a shared tail (a paraphrase of
    the same claim, measured on the sample data) is not vetoed.
    """
    a, b = loose_key(text_a), loose_key(text_b)
    n = min(len(a), len(b))
    if not n:
        return ""
    p = 0
    while p < n and a[p] == b[p]:
        p += 1
    s = 0
    while s < n - p and a[len(a) - 1 - s] == b[len(b) - 1 - s]:
        s += 1
    rest_a, rest_b = a[p:len(a) - s], b[p:len(b) - s]
    if p < min_shared * n or s > max_tail * n or min(len(rest_a), len(rest_b)) < min_chars:
        return ""
    if jaccard(shingles(rest_a, 3), shingles(rest_b, 3)) >= max_similar:
        return ""
    return (f"text differs after {p} shared characters: "
            f"'{rest_a[:40]}' vs '{rest_b[:40]}'")


class FactTable:
    """Every record's facts as compact columns: per exact kind (`KINDS`) the set's hash and
    size, plus each record's fact count (`Facts.size`) and its blocking keys.

    A run holds one row per record (~80 bytes: 1M records in ~80 MB) instead of a `Facts` per
    record (~2.7 KB), and `conflicts` refuses in bulk the candidate pairs whose facts differ for
    certain before any per-pair object is built (the 10k scale set: 99,238 of its 107,795
    candidates; the other 6,479 conflicts, on names or sets of different sizes, are found
    pair by pair).
    """

    def __init__(self, texts: list[str], facts_of=extract_facts, blocking: bool = False):
        n = len(texts)
        self.hashes = {k: np.zeros(n, dtype=np.int64) for k in KINDS}
        self.sizes = {k: np.zeros(n, dtype=np.int32) for k in KINDS}
        self.size = np.zeros(n, dtype=np.int32)
        # blocking key -> records (see pairs._blocked_pairs): an identifier, an amount on a date
        self.blocks: dict[str, list[int]] = {}
        for u, text in enumerate(texts):
            f = facts_of(text)
            for kind in KINDS:
                s = getattr(f, kind)
                if s:
                    self.hashes[kind][u] = hash(s)
                    self.sizes[kind][u] = len(s)
            self.size[u] = f.size
            if blocking:
                for ident in f.ident:
                    self.blocks.setdefault("i" + ident, []).append(u)
                for amount in f.amount:
                    for date in f.date:
                        self.blocks.setdefault(f"a{amount}d{date}", []).append(u)
        self.kinds = [k for k in KINDS if self.sizes[k].any()]   # only kinds some record has

    def conflicts(self, i: np.ndarray, j: np.ndarray, block: int = 1 << 20) -> np.ndarray:
        """For each pair (i[p], j[p]): True where `compare_facts` is certain to say "conflict".

        A kind conflicts when both sets are non-empty and neither contains the other; two sets
        of one size with different hashes are different sets, so neither contains the other.
        Sets of different sizes, or equal hashes, are left to `compare_facts` (False here), as
        are proper nouns (compared loosely). So a True is always a refusal `verify_pair` makes
        too, with the same rule; a False is checked pair by pair.
        """
        out = np.zeros(len(i), dtype=bool)
        for start in range(0, len(i), block):   # bounded temporaries at ~10^7 pairs
            a, b = i[start:start + block], j[start:start + block]
            hit = out[start:start + block]
            for kind in self.kinds:
                sa, sb = self.sizes[kind][a], self.sizes[kind][b]
                hit |= (sa > 0) & (sa == sb) & (self.hashes[kind][a] != self.hashes[kind][b])
        return out
