"""Configuration of the ingest step."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.config import SCHEMA_KINDS, CurationConfig, FieldMap
from pipelines.errors import ConfigError

__all__ = ["IngestConfig"]


@dataclass
class IngestConfig:
    schema: str | None = field(default=None, metadata={
        "help": "text | instruction | chat; None detects it from the first row's fields"})
    fields: FieldMap = field(default_factory=FieldMap, metadata={
        "help": "which column feeds which record field"})
    gold_prefix: str = field(default="gold_", metadata={
        "help": "columns named <prefix><scheme> hold held-out gold labels"})
    skip_invalid: bool = field(default=False, metadata={
        "help": "ingest the valid rows and write a reject report instead of rejecting the file"})
    max_reject_share: float = field(default=0.5, metadata={
        "help": "with skip_invalid: reject more than this share of the rows and nothing is stored"})
    batch_size: int = field(default=1000, metadata={"help": "rows per database batch"})
    max_record_chars: int = field(default=1_000_000, metadata={
        "help": "a row whose keys and values hold more characters than this is rejected "
                "(every format; also the CSV field limit)"})
    encoding: str = field(default="utf-8", metadata={
        "help": "text encoding of .csv, .tsv, .jsonl and .txt files (any Python codec name, "
                "e.g. cp1252 for a CSV from Excel on Windows, latin-1); a UTF-16 byte-order "
                "mark is followed whatever this says"})
    gold_classes: dict[str, list[str]] = field(default_factory=dict, metadata={
        "help": "scheme -> its classes: a gold label outside them is a row error "
                "(from curation.yaml's schemes)"})

    def __post_init__(self):
        if self.schema is not None and self.schema not in SCHEMA_KINDS:
            raise ConfigError(f"schema must be one of {', '.join(SCHEMA_KINDS)}, got {self.schema!r}")
        if not self.gold_prefix:
            raise ConfigError("gold_prefix must not be empty")
        if not isinstance(self.max_reject_share, (int, float)) or isinstance(
                self.max_reject_share, bool) or not 0.0 <= self.max_reject_share <= 1.0:
            raise ConfigError(f"max_reject_share must be a number from 0 to 1, got "
                              f"{self.max_reject_share!r}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if not isinstance(self.max_record_chars, int) or isinstance(self.max_record_chars, bool) \
                or self.max_record_chars < 1:
            raise ConfigError(f"max_record_chars must be a positive integer, got "
                              f"{self.max_record_chars!r}")

        import codecs

        try:
            codecs.lookup(self.encoding)
        except (LookupError, TypeError):
            raise ConfigError(f"encoding: unknown text encoding {self.encoding!r} (e.g. utf-8, "
                              f"cp1252, latin-1, utf-16)") from None

    @classmethod
    def from_curation(cls, cfg: CurationConfig, **overrides) -> "IngestConfig":
        base = dict(schema=cfg.schema, fields=cfg.fields, gold_prefix=cfg.gold_prefix,
                    gold_classes={name: list(sc.classes) for name, sc in cfg.schemes.items()})
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)
