"""Configuration of deduplication and similarity filtering."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from pipelines.config import step_config
from pipelines.errors import ConfigError

__all__ = ["DedupConfig", "FilterConfig", "INDEX_KINDS"]

INDEX_KINDS = ("auto", "flat", "hnsw", "ivf")


def _unit(name: str, value: Any, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
        ((0 <= value <= 1) if allow_zero else (0 < value <= 1))
    if not ok:
        rng = "[0, 1]" if allow_zero else "(0, 1]"
        raise ConfigError(f"dedup.{name} must be a number in {rng}, got {value!r}")


@dataclass
class DedupConfig:
    """How duplicates are found. Fills `curate dedup` options and curation.yaml's `dedup:`."""

    threshold: float = field(default=0.92, metadata={
        "help": "cosine at or above which two records are duplicates on meaning alone (their "
                "facts must still not conflict); in (0, 1]"})
    candidate_threshold: float = field(default=0.70, metadata={
        "help": "cosine floor of the FAISS candidate search; a pair between this and "
                "`threshold` merges only on evidence: agreeing facts or high lexical overlap"})
    lexical_threshold: float = field(default=0.80, metadata={
        "help": "character 5-gram Jaccard at or above which a candidate is a (typo'd) copy"})
    min_shared_facts: int = field(default=2, metadata={
        "help": "how many facts (amounts, dates, ids, numbers) two records must share, with none "
                "conflicting, to merge below `threshold`"})
    verify: bool = field(default=True, metadata={
        "help": "check facts and lexical overlap; False = cosine >= threshold alone (baseline)"})
    same_prompt: bool = field(default=True, metadata={
        "help": "instruction data: one prompt with different responses is a cluster; keep one, "
                "a reviewer may keep others"})
    model: str = field(default="default", metadata={"help": "embedding model (see EmbedConfig)"})
    batch_size: int = field(default=64, metadata={"help": "texts per encode() call"})
    index: str = field(default="auto", metadata={
        "help": "FAISS index: auto (flat up to `flat_max` vectors, HNSW above), flat, hnsw, ivf"})
    flat_max: int = field(default=50_000, metadata={
        "help": "largest collection searched with the exact flat index when index=auto"})
    neighbours: int = field(default=16, metadata={
        "help": "nearest neighbours fetched per record as candidates"})
    fact_blocking: bool = field(default=True, metadata={
        "help": "also compare records sharing an identifier or an amount on a date, however "
                "far down each other's neighbour list they rank"})
    block_max: int = field(default=50, metadata={
        "help": "skip a shared fact held by more records than this (not identifying)"})

    def __post_init__(self):
        _unit("threshold", self.threshold)
        _unit("candidate_threshold", self.candidate_threshold)
        _unit("lexical_threshold", self.lexical_threshold)
        if self.candidate_threshold > self.threshold:
            self.candidate_threshold = self.threshold
        if self.index not in INDEX_KINDS:
            raise ConfigError(f"dedup.index must be one of {', '.join(INDEX_KINDS)}, "
                              f"got {self.index!r}")
        for name in ("min_shared_facts", "batch_size", "flat_max", "neighbours", "block_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"dedup.{name} must be a positive integer, got {value!r}")
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError(f"dedup.model must be a model name or path, got {self.model!r}")

    @classmethod
    def from_section(cls, section: dict[str, Any], **overrides: Any) -> "DedupConfig":
        """From curation.yaml's `dedup:` section, with CLI values (not None) on top."""
        return step_config(cls, "dedup", section, **overrides)

    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class FilterConfig:
    """`curate filter`: exclude records far from a set of on-topic exemplars."""

    min_sim: float = field(default=0.5, metadata={
        "help": "records whose best cosine to any exemplar is below this are excluded"})
    model: str = field(default="default", metadata={"help": "embedding model"})

    def __post_init__(self):
        if isinstance(self.min_sim, bool) or not isinstance(self.min_sim, (int, float)) \
                or not -1 <= self.min_sim <= 1:
            raise ConfigError(f"filter min_sim must be a number in [-1, 1], got {self.min_sim!r}")
