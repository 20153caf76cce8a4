"""`curation.yaml`: the curation task a workspace carries.

The file declares the data schema and field mapping, where gold labels live, the label schemes
(classes and the LF modules that vote on each), and one free-form section per later step
(`dedup`, `review`, `export`, `train`) that the step's own config dataclass validates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from pipelines.errors import ConfigError

__all__ = ["FieldMap", "SchemeConfig", "CurationConfig", "load_config", "save_config", "step_config",
           "SCHEMA_KINDS"]

SCHEMA_KINDS = ("text", "instruction", "chat")
_SECTIONS = ("dedup", "filter", "pii", "review", "export", "train", "label")


@dataclass
class FieldMap:
    """Which input column feeds which record field."""

    text: str = field(default="text", metadata={"help": "column with the text (schema text)"})
    prompt: str = field(default="prompt", metadata={"help": "column with the prompt (instruction)"})
    response: str = field(default="response", metadata={"help": "column with the response"})
    system: str = field(default="system", metadata={"help": "optional column with a system prompt"})
    messages: str = field(default="messages", metadata={"help": "column with chat messages"})
    label: str = field(default="label", metadata={"help": "optional column with a raw label"})

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"fields.{f.name} must be a non-empty column name, got {value!r}")


@dataclass
class SchemeConfig:
    """A named label scheme: its classes and the labeling-function modules that vote on it."""

    name: str
    classes: list[str]
    lf_modules: list[str] = field(default_factory=list)

    def __post_init__(self):
        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise ConfigError(f"schemes.{self.name}.classes must be a non-empty list of distinct "
                              f"names, got {self.classes!r}")
        self.classes = [str(c) for c in self.classes]
        if not isinstance(self.lf_modules, list):
            raise ConfigError(f"schemes.{self.name}.lf_modules must be a list, got {self.lf_modules!r}")


@dataclass
class CurationConfig:
    schema: str | None = None
    fields: FieldMap = field(default_factory=FieldMap)
    gold_prefix: str = "gold_"
    files: list[str] = field(default_factory=list)
    schemes: dict[str, SchemeConfig] = field(default_factory=dict)
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self):
        if self.schema is not None and self.schema not in SCHEMA_KINDS:
            raise ConfigError(f"schema must be one of {', '.join(SCHEMA_KINDS)}, got {self.schema!r}")
        if not isinstance(self.gold_prefix, str) or not self.gold_prefix:
            raise ConfigError(f"gold_prefix must be a non-empty string, got {self.gold_prefix!r}")

    def scheme(self, name: str | None) -> SchemeConfig:
        """The named scheme, or the only/first one when `name` is None."""
        if not self.schemes:
            raise ConfigError("curation.yaml declares no label schemes (add a `schemes:` section)")
        if name is None:
            return next(iter(self.schemes.values()))
        if name not in self.schemes:
            raise ConfigError(f"unknown scheme {name!r}; curation.yaml declares: "
                              f"{', '.join(self.schemes)}")
        return self.schemes[name]

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.sections.get(name) or {})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.schema:
            out["schema"] = self.schema
        out["fields"] = asdict(self.fields)
        out["gold_prefix"] = self.gold_prefix
        if self.files:
            out["files"] = list(self.files)
        out["schemes"] = {n: {"classes": s.classes, "lf_modules": s.lf_modules}
                          for n, s in self.schemes.items()}
        out.update({k: v for k, v in self.sections.items() if v})
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, where: str = "curation.yaml") -> "CurationConfig":
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a mapping at the top level")
        known = {"schema", "fields", "gold_prefix", "files", "schemes", *_SECTIONS}
        unknown = set(raw) - known
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(sorted(known))}")
        try:
            fmap = FieldMap(**(raw.get("fields") or {}))
        except TypeError as exc:
            raise ConfigError(f"{where}: fields: {exc}") from exc
        schemes = {}
        for name, spec in (raw.get("schemes") or {}).items():
            if not isinstance(spec, dict) or "classes" not in spec:
                raise ConfigError(f"{where}: schemes.{name} needs `classes:`")
            schemes[name] = SchemeConfig(name=name, classes=list(spec["classes"]),
                                         lf_modules=list(spec.get("lf_modules") or []))
        return cls(
            schema=raw.get("schema"),
            fields=fmap,
            gold_prefix=raw.get("gold_prefix", "gold_"),
            files=list(raw.get("files") or []),
            schemes=schemes,
            sections={k: raw[k] for k in _SECTIONS if k in raw},
        )


def load_config(path: str | Path) -> CurationConfig:
    """Read a `curation.yaml` (a missing file gives the defaults)."""
    path = Path(path)
    if path.is_dir():
        path = path / "curation.yaml"
    if not path.exists():
        return CurationConfig()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    return CurationConfig.from_dict(raw, where=str(path))


def save_config(config: CurationConfig, path: str | Path) -> None:
    """Write atomically (temp file, then rename)."""
    path = Path(path)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True),
                   encoding="utf-8")
    tmp.replace(path)


def step_config(cls, name: str, section: dict[str, Any] | None, **overrides: Any):
    """A step's config dataclass `cls` from curation.yaml's `name:` section, with the non-None
    `overrides` (CLI options, studio widgets) on top. Unknown keys raise a ConfigError that
    lists the known ones."""
    from dataclasses import fields as dc_fields

    section = dict(section or {})
    known = {f.name for f in dc_fields(cls)}
    unknown = set(section) - known
    if unknown:
        raise ConfigError(f"curation.yaml {name}: unknown key(s) {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(known))}")
    return cls(**{**section, **{k: v for k, v in overrides.items() if v is not None}})
