"""Curation ROI: does curation measurably improve the fine-tuned micro-model?

The same micro-model (LoRA + classifier head on the packaged MiniLM encoder, fixed seed and
budget) is trained on datasets that differ only in curation (raw labels, majority vote, label
model, dedup + label model + N simulated reviews) and scored on the held-out gold set, with
leakage checks between the gold set and every training set. Scores and intervals come from
`pipelines.metrics`. `compare_runs` gives the studio's "Did curation pay?" table over real
training runs (read through `trainer.runs` and `pipelines.export`).

    from curate.roi import RoiConfig, run_roi
    report = run_roi(ws, RoiConfig(scheme="claim_type", seeds=3))
"""

from curate.roi.arms import Arm, ArmSet, Pool, PoolRecord, build_arms, cap_arm, review_order
from curate.roi.compare import compare_runs, load_sft_report, sft_budget_note, sft_summary_rows
from curate.roi.config import ARM_NAMES, DEFAULT_REVIEW_BUDGETS, RoiConfig
from curate.roi.leakage import LeakageError, check_leakage, fold_text, near_gold_ids
from curate.roi.run import SIMULATED_REVIEW_NOTE, evaluate_arms, format_table, run_roi

__all__ = [
    "RoiConfig", "ARM_NAMES", "DEFAULT_REVIEW_BUDGETS",
    "PoolRecord", "Pool", "Arm", "ArmSet", "build_arms", "cap_arm", "review_order",
    "LeakageError", "near_gold_ids", "check_leakage", "fold_text",
    "evaluate_arms", "run_roi", "format_table", "SIMULATED_REVIEW_NOTE",
    "compare_runs", "load_sft_report", "sft_summary_rows", "sft_budget_note",
]
