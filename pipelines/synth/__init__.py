"""Synthetic data: fact-aware counterfactuals (and, in `pipelines.generate`, model-written text).

    from pipelines.synth import CounterfactualConfig, make_counterfactuals
    result = make_counterfactuals(ws, CounterfactualConfig(scheme="summary_quality", n=50))
    result.created   # caught by the scheme's LFs, stored with lineage in meta["synthetic"]
    result.missed    # no LF caught the edit: reported, never stored or paired
"""

from pipelines.synth.config import CounterfactualConfig
from pipelines.synth.counterfactual import (
    SYNTHETIC_FILE, Counterfactual, CounterfactualResult, judge_edits, make_counterfactuals,
)
from pipelines.synth.edits import EDIT_KINDS, Edit, apply_edit
from pipelines.synth.generated import GeneratedResult, generate_records

__all__ = ["CounterfactualConfig", "Counterfactual", "CounterfactualResult",
           "make_counterfactuals", "judge_edits", "SYNTHETIC_FILE", "EDIT_KINDS", "Edit",
           "apply_edit", "generate_records", "GeneratedResult"]
