"""`RoiConfig`: what the curation-ROI benchmark compares and how hard each arm trains."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from pipelines.errors import ConfigError

__all__ = ["RoiConfig", "ARM_NAMES", "DEFAULT_REVIEW_BUDGETS"]

DEFAULT_REVIEW_BUDGETS = (0, 50, 200, 500)
BASE_ARMS = ("raw", "majority", "label_model")


def ARM_NAMES(budgets: tuple[int, ...] = DEFAULT_REVIEW_BUDGETS) -> list[str]:  # noqa: N802
    """The arms in report order: raw, majority, label_model, curated_<N> per review budget."""
    return [*BASE_ARMS, *(f"curated_{n}" for n in budgets)]


@dataclass
class RoiConfig:
    """One ROI benchmark run. Fills `curate roi` and `bench/roi.py` options alike."""

    scheme: str | None = field(default=None, metadata={
        "help": "label scheme from curation.yaml (default: the first declared)"})
    seeds: int = field(default=3, metadata={
        "help": "training seeds per arm; the confidence interval is over these"})
    review_budgets: tuple[int, ...] = field(default=DEFAULT_REVIEW_BUDGETS, metadata={
        "help": "N for the curated_<N> arms: the N least-confident records get a (simulated) "
                "human label"})
    near_dup_threshold: float = field(default=0.92, metadata={
        "help": "cosine at or above which a training record counts as a near-duplicate of a gold "
                "record and is excluded from every arm (besides dedup-cluster co-members)"})
    max_train: int = field(default=2400, metadata={
        "help": "cap on each arm's training records (a seeded sample above it) to bound time"})
    max_eval: int | None = field(default=None, metadata={
        "help": "cap on gold evaluation records (None: all)"})
    epochs: float = field(default=2.0, metadata={"help": "passes over each arm's training set"})
    batch_size: int = field(default=16, metadata={"help": "training batch size"})
    max_len: int = field(default=128, metadata={"help": "tokens per record (truncation)"})
    lr: float = field(default=1e-3, metadata={"help": "AdamW learning rate (LoRA + head)"})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank"})
    max_steps: int | None = field(default=None, metadata={
        "help": "cap on optimizer steps per fit (quick mode)"})
    truth: str | None = field(default=None, metadata={
        "help": "ground-truth JSONL (file, row, true_<scheme>) that simulates the reviewer; "
                "default: truth.jsonl beside the ingested files"})
    model_path: str | None = field(default=None, metadata={
        "help": "encoder folder (default: the packaged all-MiniLM-L6-v2)"})
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda"})
    cpu_threads: int = field(default=1, metadata={
        "help": "torch intra-op threads on CPU (1: on a shared box more threads only spin)"})
    head: str = field(default="lora", metadata={
        "help": "lora: LoRA + classifier head on the encoder (the product's classifier head); "
                "probe: a linear head on the frozen encoder's cached sentence embeddings (seconds "
                "on a CPU)"})

    def __post_init__(self):
        for name in ("seeds", "max_train", "batch_size", "max_len", "lora_r", "cpu_threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"roi.{name} must be a positive integer, got {value!r}")
        for name in ("max_eval", "max_steps"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ConfigError(f"roi.{name} must be a positive integer or None, got {value!r}")
        if isinstance(self.review_budgets, (int, str)):
            self.review_budgets = (self.review_budgets,)
        try:
            budgets = tuple(int(n) for n in self.review_budgets)
        except (TypeError, ValueError):
            raise ConfigError(f"roi.review_budgets must be whole numbers, got "
                              f"{self.review_budgets!r}") from None
        if not budgets or any(n < 0 for n in budgets) or len(set(budgets)) != len(budgets):
            raise ConfigError(f"roi.review_budgets must be distinct numbers >= 0, got "
                              f"{self.review_budgets!r}")
        self.review_budgets = budgets
        if not isinstance(self.near_dup_threshold, (int, float)) or \
                not 0 < self.near_dup_threshold <= 1:
            raise ConfigError(f"roi.near_dup_threshold must be in (0, 1], got "
                              f"{self.near_dup_threshold!r}")
        for name in ("epochs", "lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"roi.{name} must be a positive number, got {value!r}")
        if self.head not in ("lora", "probe"):
            raise ConfigError(f"roi.head must be lora or probe, got {self.head!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"roi.device must be auto, cpu or cuda, got {self.device!r}")

    @classmethod
    def quick(cls, **overrides: Any) -> "RoiConfig":
        """The CI-sized run: few records, few steps; checks mechanics, not the result."""
        values = dict(seeds=2, review_budgets=(0, 10), max_train=48, max_eval=32, epochs=1.0,
                      batch_size=8, max_len=48, max_steps=3)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def arm_names(self) -> list[str]:
        return ARM_NAMES(self.review_budgets)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
