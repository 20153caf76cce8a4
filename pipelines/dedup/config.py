"""Configuration of deduplication and similarity filtering."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any

from pipelines.config import check_choice, step_config
from pipelines.embed.config import EmbedConfig
from pipelines.errors import ConfigError

__all__ = ["DedupConfig", "FilterConfig", "INDEX_KINDS", "STAGES"]

INDEX_KINDS = ("auto", "flat", "hnsw", "ivf")


def _unit(name: str, value: Any, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
        ((0 <= value <= 1) if allow_zero else (0 < value <= 1))
    if not ok:
        rng = "[0, 1]" if allow_zero else "(0, 1]"
        raise ConfigError(f"dedup.{name} must be a number in {rng}, got {value!r}")


# Which stage of a run each `DedupConfig` field feeds (its metadata "stage"). The caches are keyed
# by the fields of the stages they hold, so a new field is declared once and the keys follow:
# embeddings (the vectors) -> candidates (the FAISS search, fact blocking; cached per workspace in
# indexes/) -> verification (the checks, redone each run). None: changes no result (batch size).
STAGES = ("embeddings", "candidates", "verification")


def _field(default: Any, stage: str | None, help: str) -> Any:
    return field(default=default, metadata={"help": help, "stage": stage})


@dataclass
class DedupConfig:
    """How duplicates are found. Fills `curate dedup` options and curation.yaml's `dedup:`."""

    exact: bool = _field(
        True, "candidates",
        "stage 1: fold records with the same text ignoring case, spacing and punctuation")
    fuzzy: bool = _field(
        True, "candidates",
        "stage 2: MinHash-LSH over character 5-grams of the whole text (datasketch) finds "
        "lexical near copies, whatever their embedding says")
    semantic: bool = _field(
        True, "candidates",
        "stage 3: embeddings + FAISS nearest neighbours find paraphrases (False: no model)")
    threshold: float = _field(
        0.92, "verification",
        "cosine at or above which two records are duplicates on meaning, when their facts agree "
        "(share one or more, none conflicting); in (0, 1]")
    candidate_threshold: float = _field(
        0.70, "candidates",
        "cosine floor of the FAISS candidate search; a pair below `threshold` merges only on "
        "lexical evidence or as a paraphrase sharing an identifier")
    lexical_threshold: float = _field(
        0.80, "verification",
        "character 5-gram Jaccard of the whole text at or above which a pair is a (typo'd or "
        "reworded) copy, when no fact conflicts")
    fuzzy_threshold: float = _field(
        0.70, "candidates",
        "MinHash-LSH Jaccard at which the fuzzy stage proposes a pair (verified exactly "
        "against `lexical_threshold` after)")
    near_copy_threshold: float = _field(
        0.60, "verification",
        "lexical Jaccard at which a pair with cosine >= `paraphrase_threshold` and agreeing "
        "facts is a (typo'd, reordered) copy")
    paraphrase_threshold: float = _field(
        0.80, "verification",
        "cosine at or above which a pair sharing `min_shared_facts` facts, one of them an "
        "identifier, email or URL, is a paraphrase")
    embedding_max_chars: int = _field(
        2000, "verification",
        "longest text (characters, ~500 tokens) on which a cosine is evidence: above it the "
        "embedding rules (cosine, paraphrase) do not merge and only lexical evidence does "
        "(a long text's vector says what it is about, not what it says)")
    min_shared_facts: int = _field(
        2, "verification",
        "facts a paraphrase below `threshold` must share (one identifying), none conflicting")
    same_conversation: bool = _field(
        False, "candidates",
        "compare segments of one source conversation (same file and conversation id, see "
        "docs/dedup.md); False: they are never duplicates of each other")
    # a candidates field too: without the checks there is no fact blocking
    verify: bool = _field(
        True, "candidates",
        "check facts and evidence; False = cosine >= threshold alone (the old plain rule)")
    same_prompt: bool = _field(
        True, "candidates",
        "instruction data: one prompt with different responses is a cluster; keep one, a "
        "reviewer may keep others")
    model: str = _field(
        "auto", "embeddings",
        "embedding model: auto (the static model distilled from MiniLM on CPU, MiniLM on a "
        "GPU), static, default (the packaged MiniLM), a folder, or a cached id")
    batch_size: int = _field(64, None, "texts per encode() call")
    scheduler: str | None = _field(
        None, None,
        "address of a Dask scheduler (tcp://host:8786) whose workers compute the embeddings and "
        "the MinHash signatures; default: both here, no Dask (results are the same)")
    index: str = _field(
        "auto", "candidates",
        "FAISS index: auto (flat up to `flat_max` vectors, HNSW above), flat, hnsw, ivf")
    flat_max: int = _field(
        55_000, "candidates",
        "largest collection searched with the exact flat index when index=auto")
    neighbours: int = _field(
        16, "candidates", "nearest neighbours fetched per record as candidates")
    fact_blocking: bool = _field(
        True, "candidates",
        "also compare records sharing an identifier or an amount on a date, however far down "
        "each other's neighbour list they rank")
    block_max: int = _field(
        50, "candidates", "skip a shared fact held by more records than this (not identifying)")

    def __post_init__(self):
        _unit("threshold", self.threshold)
        _unit("candidate_threshold", self.candidate_threshold)
        _unit("lexical_threshold", self.lexical_threshold)
        _unit("fuzzy_threshold", self.fuzzy_threshold)
        _unit("paraphrase_threshold", self.paraphrase_threshold)
        _unit("near_copy_threshold", self.near_copy_threshold)
        for name in ("exact", "fuzzy", "semantic", "same_conversation", "verify", "same_prompt",
                     "fact_blocking"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"dedup.{name} must be true or false, got "
                                  f"{getattr(self, name)!r}")
        if self.candidate_threshold > self.threshold:
            self.candidate_threshold = self.threshold
        check_choice("dedup.index", self.index, INDEX_KINDS)
        for name in ("min_shared_facts", "embedding_max_chars", "batch_size", "flat_max", "neighbours", "block_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"dedup.{name} must be a positive integer, got {value!r}")
        if self.scheduler is not None and (not isinstance(self.scheduler, str)
                                           or not self.scheduler.strip()):
            raise ConfigError(f"dedup.scheduler must be a Dask scheduler address "
                              f"(tcp://host:8786), got {self.scheduler!r}")
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError(f"dedup.model must be a model name or path, got {self.model!r}")

    @classmethod
    def from_section(cls, section: dict[str, Any], **overrides: Any) -> "DedupConfig":
        """From curation.yaml's `dedup:` section, with CLI values (not None) on top."""
        return step_config(cls, "dedup", section, **overrides)

    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def cache_key(self, stage: str = "candidates") -> str:
        """A digest of every field feeding `stage` or an earlier one (see `STAGES`).

        `cache_key("candidates")` keys the stored candidate pairs: it changes with the model or
        the search settings, not with a verification-only field such as `threshold` (beyond the
        `candidate_threshold` it clamps), so a re-run at another threshold reuses the search.
        """
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
        upto = STAGES[:STAGES.index(stage) + 1]
        values = {f.name: getattr(self, f.name) for f in fields(self)
                  if f.metadata["stage"] in upto}
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]

    def embed_config(self) -> EmbedConfig:
        """The embedding step's config from the fields the two share (model, batch size)."""
        shared = {f.name for f in fields(EmbedConfig)}
        return EmbedConfig(**{f.name: getattr(self, f.name) for f in fields(self)
                              if f.name in shared})


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
