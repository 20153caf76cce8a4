"""Streaming readers for CSV, JSONL and Parquet that know the row and line of every value.

Each reader yields `RawRow(row, line, values)` and raises `InputError` naming the file, row/line
and field for anything malformed in the file's own format (bad UTF-8, invalid JSON, duplicate
column names, ragged CSV rows, a file that is not what its name says).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from pipelines.errors import InputError

__all__ = ["RawRow", "detect_format", "read_rows", "FORMATS"]

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
           ".pq": "parquet"}


@dataclass
class RawRow:
    row: int                 # 1-based data row
    line: int | None         # physical line where it starts (None for Parquet)
    values: dict[str, Any]
    error: InputError | None = None   # a row-level fault; the reader can go on past it


def detect_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"unsupported file type '{path.suffix or '(none)'}': expected .csv, "
                         f".jsonl or .parquet", file=str(path))
    return fmt


def read_rows(path: Path) -> Iterator[RawRow]:
    """Yield every data row of `path`, streaming. Raises `InputError` on malformed input."""
    if not path.exists():
        raise InputError("no such file", file=str(path))
    if not path.is_file():
        raise InputError("not a regular file", file=str(path))
    fmt = detect_format(path)
    if path.stat().st_size == 0:
        raise InputError("the file is empty (0 bytes)", file=str(path))
    reader = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}[fmt]
    n = 0
    for raw in reader(path):
        n += 1
        yield raw
    if n == 0:
        what = "a header but no data rows" if fmt == "csv" else "no records"
        raise InputError(f"the file has {what}", file=str(path))


def _decoded_lines(path: Path, bad: dict[int, str]) -> Iterator[str]:
    """Lines decoded one by one, so that bad UTF-8 is reported with its line number.

    A line that is not UTF-8 is decoded with replacement characters and its reason is put in
    `bad` (line -> reason); the reader turns the row holding it into a row-level error.
    """
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte-order mark, as spreadsheet programs write
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad[lineno] = (f"invalid UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                               f"{exc.start + 1}); save the file as UTF-8")
                yield raw.decode("utf-8", errors="replace")


def _read_csv(path: Path) -> Iterator[RawRow]:
    bad: dict[int, str] = {}
    reader = csv.reader(_decoded_lines(path, bad), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise InputError(f"malformed CSV header: {exc}", file=str(path), line=1) from None
    if 1 in bad:
        raise InputError(bad[1], file=str(path), line=1)
    header = [h.strip() for h in header]
    if not any(header):
        raise InputError("the header row is empty", file=str(path), line=1)
    seen: set[str] = set()
    for i, name in enumerate(header, start=1):
        if not name:
            raise InputError(f"column {i} of the header has no name", file=str(path), line=1)
        if name in seen:
            raise InputError("duplicate column name in the header", file=str(path), line=1,
                             field=name)
        seen.add(name)
    row = 0
    while True:
        start_line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The csv module cannot resynchronise after a broken quote: the file is unreadable.
            raise InputError(f"malformed CSV: {exc}", file=str(path), row=row + 1,
                             line=start_line) from None
        if not values or all(not v.strip() for v in values) and len(values) <= 1:
            continue  # a blank line
        row += 1
        bad_here = [bad[n] for n in range(start_line, reader.line_num + 1) if n in bad]
        if bad_here:
            yield RawRow(row, start_line, {}, InputError(bad_here[0], file=str(path), row=row,
                                                          line=start_line))
        elif len(values) != len(header):
            yield RawRow(row, start_line, {}, InputError(
                f"has {len(values)} fields but the header has {len(header)}",
                file=str(path), row=row, line=start_line))
        else:
            yield RawRow(row, start_line, dict(zip(header, values)))


def _no_duplicate_keys(path: Path, lineno: int):
    def hook(pairs):
        obj = {}
        for k, v in pairs:
            if k in obj:
                raise InputError("duplicate key in JSON object", file=str(path), row=lineno,
                                 line=lineno, field=k)
            obj[k] = v
        return obj
    return hook


def _read_jsonl(path: Path) -> Iterator[RawRow]:
    bad: dict[int, str] = {}
    for lineno, text in enumerate(_decoded_lines(path, bad), start=1):
        if not text.strip():
            continue
        if lineno in bad:
            yield RawRow(lineno, lineno, {}, InputError(bad[lineno], file=str(path), row=lineno,
                                                        line=lineno))
            continue
        try:
            obj = json.loads(text, object_pairs_hook=_no_duplicate_keys(path, lineno))
        except json.JSONDecodeError as exc:
            yield RawRow(lineno, lineno, {}, InputError(
                f"invalid JSON: {exc.msg} (column {exc.colno})", file=str(path), row=lineno,
                line=lineno))
            continue
        except InputError as exc:
            yield RawRow(lineno, lineno, {}, exc)
            continue
        if not isinstance(obj, dict):
            yield RawRow(lineno, lineno, {}, InputError(
                f"expected a JSON object, got {type(obj).__name__}", file=str(path), row=lineno,
                line=lineno))
            continue
        yield RawRow(lineno, lineno, obj)


def _read_parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"not a valid Parquet file ({exc})", file=str(path)) from None
    names = pf.schema_arrow.names
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError("duplicate column name", file=str(path), field=name)
        seen.add(name)
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=1024):
            for values in batch.to_pylist():
                row += 1
                yield RawRow(row, None, values)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"unreadable Parquet data after row {row} ({exc})", file=str(path)) from None
