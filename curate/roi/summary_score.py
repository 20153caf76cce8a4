"""Summary accuracy and ROUGE-L: how the SFT benchmark scores a generated claim summary.

A summary is **accurate** when it states the four facts the task asks for, each as the note has
it, and invents none:

- **claim type**: a word of the claim's type (`collision`/`accident`/`crash`..., `water`/`leak`
  /`flood`/`rain`..., `fire`/`smoke`/`lightning`..., `theft`/`stolen`/`burglary`/`thieves`...,
  `injury`/`medical`/`concussion`/`fall`/`bite`...); the type is given (the record's gold label)
  or read from the reference summary's phrase; a word of another type does not count;
- **amount**: a dollar amount that is in the note (`$1,200` = `$1200.00` = `1,200 dollars` =
  `USD 1200`);
- **date**: a date that is in the note (`8/23/2026` = `08/23/2026` = `August 23, 2026`; a date
  without a year matches any year);
- **claimant**: the surname of the note's first "First Last" person name (towns, streets,
  months and claim words are not names);

and **invents none**: no amount, no `Town, ST` state, no date and no capitalised name or place
that the note lacks (the `summary_quality` LFs' checks, `labeling_functions/_patterns.py`);
field labels ("Amount:", "Type: ...") and words such as "Summary" or "Claimant" are not names,
nor is the full name of a state the note writes as a code ("Plano, TX" -> "Texas").
Mentioning a second claim type is not an invention (a fire claim's sprinklers leak water).
`audit_scorer` checks all this against known summaries (the sample's truth.jsonl).

ROUGE-L is the F1 of the longest common subsequence of lower-cased word tokens (Lin, 2004).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Iterable

from labeling_functions._patterns import (STATE_NAMES, amounts_cents, has_word, proper_words,
                                          state_codes_in)

__all__ = ["SummaryScore", "score_summary", "rouge_l", "claimant_of", "dates_in",
           "claim_type_of", "summary_accuracy", "FACT_FLAWS", "audit_scorer"]

# The sample generator's flaws (truth.jsonl `flaws`) that are fact errors: a summary with one
# must never be scored accurate. PII in a summary or a copy of the note is a REJECT for other
# reasons (privacy, length), not a fact error, so the scorer may pass those.
FACT_FLAWS = frozenset({"hallucinated_name", "hallucinated_amount", "wrong_state", "too_short",
                        "empty"})

_TYPE_WORDS = {
    "auto_collision": r"collision|collided|accident|crash\w*|rear-end\w*|t-bone\w*|sideswip\w*"
                      r"|auto|vehicle|car|hit-and-run",
    "property_water": r"water|leak\w*|flood\w*|burst|pipe|sewer|plumbing|rain\w*|sprinklers?",
    "property_fire": r"fire|smoke|soot|lightning|burn\w*|flames?|blaze|charred|scorch\w*",
    "theft": r"theft|stolen|stole|burglar\w*|break-in|broke in|thie\w*|robbe\w*|taken",
    # what the notes say hurt someone: "a fall on an icy walkway ... suffering a concussion"
    "medical_injury": r"injur\w*|medical|bodily|hospital\w*|fractur\w*|whiplash|concussion"
                      r"|sprain\w*|lacerat\w*|bit|bite|bitten|burns|fell|fall|slip\w*",
}
_TYPE_RX = {t: re.compile(r"(?<![a-z])(?:" + w + r")(?![a-z])") for t, w in _TYPE_WORDS.items()}
# The reference summary's own type phrase ("Water loss claim: ..."), as lf_summary_type_phrase.
_REF_PHRASES = [
    ("medical_injury", re.compile(r"bodily injury|medical injury|injury (?:claim|loss)")),
    ("property_water", re.compile(r"water damage|water loss|property water")),
    ("property_fire", re.compile(r"fire damage|fire loss|property fire")),
    ("theft", re.compile(r"theft|burglary|stolen property")),
    ("auto_collision", re.compile(r"auto collision|auto accident|vehicle accident|collision")),
]

_MONTHS = {m: i + 1 for i, m in enumerate(
    "january february march april may june july august september october november december"
    .split())}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9
_MONTH_RX = "|".join(sorted(_MONTHS, key=len, reverse=True))
_NUM_DATE = re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?(?![\d/])")
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_WORD_DATE = re.compile(r"(?<![a-z])(" + _MONTH_RX + r")\.?\s+(\d{1,2})(?:st|nd|rd|th)?"
                        r"(?:,?\s+(\d{4}))?(?!\d)", re.IGNORECASE)
_DAY_FIRST = re.compile(r"(?<!\d)(\d{1,2})\s+(" + _MONTH_RX + r")\.?,?\s+(\d{4})(?!\d)",
                        re.IGNORECASE)

_NAME = r"[A-ZÀ-ÖØ-Þ](?:[a-zß-öø-ÿ]+|['’][A-ZÀ-Þ][a-zß-öø-ÿ]+)(?:[-'’][A-Za-zÀ-ÿ]+)?"
_PERSON = re.compile(r"(?<![\w'’-])(" + _NAME + r")\s+(" + _NAME + r")(?![\w'’-])")
_YEAR_BEFORE = re.compile(r"(?<![/\d-])(?:19|20)\d\d\s$")   # "2014 Toyota", not "8/23/2026 Jane"
_STREET = re.compile(r"\s(?:St|Ave|Rd|Blvd|Dr|Ln|Way|Hwy|Street|Avenue|Road|Drive|Lane|Court|Ct"
                     r"|Parkway|Pkwy)\b")
_STATE_AFTER = re.compile(r",\s(?:[A-Z]{2}|" + "|".join(STATE_NAMES.values()) + r")(?![A-Za-z])")
# Capitalised words a generated summary uses as field labels or sentence openers: never a name.
_NOT_INVENTED = frozenset("""
    summary type amount date claimant claim name location incident description status total
    estimated estimate policy insured he she they it this that his her their a an at as after
    while during according there here note adjuster cause details event place time
