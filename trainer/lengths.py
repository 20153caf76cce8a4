"""The default `max_seq_length`, from the data: one rule for the sft and the classifier heads.

A fixed limit either wastes compute (512 tokens for 40-token reviews: every batch padded and
attended to lengths nobody has) or cuts long examples silently. So when the config leaves
`max_seq_length` unset, both heads measure the train split with the base model's tokenizer and
take the 95th percentile rounded up to a multiple of 64, within the model's positions and
`MEMORY_CAP` (activations grow with the length). What the rule cuts is reported by each head:
the sft head drops the oldest turns first (`trainer.sft_data`), the classifier truncates.
"""

from __future__ import annotations

import math
from typing import Iterable

from pipelines.export.turns import length_summary

__all__ = ["LENGTH_PERCENTILE", "ROUND_TO", "MEMORY_CAP", "default_max_seq_length", "source_line"]

LENGTH_PERCENTILE = 95
ROUND_TO = 64
MEMORY_CAP = 2048        # tokens: the default never goes above this


def default_max_seq_length(lengths: Iterable[int], max_positions: int | None,
                           cap: int = MEMORY_CAP) -> int:
    """The 95th percentile of `lengths` rounded up to a multiple of 64, within the model's
    positions and `cap` (and at least 64, or the limit when that is smaller)."""
    p95 = length_summary(lengths).get("p95", ROUND_TO)
    want = max(ROUND_TO, math.ceil(p95 / ROUND_TO) * ROUND_TO)
    limit = min(cap, max_positions) if max_positions else cap
    return min(want, limit)


def source_line(n: int, p95: int | None, chosen: int, max_positions: int | None,
                cap: int = MEMORY_CAP) -> str:
    """How a default length was chosen, for the run's report ("from the data: p95 of N rows,
    rounded up to 64[, capped at C]")."""
    limit = min(cap, max_positions or cap)
    return (f"from the data: p{LENGTH_PERCENTILE} of {n} rows, rounded up to {ROUND_TO}"
            + (f", capped at {limit}" if p95 is not None and p95 > chosen else ""))
