"""PII detection without model weights: validated patterns and a name gazetteer.

Pattern types are checked beyond the regex so look-alikes stay out: card numbers by the Luhn
sum and issuer prefix, IBANs by their country length and mod-97 check, IPv4 octets by range (and
not right after "version"/"v"), SSNs by the SSA's never-issued areas. Person names are a
capitalised first + last name where both are in the name lists Faker ships (several locales),
or a name the record's own metadata carries (e.g. a `claimant` column), found verbatim.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Mapping

__all__ = ["Span", "PII_TYPES", "detect", "luhn_ok", "iban_ok", "metadata_names", "pair_names",
           "name_edit_names"]

PII_TYPES = ("EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "SSN", "IP_ADDRESS", "URL_CREDENTIALS",
             "PERSON")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    type: str
    confidence: float
    value: str


_URL_CRED = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]+:[^\s/@]+@[^\s/?#]+[^\s]*")
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])")
_PHONE_NANP = re.compile(
    r"(?<![\w+-])(?:\+?1[ .-]?)?(?:\(\d{3}\)\s?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w-])")
_PHONE_INTL = re.compile(r"(?<![\w+])\+(?:[2-9]\d{0,2})(?:[ .-]?\(?\d{1,4}\)?)(?:[ .-]\d{2,4}){2,4}(?![\w-])")
# National formats (a trunk 0, as most of Europe, the UK, Australia, India, Japan, Brazil write
# their own numbers): "020 7946 0958", "(030) 1234 5678", "06 12 34 56 78", "0612 345678".
# 9-11 digits in all, grouped with spaces or an area code in parentheses; grouped with dots or
# dashes, or one unbroken run of 10-11 digits, only right after a phone word ("Tel.:",
# "unter", "my number is"): IDs are written "0123-4567-89", and an ID or amount that starts
# with 0 is not taken for a phone.
_PHONE_NATIONAL = re.compile(
    r"(?<![\w+.,/-])(?:\(0\d{1,4}\)[ .-]?|0\d{1,4}[ .-])\d{2,8}(?:[ .-]\d{2,4}){0,3}"
    r"(?![\w-]|[.,/:]\d)")
_BYTE_BEFORE = re.compile(r"\b[0-9a-fA-F]{2} $")
_BYTE_AFTER = re.compile(r" [0-9a-fA-F]{2}\b")
_PHONE_RUN = re.compile(r"(?<![\w+.,/-])0\d{9,10}(?![\w-]|[.,/:]\d)")
_PHONE_CUE = re.compile(
    r"(?:phone|tel|telephone|mobile|mob|cell|fax|call|ring|text|whatsapp|telefon|handy|mobil|"
    r"anrufen|erreichbar|t[ée]l[ée]phone|t[ée]l|portable|appeler|tel[ée]fono|m[óo]vil|llamar|"
    r"telefono|cellulare|chiamare|telefoon|bellen|telefone|celular|ligar|nummer|number|no|nr|"
    r"num[ée]ro)"
    r"\.?:?\s*(?:(?:is|es|est|ist|[èe]|at|on|unter|au|al)\s+)?$", re.IGNORECASE)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_VERSION_BEFORE = re.compile(r"(?:version|release|build|v|ver\.?)\s*$", re.IGNORECASE)
_UP, _LO = "A-Z\u00c0-\u00d6\u00d8-\u00de\u0100-\u017f", "a-z\u00df-\u00f6\u00f8-\u00ff\u0100-\u017f"
_CAP_WORD = re.compile(rf"(?<![\w'-])[{_UP}](?:'[{_UP}])?[{_LO}]+(?:-[{_UP}][{_LO}]+)?(?![\w'-])")
# first [M.] last, on one line: "d) Laetitia\nCorrect answer" is not a name (ShareGPT, docs)
_BETWEEN = re.compile(r"[^\S\n]+(?:[A-Z]\.[^\S\n]+)?")
# A capitalised pair followed by these is a place, not a person ("Jackson Street").
_PLACE_AFTER = re.compile(r"\s+(?:St|Street|Ave|Avenue|Rd|Road|Blvd|Lane|Ln|Dr|Drive|Park|County|"
                          r"City|Hospital|Center|Centre|University|College|School|Bank|Inc|LLC|Ltd)\b")
_PLACE_BEFORE = re.compile(r"\b(?:in|at|near|of|on|to|via)\s+$")
# Capitalised words that start many phrases and are never a given name here.
_NOT_FIRST = frozenset("""The This That These Those A An And But Or If When While Per Please Dear
Claim Claims Policy Customer Service Reference Order Ticket Note Notes Total Amount Insured Fire
Water Auto Theft Medical Property Contractor Adjuster Claimant Agent Mr Mrs Ms Dr North South East
West New Old Saint St Mount Lake Fort Port San Santa Los Las Bank Street Avenue Road Estimate
Repair Damage Loss Called Received Reported Spoke Spoke Contacted Call Email Phone Report""".split())
_IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22,
    "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18,
    "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TR": 26,
    "AE": 23, "SA": 24, "IL": 23, "BR": 29, "QA": 29, "UA": 29,
}
_LOCALES = ("en_US", "en_GB", "en_IE", "en_IN", "en_NZ", "en_PH", "de_DE", "de_AT", "fr_FR",
            "es_ES", "es_MX", "it_IT", "pt_BR", "pt_PT", "nl_NL", "pl_PL", "cs_CZ", "sv_SE", "da_DK",
            "no_NO", "fi_FI", "tr_TR", "hi_IN", "ga_IE", "yo_NG", "zu_ZA", "vi_VN", "ja_JP", "zh_CN",
            "zh_TW", "ko_KR")
_NAME_META_KEYS = re.compile(r"name|claimant|customer|author|user|patient|adjuster|contact|"
                             r"person|agent|employee|owner", re.IGNORECASE)


def luhn_ok(digits: str) -> bool:
    total, double = 0, False
    for ch in reversed(digits):
        d = int(ch)
        if double:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        double = not double
    return total % 10 == 0


def _card_issuer(d: str) -> bool:
    """Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay prefixes with their lengths."""
    n = len(d)
    return ((d[0] == "4" and n in (13, 16, 19)) or (51 <= int(d[:2]) <= 55 and n == 16)
            or (2221 <= int(d[:4]) <= 2720 and n == 16) or (d[:2] in ("34", "37") and n == 15)
            or ((d[:4] == "6011" or d[:2] == "65") and n in (16, 19))
            or (d[:2] in ("36", "38", "30") and n == 14) or (3528 <= int(d[:4]) <= 3589 and n == 16)
            or (d[:2] == "62" and 16 <= n <= 19))


def iban_ok(iban: str) -> bool:
    s = iban.replace(" ", "").upper()
    if _IBAN_LENGTHS.get(s[:2], 0) != len(s):
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _fold(s: str) -> str:
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()


@lru_cache(maxsize=1)
def _gazetteer() -> tuple[frozenset[str], frozenset[str]]:
    import importlib

    first: set[str] = set()
    last: set[str] = set()
    for loc in _LOCALES:
        try:
            prov = importlib.import_module(f"faker.providers.person.{loc}").Provider
        except ImportError:
            continue
        for attr in ("first_names", "first_names_male", "first_names_female",
                     "first_romanized_names"):
            first.update(getattr(prov, attr, ()) or ())
        for attr in ("last_names", "last_romanized_names"):
            last.update(getattr(prov, attr, ()) or ())
    first = {n for n in first if n[:1].isupper() and len(n) > 1}
    last = {n for n in last if n[:1].isupper() and len(n) > 1}
    return (frozenset(first | {_fold(n) for n in first}),
            frozenset(last | {_fold(n) for n in last}))


@lru_cache(maxsize=1)
def _common_words() -> frozenset[str]:
    """About a thousand common English words (Faker's en_US lorem list)."""
    from faker.providers.lorem.en_US import Provider

    return frozenset(w.lower() for w in Provider.word_list)


def metadata_names(meta: Mapping[str, Any] | None) -> list[str]:
    """Person-like values (two or three capitalised words, or an initial + surname) of metadata
    fields whose name suggests a person."""
    out = []
    for key, value in (meta or {}).items():
        if not isinstance(value, str) or not _NAME_META_KEYS.search(str(key)):
            continue
        v = " ".join(value.split())
        if re.fullmatch(r"(?:[A-Z][\w'\u00c0-\u017f-]*\.?\s){1,2}[A-Z][\w'\u00c0-\u017f-]+", v):
            out.append(v)
    return out


def _patterns(text: str) -> Iterable[Span]:
    for m in _URL_CRED.finditer(text):
        value = m.group().rstrip(".,;:!?)]'\"")
        yield Span(m.start(), m.start() + len(value), "URL_CREDENTIALS", 0.95, value)
    for m in _EMAIL.finditer(text):
        yield Span(m.start(), m.end(), "EMAIL", 0.95, m.group())
    for m in _IBAN.finditer(text):
        if iban_ok(m.group()):
            yield Span(m.start(), m.end(), "IBAN", 0.99, m.group())
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and _card_issuer(digits) and luhn_ok(digits):
            yield Span(m.start(), m.end(), "CREDIT_CARD", 0.95, m.group())
    for m in _SSN.finditer(text):
        yield Span(m.start(), m.end(), "SSN", 0.85, m.group())
    for rx, conf in ((_PHONE_NANP, 0.85), (_PHONE_INTL, 0.8)):
        for m in rx.finditer(text):
            yield Span(m.start(), m.end(), "PHONE", conf, m.group())
    if "0" in text:
        for m in _PHONE_NATIONAL.finditer(text):
            if not 9 <= sum(c.isdigit() for c in m.group()) <= 11:
                continue
            if _BYTE_BEFORE.search(text, max(0, m.start() - 3), m.start()) or \
                    _BYTE_AFTER.match(text, m.end()):
                continue   # a hex dump ("34 35 01 06 29 01 02 04 10"), not a number
            cued = _PHONE_CUE.search(text[max(0, m.start() - 30):m.start()])
            if cued or not any(c in m.group() for c in ".-"):
                yield Span(m.start(), m.end(), "PHONE", 0.85 if cued else 0.75, m.group())
        for m in _PHONE_RUN.finditer(text):
            if _PHONE_CUE.search(text[max(0, m.start() - 30):m.start()]):
                yield Span(m.start(), m.end(), "PHONE", 0.8, m.group())
    for m in _IPV4.finditer(text):
        octets = m.group().split(".")
        # 240.0.0.0/4 is reserved and never a host: what matches there is a netmask (255.255.0.0)
        if all(int(o) <= 255 and (o == "0" or not o.startswith("0")) for o in octets) \
                and int(octets[0]) < 240 and not _VERSION_BEFORE.search(text[max(0, m.start() - 12):m.start()]):
            yield Span(m.start(), m.end(), "IP_ADDRESS", 0.9, m.group())
    for m in _IPV6.finditer(text):
        g = m.group()
        if g.count(":") >= 2 and any(c.isdigit() or c.isalpha() for c in g):
            try:
                ipaddress.IPv6Address(g)
            except ValueError:
                continue
            yield Span(m.start(), m.end(), "IP_ADDRESS", 0.9, g)


def _sentence_start(text: str, pos: int) -> bool:
    before = text[:pos].rstrip()
    return not before or before[-1] in ".!?:;\n\"'(“"


def _names(text: str, extra: Iterable[str]) -> Iterable[Span]:
    first, last = _gazetteer()
    for name in extra:
        for m in re.finditer(r"(?<!\w)" + re.escape(name) + r"(?!\w)", text):
            yield Span(m.start(), m.end(), "PERSON", 0.95, m.group())
    words = list(_CAP_WORD.finditer(text))
    known = lambda w, names: w in names or _fold(w) in names  # noqa: E731
    for i, (a, b) in enumerate(zip(words, words[1:])):
        # every adjacent capitalised pair, so "Call Jennifer Campbell" still finds the name
        if not _BETWEEN.fullmatch(text, a.end(), b.start()) or _PLACE_AFTER.match(text, b.end()) \
                or _PLACE_AFTER.fullmatch(" " + b.group()):
            continue
        f, l = a.group(), b.group()
        kf, kl = known(f, first), known(l, last)
        if kf and kl:
            conf = 0.85
        elif f.lower() in _common_words() or l.lower() in _common_words():
            continue        # one side unknown and the other a plain word: "Insurance Company"
        elif kl and (f not in _NOT_FIRST and not known(f, last) and not _sentence_start(text, a.start())
                     and not _PLACE_BEFORE.search(text, max(0, a.start() - 8), a.start())):
            conf = 0.7      # a known surname after an unknown given name ("from Ngozi Okafor")
        elif kf and l not in _NOT_FIRST and f not in _NOT_FIRST and not known(l, first) \
                and not _PLACE_BEFORE.search(text, max(0, a.start() - 8), a.start()):
            conf = 0.7      # a known given name before an unknown surname ("Karen Okafor")
        else:
            continue
        start = a.start()
        prev = words[i - 1] if i else None    # a two-word given name: "Juan Pablo Reyes"
        if prev is not None and known(prev.group(), first) \
                and _BETWEEN.fullmatch(text, prev.end(), a.start()):
            start = prev.start()
        yield Span(start, b.end(), "PERSON", conf, text[start:b.end()])


_PRIORITY = {t: i for i, t in enumerate(
    ("URL_CREDENTIALS", "EMAIL", "IBAN", "CREDIT_CARD", "SSN", "IP_ADDRESS", "PHONE", "PERSON"))}


def detect(text: str, *, names: Iterable[str] = (), types: Iterable[str] | None = None,
           min_confidence: float = 0.0) -> list[Span]:
    """Non-overlapping PII spans in `text`, in order.

    Args:
        names: person names known for this record (its metadata), matched verbatim.
        types: only these types (default: all of `PII_TYPES`).
    Where spans overlap the longer wins, then the more specific type (a URL with credentials
    over the email inside it, a card number over a phone-like part of it).
    """
    if not text:
        return []
    wanted = set(types) if types is not None else set(PII_TYPES)
    cands = [s for s in _patterns(text) if s.type in wanted and s.confidence >= min_confidence]
    if "PERSON" in wanted:
        cands += [s for s in _names(text, names) if s.confidence >= min_confidence]
    cands.sort(key=lambda s: (-(s.end - s.start), _PRIORITY[s.type], s.start))
    taken: list[Span] = []
    for s in cands:
        if all(s.end <= t.start or s.start >= t.end for t in taken):
            taken.append(s)
    return sorted(taken, key=lambda s: s.start)


# one to three capitalised words ("Ngozi Kowalski", "Mary-Jo O'Neil", "J. Smith")
_NAME_WORD = rf"[{_UP}][\w'\u00c0-\u017f-]*\.?"
_NAME_SHAPE = re.compile(rf"{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}}")


def pair_names(texts: Iterable[str], chosen: str, rejected: str,
               names: Iterable[str] = ()) -> list[str]:
    """The person names to redact in every string of a preference pair (`texts`: its prompt's
    strings and both answers), so the pair is redacted alike on all sides: `names`, every name
    found in any of the strings ("Ngozi Okafor" found after "from" but missed at a sentence
    start is one name of the pair), and `name_edit_names` of the two answers."""
    known = list(dict.fromkeys(names))
    for text in texts:
        known += [s.value for s in _names(text, known) if s.value not in known]
    return known + [n for n in name_edit_names(chosen, rejected, known) if n not in known]


def name_edit_names(chosen: str, rejected: str, names: Iterable[str] = ()) -> list[str]:
    """Where two answers differ only in a name (a counterfactual's name edit, a reviewer's
    corrected claimant) and the name is found on one side, the other side's text there is a
    name too, even when neither of its words is in the name lists. Without this a name edit
    exported as "the note's name vs <PERSON>": the real name left in (the note's too) and the
    pair teaching placeholders."""
    known = list(dict.fromkeys(names))
    out: list[str] = []
    words = [list(re.finditer(r"\S+", t)) for t in (chosen, rejected)]
    spans = [detect(t, names=known, types=("PERSON",)) for t in (chosen, rejected)]
    ops = difflib.SequenceMatcher(None, [m.group() for m in words[0]],
                                  [m.group() for m in words[1]], autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in ops:
        if tag != "replace":
            continue
        for side, (a1, a2), (b1, b2) in ((0, (i1, i2), (j1, j2)), (1, (j1, j2), (i1, i2))):
            here, there = words[side], words[1 - side]
            start, end = here[a1].start(), here[a2 - 1].end()
            span = next((s for s in spans[side] if s.start < end and start < s.end), None)
            if span is None:
                continue
            # the name's words on this side, the differing ones and any shared ones around them
            # ("Ngozi Garcia" -> "Ngozi Smith"): the same shared words frame the other side's
            w1 = min(i for i, m in enumerate(here) if m.end() > span.start)
            w2 = max(i for i, m in enumerate(here) if m.start() < span.end) + 1
            lo, hi = b1 - max(0, a1 - w1), b2 + max(0, w2 - a2)
            if lo < 0 or hi > len(there) or hi <= lo:
                continue
            other = (chosen, rejected)[1 - side][there[lo].start():there[hi - 1].end()]
            other = other.strip(".,;:!?()[]\"'")
            if _NAME_SHAPE.fullmatch(other) and other not in known and other not in out:
                out.append(other)
    return out
