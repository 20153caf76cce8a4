"""Text hygiene for every ingested row, whatever its format.

- Control characters are stripped, not rejected: NUL, the C0 controls other than tab, newline
  and carriage return, DEL, the C1 controls (U+0080-U+009F) and whole ANSI escape sequences
  (`ESC [ 31 m`, `ESC ] ... BEL`). They carry no text, they break terminals and tools
  downstream, and a scraped data set holds them by accident; rejecting the row would cost the
  text around them. What was stripped is counted per field (`FileSummary.cleaned`).
- A lone surrogate (`"\\ud800"` from a JSON escape) is not Unicode text: the row is rejected.
- A row whose strings (keys and values) hold more than `max_record_chars` characters is
  rejected, and so is a value nested deeper than `MAX_DEPTH` lists/objects: the same limits for
  every format.
"""

from __future__ import annotations

import re
from typing import Any

from pipelines.errors import InputError

__all__ = ["clean_values", "strip_controls", "shown", "MAX_DEPTH", "nesting_error"]

MAX_DEPTH = 64
# An escape sequence first (so its parameters go with it), then single control characters.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_UNSHOWABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def shown(name: str) -> str:
    """A key as an error message names it: one printable line (controls, newlines and lone
    surrogates written as `\\x0a`, `\\ud800`)."""
    return _UNSHOWABLE.sub(lambda m: (f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                                      else f"\\u{ord(m.group()):04x}"), name)


def strip_controls(s: str) -> str:
    """`s` without ANSI escape sequences and control characters (tab and newlines kept)."""
    if s.isprintable():   # the fast path: no control, no surrogate
        return s
    return _CONTROL.sub("", _ANSI.sub("", s))


def nesting_error(where: dict[str, Any]) -> InputError:
    return InputError(f"nested more than {MAX_DEPTH} levels deep (lists/objects); flatten it",
                      **where)


class _Walk:
    def __init__(self, where: dict[str, Any], max_chars: int):
        self.where, self.max_chars, self.chars = where, max_chars, 0

    def text(self, s: str, field: str) -> tuple[str, bool]:
        self.chars += len(s)
        if self.chars > self.max_chars:
            raise InputError(f"the record holds more than max_record_chars {self.max_chars:,} "
                             f"characters", **self.where, field=field)
        if s.isprintable():
            return s, False
        bad = _SURROGATE.search(s)
        if bad:
            raise InputError(f"lone surrogate \\u{ord(bad.group()):04x} at character "
                             f"{bad.start() + 1} is not Unicode text (a JSON \\u escape of half a "
                             f"character pair?)", **self.where, field=field)
        out = _CONTROL.sub("", _ANSI.sub("", s))
        return out, out != s

    def value(self, v: Any, field: str, depth: int) -> tuple[Any, bool]:
        if isinstance(v, str):
            return self.text(v, field)
        if isinstance(v, (list, tuple, dict)):
            if depth >= MAX_DEPTH:
                raise nesting_error({**self.where, "field": field})
            changed = False
            if isinstance(v, dict):
                out = {}
                for k, item in v.items():
                    k2, c1 = self.text(k, field) if isinstance(k, str) else (k, False)
                    out[k2], c2 = self.value(item, field, depth + 1)
                    changed = changed or c1 or c2
                return out, changed
            items = []
            for item in v:
                item, c = self.value(item, field, depth + 1)
                items.append(item)
                changed = changed or c
            return items, changed
        return v, False


def clean_values(values: dict[str, Any], *, max_chars: int, file: str, row: int,
                 line: int | None) -> tuple[dict[str, Any], list[str]]:
    """`values` with control characters stripped, and the top-level fields that had some.

    Raises `InputError` (naming file, row and field) for a lone surrogate, a record over
    `max_chars` characters, or nesting deeper than `MAX_DEPTH`.
    """
    walk = _Walk(dict(file=file, row=row, line=line), max_chars)
    out: dict[str, Any] = {}
    cleaned: list[str] = []
    for key, value in values.items():
        name = key if isinstance(key, str) else str(key)
        label = shown(name)
        new_key, key_changed = walk.text(name, label) if isinstance(key, str) else (key, False)
        new_value, changed = walk.value(value, label, 1)
        if new_key in out:   # two keys that differ only by a control character
            raise InputError("duplicate key once control characters are stripped",
                             **walk.where, field=shown(new_key))
        out[new_key] = new_value
        if key_changed or changed:
            cleaned.append(new_key)
    return out, cleaned
