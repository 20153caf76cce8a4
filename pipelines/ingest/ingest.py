"""Ingest CSV / JSONL / Parquet files into the workspace.

Rows are validated one by one while the file streams; valid rows are written inside one
transaction that spans every file of the call. Without `skip_invalid`, the first bad row raises
`InputError` and the transaction rolls back, so the workspace is exactly as it was. With it, bad
rows go to a reject report (file, row, line, field, reason) and the rest is stored.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from pipelines.errors import InputError
from pipelines.hashing import sha256_file
from pipelines.ingest.config import IngestConfig
from pipelines.ingest.normalize import normalize_text, record_id
from pipelines.ingest.readers import RawRow, read_rows
from pipelines.paths import resolve_path
from pipelines.store import NewRecord, Workspace, finish_run, start_run, upsert_record, utcnow

__all__ = ["ingest", "IngestResult", "FileSummary", "build_record", "CHAT_ROLES"]

CHAT_ROLES = ("system", "user", "assistant", "tool")


@dataclass
class FileSummary:
    file: str
    rows: int = 0
    added: int = 0
    duplicates: int = 0
    unchanged: int = 0
    rejected: int = 0


@dataclass
class IngestResult:
    """What an ingest did. `rows == added + duplicates + unchanged`, plus `rejected` skipped."""

    added: int = 0
    unchanged: int = 0
    duplicates: int = 0
    rejected: int = 0
    rows: int = 0
    files: list[FileSummary] = field(default_factory=list)
    reject_report: str | None = None
    run_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ingest(ws: Workspace, files: Iterable[str | os.PathLike], config: IngestConfig | None = None,
           *, progress: Callable[[int], None] | None = None) -> IngestResult:
    """Ingest `files` into `ws` in one transaction.

    Args:
        progress: called with the number of rows just processed (for a progress bar).
    """
    config = config or IngestConfig()
    paths = [resolve_path(f, what="input file") for f in files]
    result = IngestResult()
    rejects: list[dict[str, Any]] = []
    now = utcnow()
    with ws.transaction() as conn:
        for path in paths:
            summary = FileSummary(file=str(path))
            result.files.append(summary)
            sha = sha256_file(path) if path.is_file() else None
            kind = config.schema
            for raw in read_rows(path):
                if progress:
                    progress(1)
                try:
                    if raw.error is not None:
                        raise raw.error
                    if kind is None:
                        kind = _detect_schema(raw.values, config, path)
                    rec = build_record(raw, config, kind, str(path))
                except InputError as exc:
                    if not config.skip_invalid:
                        raise
                    summary.rejected += 1
                    rejects.append({"file": str(path), "row": exc.row, "line": exc.line,
                                    "field": exc.field or "", "reason": exc.reason})
                    continue
                rec.file_sha256 = sha
                summary.rows += 1
                outcome = upsert_record(conn, rec, now)
                if outcome.added:
                    summary.added += 1
                elif outcome.new_source:
                    summary.duplicates += 1
                else:
                    summary.unchanged += 1
        for s in result.files:
            result.rows += s.rows
            result.added += s.added
            result.duplicates += s.duplicates
            result.unchanged += s.unchanged
            result.rejected += s.rejected
        if rejects:
            result.reject_report = str(ws.subdir("rejects") / f"ingest-{now.replace(':', '')[:17]}"
                                                                f"-{os.urandom(3).hex()}.csv")
        metrics = {k: v for k, v in result.to_dict().items() if k != "files"}
        if result.added or result.duplicates or result.rejected:
            run = start_run(conn, "ingest", {"files": [str(p) for p in paths],
                                             "schema": config.schema,
                                             "skip_invalid": config.skip_invalid})
            finish_run(conn, run, metrics)
            result.run_id = run
        if rejects:
            # Written before COMMIT: if the report cannot be written, nothing is stored.
            _write_rejects(Path(result.reject_report), rejects)
    return result


def _write_rejects(path: Path, rejects: list[dict[str, Any]]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".rejects-", suffix=".csv")
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "row", "line", "field", "reason"])
        w.writeheader()
        w.writerows(rejects)
    os.replace(tmp, path)


def _detect_schema(values: dict[str, Any], config: IngestConfig, path: Path) -> str:
    f = config.fields
    if f.messages in values:
        return "chat"
    if f.prompt in values and f.response in values:
        return "instruction"
    if f.text in values:
        return "text"
    raise InputError(
        f"cannot tell the schema: no '{f.text}' column (text), no '{f.prompt}'/'{f.response}' "
        f"columns (instruction) and no '{f.messages}' column (chat); found "
        f"{', '.join(map(repr, values)) or 'no columns'}. Pass --schema and --text-field etc.",
        file=str(path), row=1)


def _text(raw: RawRow, file: str, name: str, *, required: bool) -> str | None:
    """A string field: missing/empty raise when required; a non-string value always raises."""
    where = dict(file=file, row=raw.row, line=raw.line, field=name)
    if name not in raw.values:
        if required:
            raise InputError("missing required field", **where)
        return None
    value = raw.values[name]
    if value is None:
        if required:
            raise InputError("empty text (null)", **where)
        return None
    if not isinstance(value, str):
        raise InputError(f"wrong type: expected text, got {_type_name(value)} {value!r:.40}",
                         **where)
    if not value.strip():
        if required:
            raise InputError("empty text", **where)
        return None
    return value.strip()


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _label(raw: RawRow, file: str, name: str) -> str | None:
    if name not in raw.values or raw.values[name] is None:
        return None
    value = raw.values[name]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError(f"wrong type: a label must be text or an integer, got {_type_name(value)}",
                         file=file, row=raw.row, line=raw.line, field=name)
    value = str(value).strip()
    return value or None


def _messages(raw: RawRow, file: str, name: str) -> list[dict[str, str]]:
    where = dict(file=file, row=raw.row, line=raw.line)
    if name not in raw.values or raw.values[name] in (None, ""):
        raise InputError("missing required field", field=name, **where)
    value = raw.values[name]
    if isinstance(value, str):  # CSV cells hold the list as JSON text
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON in messages: {exc.msg}", field=name, **where) from None
    if not isinstance(value, (list, tuple)) or not value:
        raise InputError(f"expected a non-empty list of {{role, content}}, got {_type_name(value)}",
                         field=name, **where)
    out = []
    for i, m in enumerate(value):
        fname = f"{name}[{i}]"
        if not isinstance(m, dict):
            raise InputError(f"expected an object with role and content, got {_type_name(m)}",
                             field=fname, **where)
        role, content = m.get("role"), m.get("content")
        if role not in CHAT_ROLES:
            raise InputError(f"unknown role {role!r}; expected one of {', '.join(CHAT_ROLES)}",
                             field=f"{fname}.role", **where)
        if not isinstance(content, str):
            raise InputError(f"wrong type: expected text, got {_type_name(content)}",
                             field=f"{fname}.content", **where)
        if not content.strip():
            raise InputError("empty text", field=f"{fname}.content", **where)
        out.append({"role": role, "content": content.strip()})
    if all(m["role"] == "system" for m in out):
        raise InputError("a conversation needs at least one user or assistant message",
                         field=name, **where)
    return out


def build_record(raw: RawRow, config: IngestConfig, kind: str, file: str) -> NewRecord:
    """Validate one row and turn it into a `NewRecord` (raises `InputError` naming the field)."""
    f = config.fields
    label = _label(raw, file, f.label)
    gold = {}
    for key, value in raw.values.items():
        if key.startswith(config.gold_prefix) and len(key) > len(config.gold_prefix):
            if value is not None and str(value).strip():
                gold[key[len(config.gold_prefix):]] = str(value).strip()
    if kind == "text":
        text = _text(raw, file, f.text, required=True)
        used = {f.text, f.label}
        parts = {"text": normalize_text(text)}
        rec = NewRecord(id="", kind=kind, text=text)
    elif kind == "instruction":
        prompt = _text(raw, file, f.prompt, required=True)
        response = _text(raw, file, f.response, required=True)
        system = _text(raw, file, f.system, required=False)
        used = {f.prompt, f.response, f.system, f.label}
        parts = {"system": normalize_text(system or ""), "prompt": normalize_text(prompt),
                 "response": normalize_text(response)}
        rec = NewRecord(id="", kind=kind, text=f"{prompt}\n\n{response}", prompt=prompt,
                        response=response, system=system)
    elif kind == "chat":
        messages = _messages(raw, file, f.messages)
        used = {f.messages, f.label}
        parts = {"messages": [[m["role"], normalize_text(m["content"])] for m in messages]}
        system = next((m["content"] for m in messages if m["role"] == "system"), None)
        last_assistant = max((i for i, m in enumerate(messages) if m["role"] == "assistant"),
                             default=None)
        prompt = response = None
        if last_assistant is not None:
            response = messages[last_assistant]["content"]
            prompt = next((m["content"] for m in reversed(messages[:last_assistant])
                           if m["role"] == "user"), None)
        rec = NewRecord(id="", kind=kind, text="\n".join(f"{m['role']}: {m['content']}"
                                                         for m in messages),
                        prompt=prompt, response=response, system=system, messages=messages)
    else:  # pragma: no cover - IngestConfig validates the schema
        raise ValueError(kind)
    rec.id = record_id(kind, parts)
    rec.raw_label = label
    rec.gold = gold
    rec.meta = {k: v for k, v in raw.values.items()
                if k not in used and not (k.startswith(config.gold_prefix) and k != config.gold_prefix)}
    rec.file, rec.row, rec.line = file, raw.row, raw.line
    return rec
