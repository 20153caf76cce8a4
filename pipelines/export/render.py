"""Render an exported record as a JSONL row in a format the ecosystem reads as-is.

- `chat`: `{"messages": [{"role", "content"}, ...]}` (TRL SFTTrainer, LLaMA-Factory sharegpt/openai);
- `alpaca`: `{"instruction", "input", "output"}` (LLaMA-Factory alpaca, TRL after mapping);
- `classification`: `{"text", "label"}` (datasets / sequence classification).
A human-edited response replaces the original in chat and alpaca.
"""

from __future__ import annotations

from typing import Any

from pipelines.errors import ExportError
from pipelines.export.select import ExportRow
from pipelines.records import Candidate, Record

__all__ = ["render_row", "record_messages"]


def _edited(cand: Candidate) -> str | None:
    st = cand.state
    return (st.edited_response or None) if st.review_status == "reviewed" else None


def record_messages(rec: Record, system_prompt: str | None = None,
                    edited_response: str | None = None) -> list[dict[str, str]]:
    """The record as chat messages: its turns (chat) or user prompt + assistant response.

    Args:
        system_prompt: a system message when the record has none.
        edited_response: replaces the (last) assistant answer.

    Raises:
        ExportError: a non-chat record without a prompt and a response.
    """
    if rec.kind == "chat" and rec.turns:
        msgs = [t.to_dict() for t in rec.turns]
        if edited_response:
            for m in reversed(msgs):
                if m["role"] == "assistant":
                    m["content"] = edited_response
                    break
    else:
        response = edited_response or rec.response
        if not rec.prompt or response is None:
            raise ExportError(f"record {rec.id}: needs a prompt and a response for a "
                              f"conversational format (kind {rec.kind})")
        msgs = [{"role": "user", "content": rec.prompt},
                {"role": "assistant", "content": response}]
    system = rec.system or system_prompt
    if system and not (msgs and msgs[0]["role"] == "system"):
        msgs.insert(0, {"role": "system", "content": system})
    return msgs


def render_row(row: ExportRow, fmt: str, system_prompt: str | None = None) -> dict[str, Any]:
    rec = row.record.record
    if fmt == "classification":
        return {"text": rec.text, "label": row.label}
    msgs = record_messages(rec, system_prompt, _edited(row.record))
    if fmt == "chat":
        return {"messages": msgs}
    if fmt == "alpaca":
        users = [m["content"] for m in msgs if m["role"] == "user"]
        answers = [m["content"] for m in msgs if m["role"] == "assistant"]
        if not users or not answers:
            raise ExportError(f"record {rec.id}: no user/assistant turn to render as alpaca")
        return {"instruction": users[-1], "input": "", "output": answers[-1]}
    raise ExportError(f"unknown export format {fmt!r}")
