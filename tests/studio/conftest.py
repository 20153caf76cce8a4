"""Fixtures for the studio tests: the sample workspace as $CURATE_WORKSPACE, pages under AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest

PAGES = Path(__file__).resolve().parents[2] / "studio" / "app_pages"


@pytest.fixture
def studio_ws(sample_ws, monkeypatch):
    """A private copy of the ingested sample, set as $CURATE_WORKSPACE for the pages."""
    monkeypatch.setenv("CURATE_WORKSPACE", str(sample_ws.path))
    return sample_ws


@pytest.fixture
def page():
    """`page("overview")` -> an AppTest of that page file, run once, with no exception."""
    from streamlit.testing.v1 import AppTest

    def _run(name: str, timeout: float = 60) -> "AppTest":
        at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=timeout)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return _run


def add_fake_labels(ws, scheme: str = "claim_type", confidence: float = 0.95) -> int:
    """Label every record with its raw (legacy) label, as if a labeling run had: lets the export
    and train pages work without depending on the weak-supervision step."""
    from pipelines.config import load_config

    classes = set(load_config(ws.config_path).scheme(scheme).classes)
    with ws.transaction() as conn:
        rows = [(rid, scheme, lab if scheme == "claim_type" else "ACCEPT", confidence)
                for rid, lab in conn.execute("SELECT id, raw_label FROM records")
                if scheme != "claim_type" or lab in classes]
        conn.executemany("INSERT OR REPLACE INTO labels (record_id, scheme, label, confidence,"
                         " model) VALUES (?, ?, ?, ?, 'label_model')", rows)
    return len(rows)


@pytest.fixture
def labelled_ws(studio_ws):
    add_fake_labels(studio_ws, "claim_type")
    add_fake_labels(studio_ws, "summary_quality")
    return studio_ws
