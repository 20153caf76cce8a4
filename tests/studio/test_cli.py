"""`curate studio`: starts Streamlit on 127.0.0.1 for the workspace, headless, no usage stats."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from curate.cli import main
from curate.cli.studio import studio_command


def test_command_line_binds_loopback_only():
    cmd = studio_command(8765)
    opts = dict(zip(cmd[5::2], cmd[6::2]))
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("studio/app.py")
    assert opts["--server.address"] == "127.0.0.1" and opts["--server.port"] == "8765"
    assert opts["--server.headless"] == "true" and opts["--browser.gatherUsageStats"] == "false"


def test_bad_port_is_a_user_error(tmp_path, capsys):
    assert main(["studio", "--workspace", str(tmp_path / "ws"), "--port", "0"]) == 2
    assert "--port" in capsys.readouterr().err


def test_studio_serves_the_workspace(fresh_ws):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from curate.cli import _entry; _entry()", "studio",
         "--workspace", str(fresh_ws.path), "--port", str(port), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env={**os.environ, "CURATE_WORKSPACE": ""})
    try:
        first = proc.stdout.readline()
        summary = json.loads(proc.stdout.readline())
        assert str(fresh_ws.path) in first
        assert summary == {"workspace": str(fresh_ws.path), "url": f"http://127.0.0.1:{port}",
                           "port": port}
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{summary['url']}/_stcore/health", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.time() < deadline and proc.poll() is None, "studio did not answer"
                time.sleep(0.5)
        # `kill PID` on the curate process alone (Streamlit runs in its own session): it must
        # stop Streamlit too and leave nothing holding the port.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 143   # terminated
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, "a process still holds the port"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
