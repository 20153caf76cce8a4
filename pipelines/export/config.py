"""`ExportConfig`: which records an export takes, how it splits them and how it renders them."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from pipelines.config import check_choice, step_config
from pipelines.errors import ConfigError

__all__ = ["ExportConfig", "FORMATS", "SYNTHETIC", "PREFERENCE_STYLES", "GOLD_TRAIN"]

FORMATS = ("chat", "alpaca", "classification", "preference")
SYNTHETIC = ("include", "exclude", "cap")
PREFERENCE_STYLES = ("conversational", "standard")
GOLD_TRAIN = ("auto", "never", "always")


@dataclass
class ExportConfig:
    """Options of one export; `curation.yaml`'s `export:` section fills the defaults."""

    scheme: str | None = field(default=None, metadata={
        "help": "label scheme that selects the records (default: the first in curation.yaml)"})
    format: str | None = field(default=None, metadata={
        "help": "chat | alpaca | classification | preference (default: chat for an "
                "ACCEPT/REJECT scheme on instruction/chat data, classification otherwise); "
                "preference: prompt/chosen/rejected pairs from counterfactuals and reviewer "
                "corrections (TRL DPOTrainer)"})
    eval_fraction: float = field(default=0.1, metadata={
        "help": "share of records (by record-id hash) that go to eval.jsonl"})
    gold_train: str = field(default="auto", metadata={
        "help": "may gold-labelled records train? never: every gold record goes to eval; auto: "
                "only when no non-gold record would train (an all-gold data set), then all but "
                "gold_eval_share of them; always: all but gold_eval_share of them"})
    gold_eval_share: float = field(default=0.2, metadata={
        "help": "share of gold records (by record-id hash) kept for eval when gold trains"})
    min_confidence: float = field(default=0.8, metadata={
        "help": "a label-model label needs at least this confidence; human labels always pass"})
    accept_labels: list[str] | None = field(default=None, metadata={
        "help": "final labels that make a record exportable (default: ACCEPT when the scheme has "
                "it, otherwise every class)"})
    system_prompt: str | None = field(default=None, metadata={
        "help": "system message prepended in the chat format"})
    include_unlabelled: bool = field(default=False, metadata={
        "help": "also export records the scheme has no label for (chat/alpaca only)"})
    pii: str = field(default="placeholder", metadata={
        "help": "PII in the exported rows: placeholder (<EMAIL>, <PERSON>...), surrogate (the "
                "same value always becomes the same fake one) or none (left as it is)"})
    allow_pii: bool = field(default=False, metadata={
        "help": "write the export even when detected PII remains in it (the manifest says so)"})
    synthetic: str = field(default="include", metadata={
        "help": "synthetic records (meta.synthetic): include | exclude | cap (at most "
                "synthetic_cap of each label's rows, or of the preference pairs); they go to "
                "train only, eval stays real (preference pairs split by their source record)"})
    synthetic_cap: float = field(default=0.3, metadata={
        "help": "with synthetic: cap, the largest share synthetic rows may take"})
    preference_style: str = field(default="conversational", metadata={
        "help": "preference rows as conversational (prompt = messages, chosen/rejected = one "
                "assistant message) or standard (plain strings)"})

    def __post_init__(self):
        if self.format is not None:
            check_choice("export.format", self.format, FORMATS)
        if not isinstance(self.eval_fraction, (int, float)) or not 0.0 <= self.eval_fraction < 1.0:
            raise ConfigError(f"export.eval_fraction must be in [0, 1), got {self.eval_fraction!r}")
        check_choice("export.gold_train", self.gold_train, GOLD_TRAIN)
        if not isinstance(self.gold_eval_share, (int, float)) or isinstance(self.gold_eval_share, bool) \
                or not 0.0 < self.gold_eval_share < 1.0:
            raise ConfigError(f"export.gold_eval_share must be in (0, 1), got {self.gold_eval_share!r}")
        if not isinstance(self.min_confidence, (int, float)) or not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError(f"export.min_confidence must be in [0, 1], got {self.min_confidence!r}")
        if self.accept_labels is not None:
            if isinstance(self.accept_labels, str):
                self.accept_labels = [s.strip() for s in self.accept_labels.split(",") if s.strip()]
            if not self.accept_labels:
                raise ConfigError("export.accept_labels must name at least one label")
            self.accept_labels = [str(x) for x in self.accept_labels]
        from pipelines.pii.redact import REDACTION_MODES

        check_choice("export.pii", self.pii, REDACTION_MODES)
        if not isinstance(self.allow_pii, bool):
            raise ConfigError(f"export.allow_pii must be true or false, got {self.allow_pii!r}")
        check_choice("export.synthetic", self.synthetic, SYNTHETIC)
        if (not isinstance(self.synthetic_cap, (int, float)) or isinstance(self.synthetic_cap, bool)
                or not 0.0 <= self.synthetic_cap < 1.0):
            raise ConfigError(f"export.synthetic_cap must be in [0, 1), got {self.synthetic_cap!r}")
        check_choice("export.preference_style", self.preference_style, PREFERENCE_STYLES)
        if self.system_prompt is not None and not isinstance(self.system_prompt, str):
            raise ConfigError(f"export.system_prompt must be text, got {self.system_prompt!r}")

    @classmethod
    def from_section(cls, section: dict[str, Any], **overrides: Any) -> "ExportConfig":
        """Build from curation.yaml's `export:` mapping, then apply non-None overrides."""
        return step_config(cls, "export", section, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
