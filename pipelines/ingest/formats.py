"""Row layouts: which shape a data set's rows have, and which key feeds which record field.

A layout is chosen once per input (file or folder) from its first row's keys, unless the schema
is given. Known shapes:

| layout | keys | record kind |
|---|---|---|
| `text` | `text` | text |
| `instruction` | `prompt`, `response`, optional `system` | instruction |
| `alpaca` | `instruction`, `input`, `output`, optional `system`, `history` | instruction (chat with history) |
| `openai` | `messages`: `[{role, content}]` | chat |
| `sharegpt` | `conversations`: `[{from, value}]` | chat |
| `preference` | `prompt`, `chosen`, `rejected` (strings or messages) | a pair of records (`pipelines.ingest.preference`) |
| `preference_implicit` | `chosen`, `rejected` (whole transcripts) | a pair of records; prompt = their shared turns |

The field map of the configuration (`--text-field` etc.) renames the generic keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines.errors import InputError
from pipelines.ingest.config import IngestConfig

__all__ = ["Layout", "detect_layout", "LAYOUTS"]

LAYOUTS = ("text", "instruction", "alpaca", "openai", "sharegpt", "preference",
           "preference_implicit")
SHAREGPT_KEY = "conversations"
ALPACA = {"prompt": "instruction", "input": "input", "response": "output", "history": "history"}


@dataclass
class Layout:
    name: str                       # one of LAYOUTS
    kind: str                       # the record kind it gives (alpaca rows with history: chat;
    #                                 preference: a pair of instruction or chat records)
    fields: dict[str, str] = field(default_factory=dict)   # record part -> input key

    def describe(self) -> str:
        return ", ".join(f"{part} <- '{key}'" for part, key in self.fields.items())


def _chat_layout(values: dict[str, Any], key: str, label: str) -> Layout:
    first = values.get(key)
    if isinstance(first, (list, tuple)) and first and isinstance(first[0], dict) \
            and "from" in first[0]:
        name = "sharegpt"
    else:
        name = "sharegpt" if key == SHAREGPT_KEY else "openai"
    return Layout(name, "chat", {"messages": key, "label": label})


def detect_layout(values: dict[str, Any], config: IngestConfig, file: str,
                  *, row: int = 1) -> Layout:
    """The layout of rows whose first row has `values`; `config.schema` narrows the choice.

    Raises `InputError` naming the keys found and the flags that map them when no layout fits.
    """
    f, schema = config.fields, config.schema
    label = f.label
    if schema != "text" and f.chosen in values and f.rejected in values:
        # before chat: UltraFeedback-style rows carry a `messages` copy of the chosen side
        if f.prompt in values:
            return Layout("preference", "preference", {"prompt": f.prompt, "chosen": f.chosen,
                                                       "rejected": f.rejected})
        return Layout("preference_implicit", "preference", {"chosen": f.chosen,
                                                            "rejected": f.rejected})
    if schema in (None, "chat"):
        if f.messages in values:
            return _chat_layout(values, f.messages, label)
        if SHAREGPT_KEY in values:
            return _chat_layout(values, SHAREGPT_KEY, label)
    if schema in (None, "instruction"):
        if f.prompt in values and f.response in values:
            if f.prompt == ALPACA["prompt"] and ALPACA["input"] in values:
                return Layout("alpaca", "instruction", {**ALPACA, "response": f.response,
                                                        "system": f.system, "label": label})
            return Layout("instruction", "instruction", {"prompt": f.prompt,
                                                         "response": f.response,
                                                         "system": f.system, "label": label})
        if ALPACA["prompt"] in values and ALPACA["response"] in values:
            return Layout("alpaca", "instruction", {**ALPACA, "system": f.system, "label": label})
    if schema in (None, "text") and f.text in values:
        return Layout("text", "text", {"text": f.text, "label": label})
    if schema == "text":
        return Layout("text", "text", {"text": f.text, "label": label})
    if schema == "instruction":
        return Layout("instruction", "instruction", {"prompt": f.prompt, "response": f.response,
                                                     "system": f.system, "label": label})
    if schema == "chat":
        return Layout("openai", "chat", {"messages": f.messages, "label": label})
    found = ", ".join(map(repr, values)) or "no keys"
    raise InputError(
        f"cannot tell the schema from the first row's keys ({found}): expected '{f.text}' "
        f"(text), '{f.prompt}'+'{f.response}' (instruction), 'instruction'+'output' (Alpaca), "
        f"'{f.messages}' (OpenAI chat), 'conversations' (ShareGPT) or '{f.chosen}'+'{f.rejected}' "
        f"(preference pairs). Map yours with fields.text, fields.prompt + fields.response, "
        f"fields.messages or fields.chosen + fields.rejected (and schema "
        f"text|instruction|chat) in curation.yaml; the CLI's ingest flags are named after them "
        f"(e.g. --text-field)", file=file, row=row)
