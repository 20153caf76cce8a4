"""scripts/gpu_check_qlora.sh --dry-run: the GPU check's code path, on CPU with the tiny shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_dry_run_trains_qlora_through_the_cli_and_writes_the_report(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path), PYTHON=sys.executable, STEPS="3", BATCH="2",
               SEQ="512", BUDGET="none", OMP_NUM_THREADS="1")
    proc = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check_qlora.sh"), "--dry-run"],
                          env=env, capture_output=True, text=True, timeout=600)
    report = json.loads((tmp_path / "qlora_check.json").read_text())
    assert proc.returncode == 0 and report["ok"], report.get("error") or proc.stderr[-2000:]
    assert report["via"].startswith("curate train") and set(report["runs"]) == {"qlora"}
    run = report["runs"]["qlora"]
    assert run["ok"] and run["method"] == "qlora" and run["device"] == "cpu"
    assert run["steps"] == 3 and run["tokens_per_s_last"] > 0 and run["loss_first"] > 0
    assert run["tokens_per_s_steady"] > 0
    assert report["export"]["train"] > 0 and (tmp_path / "events_qlora.jsonl").exists()
