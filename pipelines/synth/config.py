"""`CounterfactualConfig`: which accepted records become sources, which edits, how many."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from pipelines.errors import ConfigError
from pipelines.synth.edits import EDIT_KINDS

__all__ = ["CounterfactualConfig"]


@dataclass
class CounterfactualConfig:
    """Options of one `curate synth counterfactuals` run."""

    scheme: str | None = field(default=None, metadata={
        "help": "label scheme whose accepted records are the sources and whose LFs must catch "
                "each edit (default: the first in curation.yaml)"})
    n: int = field(default=100, metadata={"help": "counterfactuals to make at most"})
    edits: list[str] = field(default_factory=lambda: list(EDIT_KINDS), metadata={
        "help": f"edit kinds, tried in turn per source: {', '.join(EDIT_KINDS)}"})
    accept_label: str = field(default="ACCEPT", metadata={
        "help": "the final label a source must have (a faithful response)"})
    reject_label: str = field(default="REJECT", metadata={
        "help": "the class an LF must vote for the counterfactual to count as caught"})
    min_confidence: float = field(default=0.8, metadata={
        "help": "a label-model ACCEPT needs at least this confidence; human labels always pass"})
    include_gold: bool = field(default=False, metadata={
        "help": "also use gold-labelled records as sources (off: they are the held-out eval set)"})
    seed: int = field(default=0, metadata={"help": "seed of the edit choices"})

    def __post_init__(self):
        if isinstance(self.edits, str):
            self.edits = [e.strip() for e in self.edits.split(",") if e.strip()]
        unknown = [e for e in self.edits if e not in EDIT_KINDS]
        if not self.edits or unknown:
            raise ConfigError(f"synth.edits must name edits among {', '.join(EDIT_KINDS)}, got "
                              f"{self.edits!r}")
        if not isinstance(self.n, int) or isinstance(self.n, bool) or self.n < 1:
            raise ConfigError(f"synth.n must be a positive integer, got {self.n!r}")
        if not isinstance(self.min_confidence, (int, float)) or not 0 <= self.min_confidence <= 1:
            raise ConfigError(f"synth.min_confidence must be in [0, 1], got {self.min_confidence!r}")
        if self.accept_label == self.reject_label:
            raise ConfigError(f"synth.accept_label and reject_label must differ, both "
                              f"{self.accept_label!r}")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
