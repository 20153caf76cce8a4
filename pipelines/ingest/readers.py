"""Streaming readers that know the row, line (or byte offset) of every value.

Files: CSV, JSON Lines, JSON (an array of objects, or objects one after another), Parquet,
Arrow, plain text (one record per non-empty line), each optionally `.gz` or `.zst` compressed.
Folders: a `datasets` `save_to_disk` folder (`state.json` + Arrow files, or a `DatasetDict` with
`dataset_dict.json`), or a folder of data shards of one file type (as the Hugging Face hub
serves them), read in name order.

Each reader yields `RawRow(row, line, values)` and raises `InputError` naming the file, row/line
(or byte offset) and field for anything malformed in the file's own format (bad UTF-8, invalid
JSON, duplicate column names, ragged CSV rows, a file that is not what its name says). Every
reader streams: memory stays bounded by one batch or one JSON item, whatever the file's size.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import itertools
import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator

from pipelines.errors import InputError
from pipelines.ingest.hygiene import shown

__all__ = ["RawRow", "detect_format", "read_rows", "FORMATS", "COMPRESSIONS", "describe_source"]

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
           ".parquet": "parquet", ".pq": "parquet", ".arrow": "arrow", ".txt": "text"}
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}
# Files a hub download or `save_to_disk` puts beside the data: never read as shards.
_NOT_SHARDS = {"state.json", "dataset_info.json", "dataset_infos.json", "dataset_dict.json"}
_CHUNK = 1 << 20  # bytes read at a time from a JSON file


@dataclass
class RawRow:
    row: int                 # 1-based data row (JSON: item) within its file
    line: int | None         # physical line where it starts (None for Parquet/Arrow)
    values: dict[str, Any]
    error: InputError | None = None   # a row-level fault; the reader can go on past it
    file: str | None = None  # the shard it came from, when the input is a folder
    cleaned: tuple[str, ...] = ()   # fields control characters were stripped from (hygiene)


def detect_format(path: Path) -> tuple[str, str | None]:
    """(format, compression) from the file name, e.g. `data.jsonl.gz` -> ("jsonl", "gzip")."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    data_suffix = (suffixes[-2] if len(suffixes) > 1 else "") if compression else \
        (suffixes[-1] if suffixes else "")
    fmt = FORMATS.get(data_suffix)
    if fmt is None:
        shown = "".join(path.suffixes[-2:] if compression else path.suffixes[-1:]) or "(none)"
        raise InputError(f"unsupported file type '{shown}': expected .csv, .tsv, .jsonl, .json, "
                         f".parquet, .arrow or .txt (optionally .gz or .zst), or a folder of them",
                         file=str(path))
    if compression and fmt in ("parquet", "arrow"):
        raise InputError(f"a compressed {fmt} file cannot be read: {fmt} compresses its own "
                         f"columns; decompress it first", file=str(path))
    return fmt, compression


def describe_source(path: Path) -> str:
    """What `read_rows` will take `path` for, in words (for `curate ingest --dry-run`)."""
    if path.is_dir():
        if (path / "dataset_dict.json").is_file():
            return "datasets save_to_disk folder (DatasetDict)"
        if (path / "state.json").is_file():
            return "datasets save_to_disk folder"
        shards = _shards(path)
        return f"folder of {len(shards)} {detect_format(shards[0])[0]} shard(s)"
    fmt, compression = detect_format(path)
    described = fmt + (f" ({compression})" if compression else "")
    if fmt == "text" and _excel_unicode_text(path, compression):
        return "tsv (UTF-16 text with a tab-separated header: Excel's \"Unicode text\")"
    if fmt == "csv":
        delimiter = _csv_delimiter(_first_line(path, compression))
        if delimiter != ",":
            described += f", {_DELIMITER_NAMES[delimiter]}-separated"
    return described


