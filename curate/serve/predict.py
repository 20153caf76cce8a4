"""`curate predict`: batch inference over a file, through the same `ModelService` as the server.

Input: `.jsonl` rows with `messages` (a chat), `prompt` or `text`, and optionally `model`
(per row; else the command's); `.txt` one prompt per line; `.csv` with a `prompt` or `text`
column. Output: one JSON line per input row, in order: `{"row", "model", "routing", "answer"}`
for generators, `{"row", "model", "label", "scores"}` for classifiers, or `{"row", "error"}` for a
row the service refused (the others still run).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Iterator

from curate.serve.service import ModelService, RequestError
from pipelines.errors import InputError

__all__ = ["read_prompts", "predict_file"]


def read_prompts(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number from 1, a chat body) per input row; `InputError` names the file and row."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", file=str(path))
    suffix = path.suffix.lower()
    if suffix == ".txt":
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate((x for x in fh if x.strip()), 1):
                yield n, {"messages": [{"role": "user", "content": line.rstrip("\n")}]}
        return
    if suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            col = next((c for c in ("prompt", "text") if c in (reader.fieldnames or [])), None)
            if col is None:
                raise InputError("needs a 'prompt' or 'text' column", file=str(path), row=1)
            for n, rec in enumerate(reader, 1):
                yield n, {"messages": [{"role": "user", "content": rec[col] or ""}]}
        return
    if suffix != ".jsonl":
        raise InputError(f"unsupported file type {suffix or '(none)'}; use .jsonl, .txt or .csv",
                         file=str(path))
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"invalid JSON ({exc.msg})", file=str(path), row=n) from None
            if not isinstance(rec, dict):
                raise InputError("expected a JSON object", file=str(path), row=n)
            if isinstance(rec.get("messages"), list):
                body = {"messages": rec["messages"]}
            else:
                text = rec.get("prompt", rec.get("text"))
                if not isinstance(text, str):
                    raise InputError("needs 'messages', 'prompt' or 'text'", file=str(path),
                                     row=n, field="prompt")
                body = {"messages": [{"role": "user", "content": text}]}
            if isinstance(rec.get("model"), str):
                body["model"] = rec["model"]
            yield n, body


def predict_file(service: ModelService, path: str | Path, out: str | Path, *, model: str = "auto",
                 max_tokens: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Answer every row of `path` into `out` (written to a temp file, then renamed); returns
    counts `{"rows", "errors", "models": {name: n}, "out"}`."""
    from tqdm import tqdm

    rows = list(read_prompts(path))
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    counts: dict[str, int] = {}
    errors = 0
    with open(tmp, "w", encoding="utf-8") as fh:
        for n, body in tqdm(rows, desc="predict", unit=" row", disable=not progress):
            body = {"model": model, **body}
            if max_tokens:
                body["max_tokens"] = max_tokens
            try:
                reply = service.chat(body)
                routing = reply["routing"]
                served = routing["model"]
                row: dict[str, Any] = {"row": n, "model": served, "routing": routing}
                if "classification" in routing:
                    row.update(routing["classification"])
                else:
                    row["answer"] = reply["choices"][0]["message"]["content"]
                counts[served] = counts.get(served, 0) + 1
            except RequestError as exc:
                row, errors = {"row": n, "error": exc.message}, errors + 1
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, out)
    return {"rows": len(rows), "errors": errors, "models": counts, "out": str(out)}
