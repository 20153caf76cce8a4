"""Programmatic labeling with Snorkel: discover LFs, apply them, analyse, aggregate.

The central artefact is the label matrix `L` (n records x m LFs, -1 = abstain). `load_lfs`
finds a scheme's LFs (`@labeling_function()`s and plain `lf_*` functions), `apply_lfs` builds `L`
(fast / pandas / dask engines; votes are class indices or names, None/-1 abstains, anything
else is a fault of its LF), `analyze_matrix` describes it, `aggregate` turns it into labels, and
`run_labeling` does all of it for a workspace and stores the result. The studio's LF editor
runs the same `lfs_from_module` and `apply_lfs` in its sandbox.
"""

import importlib
from typing import TYPE_CHECKING

# Names load on first use (PEP 562): `LabelConfig` alone (the CLI's option defaults) must not pull
# in snorkel, sklearn and pandas, which cost seconds at every `curate` start.
_WHERE = {
    "aggregate": ("MIN_LFS_FOR_LABEL_MODEL", "Aggregation", "ModelScore", "aggregate"),
    "analysis": ("LFReport", "LFStat", "analyze_matrix", "conflict_matrix"),
    "apply": ("ABSTAIN", "FaultExample", "LFFault", "Row", "apply_lfs", "apply_rows",
              "vote_index"),
    "config": ("ENGINES", "MODELS", "LabelConfig"),
    "discovery": ("LFSet", "lfs_from_module", "load_lf_file", "load_lfs", "schemes_of"),
    "run": ("LabelingResult", "analyze", "load_matrix", "run_labeling"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

if TYPE_CHECKING:   # what a type checker and an editor see
    from pipelines.weak_supervision.aggregate import (
        MIN_LFS_FOR_LABEL_MODEL, Aggregation, ModelScore, aggregate,
    )
    from pipelines.weak_supervision.analysis import (
        LFReport, LFStat, analyze_matrix, conflict_matrix,
    )
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


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_MODULE_OF))


__all__ = [
    "LabelConfig", "MODELS", "ENGINES",
    "LFSet", "load_lfs", "lfs_from_module", "load_lf_file", "schemes_of",
    "ABSTAIN", "Row", "FaultExample", "LFFault", "vote_index", "apply_lfs", "apply_rows",
    "LFStat", "LFReport", "analyze_matrix", "conflict_matrix",
    "MIN_LFS_FOR_LABEL_MODEL", "ModelScore", "Aggregation", "aggregate",
    "LabelingResult", "run_labeling", "analyze", "load_matrix",
]