def read_rows(path: Path, *, text_field: str = "text", max_field_chars: int = 1_000_000,
              encoding: str = "utf-8") -> Iterator[RawRow]:
    """Yield every data row of `path` (a file or a folder), streaming.

    Args:
        text_field: the key a plain-text file's lines are given (the text field of the config).
        max_field_chars: the longest CSV field read (Python's csv module stops at 131,072).
        encoding: of the line formats (.csv, .tsv, .jsonl, .txt); a UTF-16 byte-order mark
            (Excel's "Unicode text") is followed whatever it says. JSON arrays are UTF-8.

    Raises `InputError` on malformed input.
    """
    if max_field_chars > csv.field_size_limit():
        csv.field_size_limit(max_field_chars)   # process-wide; only ever raised
    if not path.exists():
        raise InputError("no such file", file=str(path))
    if path.is_dir():
        yield from _read_folder(path, text_field, encoding)
        return
    if not path.is_file():
        raise InputError("not a regular file", file=str(path))
    yield from _read_file(path, text_field, encoding)


def _excel_unicode_text(path: Path, compression: str | None) -> bool:
    """A `.txt` that Excel saved as "Unicode text": a UTF-16 byte-order mark and a header row
    separated by tabs. It is a table, read as TSV (as lines, every row would be one record)."""
    with _open_binary(path, compression) as fh:
        if fh.read(2) not in (b"\xff\xfe", b"\xfe\xff"):
            return False
    return "\t" in _first_line(path, compression)


def _read_file(path: Path, text_field: str, encoding: str = "utf-8") -> Iterator[RawRow]:
    fmt, compression = detect_format(path)
    if fmt == "text" and path.stat().st_size and _excel_unicode_text(path, compression):
        fmt = "tsv"
    if path.stat().st_size == 0:
        raise InputError("the file is empty (0 bytes)", file=str(path))
    if fmt == "parquet":
        reader = _read_parquet(path)
    elif fmt == "arrow":
        reader = _read_arrow(path)
    else:
        stream = _open_binary(path, compression)
        reader = {"csv": lambda p, s: _read_csv(p, s, encoding=encoding),
                  "tsv": lambda p, s: _read_csv(p, s, tab=True, encoding=encoding),
                  "jsonl": lambda p, s: _read_jsonl(p, s, encoding),
                  "json": _read_json,
                  "text": lambda p, s: _read_text(p, s, text_field, encoding)}[fmt](path, stream)
    n = 0
    try:
        for raw in reader:
            n += 1
            yield raw
    except _DECOMPRESSION_ERRORS as exc:
        raise InputError(f"the {compression or 'compressed'} data is corrupt or cut off after "
                         f"row {n} ({exc})", file=str(path)) from None
    if n == 0:
        what = "a header but no data rows" if fmt in ("csv", "tsv") else "no records"
        raise InputError(f"the file has {what}", file=str(path))


# -- compression -----------------------------------------------------------------------------
def _zstd_error() -> tuple[type[BaseException], ...]:
    try:
        import zstandard
    except ImportError:
        return ()
    return (zstandard.ZstdError,)


_DECOMPRESSION_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile) + _zstd_error()


def _open_binary(path: Path, compression: str | None) -> IO[bytes]:
    """The file's bytes, decompressed on the fly; a file that is not what its name says fails."""
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if compression == "gzip":
        if magic[:2] != b"\x1f\x8b":
            raise InputError("not a gzip file (it does not start with the gzip bytes 1f 8b); "
                             "rename it or compress it with gzip", file=str(path))
        return gzip.open(path, "rb")
    if compression == "zstd":
        try:
            import zstandard
        except ImportError:
            raise InputError("reading .zst files needs the 'zstandard' package "
                             "(pip install zstandard), or decompress the file first",
                             file=str(path)) from None
        if magic != b"\x28\xb5\x2f\xfd":
            raise InputError("not a zstd file (it does not start with the zstd bytes 28 b5 2f "
                             "fd)", file=str(path))
        # Buffered so that the line readers can iterate it (the raw reader has no readline).
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, "rb"),
                                                                            closefd=True))
    return open(path, "rb")


