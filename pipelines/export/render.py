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

__all__ = ["render_row", "chat_messages"]


def _response(rec: dict[str, Any]) -> str | None:
    edited = rec.get("edited_response") if rec.get("review_status") == "reviewed" else None
    return edited if edited else rec.get("response")


def chat_messages(rec: dict[str, Any], system_prompt: str | None) -> list[dict[str, str]]:
    """A record as the chat turns every conversational format starts from (a reviewed edit
    replaces the last assistant turn; the record's or the export's system prompt goes first).

    Raises:
        ExportError: the record has neither messages nor a prompt and a response.
    """
    if rec["kind"] == "chat" and rec.get("messages"):
        msgs = [{"role": m["role"], "content": m["content"]} for m in rec["messages"]]
        edited = rec.get("edited_response") if rec.get("review_status") == "reviewed" else None
        if edited:
            for m in reversed(msgs):
                if m["role"] == "assistant":
                    m["content"] = edited
                    break
    else:
        response = _response(rec)
        if not rec.get("prompt") or response is None:
            raise ExportError(f"record {rec['id']}: needs a prompt and a response for a "
                              f"conversational format (kind {rec['kind']})")
        msgs = [{"role": "user", "content": rec["prompt"]},
                {"role": "assistant", "content": response}]
    system = rec.get("system") or system_prompt
    if system and not (msgs and msgs[0]["role"] == "system"):
        msgs.insert(0, {"role": "system", "content": system})
    return msgs


def render_row(row: ExportRow, fmt: str, system_prompt: str | None = None) -> dict[str, Any]:
    rec = row.record
    if fmt == "classification":
        return {"text": rec["text"], "label": row.label}
    msgs = chat_messages(rec, system_prompt)
    if fmt == "chat":
        return {"messages": msgs}
    if fmt == "alpaca":
        users = [m["content"] for m in msgs if m["role"] == "user"]
        answers = [m["content"] for m in msgs if m["role"] == "assistant"]
        if not users or not answers:
            raise ExportError(f"record {rec['id']}: no user/assistant turn to render as alpaca")
        return {"instruction": users[-1], "input": "", "output": answers[-1]}
    raise ExportError(f"unknown export format {fmt!r}")
