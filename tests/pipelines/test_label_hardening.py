"""`curate label` against LFs that hang, exit or vote booleans (issue 16): each is reported as a
fault of that LF, never a silent exit or a run that never ends."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from pipelines.errors import LabelingError
from pipelines.launch import REPO_ROOT
from pipelines.weak_supervision import LabelConfig, run_labeling
from tests.pipelines.test_weak_supervision import LF_FILE, TEXTS, _tiny_ws


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from curate.cli import _entry; _entry()", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)


def _runs(ws) -> list[tuple[str, str]]:
    with ws.connect() as conn:
        return [tuple(r) for r in conn.execute("SELECT step, status FROM runs ORDER BY id")]


LOOPING = LF_FILE + '''

@labeling_function()
def lf_spins(x):
    while "lunch" in x.text:
        pass
    return ABSTAIN
'''


def test_an_lf_that_loops_is_stopped_by_the_time_limit_and_named(tmp_path):
    ws = _tiny_ws(tmp_path, LOOPING)
    t0 = time.monotonic()
    with pytest.raises(LabelingError) as info:
        run_labeling(ws, LabelConfig(time_limit_s=1.5))
    assert time.monotonic() - t0 < 30
    msg = str(info.value)
    assert "stopped after 1.5 s" in msg and "'lf_spins'" in msg and "record t4" in msg, msg
    assert _runs(ws)[-1] == ("label", "failed")
    assert not list((ws.path / "labels").rglob("*.npz"))   # no orphan L file


def test_cli_time_limit_flag_ends_a_hanging_run_with_one_line(tmp_path):
    ws = _tiny_ws(tmp_path, LOOPING)
    out = _cli("label", "--workspace", str(ws.path), "--time-limit", "1")
    assert out.returncode == 2, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "lf_spins" in lines[0] and "--time-limit" in lines[0], out.stderr


def test_sys_exit_at_import_is_a_one_line_error_naming_the_file(tmp_path):
    ws = _tiny_ws(tmp_path, "import sys\nSCHEME = 'spam'\nsys.exit(0)\n")
    out = _cli("label", "--workspace", str(ws.path))
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert "spam_rules.py:3: calls sys.exit(0) at import" in lines[0], out.stderr


def test_sys_exit_at_import_of_one_file_skips_it_and_the_others_label(tmp_path):
    ws = _tiny_ws(tmp_path)
    (ws.path / "lfs" / "quits.py").write_text("import sys\nSCHEME = 'spam'\nsys.exit(3)\n")
    result = run_labeling(ws, LabelConfig())
    assert result.labelled > 0
    assert any("quits.py:3: calls sys.exit(3)" in e for e in result.load_errors)


EXITING = LF_FILE + '''

@labeling_function()
def lf_quits(x):
    import sys
    if "meeting" in x.text:
        sys.exit(3)
    return ABSTAIN


@labeling_function()
def lf_bool(x):
    return "free" in x.text
'''


@pytest.mark.parametrize("engine", ["fast", "pandas"])
def test_sys_exit_inside_an_lf_and_a_bool_vote_are_faults(tmp_path, engine):
    ws = _tiny_ws(tmp_path, EXITING)
    result = run_labeling(ws, LabelConfig(engine=engine))
    faults = {s["lf"]: s for s in result.lf_summary}
    assert faults["lf_quits"]["faults"] == sum("meeting" in t for t, _ in TEXTS) == 4
    if engine == "fast":   # (snorkel's applier keeps counts only)
        assert "sys.exit(3)" in faults["lf_quits"]["fault_message"]
    assert faults["lf_bool"]["faults"] == 8 and faults["lf_bool"]["coverage"] == 0
    assert _runs(ws)[-1] == ("label", "done")


def test_cli_does_not_exit_3_when_an_lf_calls_sys_exit(tmp_path):
    ws = _tiny_ws(tmp_path, EXITING)
    out = _cli("label", "--workspace", str(ws.path))
    assert out.returncode == 0, out.stderr
    assert "lf_quits" in out.stdout and "faults on:" in out.stdout


def test_time_limit_is_validated():
    from pipelines.errors import ConfigError

    with pytest.raises(ConfigError, match="time_limit_s"):
        LabelConfig(time_limit_s=-1)
