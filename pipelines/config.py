"""`curation.yaml`: the curation task a workspace carries.

The file declares the data schema and field mapping, where gold labels live, the label schemes
(classes and the LF modules that vote on each), and one free-form section per later step
(`dedup`, `review`, `export`, `train`) that the step's own config dataclass validates.
"""

from __future__ import annotations

import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from pipelines.errors import ConfigError

__all__ = ["FieldMap", "SchemeConfig", "CurationConfig", "load_config", "save_config", "step_config",
           "check_choice", "SCHEMA_KINDS"]

SCHEMA_KINDS = ("text", "instruction", "chat")
_SECTIONS = ("dedup", "filter", "pii", "review", "export", "train", "label")


def check_choice(name: str, value: Any, choices) -> None:
    """A config field that takes one of `choices`: anything else is one `ConfigError` line
    naming the field (`export.pii`), the choices and the value."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def _show(value: Any) -> str:
    """A value for a one-line message: its YAML type and a short repr."""
    kind = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)
    text = repr(value)
    text = text if len(text) <= 80 else text[:77] + "..."
    return f"{kind} {text}" if value is not None else "null"


def _need_mapping(value: Any, path: str, where: str, *, optional: bool = True) -> dict:
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {path} must be a mapping (key: value lines), got "
                          f"{_show(value)}")
    return value


def _need_str_list(value: Any, path: str, where: str) -> list[str]:
    """A list of non-empty strings; a lone string is refused (it is not a list of names)."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, list):
        hint = f" (write [{value}] for one)" if isinstance(value, str) else ""
        raise ConfigError(f"{where}: {path} must be a list of names, got {_show(value)}{hint}")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"{where}: {path}[{i}] must be a non-empty name, got {_show(item)}")
    return list(value)


@dataclass
class FieldMap:
    """Which input column feeds which record field."""

    text: str = field(default="text", metadata={"help": "column with the text (schema text)"})
    prompt: str = field(default="prompt", metadata={"help": "column with the prompt (instruction)"})
    response: str = field(default="response", metadata={"help": "column with the response"})
    system: str = field(default="system", metadata={"help": "optional column with a system prompt"})
    messages: str = field(default="messages", metadata={"help": "column with chat messages"})
    label: str = field(default="label", metadata={"help": "optional column with a raw label"})
    chosen: str = field(default="chosen", metadata={
        "help": "column with the preferred answer of a preference pair"})
    rejected: str = field(default="rejected", metadata={
        "help": "column with the dispreferred answer of a preference pair"})

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
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError(f"schemes: a scheme name must be a non-empty string, got "
                              f"{_show(self.name)}")
        where = f"schemes.{self.name}.classes"
        if isinstance(self.classes, list) and any(isinstance(c, bool) for c in self.classes):
            raise ConfigError(f"{where} has a true/false value (YAML reads yes/no/on/off so), got "
                              f"{_show(self.classes)}; quote the class names: ['yes', 'no']")
        if (not isinstance(self.classes, list) or not self.classes
                or any(isinstance(c, (bool, dict, list)) or c is None or str(c).strip() == ""
                       for c in self.classes)):
            raise ConfigError(f"{where} must be a non-empty list of class names, got "
                              f"{_show(self.classes)}")
        self.classes = [str(c) for c in self.classes]   # YAML reads `1` and `yes` as non-strings
        if len(set(self.classes)) != len(self.classes):
            raise ConfigError(f"{where} must be distinct names, got {self.classes!r}")
        if (not isinstance(self.lf_modules, list)
                or not all(isinstance(m, str) and m.strip() for m in self.lf_modules)):
            raise ConfigError(f"schemes.{self.name}.lf_modules must be a list of module names, "
                              f"got {_show(self.lf_modules)}")


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
            raise ConfigError(f"gold_prefix must be a non-empty string, got "
                              f"{_show(self.gold_prefix)}")

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
        """Validate a parsed curation.yaml: every wrong type is a one-line `ConfigError` with
        the file, the key path and the value."""
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a mapping at the top level, got {_show(raw)}")
        known = {"schema", "fields", "gold_prefix", "files", "schemes", *_SECTIONS}
        unknown = {str(k) for k in raw} - known
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(sorted(known))}")
        if raw.get("schema") is not None and not isinstance(raw["schema"], str):
            raise ConfigError(f"{where}: schema must be one of {', '.join(SCHEMA_KINDS)}, got "
                              f"{_show(raw['schema'])}")
        fields_raw = _need_mapping(raw.get("fields"), "fields", where)
        known_fields = {f.name for f in fields(FieldMap)}
        bad = {str(k) for k in fields_raw} - known_fields
        if bad:
            raise ConfigError(f"{where}: fields: unknown key(s) {', '.join(sorted(bad))}; "
                              f"known: {', '.join(sorted(known_fields))}")
        try:
            fmap = FieldMap(**fields_raw)
            schemes = {}
            for name, spec in _need_mapping(raw.get("schemes"), "schemes", where).items():
                spec = _need_mapping(spec, f"schemes.{name}", where, optional=False)
                extra = {str(k) for k in spec} - {"classes", "lf_modules"}
                if extra:
                    raise ConfigError(f"schemes.{name}: unknown key(s) {', '.join(sorted(extra))};"
                                      f" known: classes, lf_modules")
                if "classes" not in spec:
                    raise ConfigError(f"schemes.{name} needs `classes:` (a list of class names)")
                lf_modules = spec.get("lf_modules")
                schemes[name] = SchemeConfig(name=name, classes=spec["classes"],
                                             lf_modules=[] if lf_modules is None else lf_modules)
            sections = {k: _need_mapping(raw[k], k, where) for k in _SECTIONS if k in raw}
            return cls(
                schema=raw.get("schema"),
                fields=fmap,
                gold_prefix=raw.get("gold_prefix", "gold_"),
                files=_need_str_list(raw.get("files"), "files", where),
                schemes=schemes,
                sections=sections,
            )
        except ConfigError as exc:
            text = str(exc)
            raise ConfigError(text if text.startswith(f"{where}:") else f"{where}: {text}") from None


