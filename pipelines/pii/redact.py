"""Redaction: placeholders (`<EMAIL>`) or consistent surrogates (the same value, anywhere in the
dataset, always becomes the same fake value: Faker seeded by a hash of the type and value)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable

from pipelines.pii.detect import Span, detect

__all__ = ["REDACTION_MODES", "Redactor", "placeholder", "fake_value", "value_key"]

REDACTION_MODES = ("none", "placeholder", "surrogate")


def placeholder(kind: str) -> str:
    return f"<{kind}>"


def value_key(value: str) -> str:
    """What makes two spellings one value for a surrogate: spacing and case ignored."""
    return " ".join(value.split()).casefold()


def fake_value(f, kind: str) -> str:
    """A fake value of PII type `kind` from the (already seeded) Faker `f`; fictional ranges
    where there is one (555-01xx phones, example.com mail, 9xx SSN areas)."""
    if kind == "PERSON":
        return f"{f.first_name()} {f.last_name()}"
    if kind == "EMAIL":
        return f"{f.user_name()}@example.com"
    if kind == "PHONE":
        return f"(555) 555-{f.random_int(100, 199):04d}"     # 555-0100..0199: fictional
    if kind == "CREDIT_CARD":
        return f.credit_card_number()
    if kind == "IBAN":
        return f.iban()
    if kind == "SSN":
        return f"{f.random_int(900, 999)}-{f.random_int(10, 99)}-{f.random_int(1000, 9999)}"
    if kind == "IP_ADDRESS":
        return f.ipv4_private()
    if kind == "URL_CREDENTIALS":
        return f"https://user:****@{f.domain_name()}/"
    return placeholder(kind)


@dataclass
class Redactor:
    """Redacts text span by span and counts what it replaced (and what it left, mode `none`).

    `surrogates` maps (type, normalised value) -> the fake value; a value always maps to the
    same fake, so "Jennifer Campbell" in a prompt and in its response stay one person.
    """

    mode: str = "placeholder"
    redacted: dict[str, int] = field(default_factory=dict)
    remaining: dict[str, int] = field(default_factory=dict)
    surrogates: dict[tuple[str, str], str] = field(default_factory=dict)
    # mixed into the Faker seed: without it anyone can recompute the fake of a guessed value
    salt: str = ""

    def __post_init__(self):
        if self.mode not in REDACTION_MODES:
            from pipelines.errors import ConfigError

            raise ConfigError(f"pii mode must be one of {', '.join(REDACTION_MODES)}, "
                              f"got {self.mode!r}")
        self._fakes: set[str] = set()
        self._faker = None

    def surrogate(self, kind: str, value: str) -> str:
        key = (kind, value_key(value))
        if key not in self.surrogates:
            fake = self._make(kind, value)
            self.surrogates[key] = fake
            self._fakes.add(fake)
        return self.surrogates[key]

    def _make(self, kind: str, value: str) -> str:
        if self._faker is None:
            from faker import Faker

            self._faker = Faker("en_US")
        norm = value_key(value)
        seed_key = f"{kind}\0{norm}" if not self.salt else f"{self.salt}\0{kind}\0{norm}"
        self._faker.seed_instance(int(hashlib.sha256(seed_key.encode()).hexdigest()[:16], 16))
        return fake_value(self._faker, kind)

    def redact(self, text: str, names: Iterable[str] = ()) -> str:
        """`text` with every detected span replaced (mode `none`: counted, left as it is).

        A text without detected PII is returned unchanged (the same string).
        """
        spans = [s for s in detect(text, names=names) if s.value not in self._fakes]
        if not spans:
            return text
        if self.mode == "none":
            for s in spans:
                self.remaining[s.type] = self.remaining.get(s.type, 0) + 1
            return text
        out, pos = [], 0
        for s in spans:
            out.append(text[pos:s.start])
            out.append(placeholder(s.type) if self.mode == "placeholder"
                       else self.surrogate(s.type, s.value))
            pos = s.end
            self.redacted[s.type] = self.redacted.get(s.type, 0) + 1
        out.append(text[pos:])
        return "".join(out)

    def redact_obj(self, obj: Any, names: Iterable[str] = ()) -> Any:
        """Every string inside a rendered export row (messages, fields) redacted."""
        names = list(names)
        if isinstance(obj, str):
            return self.redact(obj, names)
        if isinstance(obj, list):
            return [self.redact_obj(x, names) for x in obj]
        if isinstance(obj, dict):
            return {k: (v if k in ("role", "label") else self.redact_obj(v, names))
                    for k, v in obj.items()}
        return obj

    def leftover(self, obj: Any, names: Iterable[str] = ()) -> list[Span]:
        """PII still detected in a redacted row, other than the surrogates this redactor made."""
        names = list(names)
        if isinstance(obj, str):
            return [s for s in detect(obj, names=names) if s.value not in self._fakes
                    and not any(s.value in f or f in s.value for f in self._fakes_in(obj))]
        if isinstance(obj, list):
            return [s for x in obj for s in self.leftover(x, names)]
        if isinstance(obj, dict):
            return [s for k, v in obj.items() if k not in ("role", "label")
                    for s in self.leftover(v, names)]
        return []

    def _fakes_in(self, text: str) -> list[str]:
        return [f for f in self._fakes if f in text]
