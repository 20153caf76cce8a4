"""Rules over signals: `length_words < 3`, `lang != en`, `refusal`, `not mojibake`.

Grammar (one comparison per rule; a record is excluded when any rule holds):
    rule  := ["not"] SIGNAL | SIGNAL OP VALUE
    OP    := < | <= | > | >= | == | !=
    VALUE := a number, true/false, or a word / quoted text (language codes: en, "de")
A rule over a missing value (a signal its filter did not compute) never holds.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from pipelines.errors import ConfigError
from pipelines.filters.signals import SIGNAL_TYPES, check_language

__all__ = ["Rule", "parse_rule", "fired_rules"]

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, ">": operator.gt,
}
_RULE_RE = re.compile(r"^\s*(?P<name>[A-Za-z_]\w*)\s*(?:(?P<op><=|>=|==|!=|<|>)\s*(?P<value>.+?))?\s*$")


@dataclass(frozen=True)
class Rule:
    text: str
    signal: str
    op: str | None = None     # None: the signal's truth value
    value: Any = None
    negate: bool = False

    def holds(self, values: Mapping[str, Any]) -> bool:
        got = values.get(self.signal)
        if got is None:
            return False
        if self.op is None:
            return (not got) if self.negate else bool(got)
        return bool(_OPS[self.op](got, self.value))


def _literal(raw: str, kind: type, rule: str, signal: str) -> Any:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        raw_text, quoted = raw[1:-1], True
    else:
        raw_text, quoted = raw, False
    if kind is str:
        if not quoted and not re.fullmatch(r"[\w-]+", raw_text):
            raise ConfigError(f"rule {rule!r}: {raw!r} is not a value (quote text: \"en\")")
        if signal == "lang":
            check_language(raw_text, where=f"rule {rule!r}")
        return raw_text
    if kind is bool:
        if raw_text.lower() in ("true", "1", "yes"):
            return True
        if raw_text.lower() in ("false", "0", "no"):
            return False
        raise ConfigError(f"rule {rule!r}: {signal} is a flag; compare it with true or false, "
                          f"not {raw!r}")
    try:
        return float(raw_text)
    except ValueError:
        raise ConfigError(f"rule {rule!r}: {signal} is a number; {raw!r} is not") from None


def parse_rule(text: Any, signals: set[str] | None = None) -> Rule:
    """A `Rule` from its text; `ConfigError` naming the rule and what is wrong with it.

    Args:
        signals: the signals that will be computed (default: every known signal).
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"rule {text!r}: empty rule (e.g. 'length_words < 3')")
    body, negate = text.strip(), False
    if body.lower().startswith("not "):
        body, negate = body[4:], True
    m = _RULE_RE.match(body)
    if not m:
        raise ConfigError(f"rule {text!r}: malformed; write SIGNAL, not SIGNAL or SIGNAL OP VALUE "
                          f"with OP one of {' '.join(_OPS)}")
    name, op, raw = m.group("name"), m.group("op"), m.group("value")
    if name not in SIGNAL_TYPES:
        raise ConfigError(f"rule {text!r}: unknown signal {name!r}; known: "
                          f"{', '.join(SIGNAL_TYPES)}")
    if signals is not None and name not in signals:
        raise ConfigError(f"rule {text!r}: signal {name!r} belongs to a disabled filter")
    kind = SIGNAL_TYPES[name]
    if op is None:
        if kind is not bool and not negate and kind is str:
            raise ConfigError(f"rule {text!r}: {name} is text; compare it (e.g. '{name} != en')")
        return Rule(text.strip(), name, negate=negate)
    if negate:
        raise ConfigError(f"rule {text!r}: 'not' goes with a bare signal only (use != instead)")
    if kind in (str, bool) and op not in ("==", "!="):
        raise ConfigError(f"rule {text!r}: {name} can only be compared with == or !=")
    return Rule(text.strip(), name, op, _literal(raw, kind, text, name))


def fired_rules(rules: list[Rule], values: Mapping[str, Any]) -> list[str]:
    return [r.text for r in rules if r.holds(values)]