# -- text formats ----------------------------------------------------------------------------
def _decoded_lines(stream: IO[bytes], bad: dict[int, str], encoding: str = "utf-8"
                   ) -> Iterator[str]:
    """Lines decoded one by one, so that bad bytes are reported with their line number.

    A line that does not decode is decoded with replacement characters and its reason is put in
    `bad` (line -> reason); the reader turns the row holding it into a row-level error. A file
    that starts with a UTF-16 byte-order mark (Excel's "Unicode text") is read as UTF-16.
    """
    with stream as fh:
        head = fh.peek(2)[:2] if hasattr(fh, "peek") else b""
        if head in (b"\xff\xfe", b"\xfe\xff"):
            yield from io.TextIOWrapper(fh, encoding="utf-16", errors="replace", newline="")
            return
        for lineno, raw in enumerate(fh, start=1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte-order mark, as spreadsheet programs write
            try:
                yield raw.decode(encoding)
            except UnicodeDecodeError as exc:
                name = "UTF-8" if codecs.lookup(encoding).name == "utf-8" else encoding
                hint = ("; save the file as UTF-8, or give its encoding (--encoding cp1252 for "
                        "a file from Excel on Windows)" if name == "UTF-8" else "")
                bad[lineno] = (f"invalid {name} (byte 0x{raw[exc.start]:02x} at column "
                               f"{exc.start + 1}){hint}")
                yield raw.decode(encoding, errors="replace")


def _read_text(path: Path, stream: IO[bytes], text_field: str, encoding: str = "utf-8"
               ) -> Iterator[RawRow]:
    bad: dict[int, str] = {}
    row = 0
    for lineno, text in enumerate(_decoded_lines(stream, bad, encoding), start=1):
        if not text.strip():
            continue
        row += 1
        if lineno in bad:
            yield RawRow(row, lineno, {}, InputError(bad[lineno], file=str(path), row=row,
                                                     line=lineno))
        else:
            yield RawRow(row, lineno, {text_field: text.rstrip("\r\n")})


_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def _csv_delimiter(header: str) -> str:
    """The delimiter of a .csv file from its header line: a comma, unless the header has none
    outside quotes and has semicolons (what spreadsheet programs write where the comma is the
    decimal mark), tabs or pipes, the most frequent of those. Data rows are never guessed from:
    a comma in a text field must not change how the file is split."""
    unquoted = re.sub(r'"[^"]*"', "", header)
    if "," in unquoted:
        return ","
    counts = {d: unquoted.count(d) for d in (";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _first_line(path: Path, compression: str | None, encoding: str = "utf-8") -> str:
    with contextlib.closing(_decoded_lines(_open_binary(path, compression), {}, encoding)) as it:
        return next(it, "")


def _read_csv(path: Path, stream: IO[bytes], *, tab: bool = False, encoding: str = "utf-8"
              ) -> Iterator[RawRow]:
    bad: dict[int, str] = {}
    lines = _decoded_lines(stream, bad, encoding)
    first = next(lines, None)
    if first is None:
        return
    delimiter = "\t" if tab else _csv_delimiter(first)
    reader = csv.reader(itertools.chain([first], lines), delimiter=delimiter, strict=True)
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
            hint = (f" ({csv.field_size_limit():,} characters; raise max_record_chars, "
                    f"--max-record-chars)" if "field limit" in str(exc) else "")
            raise InputError(f"malformed CSV: {exc}{hint}", file=str(path), row=row + 1,
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


class _Where:
    """The row (and line) of the JSON value being decoded, for the duplicate-key hook."""

    def __init__(self, path: Path):
        self.path, self.row, self.line = path, 0, None

    def hook(self, pairs):
        obj = {}
        for k, v in pairs:
            if k in obj:
                raise InputError("duplicate key in JSON object", file=str(self.path),
                                 row=self.row, line=self.line, field=shown(k))
            obj[k] = v
        return obj


def _read_jsonl(path: Path, stream: IO[bytes], encoding: str = "utf-8") -> Iterator[RawRow]:
    bad: dict[int, str] = {}
    where = _Where(path)
    decoder = json.JSONDecoder(object_pairs_hook=where.hook)
    for lineno, text in enumerate(_decoded_lines(stream, bad, encoding), start=1):
        if not text.strip():
            continue
        if lineno in bad:
            yield RawRow(lineno, lineno, {}, InputError(bad[lineno], file=str(path), row=lineno,
                                                        line=lineno))
            continue
        where.row = where.line = lineno
        try:
            obj = decoder.decode(text)
        except json.JSONDecodeError as exc:
            yield RawRow(lineno, lineno, {}, InputError(
                f"invalid JSON: {exc.msg} (column {exc.colno})", file=str(path), row=lineno,
                line=lineno))
            continue
        except InputError as exc:
            yield RawRow(lineno, lineno, {}, exc)
            continue
        except RecursionError:
            yield RawRow(lineno, lineno, {}, _too_deep(path, lineno, lineno))
            continue
        if not isinstance(obj, dict):
            yield RawRow(lineno, lineno, {}, InputError(
                f"expected a JSON object, got {type(obj).__name__}", file=str(path), row=lineno,
                line=lineno))
            continue
        yield RawRow(lineno, lineno, obj)


class _JsonText:
    """Decoded text of a JSON file read in chunks, with the byte offset and line of any index.

    Holds what has been read but not yet consumed: one item plus a chunk, so a GB file is read
    in constant memory. `drop()` forgets the consumed prefix, keeping offsets right.
    """

    def __init__(self, path: Path, stream: IO[bytes]):
        self.path, self.stream = path, stream
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.buf, self.pos = "", 0
        self.base_byte, self.base_line = 0, 1   # byte offset and line of buf[0]
        self.cur, self.cur_byte, self.cur_line = 0, 0, 1   # ... and of buf[cur]
        self.bytes_read, self.eof, self.first = 0, False, True

    def more(self, at_least: int = 0) -> bool:
        """Read more text (at least `at_least` bytes unless the file ends); False at the end."""
        if self.eof:
            return False
        data = self.stream.read(max(at_least, _CHUNK))
        self.eof = not data
        pending = len(self.decoder.getstate()[0])
        try:
            text = self.decoder.decode(data, final=self.eof)
        except UnicodeDecodeError as exc:
            byte = self.bytes_read - pending + exc.start
            raise InputError(f"invalid UTF-8 at byte {byte} (line {self.line_of(len(self.buf))}); "
                             f"save the file as UTF-8", file=str(self.path)) from None
        self.bytes_read += len(data)
        if self.first and text:
            self.first = False
            if text.startswith("\ufeff"):  # a byte-order mark
                text = text[1:]
                self.base_byte += 3
                self.cur_byte += 3
        self.buf += text
        return bool(data)

    def skip_ws(self) -> bool:
        """Move past whitespace; False when the file ends first."""
        while True:
            n = len(self.buf)
            while self.pos < n and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < n:
                return True
            if not self.more():
                return False

    def _advance(self, i: int) -> None:
        """Move the offset cursor to buf[i]; positions asked for only grow, so this is O(n)."""
        if i < self.cur:
            self.cur, self.cur_byte, self.cur_line = 0, self.base_byte, self.base_line
        chunk = self.buf[self.cur:i]
        self.cur_byte += len(chunk) if chunk.isascii() else len(chunk.encode("utf-8"))
        self.cur_line += chunk.count("\n")
        self.cur = i

    def drop(self) -> None:
        if self.pos > _CHUNK:
            self._advance(self.pos)
            self.base_byte, self.base_line = self.cur_byte, self.cur_line
            self.buf, self.pos, self.cur = self.buf[self.pos:], 0, 0

    def byte_of(self, i: int) -> int:
        self._advance(i)
        return self.cur_byte

    def line_of(self, i: int) -> int:
        self._advance(i)
        return self.cur_line


def _read_json(path: Path, stream: IO[bytes]) -> Iterator[RawRow]:
    """A JSON array of objects, or JSON objects one after another (JSON Lines named .json).

    A file cut off at the end (common for dumps) yields every complete item, then a row-level
    error for the cut one that names its byte offset and the last complete item; a syntax error
    elsewhere stops the read with an `InputError` naming its byte offset.
    """
    where = _Where(path)
    hooked = json.JSONDecoder(object_pairs_hook=where.hook)
    plain = json.JSONDecoder()
    t = _JsonText(path, stream)
    with stream:
        if not t.skip_ws():
            return
        opener = t.buf[t.pos]
        if opener not in "[{":
            raise InputError(f"expected a JSON array '[' or object '{{' at byte "
                             f"{t.byte_of(t.pos)}, found {opener!r}", file=str(path))
        array = opener == "["
        if array:
            t.pos += 1
        row = 0
        last_end = None   # byte offset just after the last complete item

        def cut(what: str) -> InputError:
            last = (f"the last complete item is item {row} (ending at byte {last_end})"
                    + "; --skip-invalid keeps the complete items" if row else
                    "no item is complete")
            return InputError(f"the JSON {'array' if array else 'data'} is cut off at byte "
                              f"{t.bytes_read} ({what}); "
                              f"{last}", file=str(path), row=row + 1)

        while True:
            t.drop()
            if not t.skip_ws():
                if array:
                    err = cut("no closing ']'")
                    yield RawRow(row + 1, None, {}, err)
                return
            if array:
                c = t.buf[t.pos]
                if c == "]":
                    t.pos += 1
                    if t.skip_ws():
                        raise InputError(f"unexpected data after the end of the JSON array at "
                                         f"byte {t.byte_of(t.pos)}", file=str(path))
                    return
                if row:
                    if c != ",":
                        raise InputError(
                            f"invalid JSON at byte {t.byte_of(t.pos)} (line {t.line_of(t.pos)}): "
                            f"expected ',' or ']' after item {row}, found {c!r}", file=str(path))
                    t.pos += 1
                    if not t.skip_ws():
                        yield RawRow(row + 1, None, {}, cut("nothing after the last ','"))
                        return
            start = t.pos
            where.row, where.line = row + 1, t.line_of(start)
            need, decoder, error = _CHUNK, hooked, None
            while True:
                try:
                    obj, end = decoder.raw_decode(t.buf, start)
                    # A number could go on in the next chunk; anything else ends with its closer.
                    if end == len(t.buf) and not t.eof and t.more():
                        continue
                    break
                except InputError as exc:   # a duplicate key: find the item's end, go on
                    decoder, error = plain, exc
                    continue
                except RecursionError:   # nested too deep to decode: skip to its end, go on
                    end = _skip_value(t, start)
                    if end is None:
                        yield RawRow(row + 1, where.line, {}, cut(
                            f"inside item {row + 1}, which starts at byte {t.byte_of(start)}"))
                        return
                    obj, error = None, _too_deep(path, row + 1, where.line)
                    break
                except json.JSONDecodeError as exc:
                    if t.more(need):
                        need *= 2   # a big item: read in growing steps, not chunk by chunk
                        continue
                    row_here = row + 1
                    if _cut_short(exc, t.buf):
                        err = cut(f"inside item {row_here}, which starts at byte "
                                  f"{t.byte_of(start)} on line {where.line}")
                        yield RawRow(row_here, where.line, {}, err)
                        return
                    raise InputError(
                        f"invalid JSON at byte {t.byte_of(exc.pos)} (line {t.line_of(exc.pos)}) "
                        f"in item {row_here}: {exc.msg}; reading stops here; "
                        + (f"the last complete item is item {row}" if row else
                           "no item is complete"), file=str(path), row=row_here) from None
            row += 1
            t.pos = end
            last_end = t.byte_of(end)
            if not array and row == 1 and error is None and isinstance(obj, dict):
                key = _wrapped_rows(obj)
                if key is not None and not t.skip_ws():
                    # One object whose one list holds the rows ({"version": 2, "data": [...]}):
                    # the rows are that list's items (read whole: the object already is).
                    for i, item in enumerate(obj[key], start=1):
                        yield RawRow(i, None, item) if isinstance(item, dict) else RawRow(
                            i, None, {}, InputError(f"expected a JSON object in '{key}', got "
                                                    f"{type(item).__name__}", file=str(path),
                                                    row=i, field=key))
                    return
            if error is not None:
                yield RawRow(row, where.line, {}, error)
            elif not isinstance(obj, dict):
                yield RawRow(row, where.line, {}, InputError(
                    f"expected a JSON object, got {type(obj).__name__}", file=str(path), row=row,
                    line=where.line))
            else:
                yield RawRow(row, where.line, obj)


def _wrapped_rows(obj: dict[str, Any]) -> str | None:
    """The key of `obj`'s one list of objects when `obj` wraps a data set's rows (`{"data":
    [...]}`, `{"version": "1.1", "examples": [...]}`), else None. A list whose objects are chat
    turns (with `role` or `from`) is a conversation's, so such an `obj` is one row, not a
    wrapper."""
    lists = [k for k, v in obj.items()
             if isinstance(v, list) and v and isinstance(v[0], dict)
             and 2 * sum(isinstance(x, dict) for x in v[:100]) >= len(v[:100])]
    if len(lists) != 1:
        return None
    head = obj[lists[0]][:100]
    if any(isinstance(x, dict) and ("role" in x or "from" in x) for x in head):
        return None
    return lists[0]


def _too_deep(path: Path, row: int, line: int | None) -> InputError:
    return InputError("the JSON value is nested too deeply to read (thousands of levels of "
                      "lists/objects)", file=str(path), row=row, line=line)


def _skip_value(t: "_JsonText", start: int) -> int | None:
    """The index just past the JSON array/object at `t.buf[start]`, found by counting brackets
    outside strings (no recursion); None when the file ends first."""
    depth, i, in_string, escaped = 0, start, False, False
    while True:
        buf = t.buf
        while i < len(buf):
            c = buf[i]
            if in_string:
                if escaped:
                    escaped = False
                elif c == "\\":
                    escaped = True
                elif c == '"':
                    in_string = False
            elif c == '"':
                in_string = True
            elif c in "[{":
                depth += 1
            elif c in "]}":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        if not t.more():
            return None


def _cut_short(exc: json.JSONDecodeError, buf: str) -> bool:
    """Whether a decode error at the end of the file means the file is cut off, not broken.

    It is cut if a string runs to the end, nothing follows the error, or only the start of a
    number, literal or \\u escape does (`tru`, `1.`, `u00`).
    """
    rest = buf[exc.pos:].strip()
    return (exc.msg.startswith("Unterminated string") or not rest
            or len(rest) < 6 and re.fullmatch(r"[\w.+\-]*", rest) is not None)


# -- columnar formats ------------------------------------------------------------------------
def _check_names(path: Path, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError("duplicate column name", file=str(path), field=name)
        seen.add(name)


def _read_parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"not a valid Parquet file ({exc})", file=str(path)) from None
    _check_names(path, pf.schema_arrow.names)
    names = _class_names(pf.schema_arrow)
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=1024):
            for values in batch.to_pylist():
                row += 1
                yield RawRow(row, None, _named(values, names))
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"unreadable Parquet data after row {row} ({exc})", file=str(path)) from None


def _class_names(schema) -> dict[str, list[str]]:
    """The `datasets` ClassLabel columns of a Parquet/Arrow schema and their names, from the
    `huggingface` metadata that `datasets` writes into every file it saves (`to_parquet`,
    `save_to_disk`, the hub's parquet export): a label stored as 0..k-1 is read as its name."""
    raw = (schema.metadata or {}).get(b"huggingface")
    try:
        features = json.loads(raw)["info"]["features"] if raw else {}
    except (ValueError, KeyError, TypeError):
        return {}   # metadata we cannot read is not the data's fault: keep the numbers
    return {col: list(f["names"]) for col, f in features.items()
            if isinstance(f, dict) and f.get("_type") == "ClassLabel"
            and isinstance(f.get("names"), list) and all(isinstance(n, str) for n in f["names"])}


def _named(values: dict[str, Any], class_names: dict[str, list[str]]) -> dict[str, Any]:
    """`values` with each ClassLabel index replaced by its name; -1 (datasets' "no label", as in
    unlabelled test splits) becomes None. An index out of range is left as it is."""
    for col, names in class_names.items():
        v = values.get(col)
        if isinstance(v, int) and not isinstance(v, bool):
            if v == -1:
                values[col] = None
            elif 0 <= v < len(names):
                values[col] = names[v]
    return values


def _read_arrow(path: Path) -> Iterator[RawRow]:
    """An Arrow IPC file: the stream format `datasets` writes, or the random-access format."""
    import pyarrow as pa

    source = pa.memory_map(str(path))
    try:
        reader = pa.ipc.open_stream(source)
        batches = iter(reader)
        names = reader.schema.names
    except (pa.ArrowInvalid, OSError):
        try:
            reader = pa.ipc.open_file(source)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"not a valid Arrow file ({exc})", file=str(path)) from None
        batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        names = reader.schema.names
    _check_names(path, names)
    class_names = _class_names(reader.schema)
    row = 0
    try:
        for batch in batches:
            for values in batch.to_pylist():
                row += 1
                yield RawRow(row, None, _named(values, class_names))
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"unreadable Arrow data after row {row} ({exc})", file=str(path)) from None


