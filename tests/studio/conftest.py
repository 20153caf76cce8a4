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
