"""Ingest files and dataset folders into the workspace (formats: `readers`; layouts: `formats`).

Rows are validated one by one while the file streams; valid rows are written inside one
transaction that spans every file of the call. A preference row (`formats`: `preference`,
`preference_implicit`) is two records and the pair that ranks them (`preference.build_pair`).
Without `skip_invalid`, the first bad row raises `InputError` and the transaction rolls back,
so the workspace is exactly as it was. With it, bad
rows go to a reject report (file, row, line, field, reason) and the rest is stored, unless they
are more than `max_reject_share` of the rows: then it rolls back too.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from pipelines.errors import InputError
from pipelines.hashing import sha256_file
from pipelines.ingest.config import IngestConfig
from pipelines.ingest.normalize import normalize_text, record_id
from pipelines.ingest.formats import ALPACA, Layout, detect_layout
from pipelines.ingest.hygiene import clean_values, nesting_error
from pipelines.ingest.normalize import canonical_role
from pipelines.ingest.readers import RawRow, describe_source, read_rows
from pipelines.records import Turn, render_turns
from pipelines.paths import resolve_path
from pipelines.store import NewRecord, Workspace, finish_run, start_run, upsert_record, utcnow
from pipelines.store.pairs import NewPair, add_imported_pair

__all__ = ["ingest", "preview", "IngestResult", "FileSummary", "Preview", "build_record",
           "CHAT_ROLES", "CONDITIONS"]

CHAT_ROLES = ("system", "user", "assistant", "tool")
# Named, countable conditions a stored record can carry in `meta["conditions"]`.
CONDITIONS = ("empty_turn", "assistant_first", "ends_on_user", "gold_conflict", "label_conflict")
_CONFLICT_EXAMPLES = 20   # conflicts listed in the summary (all are counted)


@dataclass
class FileSummary:
    file: str
    rows: int = 0
    added: int = 0
    duplicates: int = 0
    unchanged: int = 0
    rejected: int = 0
    pairs: int = 0              # preference pairs stored (a preference row is two records)
    layout: str | None = None   # the detected row layout (sharegpt, alpaca, ...)
    cleaned: dict[str, int] = field(default_factory=dict)   # field -> stored rows stripped of
    #                                                          control characters (hygiene)


@dataclass
class IngestResult:
    """What an ingest did. `rows == added + duplicates + unchanged`, plus `rejected` skipped;
    a preference row counts once in `rows` and twice (its two records) in the other three, and
    `pairs` counts the preference pairs stored.

    `cleaned` counts stored rows per field that had control characters or ANSI escapes
    stripped (`hygiene`). `conditions` counts stored rows per named condition (`empty_turn`: a blank turn was dropped;
    `assistant_first`, `ends_on_user`) and records whose folded copies disagree on a label
    (`gold_conflict`, `label_conflict`); `conflicts` lists the first of those.
    """

    added: int = 0
    unchanged: int = 0
    duplicates: int = 0
    rejected: int = 0
    rows: int = 0
    pairs: int = 0
    files: list[FileSummary] = field(default_factory=list)
    conditions: dict[str, int] = field(default_factory=dict)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    cleaned: dict[str, int] = field(default_factory=dict)   # field -> rows, over all files
    reject_report: str | None = None
    run_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Preview:
    """What `ingest` would make of a file's first valid row (`curate ingest --dry-run`)."""

    file: str
    source: str            # the file format in words, e.g. "json (gzip)"
    layout: Layout
    record: NewRecord      # a preference row's chosen side
    skipped: list[str]     # rows rejected before the first valid one (with skip_invalid)
    pair: NewPair | None = None   # the first pair, for a preference layout


