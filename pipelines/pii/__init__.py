"""PII: pattern + gazetteer detection, stored spans, and redaction (placeholders or consistent
surrogates) for export."""

from pipelines.pii.config import PiiConfig
from pipelines.pii.detect import (PII_TYPES, Span, detect, iban_ok, luhn_ok, metadata_names,
                                  name_edit_names, pair_names)
from pipelines.pii.pii import PiiResult, run_pii
from pipelines.pii.redact import REDACTION_MODES, Redactor, placeholder

__all__ = ["PiiConfig", "PII_TYPES", "Span", "detect", "iban_ok", "luhn_ok", "metadata_names",
           "name_edit_names", "pair_names",
           "PiiResult", "run_pii", "REDACTION_MODES", "Redactor", "placeholder"]
