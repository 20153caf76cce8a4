"""Consistent surrogates: every identifying value of a record replaced by a fake one, the same
real value always by the same fake.

What counts as identifying (and what replaces it):

| kind | found by | replaced by |
|---|---|---|
| PII types (`PERSON`, `EMAIL`, `PHONE`, `CREDIT_CARD`, `IBAN`, `SSN`, `IP_ADDRESS`, `URL_CREDENTIALS`) | `pipelines.pii.detect` (names from the record's metadata too) | Faker values (`pii.redact.fake_value`); a person's first and last name, where they later stand alone ("Ms. Roberts"), by the fake's |
| `place` | `Town, ST` / `Town, State` | a Faker city and another state (code or name as written); the town alone and the state code inside identifiers follow |
| `ident` | policy/claim numbers (`POL-OH-76076`, `CLM-2026-337152`) | the same shape: digits redrawn, a year-like group (19xx/20xx) kept, a state code mapped like places |
| `date` | `2026-03-08`, `3/8/2026`, `March 8[, 2026]` | moved by one offset of 1..`date_shift_days` days (earlier or later), written as before |
| `amount` | `$4,250.00`, `$8050` | times a factor within `amount_jitter` of 1, at the original's precision, written as before |

Dates move by one offset per `Surrogates` (one per data set, or per record), so durations and
order survive; amounts keep their size. A weekday written beside a date is left as it is (it may
no longer match). Free-text facts beyond these (an employer, a licence plate, a rare diagnosis)
are not found: the copy is as private as the detection is thorough.

The fakes are drawn from Faker seeded by sha256(salt, kind, value): `salt` must stay private
when copies leave the building, or anyone holding a guessed real value could recompute its fake.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import re
from dataclasses import dataclass, field
from typing import Iterable

from pipelines.pii.detect import PII_TYPES, detect
from pipelines.pii.redact import fake_value, value_key

__all__ = ["Surrogates", "Replacement", "FACT_KINDS"]

FACT_KINDS = ("place", "ident", "date", "amount")

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]
_MONTH_NUM = {m.lower(): i + 1 for i, m in enumerate(_MONTHS)}
_MONTH_NUM.update({m.lower()[:3]: i + 1 for i, m in enumerate(_MONTHS)})
_MONTH_NUM["sept"] = 9
_DATE = re.compile(
    r"\b(?P<iso>(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2}))\b"
    r"|\b(?P<num>(?P<nm>\d{1,2})/(?P<nd>\d{1,2})/(?P<ny>\d{4}|\d{2}))\b"
    r"|\b(?P<word>(?P<wm>" + "|".join(sorted(_MONTH_NUM, key=len, reverse=True))
    + r")(?P<dot>\.?)\s+(?P<wd>\d{1,2})(?P<suf>st|nd|rd|th)?(?:(?P<ysep>,?\s+)(?P<wy>\d{4}))?)\b",
    re.IGNORECASE)
_AMOUNT = re.compile(r"\$\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{2}))?")
_BARE_AMOUNT = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{2}))?")
_IDENT = re.compile(r"\b[A-Z]{2,}(?:-[A-Z0-9]+)*-\d[A-Z0-9]*(?:-[A-Z0-9]+)*\b")
_YEAR = re.compile(r"(?:19|20)\d\d")


def _states() -> tuple[list[str], list[str]]:
    from faker.providers.address.en_US import Provider

    codes = [c for c in Provider.states_abbr if c != "DC"]
    names = list(Provider.states)
    return codes, names


_CODES, _NAMES = _states()
_CODE_OF = {n.lower(): c for c, n in zip(_CODES, _NAMES)}
_NAME_OF = dict(zip(_CODES, _NAMES))
_TOWN = r"[A-Z][a-z]+\.?(?:[ -][A-Z][a-z]+){0,2}"
_PLACE = re.compile(rf"\b(?P<town>{_TOWN}),\s(?P<state>"
                    + "|".join(sorted(_NAMES, key=len, reverse=True)) + "|" + "|".join(_CODES)
                    + r")(?![A-Za-z])")
_INITIAL_NAME = re.compile(r"[A-Z]\.\s*\S+")


@dataclass(frozen=True)
class Replacement:
    """One replaced span: its kind, the real value and the fake one."""

    kind: str
    before: str
    after: str


@dataclass
class _Span:
    start: int
    end: int
    kind: str
    after: str


@dataclass
class Surrogates:
    """The memory of one consistent replacement: real value -> fake value, per kind.

    Use one instance for a whole data set (the same claimant in two records stays one fake
    person) or one per record (records cannot be linked through their fakes).
    """

    salt: str = "0"
    date_shift_days: int = 30
    amount_jitter: float = 0.2
    amounts: bool = True
    pii_types: tuple[str, ...] = PII_TYPES
    mapping: dict[tuple[str, str], str] = field(default_factory=dict)

    def __post_init__(self):
        from faker import Faker

        self._faker = Faker("en_US")
        self._fakes: set[str] = set()
        rng = self._rng("date-offset", "")
        self.offset = rng.randint(1, max(1, self.date_shift_days)) * rng.choice((-1, 1))

    # -- the fakes ---------------------------------------------------------------------------
    def _rng(self, kind: str, value: str, attempt: int = 0) -> random.Random:
        seed = f"{self.salt}\0{kind}\0{value_key(value)}\0{attempt}"
        h = hashlib.sha256(seed.encode()).hexdigest()
        return random.Random(int(h[:16], 16))

    def _fake(self, kind: str, value: str, make) -> str:
        """The fake of `value` (made once by `make(rng, attempt)`; a fake that shares a word
        with the real value, is another value's fake or a real value met so far is drawn
        again). A real value met *after* it became a fake still gets its own fake: the earlier
        copy then names someone of the set, never its own source."""
        key = (kind, value_key(value))
        if key in self.mapping:
            return self.mapping[key]
        real_words = set(re.findall(r"\w+", value.casefold())) if kind in ("PERSON", "place") \
            else set()
        for attempt in range(20):
            fake = make(self._rng(kind, value, attempt), attempt)
            if fake != value and fake not in self._fakes and (kind, value_key(fake)) not in \
                    self.mapping and \
                    not (real_words & set(re.findall(r"\w+", fake.casefold()))):
                break
        self.mapping[key] = fake
        self._fakes.add(fake)
        return fake

    def pii(self, kind: str, value: str, tokens: dict[str, str] | None = None) -> str:
        def make(rng, attempt):
            self._faker.seed_instance(rng.getrandbits(64))
            fake = fake_value(self._faker, kind)
            if kind == "PERSON" and _INITIAL_NAME.fullmatch(value):
                fake = f"{fake[0]}. {fake.split()[-1]}"     # "N. Gallagher" stays initialled
            return fake
        fake = self._fake(kind, value, make)
        if kind == "PERSON" and tokens is not None:
            real, fk = value.split(), fake.split()
            if len(real) == len(fk):
                pairs = list(zip(real, fk))
            else:
                pairs = [(real[-1], fk[-1])]
            for r, f in pairs:
                if len(r) > 2 and not r.endswith("."):
                    tokens.setdefault(r, f)
        return fake

    def state(self, state: str) -> str:
        code = state if state in _NAME_OF else _CODE_OF.get(state.lower())
        if code is None:
            return state
        new = self._fake("state", code, lambda rng, a: rng.choice([c for c in _CODES if c != code]))
        return new if state in _NAME_OF else _NAME_OF[new]

    def town(self, town: str, tokens: dict[str, str] | None = None) -> str:
        def make(rng, attempt):
            self._faker.seed_instance(rng.getrandbits(64))
            return self._faker.city()
        fake = self._fake("place", town, make)
        if tokens is not None:
            tokens.setdefault(town, fake)
        return fake

    def ident(self, ident: str) -> str:
        def make(rng, attempt):
            parts = re.split(r"([-_])", ident)
            out = []
            for p in parts:
                if p in _NAME_OF:
                    out.append(self.state(p))
                elif _YEAR.fullmatch(p) and ident.count("-") > 1:
                    out.append(p)           # CLM-2026-...: the year is structure, not identity
                elif any(c.isdigit() for c in p):
                    out.append("".join(str(rng.randrange(10)) if c.isdigit() else c for c in p))
                else:
                    out.append(p)
            return "".join(out)
        return self._fake("ident", ident, make)

    def date(self, m: re.Match) -> str | None:
        g = m.groupdict()
        try:
            if g["iso"]:
                d = dt.date(int(g["iy"]), int(g["im"]), int(g["id"]))
            elif g["num"]:
                y = int(g["ny"]) + (2000 if len(g["ny"]) == 2 else 0)
                d = dt.date(y, int(g["nm"]), int(g["nd"]))
            else:
                month = _MONTH_NUM[g["wm"].lower()]
                d = dt.date(int(g["wy"] or 2026), month, int(g["wd"]))
        except ValueError:
            return None           # not a real date (13/45/2026): left as it is
        new = d + dt.timedelta(days=self.offset)
        if g["iso"]:
            pad = len(g["im"]) == 2
            return f"{new.year}-{new.month:0{2 if pad else 1}d}-{new.day:0{2 if pad else 1}d}"
        if g["num"]:
            pad = len(g["nm"]) == 2
            year = str(new.year) if len(g["ny"]) == 4 else f"{new.year % 100:02d}"
            return f"{new.month:0{2 if pad else 1}d}/{new.day:0{2 if pad else 1}d}/{year}"
        name = _MONTHS[new.month - 1]
        word = g["wm"]
        name = name if len(word) > 3 or word.lower() == "may" else name[:3]
        name = name.upper() if word.isupper() and len(word) > 1 else name
        out = f"{name}{g['dot'] or ''} {new.day}"
        if g["suf"]:
            out += {1: "st", 2: "nd", 3: "rd"}.get(new.day % 10 if new.day not in (11, 12, 13)
                                                    else 0, "th")
        if g["wy"]:
            out += f"{g['ysep']}{new.year}"
        return out

    def amount(self, cents: int, like: str) -> str:
        from pipelines.synth.edits import _money

        def make(rng, attempt):
            step = next(s for s in (100000, 10000, 1000, 100, 1) if cents % s == 0 or s == 1)
            step = min(step, max(1, cents // 10))
            factor = 1 + rng.uniform(0.05, max(0.05, self.amount_jitter)) * rng.choice((-1, 1))
            new = max(step, round(cents * factor / step) * step)
            return str(new if new != cents else cents + step)
        new = int(self._fake("amount", str(cents), make))
        return _money(new, like) if like.startswith("$") else _money(new, "$" + like)[1:]

    # -- replacing ---------------------------------------------------------------------------
    def _spans(self, text: str, names: Iterable[str], tokens: dict[str, str]) -> list[_Span]:
        spans = [_Span(s.start, s.end, s.type, self.pii(s.type, s.value, tokens))
                 for s in detect(text, names=names, types=self.pii_types)]
        for m in _PLACE.finditer(text):
            town, state = m.group("town"), m.group("state")
            spans.append(_Span(m.start(), m.end(), "place",
                               f"{self.town(town, tokens)}, {self.state(state)}"))
        for m in _IDENT.finditer(text):
            spans.append(_Span(m.start(), m.end(), "ident", self.ident(m.group())))
        for m in _DATE.finditer(text):
            new = self.date(m)
            if new is not None:
                spans.append(_Span(m.start(), m.end(), "date", new))
        if self.amounts:
            for m in _AMOUNT.finditer(text):
                cents = int(m.group(1).replace(",", "")) * 100 + int(m.group(2) or 0)
                spans.append(_Span(m.start(), m.end(), "amount", self.amount(cents, m.group())))
        return spans

    def _token_spans(self, text: str, tokens: dict[str, str]) -> list[_Span]:
        out = []
        for real, fake in tokens.items():
            for m in re.finditer(r"(?<![\w'-])" + re.escape(real) + r"(?![\w-])", text):
                out.append(_Span(m.start(), m.end(), self._token_kind(real), fake))
        return out

    def _token_kind(self, real: str) -> str:
        return "place" if ("place", value_key(real)) in self.mapping else "PERSON"

    def replace_all(self, texts: dict[str, str], names: Iterable[str] = (),
                    bare: Iterable[str] = ()) -> tuple[dict[str, str], list[Replacement]]:
        """`texts` (field -> text) with every identifying value replaced, and what was replaced.

        All fields are read first, so a surname found as a full name in one field is replaced
        where it stands alone in another. Args:
            names: person names known for this record (its metadata).
            bare: fields whose whole value may be a state, an amount without `$` or a name
                (metadata columns such as `state: OH`, `amount: 4,250.00`).
        """
        names = list(names)
        bare = set(bare)
        # A name found in one field is looked for verbatim in all ("Darnell Ramírez filed ..."
        # opens a sentence, where the gazetteer rule does not fire on its own).
        for v in texts.values():
            names += [s.value for s in detect(v, names=names, types=("PERSON",))
                      if "PERSON" in self.pii_types and s.value not in names]
        tokens: dict[str, str] = {}      # this record's name and town words alone -> fakes
        found = {k: self._spans(v, names, tokens) for k, v in texts.items()}
        out: dict[str, str] = {}
        done: list[Replacement] = []
        for k, text in texts.items():
            value = text.strip()
            whole = None
            if k in bare and value:
                if value in _NAME_OF or value.lower() in _CODE_OF:
                    whole = ("place", self.state(value))
                elif self.amounts and _BARE_AMOUNT.fullmatch(value) and "." in value:
                    m = _BARE_AMOUNT.fullmatch(value)
                    cents = int(m.group(1).replace(",", "")) * 100 + int(m.group(2) or 0)
                    whole = ("amount", self.amount(cents, value))
                elif ("place", value_key(value)) in self.mapping:
                    whole = ("place", self.mapping[("place", value_key(value))])
            if whole is not None:
                out[k] = whole[1]
                done.append(Replacement(whole[0], value, whole[1]))
                continue
            spans = found[k] + self._token_spans(text, tokens)
            # longest first, then the order above (PII before places, identifiers, dates ...)
            spans.sort(key=lambda s: (-(s.end - s.start), s.start))
            taken: list[_Span] = []
            for s in spans:
                if all(s.end <= t.start or s.start >= t.end for t in taken):
                    taken.append(s)
            taken.sort(key=lambda s: s.start)
            parts, pos = [], 0
            for s in taken:
                parts.append(text[pos:s.start])
                parts.append(s.after)
                done.append(Replacement(s.kind, text[s.start:s.end], s.after))
                pos = s.end
            parts.append(text[pos:])
            out[k] = "".join(parts) if taken else text
        return out, done
