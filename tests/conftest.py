"""Fixtures shared across the suite."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def fresh_ws(tmp_path):
    """An empty workspace in a temporary folder."""
    from pipelines.store import Workspace

    return Workspace.create(tmp_path / "ws")


@pytest.fixture(scope="session")
def sample_ws_template(tmp_path_factory):
    """The sample data ingested once per session (as `curate init --sample` does)."""
    from pipelines.samples import load_sample
    from pipelines.store import Workspace

    ws = Workspace.create(tmp_path_factory.mktemp("sample") / "ws")
    load_sample(ws)
    return ws


@pytest.fixture
def sample_ws(sample_ws_template, tmp_path):
    """A private copy of the ingested sample workspace, safe to modify."""
    import shutil

    from pipelines.store import Workspace

    dst = tmp_path / "sample_ws"
    shutil.copytree(sample_ws_template.path, dst)
    return Workspace.open(dst)


@pytest.fixture(scope="session")
def labelstudio_server(tmp_path_factory, request):
    """ONE real Label Studio server for the test session (review and studio browser tests).

    Bound to 127.0.0.1 on a free port, data in a temp dir, a known admin user and token.
    Returns a `pipelines.review.ServerInfo` (url, token, username, password). Skips when the
    server venv (`make labelstudio-venv`) is missing; stopped at the end of the session.
    """
    from pipelines.errors import ReviewSyncError
    from pipelines.review.server import (
        LS_VERSION, find_label_studio, free_port, start_server, stop_pid)

    try:
        find_label_studio()
    except ReviewSyncError as exc:
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("labelstudio")
    # A migrated database cached across sessions: a restart takes ~10 s, a fresh one ~80-150 s.
    template = request.config.cache.mkdir(f"labelstudio-db-{LS_VERSION}")
    info = start_server(root / "data", port=free_port(), username="admin@example.com",
                        password="test-password-123", token="test-token-0123456789",
                        template=template)
    try:
        yield info
    finally:
        stop_pid(info.pid)


@pytest.fixture(scope="session")
def micro_ws(tmp_path_factory):
    """Three registered-to-be adapters (two sft on a tiny Llama, one MiniLM classifier); shared
    by the session's tests, which must not change it (copy it to remove things)."""
    from tests.micro_models import build_tiny, make_micro_models

    root = tmp_path_factory.mktemp("micro")
    return make_micro_models(root / "ws", build_tiny(root))
