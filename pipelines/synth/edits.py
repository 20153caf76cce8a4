"""Fact edits: turn a faithful summary into one that gets a fact wrong, in a known way.

Each edit changes what the brief's client cares about, and only that: an amount, a date, a
person's name, a place (the state of 'Town, ST'), a policy/claim identifier, or the key figure
dropped, or a fact added that the note does not contain. `apply_edit` returns the edited text
with what changed (`before` -> `after`), or None when the summary has nothing of that kind to
edit (a summary without a date cannot get a wrong date).

Pure functions over strings with an explicit `random.Random`: the same inputs and seed give the
same counterfactual. Whether the edit is a real hallucination, and not a paraphrase, is not
decided here: the scheme's labeling functions decide it (`counterfactual.make_counterfactuals`).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

__all__ = ["EDIT_KINDS", "Edit", "apply_edit"]

EDIT_KINDS = ("amount", "date", "name", "place", "ident", "drop", "add")

_AMOUNT = re.compile(r"\$\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{2}))?")
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]
_MONTH_NUM = {m.lower(): i + 1 for i, m in enumerate(_MONTHS)}
_MONTH_NUM.update({m.lower()[:3]: i + 1 for i, m in enumerate(_MONTHS)})
_DATE = re.compile(
    r"\b(?P<iso>\d{4}-(?P<im>\d{1,2})-(?P<id>\d{1,2}))\b"
    r"|\b(?P<num>(?P<nm>\d{1,2})/(?P<nd>\d{1,2})/(?:\d{4}|\d{2}))\b"
    r"|\b(?P<word>(?P<wm>" + "|".join(sorted(_MONTH_NUM, key=len, reverse=True))
    + r")\.?\s+(?P<wd>\d{1,2}))(?:st|nd|rd|th)?\b", re.IGNORECASE)
_IDENT = re.compile(r"\b[A-Z]{2,}(?:-[A-Z0-9]+)*-\d[A-Z0-9]*(?:-[A-Z0-9]+)*\b")
_STATES = ("AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV "
           "NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY").split()
_TOWN_STATE = re.compile(r",\s(" + "|".join(_STATES) + r")(?![A-Za-z])")
_PERSON = re.compile(r"\b([A-Z][a-z]+)\s([A-Z][a-z]+(?:['’-][A-Z]?[a-z]+)?)\b(?!,\s[A-Z])")
_NOT_NAMES = {m.lower() for m in _MONTHS} | {
    "auto", "water", "fire", "theft", "medical", "injury", "property", "claim", "claimant",
    "the", "on", "in", "policy", "loss", "damage", "burglary", "collision", "accident"}
_FIRST = ["Karen", "Oliver", "Hannah", "Marcus", "Ingrid", "Tobias", "Leila", "Desmond",
          "Greta", "Ravi", "Noor", "Elliot"]
_LAST = ["Walker", "Okafor", "Brennan", "Lindgren", "Castillo", "Hartmann", "Nakamura",
         "Delacroix", "Ferreira", "Quigley", "Abernathy", "Sorensen"]
# How the key figure is introduced, so that dropping it leaves a sentence that still reads.
_DROP_AMOUNT = re.compile(
    r"(?:^|\s*[,;]\s*|\s+)(?:(?:total\s+)?(?:claimed\s+)?amount(?:\s+is)?\s+|claimed\s+|"
    r"for\s+|of\s+|(?:estimated\s+)?at\s+|reserve\s+(?:set\s+at\s+)?)?\$\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d{2})?",
    re.IGNORECASE)


@dataclass(frozen=True)
class Edit:
    """One edit of a summary: its kind, the span it replaced and what replaced it."""

    kind: str
    text: str          # the edited summary
    before: str        # the fact as the summary had it ('' for an added fact)
    after: str         # the fact as the edit writes it ('' for a dropped fact)

    def describe(self) -> str:
        if not self.before:
            return f"{self.kind}: added {self.after!r}"
        if not self.after:
            return f"{self.kind}: dropped {self.before!r}"
        return f"{self.kind}: {self.before!r} -> {self.after!r}"


def _cents(m: re.Match) -> int:
    return int(m.group(1).replace(",", "")) * 100 + int(m.group(2) or 0)


def _money(cents: int, like: str) -> str:
    """Cents written the way `like` writes money (thousands separators, cents or not)."""
    dollars, rest = divmod(cents, 100)
    body = f"{dollars:,}" if ("," in like or dollars >= 10000) else str(dollars)
    return f"${body}.{rest:02d}" if "." in like else f"${body}"


def _amounts(text: str) -> set[int]:
    return {_cents(m) for m in _AMOUNT.finditer(text)}


def _dates(text: str) -> set[tuple[int, int]]:
    out = set()
    for m in _DATE.finditer(text):
        md = _date_md(m)
        if md:
            out.add(md)
    return out


def _date_md(m: re.Match) -> tuple[int, int] | None:
    if m.group("iso"):
        month, day = int(m.group("im")), int(m.group("id"))
    elif m.group("num"):
        month, day = int(m.group("nm")), int(m.group("nd"))
    else:
        month, day = _MONTH_NUM[m.group("wm").lower()], int(m.group("wd"))
    return (month, day) if 1 <= month <= 12 and 1 <= day <= 31 else None


def _new_amount(old: int, taken: set[int], rng: random.Random) -> int:
    """A wrong figure for `old` (cents): half the time a slip of scale (x10, x2, /4 ...: a typo
    or a unit error, the digits kept), half the time an unrelated figure of the same magnitude
    written as `old` is (cents if it has cents, else as round), which is what a model that
    invents an amount writes. Scale slips alone taught DPO a shortcut ("a multiple of the note's
    figure is wrong") that did not carry over to real invented amounts (docs/benchmarks.md)."""
    if rng.random() < 0.5:
        factor = rng.uniform(0.2, 0.8) if rng.random() < 0.5 else rng.uniform(1.25, 5.0)
        if old % 100:
            new = int(old * factor) // 100 * 100 + rng.randrange(1, 100)
        else:
            unit = next((u for u in (10000, 1000) if old % u == 0), 100)   # $100, $10 or $1
            new = max(unit, int(round(old * factor / unit)) * unit)
        if new not in taken and new != old:
            return new
    for factor in rng.sample([3, 10, 2, 5, 0.5, 0.25], 6):
        new = int(round(old * factor / 100.0)) * 100 or 500 * 100
        if new not in taken:
            return new
    return max(taken | {old}) + 1000 * 100


def _edit_amount(note: str, summary: str, rng: random.Random) -> Edit | None:
    found = list(_AMOUNT.finditer(summary))
    if not found:
        return None
    m = rng.choice(found)
    new = _money(_new_amount(_cents(m), _amounts(note) | _amounts(summary), rng), m.group(0))
    return Edit("amount", summary[:m.start()] + new + summary[m.end():], m.group(0), new)


def _edit_date(note: str, summary: str, rng: random.Random) -> Edit | None:
    found = [m for m in _DATE.finditer(summary) if _date_md(m)]
    if not found:
        return None
    m = rng.choice(found)
    month, day = _date_md(m)
    taken = _dates(note) | _dates(summary)
    for shift in rng.sample(range(2, 10), 8):
        new_day = day + shift if day + shift <= 28 else day - shift
        if (month, new_day) not in taken and new_day >= 1:
            break
    else:
        return None
    if m.group("iso"):
        span, old = m.span("id"), m.group("id")
    elif m.group("num"):
        span, old = m.span("nd"), m.group("nd")
    else:
        span, old = m.span("wd"), m.group("wd")
    new = f"{new_day:0{len(old)}d}"
    text = summary[:span[0]] + new + summary[span[1]:]
    whole = m.group(0)
    return Edit("date", text, whole, whole[:span[0] - m.start()] + new + whole[span[1] - m.start():])


def _edit_name(note: str, summary: str, rng: random.Random) -> Edit | None:
    people = [m for m in _PERSON.finditer(summary)
              if m.group(1).lower() not in _NOT_NAMES and m.group(2).lower() not in _NOT_NAMES
              and m.group(1) in note and m.group(2) in note]
    if not people:
        return None
    m = rng.choice(people)
    first = [f for f in _FIRST if f not in note and f not in summary]
    last = [x for x in _LAST if x not in note and x not in summary]
    new = f"{rng.choice(first)} {rng.choice(last)}"
    return Edit("name", summary[:m.start()] + new + summary[m.end():], m.group(0), new)


def _edit_place(note: str, summary: str, rng: random.Random) -> Edit | None:
    found = list(_TOWN_STATE.finditer(summary))
    if not found:
        return None
    m = rng.choice(found)
    in_note = set(_TOWN_STATE.findall(note)) | {m.group(1)}
    new = rng.choice([s for s in _STATES if s not in in_note])
    a, b = m.span(1)
    return Edit("place", summary[:a] + new + summary[b:], m.group(1), new)


def _mutate_ident(ident: str, taken: set[str], rng: random.Random) -> str:
    digits = [i for i, c in enumerate(ident) if c.isdigit()]
    for _ in range(20):
        i = rng.choice(digits[-4:])
        new = ident[:i] + str((int(ident[i]) + rng.randint(1, 9)) % 10) + ident[i + 1:]
        if new not in taken:
            return new
    return ident + "9"


def _edit_ident(note: str, summary: str, rng: random.Random) -> Edit | None:
    """A wrong policy/claim number: the summary's changed, else the note's written in wrong."""
    taken = set(_IDENT.findall(note)) | set(_IDENT.findall(summary))
    found = list(_IDENT.finditer(summary))
    if found:
        m = rng.choice(found)
        new = _mutate_ident(m.group(0), taken, rng)
        return Edit("ident", summary[:m.start()] + new + summary[m.end():], m.group(0), new)
    in_note = sorted(set(_IDENT.findall(note)))
    if not in_note:
        return None
    new = _mutate_ident(rng.choice(in_note), taken, rng)
    return Edit("ident", _append(summary, f"Policy {new}."), "", f"Policy {new}.")


def _edit_drop(note: str, summary: str, rng: random.Random) -> Edit | None:
    """The key figure dropped: every amount goes (a note without one has none to drop)."""
    if not _amounts(note) or not _AMOUNT.search(summary):
        return None
    dropped = [m.group(0).strip(" ,;") for m in _DROP_AMOUNT.finditer(summary)]
    text = _DROP_AMOUNT.sub("", summary)
    if _AMOUNT.search(text):
        return None
    text = re.sub(r"\s+([,.;:)])", r"\1", text)
    text = re.sub(r"([,;:])\1+", r"\1", re.sub(r"^[\s,;:]+", "", text)).strip()
    text = text[:1].upper() + text[1:]
    return Edit("drop", text, "; ".join(dropped), "")


def _edit_add(note: str, summary: str, rng: random.Random) -> Edit | None:
    """A fact the note does not contain: an extra amount or a witness named nowhere."""
    if rng.random() < 0.5:
        cents = _new_amount(rng.choice([640, 1250, 380, 2200]) * 100, _amounts(note)
                            | _amounts(summary), rng)
        added = f"A rental car invoice of {_money(cents, '$1,000')} was also submitted."
    else:
        first = [f for f in _FIRST if f not in note and f not in summary]
        last = [x for x in _LAST if x not in note and x not in summary]
        added = f"Witness {rng.choice(first)} {rng.choice(last)} confirmed the account."
    return Edit("add", _append(summary, added), "", added)


def _append(summary: str, sentence: str) -> str:
    text = summary.rstrip()
    if text and text[-1] not in ".!?":
        text += "."
    return f"{text} {sentence}"


_EDITORS = {"amount": _edit_amount, "date": _edit_date, "name": _edit_name,
            "place": _edit_place, "ident": _edit_ident, "drop": _edit_drop, "add": _edit_add}


def apply_edit(kind: str, note: str, summary: str, rng: random.Random) -> Edit | None:
    """`summary` with one fact edited by `kind` (see `EDIT_KINDS`); None when not applicable.

    Args:
        note: the source the summary is faithful to: edits never produce a fact it contains.
        rng: the choice of span and replacement (seed it for a repeatable counterfactual).
    """
    if kind not in _EDITORS:
        raise ValueError(f"unknown edit {kind!r}; known: {', '.join(EDIT_KINDS)}")
    edit = _EDITORS[kind](note or "", summary or "", rng)
    if edit is None or edit.text.strip() == (summary or "").strip():
        return None
    return edit