def ingest(ws: Workspace, files: Iterable[str | os.PathLike], config: IngestConfig | None = None,
           *, progress: Callable[[int], None] | None = None) -> IngestResult:
    """Ingest `files` (files or dataset folders) into `ws` in one transaction.

    Args:
        progress: called with the number of rows just processed (for a progress bar).
    """
    config = config or IngestConfig()
    paths = [resolve_path(f, what="input file") for f in files]
    result = IngestResult()
    rejects: list[dict[str, Any]] = []
    conflicts: dict[tuple[str, str], dict[str, Any]] = {}
    now = utcnow()
    with ws.transaction() as conn:
        for path in paths:
            summary = FileSummary(file=str(path))
            result.files.append(summary)
            shas: dict[str, str] = {}
            for raw, file, layout, rec in built_rows(path, config):
                if progress:
                    progress(1)
                if layout is not None:
                    summary.layout = layout.name
                if isinstance(rec, InputError):
                    exc = rec
                    if not config.skip_invalid:
                        raise exc
                    summary.rejected += 1
                    rejects.append({"file": exc.file or file, "row": exc.row, "line": exc.line,
                                    "field": exc.field or "", "reason": exc.reason})
                    continue
                if file not in shas:
                    shas[file] = sha256_file(Path(file))
                summary.rows += 1
                for name in raw.cleaned:
                    summary.cleaned[name] = summary.cleaned.get(name, 0) + 1
                for one in ((rec.chosen, rec.rejected) if isinstance(rec, NewPair) else (rec,)):
                    one.file_sha256 = shas[file]
                    for name in one.meta.get("conditions", {}):
                        result.conditions[name] = result.conditions.get(name, 0) + 1
                    outcome = upsert_record(conn, one, now)
                    if outcome.added:
                        summary.added += 1
                    elif outcome.new_source:
                        summary.duplicates += 1
                    else:
                        summary.unchanged += 1
                    for fname, values in outcome.conflicts.items():
                        conflicts[(one.id, fname)] = {"record_id": one.id, "field": fname,
                                                      "values": values, "file": file,
                                                      "row": raw.row}
                if isinstance(rec, NewPair) and add_imported_pair(conn, rec, now):
                    summary.pairs += 1
        for s in result.files:
            result.rows += s.rows
            result.added += s.added
            result.duplicates += s.duplicates
            result.unchanged += s.unchanged
            result.rejected += s.rejected
            result.pairs += s.pairs
            for name, n in s.cleaned.items():
                result.cleaned[name] = result.cleaned.get(name, 0) + n
        for (_, fname) in conflicts:
            name = "label_conflict" if fname == "label" else "gold_conflict"
            result.conditions[name] = result.conditions.get(name, 0) + 1
        result.conflicts = list(conflicts.values())[:_CONFLICT_EXAMPLES]
        _check_reject_share(result, rejects, config)
        if rejects:
            result.reject_report = str(ws.subdir("rejects") / f"ingest-{now.replace(':', '')[:17]}"
                                                                f"-{os.urandom(3).hex()}.csv")
        metrics = {k: v for k, v in result.to_dict().items() if k != "files"}
        if result.added or result.duplicates or result.rejected or result.pairs:
            run = start_run(conn, "ingest", {"files": [str(p) for p in paths],
                                             "schema": config.schema,
                                             "skip_invalid": config.skip_invalid})
            finish_run(conn, run, metrics)
            result.run_id = run
        if rejects:
            # Written before COMMIT: if the report cannot be written, nothing is stored.
            _write_rejects(Path(result.reject_report), rejects)
    return result


def _check_reject_share(result: IngestResult, rejects: list[dict[str, Any]],
                        config: IngestConfig) -> None:
    """Refuse (roll back) an ingest that rejected more than the allowed share of its rows.

    Without this, `--skip-invalid` on data whose layout was misread "succeeds" with every row
    rejected and nothing useful stored.
    """
    total = result.rows + result.rejected
    if not rejects or result.rejected <= config.max_reject_share * total:
        return
    reasons = Counter((r["field"], r["reason"]) for r in rejects)
    (fname, reason), n = reasons.most_common(1)[0]
    first = next(r for r in rejects if (r["field"], r["reason"]) == (fname, reason))
    where = f"{Path(first['file']).name} row {first['row']}" + (f" field '{fname}'" if fname else "")
    raise InputError(
        f"rejected {result.rejected} of {total} rows ({result.rejected / total:.0%}), more than "
        f"max_reject_share {config.max_reject_share:.0%} (--max-reject-share); nothing stored. "
        f"Most common reason ({n} rows, first at {where}): {reason}")


