"""The record: the one noun every step reads, and the one rendering of chat turns.

The store hands out `Record`s (`pipelines.store.iter_records`, `get_record`) and, joined with
what the later steps decided under one label scheme, `Candidate`s (`push_candidates`,
`iter_export_candidates`). Conversions are explicit: `Record.from_row` reads a row of the
`records` table, `to_dict` gives the plain dict that labeling functions, JSON output and
DataFrames use.

`render_turns` is the only place chat turns become text: the stored `text` of a chat record
(what LFs and embeddings read; embedding caches key on it) and the reviewers' view are both
made by it, from the same `Turn`s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

__all__ = ["Turn", "Source", "Record", "RecordState", "Candidate", "render_turns", "KINDS"]

KINDS = ("text", "instruction", "chat")


@dataclass(frozen=True)
class Turn:
    """One message of a conversation."""

    role: str       # system | user | assistant | tool
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


def render_turns(turns: Iterable[Turn], sep: str = "\n") -> str:
    """Turns as `role: content` lines: the text LFs and embeddings read for a chat record.

    Args:
        sep: between turns; the reviewers' view uses a blank line ("\\n\\n") to read as a dialogue.
    """
    return sep.join(f"{t.role}: {t.content}" for t in turns)


@dataclass(frozen=True)
class Source:
    """A (file, row) a record was ingested from; exact duplicates fold into one record."""

    file: str
    row: int
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "row": self.row, "line": self.line}


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, (str, bytes)) else value


@dataclass(frozen=True)
class Record:
    """One stored record. `id` is the hash of its normalised content.

    `text` is what LFs and embeddings read (for instruction data prompt + response, for chat
    `render_turns(turns)`). `gold` is None unless the store was asked `with_gold=True`: LFs
    never see it. `sources` is filled only by `get_record`.
    """

    id: str
    kind: str
    text: str
    prompt: str | None = None
    response: str | None = None
    system: str | None = None
    turns: tuple[Turn, ...] = ()
    raw_label: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    ingested_at: str | None = None
    gold: Mapping[str, str] | None = None
    sources: tuple[Source, ...] = ()

    @classmethod
    def from_row(cls, row: Mapping[str, Any], *, with_gold: bool = False,
                 sources: Iterable[Source] = ()) -> "Record":
        """A record from a row of the `records` table (JSON columns as text or decoded)."""
        keys = set(row.keys())
        get = lambda k: row[k] if k in keys else None  # noqa: E731
        messages = _json(get("messages"))
        return cls(
            id=row["id"], kind=row["kind"], text=row["text"], prompt=get("prompt"),
            response=get("response"), system=get("system"),
            turns=tuple(Turn(m["role"], m["content"]) for m in messages or ()),
            raw_label=get("raw_label"), meta=_json(get("meta")) or {},
            ingested_at=get("ingested_at"),
            gold=(_json(get("gold")) or {}) if with_gold else None,
            sources=tuple(sources))

    @property
    def synthetic(self) -> Mapping[str, Any] | None:
        """The lineage of a generated record (`meta["synthetic"]`: method, source_id, edit ...);
        None for a real one."""
        info = self.meta.get("synthetic") if isinstance(self.meta, Mapping) else None
        return info if isinstance(info, Mapping) else None

    @property
    def messages(self) -> list[dict[str, str]] | None:
        """The turns as `{role, content}` dicts (None for text and instruction records)."""
        return [t.to_dict() for t in self.turns] if self.turns else None

    def to_dict(self) -> dict[str, Any]:
        """The record as a plain dict (what LFs read as `x.<field>`; JSON; DataFrames).

        `gold` appears only when it was read, `sources` only when they were.
        """
        d: dict[str, Any] = {
            "id": self.id, "kind": self.kind, "text": self.text, "prompt": self.prompt,
            "response": self.response, "system": self.system, "messages": self.messages,
            "raw_label": self.raw_label, "meta": dict(self.meta), "ingested_at": self.ingested_at,
        }
        if self.gold is not None:
            d["gold"] = dict(self.gold)
        if self.sources:
            d["sources"] = [s.to_dict() for s in self.sources]
        return d


@dataclass(frozen=True)
class RecordState:
    """What the later steps say about a record under one label scheme."""

    excluded: bool = False                # by dedup, the on-topic filter or a quality rule
    excluded_by: str | None = None        # the quality filters' reason, else 'dedup'
    label: str | None = None              # the weak label
    confidence: float | None = None
    label_model: str | None = None        # label_model | majority
    label_run_id: int | None = None
    review_status: str | None = None      # pending | reviewed | skipped
    human_label: str | None = None
    edited_response: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "RecordState":
        keys = set(row.keys())
        return cls(**{k: (bool(row[k]) if k == "excluded" else row[k])
                      for k in cls.__dataclass_fields__ if k in keys})

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Candidate:
    """A record with its state under one scheme: what review push and export decide on."""

    record: Record
    state: RecordState = RecordState()

    @property
    def id(self) -> str:
        return self.record.id

    def to_dict(self) -> dict[str, Any]:
        """The record's fields and its state's in one flat dict."""
        return {**self.record.to_dict(), **self.state.to_dict()}
