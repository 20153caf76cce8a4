"""The conversations an SFT export can train on: named conditions and the chosen defaults.

Ingest keeps conversations as they were written and flags them (`meta["conditions"]`,
docs/ingest.md); an SFT export (chat, alpaca) repairs them here and counts each condition in the
manifest, so a bad conversation never reaches the trainer.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

__all__ = ["SFT_FORMATS", "CONDITIONS", "fit_turns", "estimate_tokens", "length_summary"]

SFT_FORMATS = ("chat", "alpaca")
# The named conditions an SFT export repairs (counted in the manifest's `conditions`):
CONDITIONS = {
    "ends_on_user": "trailing user/tool turn(s) after the last assistant turn: dropped",
    "assistant_first": "assistant turn(s) before the first user turn: dropped",
    "empty_turn": "records whose empty turns ingest dropped (counted here, nothing more to do)",
    "no_assistant_turn": "nothing left to train on (no user turn followed by an assistant "
                         "turn): the record is left out",
}


def fit_turns(msgs: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[str]]:
    """A conversation cut to what an SFT trainer can learn from, and the conditions it had.

    Leading assistant (or tool) turns before the first user turn go (the model would learn to
    answer nobody); trailing turns after the last assistant turn go (there is no answer to learn).
    System turns stay where they are. When no user -> assistant exchange remains the result is
    empty and the conditions include `no_assistant_turn`.
    """
    found: list[str] = []
    turns = [m for m in msgs if m["role"] != "system"]
    first_user = next((i for i, m in enumerate(turns) if m["role"] == "user"), len(turns))
    if any(m["role"] == "assistant" for m in turns[:first_user]):
        found.append("assistant_first")
    last_asst = max((i for i, m in enumerate(turns) if m["role"] == "assistant"), default=-1)
    if last_asst < len(turns) - 1 and any(m["role"] == "user" for m in turns[last_asst + 1:]):
        found.append("ends_on_user")
    if last_asst < first_user:
        return [], found + ["no_assistant_turn"]
    drop = {id(m) for m in turns[:first_user] + turns[last_asst + 1:]}
    return [m for m in msgs if id(m) not in drop], found


# ~4 characters per token for English BPE vocabularies, plus a few template tokens per turn:
# an estimate good to tens of percent, enough to see whether 512 or 2048 is the right scale
# (the trainer measures with the base model's own tokenizer before it starts).
CHARS_PER_TOKEN = 4
TOKENS_PER_TURN = 4


def estimate_tokens(row: dict[str, Any]) -> int:
    """A cheap token count for an exported row (any format) without a tokenizer."""
    if "messages" in row:
        parts = [m["content"] for m in row["messages"]]
    else:
        parts = [v for k, v in row.items() if k not in ("label", "history") and isinstance(v, str)]
        parts += [t for pair in row.get("history") or () for t in pair]
    return sum(math.ceil(len(p) / CHARS_PER_TOKEN) + TOKENS_PER_TURN for p in parts if p)


def length_summary(lengths: Iterable[int]) -> dict[str, int]:
    """n, p50, p95 and max of a list of lengths (nearest-rank percentiles); {} when empty."""
    xs = sorted(lengths)
    if not xs:
        return {}

    def pct(q: float) -> int:
        return xs[max(0, math.ceil(q * len(xs)) - 1)]

    return {"n": len(xs), "p50": pct(0.50), "p95": pct(0.95), "max": xs[-1]}