def built_rows(path: Path, config: IngestConfig
               ) -> Iterator[tuple[RawRow, str, Layout | None, NewRecord | NewPair | InputError]]:
    """Each row of `path` as `(raw, file, layout, record (a pair for a preference layout) or the
    InputError that rejects it)`.

    The layout is detected from the first row that parses and then holds for the file (None
    until then); `ingest` and `preview` both read through here.
    """
    from pipelines.ingest.preference import build_pair   # it builds on this module's helpers

    layout = None
    for raw in read_rows(path, text_field=config.fields.text,
                         max_field_chars=config.max_record_chars, encoding=config.encoding):
        file = raw.file or str(path)
        try:
            if raw.error is not None:
                raise raw.error
            raw.values, cleaned = clean_values(raw.values, max_chars=config.max_record_chars,
                                               file=file, row=raw.row, line=raw.line)
            raw.cleaned = tuple(cleaned)
            if layout is None:
                layout = detect_layout(raw.values, config, file, row=raw.row)
            build = build_pair if layout.kind == "preference" else build_record
            yield raw, file, layout, build(raw, config, layout, file)
        except InputError as exc:
            yield raw, file, layout, exc


def preview(path: str | os.PathLike, config: IngestConfig | None = None,
            *, max_rows: int = 1000) -> Preview:
    """The detected format and layout of `path` and its first valid row as a record.

    Reads only as far as that row and stores nothing. A bad row before it raises, as `ingest`
    would, unless `config.skip_invalid` (then it is listed in `skipped`).
    """
    config = config or IngestConfig()
    path = Path(path).expanduser().resolve()
    skipped: list[str] = []
    for n, (_raw, _file, layout, rec) in enumerate(built_rows(path, config), start=1):
        if isinstance(rec, InputError):
            if not config.skip_invalid or n >= max_rows:
                raise rec
            skipped.append(str(rec))
            continue
        pair = rec if isinstance(rec, NewPair) else None
        return Preview(file=str(path), source=describe_source(path), layout=layout,
                       record=pair.chosen if pair else rec, skipped=skipped, pair=pair)
    raise InputError("no valid row to preview", file=str(path))


def _write_rejects(path: Path, rejects: list[dict[str, Any]]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".rejects-", suffix=".csv")
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "row", "line", "field", "reason"])
        w.writeheader()
        w.writerows(rejects)
    os.replace(tmp, path)


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


def _json_list(raw: RawRow, file: str, name: str, what: str) -> list:
    """A list field; CSV cells hold it as JSON text."""
    where = dict(file=file, row=raw.row, line=raw.line, field=name)
    value = raw.values[name]
    if isinstance(value, str):
        try:
            value = clean_values({name: json.loads(value)}, max_chars=len(value) + 1,
                                 file=file, row=raw.row, line=raw.line)[0][name]
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON in {what}: {exc.msg}", **where) from None
        except RecursionError:
            raise nesting_error(where) from None
    if not isinstance(value, (list, tuple)):
        raise InputError(f"expected a list of {what}, got {_type_name(value)}", **where)
    return list(value)


_ROLE_HINT = ("system, user, assistant, tool (or human, gpt, chatgpt, bing, bard, model, "
              "function, observation)")


