"""Fixtures for the studio tests: a workspace loaded with the sample, pages run under AppTest."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines.config import load_config
from pipelines.ingest import IngestConfig, ingest
from pipelines.samples import sample_dir
from pipelines.store import Workspace

PAGES = Path(__file__).resolve().parents[2] / "studio" / "app_pages"


def load_sample(path: Path) -> Workspace:
    """What `curate init --sample` does, through the library."""
    ws = Workspace.create(path)
    src = sample_dir()
    shutil.copyfile(src / "curation.yaml", ws.config_path)
    cfg = load_config(ws.config_path)
    ingest(ws, [src / f for f in cfg.files], IngestConfig.from_curation(cfg, skip_invalid=True))
    return ws


@pytest.fixture(scope="session")
def _sample_template(tmp_path_factory) -> Path:
    return load_sample(tmp_path_factory.mktemp("studio-sample") / "ws").path


@pytest.fixture
def studio_ws(_sample_template, tmp_path, monkeypatch) -> Workspace:
    """A fresh copy of the sample workspace, set as $CURATE_WORKSPACE for the pages."""
    dest = tmp_path / "ws"
    shutil.copytree(_sample_template, dest)
    monkeypatch.setenv("CURATE_WORKSPACE", str(dest))
    return Workspace.open(dest)


@pytest.fixture
def page():
    """`page("overview")` -> an AppTest of that page file, run once."""
    from streamlit.testing.v1 import AppTest

    def _run(name: str, timeout: float = 60) -> "AppTest":
        at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=timeout)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return _run