def load_config(path: str | Path) -> CurationConfig:
    """Read a `curation.yaml` (a missing file gives the defaults). Whatever is wrong with the file
    (not UTF-8, not YAML, a folder, a wrong type) is one `ConfigError` line naming the place."""
    path = Path(path)
    if path.is_dir() and path.name != "curation.yaml":
        path = path / "curation.yaml"
    if path.is_dir():
        raise ConfigError(f"{path} is a folder, not a file: remove it or put the curation task in "
                          f"a file of that name")
    if not path.exists():
        return CurationConfig()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                          f"{exc.start}, line {line}); save the file as UTF-8") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError(f"{at}: invalid YAML: {' '.join(what.split())}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None
    return CurationConfig.from_dict({} if raw is None else raw, where=str(path))


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

    if section is not None and not isinstance(section, dict):
        raise ConfigError(f"curation.yaml {name} must be a mapping, got {_show(section)}")
    section = dict(section or {})
    known = {f.name for f in dc_fields(cls)}
    unknown = {str(k) for k in section} - known
    if unknown:
        raise ConfigError(f"curation.yaml {name}: unknown key(s) {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(known))}")
    hints = _type_hints(cls)
    for key, value in section.items():
        if key in hints and not _fits(value, hints[key]):
            raise ConfigError(f"curation.yaml {name}.{key} must be {_type_words(hints[key])}, "
                              f"got {_show(value)}")
    return cls(**{**section, **{k: v for k, v in overrides.items() if v is not None}})


def _type_hints(cls) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:   # an annotation this Python cannot evaluate: leave it to __post_init__
        return {}


def _fits(value: Any, hint: Any) -> bool:
    """Whether a YAML value fits a dataclass field's annotation (the plain types a config uses;
    anything else is left to the dataclass's own `__post_init__`)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is typing.Literal:
        return value in args
    if hint is list or origin is list or origin is tuple or hint is tuple:
        return isinstance(value, (list, tuple)) and (
            not args or all(_fits(v, args[0]) for v in value))
    if hint is dict or origin is dict:
        return isinstance(value, dict)
    return True


def _type_words(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_words(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, args))
    if origin in (list, tuple):
        return f"a list of {_type_words(args[0])}" if args else "a list"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            dict: "a mapping", type(None): "null"}.get(hint, getattr(hint, "__name__", str(hint)))