def _messages(raw: RawRow, file: str, name: str) -> tuple[list[dict[str, str]], int]:
    """The turns of a conversation (`role`/`content` or ShareGPT `from`/`value` keys, role
    aliases folded) and how many empty turns were dropped."""
    where = dict(file=file, row=raw.row, line=raw.line)
    if name not in raw.values or raw.values[name] in (None, ""):
        raise InputError("missing required field", field=name, **where)
    value = _json_list(raw, file, name, "{role, content} messages")
    if not value:
        raise InputError("expected a non-empty list of {role, content}, got an empty list",
                         field=name, **where)
    out, empty = [], 0
    for i, m in enumerate(value):
        fname = f"{name}[{i}]"
        if not isinstance(m, dict):
            raise InputError(f"expected an object with role and content, got {_type_name(m)}",
                             field=fname, **where)
        role_key = next((k for k in ("role", "from") if k in m), None)
        content_key = next((k for k in ("content", "value", "parts") if k in m), None)
        if role_key is None or content_key is None:
            missing = "'role' (or 'from')" if role_key is None else "'content' (or 'value')"
            raise InputError(f"no {missing} key; found {', '.join(map(repr, m)) or 'no keys'}",
                             field=fname, **where)
        role = canonical_role(m[role_key])
        if role is None:
            raise InputError(f"unknown role {m[role_key]!r}; expected one of {_ROLE_HINT}",
                             field=f"{fname}.{role_key}", **where)
        content = m[content_key]
        if isinstance(content, list):   # OpenAI / Gemini content parts: the text ones, joined
            content = _text_parts(content, f"{fname}.{content_key}", where)
        if content is None or isinstance(content, str) and not content.strip():
            empty += 1   # dropped, counted: one blank turn should not cost the conversation
            continue
        if not isinstance(content, str):
            raise InputError(f"wrong type: expected text, got {_type_name(content)} "
                             f"{content!r:.40}", field=f"{fname}.{content_key}", **where)
        out.append({"role": role, "content": content.strip()})
    if not any(m["role"] in ("user", "assistant") for m in out):
        raise InputError("a conversation needs at least one non-empty user or assistant message",
                         field=name, **where)
    return out, empty


_TEXT_PARTS = ("text", "input_text", "output_text")


def _text_parts(parts: list, field: str, where: dict) -> str:
    """The text of a content-parts list (`[{"type": "text", "text": ...}, ...]`, as the OpenAI
    chat and Responses APIs and the HF chat templates write it; Gemini's `[{"text": ...}]`),
    parts joined by a newline. A part of another kind (an image, audio, a file) is refused: a
    text data set cannot keep it, and dropping it silently would change what the turn says."""
    texts = []
    for k, part in enumerate(parts):
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            raise InputError(f"wrong type: expected a content part (an object), got "
                             f"{_type_name(part)} {part!r:.40}", field=f"{field}[{k}]", **where)
        kind = part.get("type", "text")
        if kind not in _TEXT_PARTS or not isinstance(part.get("text"), str):
            raise InputError(f"a {kind!r} content part: only text parts ({', '.join(_TEXT_PARTS)} "
                             f"with a 'text' string) can be ingested", field=f"{field}[{k}]",
                             **where)
        texts.append(part["text"])
    return "\n".join(t for t in texts if t.strip())


def _history(raw: RawRow, file: str, name: str) -> tuple[list[dict[str, str]], int]:
    """Alpaca `history`: [[user, assistant], ...] earlier exchanges, as turns."""
    if name not in raw.values or raw.values[name] in (None, ""):
        return [], 0
    where = dict(file=file, row=raw.row, line=raw.line)
    out, empty = [], 0
    for i, pair in enumerate(_json_list(raw, file, name, "[user, assistant] pairs")):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise InputError(f"expected a [user, assistant] pair, got {_type_name(pair)} "
                             f"{pair!r:.40}", field=f"{name}[{i}]", **where)
        for j, (role, content) in enumerate(zip(("user", "assistant"), pair)):
            if content is None or isinstance(content, str) and not content.strip():
                empty += 1
            elif not isinstance(content, str):
                raise InputError(f"wrong type: expected text, got {_type_name(content)}",
                                 field=f"{name}[{i}][{j}]", **where)
            else:
                out.append({"role": role, "content": content.strip()})
    return out, empty


def _chat_conditions(messages: list[dict[str, str]], empty: int) -> dict[str, Any]:
    """Named conditions of a conversation that is stored anyway (export and train decide)."""
    conditions: dict[str, Any] = {}
    if empty:
        conditions["empty_turn"] = empty
    talk = [m["role"] for m in messages if m["role"] != "system"]
    if talk and talk[0] == "assistant":
        conditions["assistant_first"] = True
    if talk and talk[-1] == "user":
        conditions["ends_on_user"] = True
    return conditions


