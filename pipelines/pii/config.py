"""`PiiConfig`: which PII types `curate pii` detects and how sure a detection must be."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from pipelines.config import step_config
from pipelines.errors import ConfigError
from pipelines.pii.detect import PII_TYPES

__all__ = ["PiiConfig"]


@dataclass
class PiiConfig:
    """One PII scan; `curation.yaml`'s `pii:` section fills the defaults."""

    types: list[str] = field(default_factory=lambda: list(PII_TYPES), metadata={
        "help": f"PII types to detect: {', '.join(PII_TYPES)}"})
    min_confidence: float = field(default=0.0, metadata={
        "help": "keep detections at least this confident (patterns 0.8-0.99, names 0.85, "
                "names from the record's metadata 0.95)"})

    def __post_init__(self):
        if isinstance(self.types, str):
            self.types = [t.strip() for t in self.types.split(",") if t.strip()]
        unknown = [t for t in self.types if t not in PII_TYPES]
        if unknown or not self.types:
            raise ConfigError(f"pii.types: unknown type(s) {', '.join(unknown) or '(none given)'}; "
                              f"known: {', '.join(PII_TYPES)}")
        if not isinstance(self.min_confidence, (int, float)) or not 0 <= self.min_confidence <= 1:
            raise ConfigError(f"pii.min_confidence must be in [0, 1], got {self.min_confidence!r}")

    @classmethod
    def from_section(cls, section: dict[str, Any], **overrides: Any) -> "PiiConfig":
        return step_config(cls, "pii", section, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
