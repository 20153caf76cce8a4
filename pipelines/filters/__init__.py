"""Quality filters: per-record signals (length, repetition, phrases, markup, mojibake, language,
chat conditions), rules over them and reversible exclusion flags."""

from pipelines.filters.config import (
    DEFAULT_BOILERPLATE_PHRASES, DEFAULT_REFUSAL_PHRASES, DEFAULT_RULES, FILTERS, FilterConfig,
)
from pipelines.filters.filters import (
    FilterResult, preview_rules, run_quality_filters, set_filter_override, signals_for,
    stored_signals,
)
from pipelines.filters.rules import Rule, fired_rules, parse_rule
from pipelines.filters.signals import SIGNAL_TYPES, compute_signals, language, repetition

__all__ = [
    "FilterConfig", "FILTERS", "DEFAULT_RULES", "DEFAULT_REFUSAL_PHRASES",
    "DEFAULT_BOILERPLATE_PHRASES", "FilterResult", "run_quality_filters", "set_filter_override",
    "signals_for", "preview_rules", "stored_signals", "Rule", "parse_rule", "fired_rules", "SIGNAL_TYPES", "compute_signals",
    "language", "repetition",
]
