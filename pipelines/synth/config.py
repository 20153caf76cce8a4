"""`CounterfactualConfig`: which accepted records become sources, which edits, how many."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from pipelines.errors import ConfigError
from pipelines.synth.edits import EDIT_KINDS

__all__ = ["CounterfactualConfig", "PrivateCopyConfig", "SCOPES"]


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


SCOPES = ("set", "record")


@dataclass
class PrivateCopyConfig:
    """Options of one `curate synth private` run (privacy-safe copies, `private.py`)."""

    n: int | None = field(default=None, metadata={
        "help": "copies to make at most (default: one per source record)"})
    ids: list[str] | None = field(default=None, metadata={
        "help": "copy only these record ids"})
    scope: str = field(default="set", metadata={
        "help": "set: a real value gets the same fake in every record (one person stays one "
                "person across claims); record: fakes are drawn per record (copies cannot be "
                "linked through them)"})
    seed: int = field(default=0, metadata={
        "help": "salt of the fakes; keep it private when copies leave the building (with the "
                "seed, a guessed real value's fake can be recomputed)"})
    amounts: bool = field(default=True, metadata={
        "help": "perturb dollar amounts (with a date and a town, an amount can identify a claim)"})
    amount_jitter: float = field(default=0.2, metadata={
        "help": "amounts move by a factor within this of 1 (at least 0.05)"})
    date_shift_days: int = field(default=30, metadata={
        "help": "dates move by one offset of 1..this many days, earlier or later"})
    include_gold: bool = field(default=False, metadata={
        "help": "also copy gold-labelled records (off: they are the held-out evaluation set)"})
    include_excluded: bool = field(default=False, metadata={
        "help": "also copy records excluded by dedup or the quality filter"})
    check_labels: bool = field(default=True, metadata={
        "help": "run every scheme's LFs on source and copy; a scheme whose votes change keeps "
                "no gold label on the copy"})

    def __post_init__(self):
        if self.scope not in SCOPES:
            raise ConfigError(f"synth.scope must be one of {', '.join(SCOPES)}, got {self.scope!r}")
        if self.n is not None and (not isinstance(self.n, int) or isinstance(self.n, bool)
                                   or self.n < 1):
            raise ConfigError(f"synth.n must be a positive integer, got {self.n!r}")
        if isinstance(self.ids, str):
            self.ids = [i.strip() for i in self.ids.split(",") if i.strip()]
        if not isinstance(self.amount_jitter, (int, float)) or not 0 <= self.amount_jitter < 1:
            raise ConfigError(f"synth.amount_jitter must be in [0, 1), got {self.amount_jitter!r}")
        if not isinstance(self.date_shift_days, int) or self.date_shift_days < 1:
            raise ConfigError(f"synth.date_shift_days must be a positive integer, got "
                              f"{self.date_shift_days!r}")

    def to_dict(self) -> dict[str, Any]:
        # the seed is a secret of the copies: the run's parameters say only whether one was set
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "seed"}
        d["seeded"] = self.seed != 0
        return d