""".split())
# Amounts written without a dollar sign: "4,200 dollars", "USD 4,200".
_BARE_AMOUNT = re.compile(r"(?:\bUSD\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{2}))?)"
                          r"|(?:(?<![\d.,$])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{2}))?\s?dollars\b)",
                          re.IGNORECASE)
_TOKEN = re.compile(r"[a-z0-9]+(?:[.,'][a-z0-9]+)*")


@dataclass
class SummaryScore:
    """Per-fact verdicts for one summary; `accurate` is all four stated and nothing invented."""

    claim_type: bool
    amount: bool
    date: bool
    claimant: bool
    invented: list[str] = field(default_factory=list)   # e.g. ["amount $9,999", "state TX"]
    rouge_l: float | None = None

    @property
    def accurate(self) -> bool:
        return self.claim_type and self.amount and self.date and self.claimant and not self.invented

    @property
    def missing(self) -> list[str]:
        return [n for n in ("claim_type", "amount", "date", "claimant") if not getattr(self, n)]

    def to_dict(self) -> dict:
        return {"accurate": self.accurate, "missing": self.missing, "invented": self.invented,
                "rouge_l": self.rouge_l}


def dates_in(text: str) -> set[tuple[int, int, int | None]]:
    """(month, day, year or None) of every date written as m/d[/y], yyyy-mm-dd or 'Month d[, y]'."""
    out: set[tuple[int, int, int | None]] = set()

    def add(m: int, d: int, y: int | None) -> None:
        if 1 <= m <= 12 and 1 <= d <= 31:
            out.add((m, d, (y + 2000 if y is not None and y < 100 else y)))

    for m, d, y in _NUM_DATE.findall(text):
        add(int(m), int(d), int(y) if y else None)
    for y, m, d in _ISO_DATE.findall(text):
        add(int(m), int(d), int(y))
    for mon, d, y in _WORD_DATE.findall(text):
        add(_MONTHS[mon.lower()], int(d), int(y) if y else None)
    for d, mon, y in _DAY_FIRST.findall(text):
        add(_MONTHS[mon.lower()], int(d), int(y))
    return out


def _amounts(text: str) -> set[int]:
    """Dollar amounts in cents: `$4,200` = `$4200.00` = `4,200 dollars` = `USD 4200`."""
    out = amounts_cents(text)
    for m in _BARE_AMOUNT.finditer(text):
        whole, cents = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        out.add(int(whole.replace(",", "")) * 100 + (int(cents) if cents else 0))
    return out


def _same_date(a: tuple, b: tuple) -> bool:
    return a[:2] == b[:2] and (a[2] is None or b[2] is None or a[2] == b[2])


def claimant_of(note: str) -> str | None:
    """The note's first 'First Last' person name (not a town, street, month or claim word)."""
    note = unicodedata.normalize("NFC", note)
    for m in _PERSON.finditer(note):
        first, last = m.group(1), m.group(2)
        if not proper_words(first) or not (proper_words(last) or "'" in last or "’" in last):
            continue   # a claim word, month or weekday
        after = note[m.end():]
        if _STREET.match(after) or _STATE_AFTER.match(after) or _YEAR_BEFORE.search(
                note[:m.start()]):
            continue   # "Elm Ave", "Fort Collins, CO", "2014 Toyota Camry"
        return f"{first} {last}"
    return None


