"""A foreground training run never contacts the model hub unless the user opts in (issue 16).

HF_ENDPOINT points at a local HTTP server that records every request; a hub id that is not in
the (empty) cache must fail in one line with the server having seen nothing.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading

import pytest

from pipelines.launch import REPO_ROOT

SCRIPT = """
from types import SimpleNamespace
from pipelines.errors import TrainError
from trainer.config import TrainConfig
from trainer.sft import load_causal_lm
try:
    load_causal_lm(TrainConfig(), "no-such-org/no-such-model",
                   SimpleNamespace(method="lora", bf16=False, device="cpu", budget_bytes=None))
except TrainError as exc:
    print("TrainError:", exc)
"""


@pytest.fixture
def hub():
    seen: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def _any(self):
            seen.append(f"{self.command} {self.path}")
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD = do_POST = _any

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def _load(endpoint: str, tmp_path, **env) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items()
            if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "CURATE_ALLOW_DOWNLOAD")}
    full.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf"), PYTHONPATH=str(REPO_ROOT),
                HF_HUB_ETAG_TIMEOUT="3", HF_HUB_DOWNLOAD_TIMEOUT="3", **env)
    return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=full, timeout=180, cwd=tmp_path)


def test_foreground_model_loading_makes_no_network_request(hub, tmp_path):
    endpoint, seen = hub
    out = _load(endpoint, tmp_path)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("TrainError:")]
    assert len(lines) == 1 and "no-such-org/no-such-model" in lines[0], (out.stdout, out.stderr)
    assert "--allow-download" in lines[0]
    assert seen == [], seen


def test_allow_download_does_reach_the_hub(hub, tmp_path):
    """The control: the same load with the opt-in asks the (fake) hub, so the test above
    would see a request if one were made."""
    endpoint, seen = hub
    out = _load(endpoint, tmp_path, CURATE_ALLOW_DOWNLOAD="1")
    assert "TrainError:" in out.stdout, (out.stdout, out.stderr)
    assert any("no-such-org/no-such-model" in s for s in seen), seen
