"""Programmatic labeling with Snorkel: discover LFs, apply them, analyse, aggregate.

The central artefact is the label matrix `L` (n records x m LFs, -1 = abstain). `load_lfs`
finds a scheme's LFs, `apply_lfs` builds `L` (fast / pandas / dask engines), `analyze_matrix`
describes it, `aggregate` turns it into labels, and `run_labeling` does all of it for a
workspace and stores the result.
"""

from pipelines.weak_supervision.aggregate import (
    MIN_LFS_FOR_LABEL_MODEL, Aggregation, ModelScore, aggregate,
)
from pipelines.weak_supervision.analysis import LFReport, LFStat, analyze_matrix, conflict_matrix
from pipelines.weak_supervision.apply import LFFault, Row, apply_lfs, apply_rows
from pipelines.weak_supervision.config import ENGINES, MODELS, LabelConfig
from pipelines.weak_supervision.discovery import LFSet, lfs_from_module, load_lfs
from pipelines.weak_supervision.run import (
    LabelingResult, analyze, check_matrix, load_matrix, run_labeling,
)

__all__ = [
    "LabelConfig", "MODELS", "ENGINES",
    "LFSet", "load_lfs", "lfs_from_module",
    "Row", "LFFault", "apply_lfs", "apply_rows",
    "LFStat", "LFReport", "analyze_matrix", "conflict_matrix",
    "MIN_LFS_FOR_LABEL_MODEL", "ModelScore", "Aggregation", "aggregate",
    "LabelingResult", "run_labeling", "analyze", "load_matrix", "check_matrix",
]