def claim_type_of(reference: str) -> str | None:
    """The claim type a reference summary names ('Fire loss claim: ...'), first phrase wins."""
    low = reference.lower()
    hits = [(low.find(m.group(0)), t) for t, rx in _REF_PHRASES for m in [rx.search(low)] if m]
    return min(hits)[1] if hits else None


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 over lower-cased word tokens (0.0 when either is empty)."""
    a, b = _tokens(candidate), _tokens(reference)
    if not a or not b:
        return 0.0
    prev = [0] * (len(b) + 1)
    for x in a:   # LCS by dynamic programming, one row at a time
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    p, r = lcs / len(a), lcs / len(b)
    return 2 * p * r / (p + r)


def score_summary(note: str, summary: str, *, claim_type: str | None = None,
                  reference: str | None = None) -> SummaryScore:
    """Check `summary` against `note` (see the module docstring for what each fact means).

    Args:
        claim_type: the claim's type (a `claim_type` class); None -> the reference's phrase,
            and without either the claim-type check passes only when the summary names a type.
        reference: the gold summary, for ROUGE-L and the claim type.
    """
    note, summary = unicodedata.normalize("NFC", note), unicodedata.normalize("NFC", summary)
    if claim_type is None and reference:
        claim_type = claim_type_of(reference)
    low = summary.lower()
    if claim_type in _TYPE_RX:
        type_ok = bool(_TYPE_RX[claim_type].search(low))
    else:
        type_ok = any(rx.search(low) for rx in _TYPE_RX.values())
    note_amounts, summary_amounts = _amounts(note), _amounts(summary)
    note_dates, summary_dates = dates_in(note), dates_in(summary)
    who = claimant_of(note)
    invented = [f"amount ${c / 100:,.2f}" for c in sorted(summary_amounts - note_amounts)]
    invented += [f"state {s}" for s in sorted(state_codes_in(summary) - state_codes_in(note))]
    invented += [f"date {m}/{d}" + (f"/{y}" if y else "") for m, d, y in sorted(
        summary_dates, key=str) if not any(_same_date((m, d, y), n) for n in note_dates)]
    # the full name of a state the note gives as a code ("Plano, TX" -> "Texas") is no invention
    note_state_words = {w.lower() for c in state_codes_in(note) for w in STATE_NAMES[c].split()}
    invented += [f"name {w}" for w in dict.fromkeys(proper_words(summary))
                 if not has_word(re.sub(r"['’]s$", "", w), note)   # "Allen's" of "Sarah Allen" and w.upper() not in STATE_NAMES
                 and w.lower() not in note_state_words
                 and w.lower() not in _NOT_INVENTED and not re.search(
                     r"(?<![\w'’-])" + re.escape(w) + r"\s*:", summary)]   # "Location: ..."
    return SummaryScore(
        claim_type=type_ok,
        amount=bool(summary_amounts & note_amounts),
        date=any(_same_date(s, n) for s in summary_dates for n in note_dates),
        claimant=who is not None and has_word(who.split()[-1], summary),
        invented=invented,
        rouge_l=round(rouge_l(summary, reference), 4) if reference is not None else None)


def summary_accuracy(scores: Iterable[SummaryScore]) -> dict:
    """Share accurate, share per fact stated, share with an invention, and mean ROUGE-L."""
    scores = list(scores)
    n = len(scores) or 1
    rl = [s.rouge_l for s in scores if s.rouge_l is not None]
    return {"n": len(scores),
            "accuracy": round(sum(s.accurate for s in scores) / n, 4),
            **{f"{f}_stated": round(sum(getattr(s, f) for s in scores) / n, 4)
               for f in ("claim_type", "amount", "date", "claimant")},
            "invented": round(sum(bool(s.invented) for s in scores) / n, 4),
            "rouge_l": round(sum(rl) / len(rl), 4) if rl else None}


def audit_scorer(rows: Iterable[dict]) -> dict:
    """Score known summaries and count the scorer's mistakes against their ground truth.

    Args:
        rows: dicts with `note`, `summary`, `claim_type` and `flaws` (truth.jsonl's list; empty
            for a faithful summary; see `FACT_FLAWS`).
    Returns: counts of faithful summaries (`faithful`, `faithful_accurate`) and of fact-flawed
        ones (`flawed`, `flawed_rejected`), and up to 5 `misses` of each kind.
    """
    out = {"faithful": 0, "faithful_accurate": 0, "flawed": 0, "flawed_rejected": 0,
           "misses": []}
    for r in rows:
        s = score_summary(r["note"], r["summary"] or "", claim_type=r.get("claim_type"))
        if not r["flaws"]:
            out["faithful"] += 1
            out["faithful_accurate"] += s.accurate
            ok = s.accurate
        elif FACT_FLAWS & set(r["flaws"]):
            out["flawed"] += 1
            out["flawed_rejected"] += not s.accurate
            ok = not s.accurate
        else:
            continue
        if not ok and len(out["misses"]) < 10:
            out["misses"].append({"summary": r["summary"], "flaws": r["flaws"],
                                  "missing": s.missing, "invented": s.invented})
    return out
