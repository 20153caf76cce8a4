"""Per-record quality signals: pure functions of a `Record`, no SQL.

Every signal is a number, a flag or a language code that a rule (`pipelines.filters.rules`) can
test; `details` carries the evidence a person reads (which phrase matched, the ftfy fix).
Which text each filter reads: length, repetition, markup, mojibake and language read the
content (turn contents without role prefixes, or prompt + response); refusal reads what the
model would be trained to say (the response, or the assistant turns).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pipelines.errors import ConfigError
from pipelines.records import Record
from pipelines.textscript import words

__all__ = ["Signals", "compute_signals", "content_text", "response_text", "repetition",
           "markup_count", "language", "check_language", "known_languages", "SIGNAL_TYPES"]

# The type of each signal, so a rule can be checked before it runs.
SIGNAL_TYPES: dict[str, type] = {
    "length_chars": int, "length_words": int, "length_tokens": int, "turns": int,
    "response_words": int,
    "dup_line_frac": float, "top2_frac": float, "top3_frac": float, "top4_frac": float,
    "refusal": bool, "boilerplate": bool, "markup": int, "mojibake": bool,
    "lang": str, "lang_score": float, "lang_mixed": bool,
    "empty_turn": bool, "assistant_first": bool, "ends_on_user": bool,
}

_TOKEN_RE = re.compile(r"\w+|[^\w\s]", re.UNICODE)
# An HTML/XML tag, an HTML entity, or a markdown/wiki remnant that survived scraping.
_MARKUP_RE = re.compile(
    r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]{0,200})?/?>"
    r"|&(?:[A-Za-z]{2,8}|#\d{1,6}|#x[0-9A-Fa-f]{1,6});"
    r"|\[/?(?:b|i|u|url|img|quote|code)(?:=[^\]]*)?\]"
    r"|\{\{[^{}]{0,100}\}\}")
_MIN_LANG_CHARS = 20   # turns shorter than this do not vote on lang_mixed


@dataclass
class Signals:
    values: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


def content_text(rec: Record) -> str:
    if rec.turns:
        return "\n".join(t.content for t in rec.turns)
    if rec.kind == "instruction":
        return "\n".join(x for x in (rec.prompt, rec.response) if x)
    return rec.text


def response_text(rec: Record) -> str:
    if rec.turns:
        return "\n".join(t.content for t in rec.turns if t.role == "assistant")
    if rec.kind == "instruction":
        return rec.response or ""
    return rec.text


def repetition(text: str) -> dict[str, float]:
    """Gopher repetition signals (Rae et al. 2021, table A1).

    `dup_line_frac`: share of non-empty lines that repeat an earlier line. `topN_frac`: share of
    the characters of the words that belong to occurrences of the most frequent word N-gram
    (0 when no N-gram occurs twice): "a b a b a b" -> top2 "a b" x3 (2 chars each) = 6 / 6 = 1.0.
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    seen: set[str] = set()
    dups = 0
    for ln in lines:
        if ln in seen:
            dups += 1
        seen.add(ln)
    out = {"dup_line_frac": round(dups / len(lines), 4) if lines else 0.0}
    tokens = words(text)
    total = sum(len(w) for w in tokens)
    for n in (2, 3, 4):
        frac = 0.0
        if total and len(tokens) >= n:
            grams = Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
            gram, count = grams.most_common(1)[0]
            if count > 1:
                frac = min(1.0, count * sum(len(w) for w in gram) / total)
        out[f"top{n}_frac"] = round(frac, 4)
    return out


def markup_count(text: str) -> int:
    return len(_MARKUP_RE.findall(text))


@lru_cache(maxsize=4)
def _identifier(langs: tuple[str, ...] | None = None):
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    if langs:
        ident.set_languages(list(langs))
    return ident


def known_languages() -> list[str]:
    return list(_identifier().nb_classes)


def check_language(code: Any, *, where: str) -> str:
    if not isinstance(code, str) or code not in set(known_languages()):
        raise ConfigError(f"{where}: unknown language code {code!r} (ISO 639-1, e.g. en, de, fr; "
                          f"the identifier knows {len(known_languages())})")
    return code


def language(text: str, langs: tuple[str, ...] | None = None) -> tuple[str, float]:
    """(ISO 639-1 code, probability); ('und', 0.0) for text without letters."""
    if not any(ch.isalpha() for ch in text):
        return "und", 0.0
    # The first 2,000 characters decide: accuracy saturates long before, and cost grows linearly.
    code, prob = _identifier(langs).classify(text[:2000])
    return code, round(float(prob), 4)


def _contains(text: str, phrases: list[str]) -> str | None:
    low = text.lower().replace("\u2019", "'")
    return next((p for p in phrases if p in low), None)


def compute_signals(rec: Record, *, enabled: set[str], refusal: list[str],
                    boilerplate: list[str], langs: tuple[str, ...] | None = None) -> Signals:
    """Every enabled signal of one record (see `FILTERS` for the names)."""
    sig = Signals()
    v, det = sig.values, sig.details
    text = content_text(rec)
    if "length_words" in enabled:
        v["length_chars"] = len(text)
        v["length_words"] = len(words(text))   # a Chinese character counts as a word
        v["length_tokens"] = len(_TOKEN_RE.findall(text))
        v["turns"] = len(rec.turns) if rec.turns else (2 if rec.kind == "instruction" else 1)
        v["response_words"] = len(words(response_text(rec)))
    if "dup_line_frac" in enabled:
        v.update(repetition(text))
    if "refusal" in enabled:
        hit = _contains(response_text(rec), refusal)
        v["refusal"] = hit is not None
        if hit:
            det["refusal"] = hit
        hit = _contains(text, boilerplate)
        v["boilerplate"] = hit is not None
        if hit:
            det["boilerplate"] = hit
    if "markup" in enabled:
        v["markup"] = markup_count(text)
    if "mojibake" in enabled:
        import ftfy

        bad = bool(ftfy.badness.is_bad(text))
        v["mojibake"] = bad
        if bad:
            # The fix is recorded as a proposed transformation; the record is left as it is.
            det["mojibake_fix"] = ftfy.fix_text(text)[:2000]
    if "lang" in enabled:
        v["lang"], v["lang_score"] = language(text, langs)
        if rec.turns:
            per_turn = [language(t.content, langs)[0] for t in rec.turns]
            det["lang_turns"] = per_turn
            voting = {c for c, t in zip(per_turn, rec.turns)
                      if len(t.content) >= _MIN_LANG_CHARS and c != "und"}
            v["lang_mixed"] = len(voting) > 1
        else:
            v["lang_mixed"] = False
    if "empty_turn" in enabled:
        cond = (rec.meta or {}).get("conditions") or {}
        for name in ("empty_turn", "assistant_first", "ends_on_user"):
            v[name] = bool(cond.get(name))
    return sig
