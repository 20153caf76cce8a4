"""Preference rows -> a pair of records answering one prompt (`NewPair`).

The shapes TRL's `DPOTrainer`, LLaMA-Factory's `dpo` stage and Argilla write:

- **standard**: `prompt`, `chosen`, `rejected` strings -> two instruction records;
- **conversational**: `prompt` a list of messages (or a string), `chosen`/`rejected` a list with
  the assistant answer, or the whole conversation again (UltraFeedback-binarized: the prompt
  turns repeated, then the answer) -> two chat records;
- **implicit prompt** (Anthropic HH-RLHF): only `chosen` and `rejected`, each a whole transcript
  (`"\\n\\nHuman: ...\\n\\nAssistant: ..."` or a list of messages): the prompt is the turns the two
  share, each answer the differing last assistant turn.

Each side must end in exactly one assistant turn after the prompt: that is the pair the
preference export writes back (`pipelines.export.preference`). Every other key of the row is
kept in both records' `meta`, as the other layouts keep extra columns.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pipelines.errors import InputError
from pipelines.ingest.config import IngestConfig
from pipelines.ingest.formats import Layout
from pipelines.ingest.ingest import _chat_conditions, _chat_record, _messages, _text, _type_name
from pipelines.ingest.normalize import normalize_text, record_id
from pipelines.ingest.readers import RawRow
from pipelines.store.pairs import NewPair
from pipelines.store.records import NewRecord

__all__ = ["build_pair", "transcript_turns"]

# An HH-RLHF transcript: turns introduced by "Human:" / "Assistant:" after a blank line.
_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")
_ROLES = {"Human": "user", "Assistant": "assistant"}

Turns = list[dict[str, str]]


def transcript_turns(text: str) -> Turns | None:
    """The turns of an HH-RLHF style transcript, or None when `text` is not one.

    Empty turns (the bare `Assistant:` that ends an HH prompt) are dropped.
    """
    parts = _TURN.split(text.strip())
    if len(parts) < 3 or parts[0].strip():
        return None
    turns = [{"role": _ROLES[role], "content": content.strip()}
             for role, content in zip(parts[1::2], parts[2::2])]
    return [t for t in turns if t["content"]]


def _is_messages(value: Any) -> bool:
    """A list of messages, or (a CSV cell) the JSON text of one."""
    if isinstance(value, (list, tuple)):
        return True
    if isinstance(value, str) and value.lstrip().startswith("[{"):
        try:
            return isinstance(json.loads(value), list)
        except json.JSONDecodeError:
            return False
    return False


def _turns(raw: RawRow, file: str, name: str, default_role: str | None) -> tuple[Turns, int, bool]:
    """(turns, empty turns dropped, was plain text) of one field.

    A list is messages (`_messages`: role aliases, content parts); a string is a transcript when
    it reads as one, else one turn of `default_role` (None: a transcript is required).
    """
    where = dict(file=file, row=raw.row, line=raw.line, field=name)
    value = raw.values.get(name)
    if _is_messages(value):
        msgs, empty = _messages(raw, file, name)
        return msgs, empty, False
    if value is not None and not isinstance(value, str):
        raise InputError(f"wrong type: expected text or a list of messages, got "
                         f"{_type_name(value)} {value!r:.40}", **where)
    text = _text(raw, file, name, required=True)
    turns = transcript_turns(text) if "Assistant:" in text else None
    if turns is not None and any(t["role"] == "user" for t in turns):
        return turns, 0, False
    if default_role is None:
        raise InputError("expected a whole conversation: a transcript ('Human: ...' and "
                         "'Assistant: ...' turns after blank lines) or a list of messages", **where)
    return [{"role": default_role, "content": text}], 0, True


def _same(a: Turns, b: Turns) -> bool:
    return len(a) == len(b) and all(
        x["role"] == y["role"] and normalize_text(x["content"]) == normalize_text(y["content"])
        for x, y in zip(a, b))


def _shared_prefix(a: Turns, b: Turns) -> int:
    n = 0
    while n < min(len(a), len(b)) and _same(a[n:n + 1], b[n:n + 1]):
        n += 1
    return n


def _answer(turns: Turns, prompt: Turns, raw: RawRow, file: str, name: str) -> dict[str, str]:
    """The one assistant turn `turns` adds to `prompt` (it may repeat the prompt first)."""
    where = dict(file=file, row=raw.row, line=raw.line, field=name)
    if len(turns) > len(prompt) and _same(turns[:len(prompt)], prompt):
        turns = turns[len(prompt):]   # the whole conversation again (UltraFeedback-binarized)
    if len(turns) != 1 or turns[0]["role"] != "assistant":
        roles = ", ".join(t["role"] for t in turns) or "nothing"
        raise InputError(f"expected one assistant answer after the prompt, got {roles}", **where)
    return turns[0]


def _sides(raw: RawRow, file: str, f: dict[str, str]) -> tuple[Turns, dict, dict, dict, bool]:
    """(prompt turns, chosen answer, rejected answer, empty turns per side, all plain text)."""
    chosen, empty_c, plain_c = _turns(raw, file, f["chosen"],
                                      "assistant" if "prompt" in f else None)
    rejected, empty_r, plain_r = _turns(raw, file, f["rejected"],
                                        "assistant" if "prompt" in f else None)
    empty = {"chosen": empty_c, "rejected": empty_r}
    if "prompt" in f:
        prompt, empty_p, plain_p = _turns(raw, file, f["prompt"], "user")
        empty = {k: v + empty_p for k, v in empty.items()}
        return (prompt, _answer(chosen, prompt, raw, file, f["chosen"]),
                _answer(rejected, prompt, raw, file, f["rejected"]), empty,
                plain_p and plain_c and plain_r)
    # implicit prompt: the turns both transcripts share, up to the last one before the answers
    n = _shared_prefix(chosen, rejected)
    while n and chosen[n - 1]["role"] == "assistant":
        n -= 1
    prompt = chosen[:n]
    where = dict(file=file, row=raw.row, line=raw.line, field=f["rejected"])
    if not any(t["role"] == "user" for t in prompt):
        raise InputError(f"shares no prompt with '{f['chosen']}': the two transcripts differ "
                         f"from their first turn", **where)
    return (prompt, _answer(chosen[n:], [], raw, file, f["chosen"]),
            _answer(rejected[n:], [], raw, file, f["rejected"]), empty, False)


def _side_record(prompt: Turns, answer: dict[str, str], empty: int, plain: bool) -> NewRecord:
    if plain:   # standard rows: an instruction record, the id an instruction row would get
        p, r = prompt[0]["content"], answer["content"]
        rec = NewRecord(id="", kind="instruction", text=f"{p}\n\n{r}", prompt=p, response=r)
        rec.id = record_id("instruction", {"system": "", "prompt": normalize_text(p),
                                           "response": normalize_text(r)})
        conditions = {"empty_turn": empty} if empty else {}
    else:
        messages = [*prompt, answer]
        rec, parts = _chat_record(messages)
        rec.id = record_id("chat", parts)
        conditions = _chat_conditions(messages, empty)
    if conditions:
        rec.meta["conditions"] = conditions
    return rec


def build_pair(raw: RawRow, config: IngestConfig, layout: Layout, file: str) -> NewPair:
    """Validate one preference row and turn it into two records and their pair.

    Raises `InputError` naming the field: a side missing or empty, a non-text content part, an
    answer that is not one assistant turn, chosen == rejected, no shared prompt (implicit).
    """
    f = layout.fields
    prompt, chosen, rejected, empty, plain = _sides(raw, file, f)
    extra = {k: v for k, v in raw.values.items() if k not in set(f.values())}
    if "conditions" in extra:   # the key is ours; an input column of that name is kept beside it
        extra["conditions_input"] = extra.pop("conditions")
    sides = []
    for answer, side in ((chosen, "chosen"), (rejected, "rejected")):
        rec = _side_record(prompt, answer, empty[side], plain)
        rec.meta = {**extra, **rec.meta}
        rec.file, rec.row, rec.line = file, raw.row, raw.line
        sides.append(rec)
    if sides[0].id == sides[1].id:
        raise InputError(f"the same answer as '{f['chosen']}' (after whitespace normalisation): "
                         f"no preference", file=file, row=raw.row, line=raw.line,
                         field=f["rejected"])
    prompt_id = record_id("prompt", {"messages": [[t["role"], normalize_text(t["content"])]
                                                  for t in prompt]})
    return NewPair(sides[0], sides[1], prompt_id)
