"""`LabelConfig`: how a labeling run applies LFs and aggregates their votes."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from pipelines.config import check_choice, step_config
from pipelines.errors import ConfigError

__all__ = ["LabelConfig", "MODELS", "ENGINES"]

MODELS = ("auto", "label_model", "majority")
ENGINES = ("fast", "pandas", "dask")


@dataclass
class LabelConfig:
    """One labeling run. Fills the CLI options, the `label:` section of curation.yaml and the
    studio's form alike."""

    scheme: str | None = field(default=None, metadata={
        "help": "label scheme from curation.yaml (default: the first declared)"})
    model: str = field(default="auto", metadata={
        "help": "auto (the better of label_model/majority on gold labels) | label_model | majority"})
    engine: str = field(default="fast", metadata={
        "help": "fast (in-process, row tuples) | pandas (snorkel PandasLFApplier) | dask"})
    dask_address: str | None = field(default=None, metadata={
        "help": "scheduler address of an existing Dask cluster (engine dask); default LocalCluster"})
    dask_workers: int = field(default=2, metadata={"help": "LocalCluster workers (engine dask)"})
    epochs: int = field(default=500, metadata={"help": "LabelModel training epochs"})
    lr: float = field(default=0.01, metadata={"help": "LabelModel learning rate"})
    seed: int = field(default=123, metadata={"help": "LabelModel seed"})
    wrong_examples: int = field(default=10, metadata={
        "help": "wrong examples kept per LF in the analysis"})
    fault_examples: int = field(default=5, metadata={
        "help": "record ids kept per faulting LF"})
    time_limit_s: float = field(default=600.0, metadata={
        "help": "seconds the LFs may take on all records before the run stops as failed, "
                "naming the LF that was running (0: no limit)"})
    vetoes: dict[str, str] | None = field(default=None, metadata={
        "help": "quality-filter rules that force a label whatever the LFs say, e.g. "
                "{'refusal': 'REJECT'} (needs `curate filter` signals)"})

    def __post_init__(self):
        check_choice("label.model", self.model, MODELS)
        check_choice("label.engine", self.engine, ENGINES)
        for name in ("epochs", "dask_workers", "wrong_examples", "fault_examples"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < (
                    0 if name.endswith("examples") else 1):
                raise ConfigError(f"label.{name} must be a positive integer, got {value!r}")
        if not isinstance(self.time_limit_s, (int, float)) or isinstance(self.time_limit_s, bool) \
                or self.time_limit_s < 0:
            raise ConfigError(f"label.time_limit_s must be a number of seconds >= 0 (0: no "
                              f"limit), got {self.time_limit_s!r}")
        if not isinstance(self.lr, (int, float)) or not self.lr > 0:
            raise ConfigError(f"label.lr must be a positive number, got {self.lr!r}")
        if self.vetoes is not None:
            if not isinstance(self.vetoes, dict):
                raise ConfigError(f"label.vetoes must map a rule to a class, got {self.vetoes!r}")
            from pipelines.filters.rules import parse_rule

            for rule in self.vetoes:
                parse_rule(rule)
        if self.dask_address is not None and self.engine != "dask":
            raise ConfigError(f"label.dask_address {self.dask_address!r} needs engine 'dask', "
                              f"got engine {self.engine!r}")

    @classmethod
    def from_section(cls, section: dict[str, Any], **overrides: Any) -> "LabelConfig":
        """Build from curation.yaml's `label:` section, then apply non-None overrides (CLI)."""
        return step_config(cls, "label", section, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
