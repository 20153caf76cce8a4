"""Render an exported record as a JSONL row in a format the ecosystem reads as-is.

- `chat`: `{"messages": [{"role", "content"}, ...]}` (TRL SFTTrainer, LLaMA-Factory sharegpt/openai);
- `alpaca`: `{"instruction", "input", "output"}` (LLaMA-Factory alpaca, TRL after mapping);
- `classification`: `{"text", "label"}` (datasets / sequence classification).
A human-edited response replaces the original in chat and alpaca. Every turn of a conversation
is kept (alpaca carries the earlier exchanges as LLaMA-Factory's `history`); `fit_turns` applies
the chosen defaults for conversations a trainer cannot learn from as they are (docs/training.md).
"""

from __future__ import annotations

from typing import Any

from pipelines.errors import ExportError
from pipelines.export.select import ExportRow
from pipelines.export.turns import SFT_FORMATS, fit_turns
from pipelines.records import Candidate, Record

__all__ = ["render_row", "record_messages"]

def _edited(cand: Candidate) -> str | None:
    st = cand.state
    return (st.edited_response or None) if st.review_status == "reviewed" else None


def record_messages(rec: Record, system_prompt: str | None = None,
                    edited_response: str | None = None, *,
                    fit: bool = False) -> list[dict[str, str]]:
    """The record as chat messages: all its turns (chat) or user prompt + assistant response.

    Args:
        system_prompt: a system message when the record has none.
        edited_response: replaces the (last) assistant answer.
        fit: apply `fit_turns` first (SFT formats); may return [] (nothing to train on).

    Raises:
        ExportError: a non-chat record without a prompt and a response.
    """
    if rec.kind == "chat" and rec.turns:
        msgs = [t.to_dict() for t in rec.turns]
        if fit:
            msgs = fit_turns(msgs)[0]
            if not msgs:
                return []
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
    msgs = record_messages(rec, system_prompt, _edited(row.record), fit=fmt in SFT_FORMATS)
    if not msgs:
        raise ExportError(f"record {rec.id}: no user turn followed by an assistant turn "
                          f"(select_rows leaves such records out)")
    if fmt == "chat":
        return {"messages": msgs}
    if fmt == "alpaca":
        return _alpaca(rec.id, msgs)
    raise ExportError(f"unknown export format {fmt!r}")


def _alpaca(rid: str, msgs: list[dict[str, str]]) -> dict[str, Any]:
    """LLaMA-Factory's alpaca row: the final exchange, the earlier ones as `history`
    ([[user, assistant], ...]; consecutive turns of one side are joined by a blank line)."""
    system = "\n\n".join(m["content"] for m in msgs if m["role"] == "system")
    pairs: list[list[str]] = []
    for m in msgs:
        if m["role"] == "user" or (m["role"] == "tool" and (not pairs or pairs[-1][1])):
            if pairs and not pairs[-1][1]:
                pairs[-1][0] += "\n\n" + m["content"]
            else:
                pairs.append([m["content"], ""])
        elif m["role"] == "assistant" and pairs:
            pairs[-1][1] = (pairs[-1][1] + "\n\n" if pairs[-1][1] else "") + m["content"]
    pairs = [p for p in pairs if p[1]]
    if not pairs:
        raise ExportError(f"record {rid}: no user/assistant turn to render as alpaca")
    row: dict[str, Any] = {"instruction": pairs[-1][0], "input": "", "output": pairs[-1][1]}
    if system:
        row["system"] = system
    if len(pairs) > 1:
        row["history"] = pairs[:-1]
    return row