def _chat_record(messages: list[dict[str, str]]) -> tuple[NewRecord, dict]:
    parts = {"messages": [[m["role"], normalize_text(m["content"])] for m in messages]}
    system = next((m["content"] for m in messages if m["role"] == "system"), None)
    last_assistant = max((i for i, m in enumerate(messages) if m["role"] == "assistant"),
                         default=None)
    prompt = response = None
    if last_assistant is not None:
        response = messages[last_assistant]["content"]
        prompt = next((m["content"] for m in reversed(messages[:last_assistant])
                       if m["role"] == "user"), None)
    rec = NewRecord(id="", kind="chat", text=render_turns(Turn(m["role"], m["content"]) for m in messages),
                    prompt=prompt, response=response, system=system, messages=messages)
    return rec, parts


def _default_layout(kind: str, config: IngestConfig) -> Layout:
    f = config.fields
    return {"text": Layout("text", "text", {"text": f.text, "label": f.label}),
            "instruction": Layout("instruction", "instruction",
                                  {"prompt": f.prompt, "response": f.response,
                                   "system": f.system, "label": f.label}),
            "chat": Layout("openai", "chat", {"messages": f.messages, "label": f.label})}[kind]


def build_record(raw: RawRow, config: IngestConfig, layout: Layout | str, file: str) -> NewRecord:
    """Validate one row and turn it into a `NewRecord` (raises `InputError` naming the field).

    Args:
        layout: the row layout (`detect_layout`), or a schema kind for that kind's plain layout.
    """
    if isinstance(layout, str):
        layout = _default_layout(layout, config)
    f = layout.fields
    label = _label(raw, file, f.get("label", config.fields.label))
    gold = {}
    for key, value in raw.values.items():
        if key.startswith(config.gold_prefix) and len(key) > len(config.gold_prefix):
            if value is not None and str(value).strip():
                scheme, value = key[len(config.gold_prefix):], str(value).strip()
                allowed = config.gold_classes.get(scheme)
                if allowed is not None and value not in allowed:
                    raise InputError(f"gold label {value!r} is not a class of scheme "
                                     f"{scheme!r} ({', '.join(allowed)})", file=file,
                                     row=raw.row, line=raw.line, field=key)
                gold[scheme] = value
    conditions: dict[str, Any] = {}
    if layout.kind == "text":
        text = _text(raw, file, f["text"], required=True)
        parts = {"text": normalize_text(text)}
        rec = NewRecord(id="", kind="text", text=text)
    elif layout.kind == "instruction":
        prompt = _text(raw, file, f["prompt"], required=True)
        extra = _text(raw, file, f["input"], required=False) if "input" in f else None
        if extra:   # Alpaca's `input` is part of what the model is asked
            prompt = f"{prompt}\n\n{extra}"
        response = _text(raw, file, f["response"], required=True)
        system = _text(raw, file, f["system"], required=False)
        history, empty = _history(raw, file, f["history"]) if "history" in f else ([], 0)
        if history:   # earlier exchanges make it a conversation
            messages = ([{"role": "system", "content": system}] if system else []) + history + [
                {"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
            rec, parts = _chat_record(messages)
            conditions = _chat_conditions(messages, empty)
        else:
            parts = {"system": normalize_text(system or ""), "prompt": normalize_text(prompt),
                     "response": normalize_text(response)}
            rec = NewRecord(id="", kind="instruction", text=f"{prompt}\n\n{response}",
                            prompt=prompt, response=response, system=system)
            if empty:
                conditions["empty_turn"] = empty
    elif layout.kind == "chat":
        messages, empty = _messages(raw, file, f["messages"])
        rec, parts = _chat_record(messages)
        conditions = _chat_conditions(messages, empty)
    else:  # pragma: no cover - layouts have one of the three kinds
        raise ValueError(layout.kind)
    used = set(f.values())
    rec.id = record_id(rec.kind, parts)
    rec.raw_label = label
    rec.gold = gold
    meta = {k: v for k, v in raw.values.items()
            if k not in used and not (k.startswith(config.gold_prefix) and k != config.gold_prefix)}
    if "conditions" in meta:   # the key is ours; an input column of that name is kept beside it
        meta["conditions_input"] = meta.pop("conditions")
    if conditions:
        meta["conditions"] = conditions
    rec.meta = meta
    rec.file, rec.row, rec.line = file, raw.row, raw.line
    return rec
