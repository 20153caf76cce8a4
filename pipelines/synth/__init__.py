"""Synthetic data: fact-aware counterfactuals, privacy-safe copies (and, in `pipelines.generate`,
model-written text).

    from pipelines.synth import CounterfactualConfig, make_counterfactuals
    result = make_counterfactuals(ws, CounterfactualConfig(scheme="summary_quality", n=50))
    result.created   # caught by the scheme's LFs, stored with lineage in meta["synthetic"]
    result.missed    # no LF caught the edit: reported, never stored or paired
    copies = make_private_copies(ws, PrivateCopyConfig(seed=84121))   # PII -> consistent fakes
"""

from pipelines.synth.config import CounterfactualConfig, PrivateCopyConfig
from pipelines.synth.counterfactual import (
    SYNTHETIC_FILE, Counterfactual, CounterfactualResult, judge_edits, make_counterfactuals,
)
from pipelines.synth.edits import EDIT_KINDS, Edit, apply_edit
from pipelines.synth.generated import GeneratedResult, generate_records
from pipelines.synth.private import (
    PRIVATE_FILE, PrivateCopy, PrivateCopyResult, make_private_copies, private_fields,
)
from pipelines.synth.surrogates import FACT_KINDS, Replacement, Surrogates

__all__ = ["CounterfactualConfig", "Counterfactual", "CounterfactualResult",
           "make_counterfactuals", "judge_edits", "SYNTHETIC_FILE", "EDIT_KINDS", "Edit",
           "apply_edit", "generate_records", "GeneratedResult", "PrivateCopyConfig",
           "PrivateCopy", "PrivateCopyResult", "make_private_copies", "private_fields",
           "PRIVATE_FILE", "Surrogates", "Replacement", "FACT_KINDS"]
