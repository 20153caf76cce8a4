"""`FilterConfig`: which quality signals to compute and which rules over them exclude a record."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pipelines.config import step_config
from pipelines.errors import ConfigError

__all__ = ["FilterConfig", "FILTERS", "DEFAULT_RULES", "DEFAULT_REFUSAL_PHRASES",
           "DEFAULT_BOILERPLATE_PHRASES"]

# Each filter (switchable through `disabled`) and the signals it computes.
FILTERS: dict[str, tuple[str, ...]] = {
    "length": ("length_chars", "length_words", "length_tokens", "turns", "response_words"),
    "repetition": ("dup_line_frac", "top2_frac", "top3_frac", "top4_frac"),
    "phrases": ("refusal", "boilerplate"),
    "markup": ("markup",),
    "mojibake": ("mojibake",),
    "language": ("lang", "lang_score", "lang_mixed"),
    "chat": ("empty_turn", "assistant_first", "ends_on_user"),
}

DEFAULT_RULES = ["length_words < 3", "refusal", "empty_turn"]

DEFAULT_REFUSAL_PHRASES = [
    "as an ai language model", "as an ai model", "as a language model", "i'm sorry, but i cannot",
    "i am sorry, but i cannot", "i'm sorry, but i can't", "i cannot fulfill", "i can't fulfill",
    "i cannot assist with", "i can't assist with", "i cannot help with that",
    "i can't help with that", "i'm unable to provide", "i am unable to provide",
    "i cannot provide", "i'm not able to provide", "it is not appropriate for me",
    "i do not have personal opinions", "i don't have personal opinions",
    "my apologies, but i cannot", "against my programming", "openai's content policy",
]

DEFAULT_BOILERPLATE_PHRASES = [
    "lorem ipsum", "click here to", "all rights reserved", "terms of service",
    "privacy policy", "cookie policy", "subscribe to our newsletter", "javascript is disabled",
    "enable javascript", "404 not found", "page not found", "sign up for free",
]


@dataclass
class FilterConfig:
    """One quality-filter run; `curation.yaml`'s `filter:` section fills the defaults."""

    rules: list[str] = field(default_factory=lambda: list(DEFAULT_RULES), metadata={
        "help": "rules over the signals; a record matching any is excluded "
                "(e.g. 'length_words < 3', 'lang != en', 'refusal')"})
    disabled: list[str] = field(default_factory=list, metadata={
        "help": f"filters not to compute: {', '.join(FILTERS)}"})
    refusal_phrases: list[str] = field(default_factory=lambda: list(DEFAULT_REFUSAL_PHRASES),
                                       metadata={"help": "case-insensitive refusal phrases "
                                                         "(looked for in the responses)"})
    boilerplate_phrases: list[str] = field(
        default_factory=lambda: list(DEFAULT_BOILERPLATE_PHRASES),
        metadata={"help": "case-insensitive boilerplate phrases (anywhere in the record)"})
    refusal_phrases_file: str | None = field(default=None, metadata={
        "help": "a file of extra refusal phrases, one per line (relative to the workspace)"})
    boilerplate_phrases_file: str | None = field(default=None, metadata={
        "help": "a file of extra boilerplate phrases, one per line (relative to the workspace)"})
    languages: list[str] | None = field(default=None, metadata={
        "help": "restrict language identification to these ISO 639-1 codes (default: every language py3langid knows)"})

    def __post_init__(self):
        for name in ("rules", "disabled", "refusal_phrases", "boilerplate_phrases"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"filter.{name} must be a list of text, got {value!r}")
            setattr(self, name, [v.strip() for v in value])
        unknown = [d for d in self.disabled if d not in FILTERS]
        if unknown:
            raise ConfigError(f"filter.disabled: unknown filter(s) {', '.join(unknown)}; "
                              f"known: {', '.join(FILTERS)}")
        self.refusal_phrases = [p.lower() for p in self.refusal_phrases if p.strip()]
        self.boilerplate_phrases = [p.lower() for p in self.boilerplate_phrases if p.strip()]
        if self.languages is not None:
            from pipelines.filters.signals import check_language

            if isinstance(self.languages, str):
                self.languages = [s.strip() for s in self.languages.split(",") if s.strip()]
            for code in self.languages:
                check_language(code, where="filter.languages")
        # Parse now: a bad rule is a config error before anything runs or is stored.
        from pipelines.filters.rules import parse_rule

        for text in self.rules:
            parse_rule(text, self.enabled_signals())

    def enabled_signals(self) -> set[str]:
        return {s for name, sigs in FILTERS.items() if name not in self.disabled for s in sigs}

    def phrase_lists(self, root: Path) -> tuple[list[str], list[str]]:
        """(refusal, boilerplate) phrases, with the files' lines added; a missing file raises."""
        out = []
        for name, base in (("refusal_phrases_file", self.refusal_phrases),
                           ("boilerplate_phrases_file", self.boilerplate_phrases)):
            phrases = list(base)
            path = getattr(self, name)
            if path:
                p = Path(path)
                p = p if p.is_absolute() else root / p
                if not p.is_file():
                    raise ConfigError(f"filter.{name}: no such file {p}")
                phrases += [ln.strip().lower() for ln in p.read_text(encoding="utf-8").splitlines()
                            if ln.strip() and not ln.lstrip().startswith("#")]
            out.append(phrases)
        return out[0], out[1]

    @classmethod
    def from_section(cls, section: dict[str, Any], **overrides: Any) -> "FilterConfig":
        """Build from curation.yaml's `filter:` mapping, then apply non-None overrides (CLI)."""
        return step_config(cls, "filter", section, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
