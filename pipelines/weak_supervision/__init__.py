"""Programmatic labeling with Snorkel: discover LFs, apply them, analyse, aggregate.

The central artefact is the label matrix `L` (n records x m LFs, -1 = abstain). `load_lfs`
finds a scheme's LFs (`@labeling_function()`s and plain `lf_*` functions), `apply_lfs` builds `L`
(fast / pandas / dask engines; votes are class indices or names, None/-1 abstains, anything
else is a fault of its LF), `analyze_matrix` describes it, `aggregate` turns it into labels, and
`run_labeling` does all of it for a workspace and stores the result. The studio's LF editor
runs the same `lfs_from_module` and `apply_lfs` in its sandbox.
"""

from pipelines.weak_supervision.aggregate import (
    MIN_LFS_FOR_LABEL_MODEL, Aggregation, ModelScore, aggregate,
)
from pipelines.weak_supervision.analysis import LFReport, LFStat, analyze_matrix, conflict_matrix
from pipelines.weak_supervision.apply import (
    ABSTAIN, FaultExample, LFFault, Row, apply_lfs, apply_rows, vote_index,
)
from pipelines.weak_supervision.config import ENGINES, MODELS, LabelConfig
from pipelines.weak_supervision.discovery import (
    LFSet, lfs_from_module, load_lf_file, load_lfs, schemes_of,
)
from pipelines.weak_supervision.run import (
    LabelingResult, analyze, load_matrix, run_labeling,
)

__all__ = [
    "LabelConfig", "MODELS", "ENGINES",
    "LFSet", "load_lfs", "lfs_from_module", "load_lf_file", "schemes_of",
    "ABSTAIN", "Row", "FaultExample", "LFFault", "vote_index", "apply_lfs", "apply_rows",
    "LFStat", "LFReport", "analyze_matrix", "conflict_matrix",
    "MIN_LFS_FOR_LABEL_MODEL", "ModelScore", "Aggregation", "aggregate",
    "LabelingResult", "run_labeling", "analyze", "load_matrix",
]
