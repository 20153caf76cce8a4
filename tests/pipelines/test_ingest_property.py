"""Property: whatever bytes or JSON a file holds, ingest stores records or raises a
`StudioError`, and on an error the workspace is byte-identical (issue 16)."""

from __future__ import annotations

import csv
import io
import json

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pipelines.errors import StudioError  # noqa: E402
from pipelines.ingest import IngestConfig, ingest  # noqa: E402
from pipelines.store import Workspace  # noqa: E402
from tests.pipelines.test_ingest import snapshot  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
# Text with everything that has hurt before: controls, escapes, surrogates, non-BMP.
TEXT = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF,
                             categories=None), max_size=30) | st.sampled_from(
    ["\ud800", "\x1b[31m", "\x00", "", " ", "text", "prompt", "messages", "gold_q"])
KEYS = st.sampled_from(["text", "prompt", "response", "instruction", "output", "messages",
                        "conversations", "label", "gold_q", "system", "meta"]) | TEXT
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12)
# Rows that mostly parse (so the later steps, ids and storage, get exercised too) and rows that
# are anything at all.
NEARLY_VALID = (st.fixed_dictionaries({"text": TEXT}, optional={"meta": JSON, "label": JSON,
                                                                 "gold_q": JSON})
                | st.fixed_dictionaries({"messages": st.lists(st.fixed_dictionaries(
                    {"role": st.sampled_from(["user", "assistant", "gpt", "x"]) | TEXT,
                     "content": TEXT | JSON}), max_size=3)}))
ROWS = st.lists(NEARLY_VALID | st.dictionaries(KEYS, JSON, max_size=5) | JSON, min_size=1,
                max_size=5)


class Attempt:
    """One workspace for a test; each example's outcome is checked against the property."""

    def __init__(self, tmp_path):
        self.ws = Workspace.create(tmp_path / "ws")
        self.dir = tmp_path
        self.n = 0

    def check(self, suffix: str, data: bytes, skip_invalid: bool) -> None:
        self.n += 1
        path = self.dir / f"f{self.n}{suffix}"
        path.write_bytes(data)
        before = snapshot(self.ws)
        try:
            res = ingest(self.ws, [path], IngestConfig(skip_invalid=skip_invalid,
                                                       max_record_chars=10_000))
        except StudioError as exc:
            assert "\n" not in str(exc)
            str(exc).encode("utf-8")   # printable
            assert snapshot(self.ws) == before
            return
        assert res.rows == res.added + res.duplicates + res.unchanged


def _jsonl(rows) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8", "surrogatepass")


def _csv(rows) -> bytes:
    keys = list(dict.fromkeys(k for r in rows if isinstance(r, dict) for k in r)) or ["text"]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(keys)
    for r in rows:
        r = r if isinstance(r, dict) else {"text": r}
        w.writerow([r.get(k) if isinstance(r.get(k), str) else json.dumps(r.get(k))
                    for k in keys])
    return buf.getvalue().encode("utf-8", "surrogatepass")


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".txt"])
def test_random_bytes(tmp_path, suffix):
    attempt = Attempt(tmp_path)

    @SETTINGS
    @given(st.binary(max_size=200) | st.builds(lambda b: b'{"text": "' + b, st.binary(max_size=50)),
           st.booleans())
    def prop(data, skip):
        attempt.check(suffix, data, skip)

    prop()


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_random_json(tmp_path, fmt):
    attempt = Attempt(tmp_path)
    encode = {"jsonl": _jsonl, "csv": _csv,
              "json": lambda rows: json.dumps(rows).encode("utf-8", "surrogatepass")}[fmt]

    @SETTINGS
    @given(ROWS, st.booleans())
    def prop(rows, skip):
        attempt.check(f".{fmt}", encode(rows), skip)

    prop()