# -- folders ---------------------------------------------------------------------------------
def _shards(path: Path) -> list[Path]:
    """The data files of a shard folder, in name order; one file type or an `InputError`."""
    files = sorted(p for p in path.rglob("*")
                   if p.is_file() and p.name not in _NOT_SHARDS
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    data, kinds = [], {}
    for p in files:
        try:
            fmt, _ = detect_format(p)
        except InputError:
            continue  # README.md, LICENSE and the like
        data.append(p)
        kinds.setdefault(fmt, p)
    if not data:
        raise InputError("the folder holds no data files (.csv, .jsonl, .json, .parquet, "
                         ".arrow, .txt) and is not a datasets save_to_disk folder", file=str(path))
    if len(kinds) > 1:
        shown = ", ".join(f"{fmt} ({p.relative_to(path)})" for fmt, p in kinds.items())
        raise InputError(f"the folder mixes file types: {shown}; put one kind of shard in a "
                         f"folder", file=str(path))
    return data


def _saved_dataset_files(path: Path) -> list[Path]:
    """The Arrow files of a `save_to_disk` folder, in order, from its `state.json`."""
    state_path = path / "state.json"
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        names = [f["filename"] for f in state["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"not a readable datasets state.json ({exc})", file=str(state_path),
                         field="_data_files") from None
    files = [path / n for n in names]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise InputError(f"state.json lists a data file that is missing: {missing[0]}",
                         file=str(state_path), field="_data_files")
    return files


def _read_folder(path: Path, text_field: str, encoding: str = "utf-8") -> Iterator[RawRow]:
    if (path / "dataset_dict.json").is_file():
        try:
            splits = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"not a readable datasets dataset_dict.json ({exc})",
                             file=str(path / "dataset_dict.json"), field="splits") from None
        files = [f for s in splits for f in _saved_dataset_files(path / s)]
    elif (path / "state.json").is_file():
        files = _saved_dataset_files(path)
    else:
        files = _shards(path)
    first_names: tuple[Path, list[str]] | None = None
    for shard in files:
        n = 0
        for raw in _read_file(shard, text_field, encoding):
            n += 1
            if n == 1 and shard.suffix in (".parquet", ".pq", ".arrow") and raw.error is None:
                first_names = _same_columns(first_names, shard, list(raw.values))
            raw.file = str(shard)
            yield raw


def _same_columns(first: tuple[Path, list[str]] | None, shard: Path,
                  names: list[str]) -> tuple[Path, list[str]]:
    """The columns of a folder's first columnar shard; a later shard with others fails."""
    if first is None:
        return shard, names
    ref_path, ref = first
    if set(names) != set(ref):
        extra = sorted(set(names) - set(ref))
        missing = sorted(set(ref) - set(names))
        detail = "; ".join(filter(None, [
            f"it has {', '.join(map(repr, extra))} which {ref_path.name} lacks" if extra else "",
            f"it lacks {', '.join(map(repr, missing))}" if missing else ""]))
        raise InputError(f"the shards of a folder must share one schema: {detail}",
                         file=str(shard), row=1, field=(extra or missing)[0])
    return first
