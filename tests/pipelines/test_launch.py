"""The one launcher: shared environment rules, pipes or a log, time limits and group stops."""

from __future__ import annotations

import os
import sys
import time

import pytest

from pipelines.launch import REPO_ROOT, ChildSpec, child_env, pid_alive, start, stop


def test_environment_rules(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    monkeypatch.setenv("VIRTUAL_ENV", "/venv")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")          # the user's own choice stays
    monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    ours = child_env({"EXTRA": "1", "VIRTUAL_ENV": None})
    assert ours["PYTHONPATH"].split(os.pathsep) == [str(REPO_ROOT), "/elsewhere"]
    assert ours["HF_HUB_OFFLINE"] == "0" and ours["TOKENIZERS_PARALLELISM"] == "false"
    assert ours["PYTHONUNBUFFERED"] == "1" and ours["EXTRA"] == "1" and "VIRTUAL_ENV" not in ours
    foreign = child_env(foreign=True)
    assert "PYTHONPATH" not in foreign and "VIRTUAL_ENV" not in foreign
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert child_env()["HF_HUB_OFFLINE"] == "1"


def test_attached_child_runs_our_code_and_returns_its_output(tmp_path):
    # -P: the working directory (which has a module shadowing ours) is not on sys.path
    (tmp_path / "pipelines.py").write_text("raise SystemExit('shadowed')\n")
    code = "import os, sys, pipelines; print(pipelines.__file__); print('oops', file=sys.stderr)"
    done = start(ChildSpec([sys.executable, "-P", "-c", code], cwd=tmp_path)).wait(timeout=60)
    assert done.returncode == 0 and not done.timed_out, done.stderr
    assert done.stdout.strip() == str(REPO_ROOT / "pipelines" / "__init__.py")
    assert done.stderr.strip() == "oops"


def test_time_limit_stops_the_whole_group(tmp_path):
    grandchild = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time\n"
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            f"open({str(grandchild)!r}, 'w').write(str(p.pid))\n"
            "time.sleep(60)\n")
    t0 = time.monotonic()
    done = start(ChildSpec([sys.executable, "-c", code])).wait(timeout=3)
    assert done.timed_out and time.monotonic() - t0 < 20
    gpid = int(grandchild.read_text())
    deadline = time.monotonic() + 5
    while pid_alive(gpid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(gpid)


def test_detached_child_logs_writes_its_pid_and_stops_by_pid(tmp_path):
    log, pid_file = tmp_path / "child.log", tmp_path / "child.pid"
    log.write_text("earlier line\n")
    code = "import time; print('up', flush=True); time.sleep(60)"
    child = start(ChildSpec([sys.executable, "-c", code], log=log, detach=True,
                            pid_file=pid_file))
    assert int(pid_file.read_text()) == child.pid
    deadline = time.monotonic() + 30
    while "up" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert log.read_text() == "earlier line\nup\n"      # appended, not truncated
    assert stop(child.pid, grace_s=5) is True
    assert child.poll() is not None and not pid_alive(child.pid)
    assert stop(child.pid) is False


def test_spec_is_checked():
    with pytest.raises(ValueError, match="log"):
        ChildSpec(["true"], detach=True)
    with pytest.raises(ValueError, match="empty"):
        ChildSpec([])
    spec = ChildSpec.python("trainer", "/w/runs/x", "--export", "v0001")
    assert spec.argv == (sys.executable, "-P", "-m", "trainer", "/w/runs/x", "--export", "v0001")


def test_umask_makes_what_the_child_creates_private(tmp_path):
    import stat

    from pipelines.launch import ChildSpec, start

    target = tmp_path / "made-by-child"
    code = f"open({str(target)!r}, 'w').write('secret')"
    done = start(ChildSpec([sys.executable, "-c", code], umask=0o077)).wait(timeout=60)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    open_one = tmp_path / "default"
    start(ChildSpec([sys.executable, "-c", f"open({str(open_one)!r}, 'w')"])).wait(timeout=60)
    assert stat.S_IMODE(open_one.stat().st_mode) == 0o666 & ~_our_umask()


def _our_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
