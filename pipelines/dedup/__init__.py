"""Deduplication (exact, same-prompt, semantic with fact checks), similarity search and filter.

    from pipelines.dedup import DedupConfig, run_dedup, set_override
    result = run_dedup(ws, DedupConfig(threshold=0.92))       # clusters + reversible flags
    preview = run_dedup(ws, DedupConfig(threshold=0.85), commit=False)   # nothing stored
    set_override(ws, "r0123...", "keep")                       # a person wins over every run
"""

from pipelines.dedup.config import INDEX_KINDS, DedupConfig, FilterConfig
from pipelines.dedup.dedup import (
    Cluster, DedupResult, PairCheck, list_clusters, refresh_decisions, run_dedup, set_override,
    verify_pair,
)
from pipelines.dedup.facts import Facts, compare_facts, extract_facts, jaccard, loose_key, shingles
from pipelines.dedup.index import choose_index, knn_pairs
from pipelines.dedup.progress import STAGES as PROGRESS_STAGES, StageProgress
from pipelines.dedup.similarity import (
    FilterResult, SearchHit, clear_filter, parse_like, run_filter, search,
)

__all__ = [
    "DedupConfig", "FilterConfig", "INDEX_KINDS", "DedupResult", "Cluster", "PairCheck",
    "run_dedup", "set_override", "list_clusters", "refresh_decisions", "verify_pair",
    "search", "run_filter", "clear_filter", "parse_like", "SearchHit", "FilterResult",
    "Facts", "extract_facts", "compare_facts", "jaccard", "shingles", "loose_key",
    "choose_index", "knn_pairs", "StageProgress", "PROGRESS_STAGES",
]
