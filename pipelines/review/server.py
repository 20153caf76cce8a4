"""Run a real Label Studio server: bound to 127.0.0.1, data in a folder we own, a known user.

Label Studio lives in its own virtual environment (`.venv-labelstudio`, made by
`make labelstudio-venv`) because its pins (Django, numpy, the SDK) must not constrain the app.
`start_server` is the one place that knows how to launch it non-interactively (through
`pipelines.launch`, like every child process); the test suite's session fixture,
`curate labelstudio start` and the studio's Review page all use it. `WorkspaceServer` adds what a
workspace keeps: credentials (0600), a pid file, the log, the data dir under `W/labelstudio/`.

Why these settings (measured, see docs/review.md): `--internal-host 127.0.0.1` is the bind
address (without it the server listens on 0.0.0.0); XDG_CONFIG_HOME keeps it out of ~/.config;
the LABEL_STUDIO_* variables create the admin user and its legacy API token on first start.
A fresh database migrates for ~80 s before `/health` answers; a restart takes ~8 s.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from pipelines.errors import ReviewSyncError
from pipelines.launch import ChildSpec, pid_alive, start, stop

__all__ = [
    "LS_VERSION",
    "ServerInfo",
    "WorkspaceServer",
    "find_label_studio",
    "free_port",
    "health",
    "start_server",
    "stop_pid",
    "pid_alive",
]

LS_VERSION = "1.23.2"
ENV_BIN = "CURATE_LABELSTUDIO_BIN"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ServerInfo:
    """How to reach (and log in to) one running server."""

    url: str
    token: str
    username: str
    password: str
    port: int
    pid: int | None = None
    data_dir: str | None = None
    log_path: str | None = None


def find_label_studio() -> Path:
    """The `label-studio` executable of the server venv ($CURATE_LABELSTUDIO_BIN overrides)."""
    override = os.environ.get(ENV_BIN)
    default = PROJECT_ROOT / ".venv-labelstudio" / "bin" / "label-studio"
    path = Path(override) if override else default
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ReviewSyncError(
            f"Label Studio server not installed: {path} is missing. Install it with "
            f"`make labelstudio-venv` (label-studio=={LS_VERSION} in .venv-labelstudio, ~3 min) "
            f"or `curate labelstudio start --install`, or point ${ENV_BIN} at a label-studio "
            f"executable"
        )
    return path


def install_label_studio(venv: Path | None = None) -> Path:
    """Create the server venv and install label-studio into it (~3 min, ~1 GB)."""
    venv = venv or PROJECT_ROOT / ".venv-labelstudio"
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    cmd = [str(py), "-m", "pip", "install", "-q", f"label-studio=={LS_VERSION}"]
    constraints = PROJECT_ROOT / "constraints-labelstudio.txt"
    if constraints.exists():
        cmd[5:5] = ["-c", str(constraints)]
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        raise ReviewSyncError(f"installing label-studio=={LS_VERSION} into {venv} failed "
                              f"(pip exit {proc.returncode})")
    return venv / "bin" / "label-studio"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health(url: str, timeout: float = 2.0) -> bool:
    """True when the server at `url` answers `/health` with status UP."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout) as resp:
            return resp.status == 200 and b"UP" in resp.read()
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _server_env(info: ServerInfo, config_home: Path) -> dict[str, str]:
    """What the server needs on top of the launcher's rules (`pipelines.launch`, which also
    keeps our PYTHONPATH and VIRTUAL_ENV out of its venv)."""
    return {
        "LABEL_STUDIO_USERNAME": info.username,
        "LABEL_STUDIO_PASSWORD": info.password,
        "LABEL_STUDIO_USER_TOKEN": info.token,
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "",
        "LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false",
        "XDG_CONFIG_HOME": str(config_home),
    }


_DB = "label_studio.sqlite3"


def _make_private(*paths: Path) -> None:
    """Folders 0700 and files 0600, all the way down: the server's sqlite holds the admin's
    API token. New files are private anyway (the server runs with umask 077); this also
    fixes a data folder made before that, and files we copy or open for it."""
    for top in paths:
        if not top.exists():
            continue
        items = [top, *top.rglob("*")] if top.is_dir() else [top]
        for p in items:
            if p.is_symlink():
                continue
            try:
                os.chmod(p, 0o700 if p.is_dir() else 0o600)
            except OSError:
                pass   # not ours to change (a shared media mount): leave it


def _seed_from_template(data_dir: Path, template: Path) -> bool:
    """Copy a migrated database (and its secret key) into an empty data dir."""
    if not (template / _DB).is_file() or (data_dir / _DB).exists():
        return False
    shutil.copyfile(template / _DB, data_dir / _DB)
    if (template / ".env").is_file():
        shutil.copyfile(template / ".env", data_dir / ".env")
    return True


def _save_template(data_dir: Path, template: Path) -> None:
    """Snapshot a freshly migrated database with SQLite's online backup (the server is live)."""
    template.mkdir(parents=True, exist_ok=True)
    tmp = template / (_DB + ".tmp")
    src = sqlite3.connect(data_dir / _DB)
    try:
        dst = sqlite3.connect(tmp)
        with dst:
            src.backup(dst)
        dst.close()
    finally:
        src.close()
    if (data_dir / ".env").is_file():
        shutil.copyfile(data_dir / ".env", template / ".env")
    tmp.replace(template / _DB)


def start_server(data_dir: Path, *, port: int, username: str, password: str, token: str,
                 log_path: Path | None = None, timeout: float = 240.0,
                 progress: Callable[[float], None] | None = None,
                 template: Path | None = None, wait: bool = True,
                 pid_file: Path | None = None) -> ServerInfo:
    """Launch `label-studio start` (detached, through `pipelines.launch`) and, unless `wait` is
    False, wait until `/health` answers.

    Args:
        data_dir: the server's database and media (created if missing).
        port: the port to bind on 127.0.0.1.
        token: the admin's API token (more than 5 characters).
        progress: called with the seconds waited so far, about once a second.
        template: a folder caching a freshly migrated database for these credentials: a new
            data dir starts from it (~10 s instead of ~80-150 s of migrations), and a first
            start fills it. For test sessions; the user and token are baked into it.
        wait: False returns as soon as the process exists (the studio polls `health` itself;
            a template is then only read, not filled).
        pid_file: where to write the server's pid, as soon as it starts.
    Raises:
        ReviewSyncError: the executable is missing, the port is taken, or it never got healthy.
    """
    if len(token) <= 5:
        raise ReviewSyncError("the Label Studio token must be longer than 5 characters")
    exe = find_label_studio()
    url = f"http://127.0.0.1:{port}"
    if health(url, timeout=1.0):
        raise ReviewSyncError(f"port {port} already has a Label Studio server on it; stop it or "
                              f"choose another port")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            raise ReviewSyncError(f"port {port} on 127.0.0.1 is in use by another program; "
                                  f"choose another port")
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    config_home = data_dir.parent / "xdg-config"
    config_home.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_path) if log_path else data_dir.parent / "server.log"
    seeded = _seed_from_template(data_dir, Path(template)) if template else False
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.touch()
    _make_private(data_dir, config_home, log_path)
    info = ServerInfo(url=url, token=token, username=username, password=password, port=port,
                      data_dir=str(data_dir), log_path=str(log_path))
    cmd = [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
           "--data-dir", str(data_dir)]
    try:
        child = start(ChildSpec(cmd, log=log_path, env=_server_env(info, config_home),
                                cwd=data_dir, detach=True, foreign=True, pid_file=pid_file,
                                umask=0o077))
    except OSError as exc:
        raise ReviewSyncError(f"cannot start Label Studio ({exe}): {exc}") from exc
    info.pid = child.pid
    if not wait:
        return info
    t0 = time.monotonic()
    try:
        while True:
            waited = time.monotonic() - t0
            if health(url):
                if template and not seeded:
                    _save_template(data_dir, Path(template))
                return info
            if child.poll() is not None:
                raise ReviewSyncError(f"Label Studio exited with status {child.poll()} while "
                                      f"starting; see {log_path}: {_tail(log_path)}")
            if waited > timeout:
                child.stop()
                raise ReviewSyncError(f"Label Studio did not answer {url}/health within "
                                      f"{timeout:.0f} s; see {log_path}")
            if progress:
                progress(waited)
            time.sleep(1.0)
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM (`Terminated`) while waiting: the detached server would outlive us
        # and hold the port half-started, so stop its process group before passing it on.
        child.stop(grace_s=5.0)
        raise


def _tail(path: Path, n: int = 3) -> str:
    try:
        lines = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def stop_pid(pid: int, timeout: float = 20.0) -> bool:
    """End a server `start_server` started, by pid: its whole process group, SIGTERM then
    SIGKILL after `timeout` s (`pipelines.launch.stop`). Returns False if it was not running."""
    return stop(pid, grace_s=timeout)


def _is_label_studio(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"label-studio" in fh.read()
    except OSError:
        return False


class WorkspaceServer:
    """The Label Studio server of one workspace: files under `W/labelstudio/`.

    `credentials.json` (mode 0600) holds url, port, username, password and token, generated once;
    `server.pid` the pid of a server we started; `data/` its database; `server.log` its output.
    """

    def __init__(self, root: Path):
        self.dir = Path(root)

    @classmethod
    def of(cls, ws) -> "WorkspaceServer":
        return cls(ws.subdir("labelstudio"))

    @property
    def credentials_path(self) -> Path:
        return self.dir / "credentials.json"

    @property
    def pid_path(self) -> Path:
        return self.dir / "server.pid"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def log_path(self) -> Path:
        return self.dir / "server.log"

    def credentials(self, *, port: int | None = None, create: bool = True) -> ServerInfo:
        """The stored credentials; generated (and stored 0600) on first use."""
        if self.credentials_path.exists():
            raw = json.loads(self.credentials_path.read_text())
            info = ServerInfo(**{k: raw[k] for k in ServerInfo.__dataclass_fields__ if k in raw})
            if port is not None and port != info.port:
                info.port = port
                info.url = f"http://127.0.0.1:{port}"
                self.save(info)
            return info
        if not create:
            raise ReviewSyncError(
                f"no Label Studio credentials in {self.dir}; start the server with "
                f"`curate labelstudio start --workspace {self.dir.parent}`")
        port = port or 8089
        info = ServerInfo(url=f"http://127.0.0.1:{port}", token=secrets.token_hex(20),
                          username="admin@curation.local", password=secrets.token_urlsafe(12),
                          port=port)
        self.save(info)
        return info

    def save(self, info: ServerInfo) -> None:
        """Write the credentials atomically with mode 0600 (they hold the token)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.credentials_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({k: v for k, v in asdict(info).items() if k not in ("pid",)}, fh, indent=1)
        os.chmod(tmp, 0o600)
        tmp.replace(self.credentials_path)

    def pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def status(self) -> dict:
        info = self.credentials(create=False) if self.credentials_path.exists() else None
        pid = self.pid()
        url = info.url if info else None
        running = bool(url) and health(url)
        return {"running": running, "url": url, "pid": pid if pid_alive(pid) else None,
                "data_dir": str(self.data_dir), "log": str(self.log_path)}

    def start(self, *, port: int | None = None, timeout: float = 240.0,
              progress: Callable[[float], None] | None = None,
              template: Path | None = None, wait: bool = True) -> tuple[ServerInfo, bool]:
        """Start the server (or reuse the one already answering). Returns (info, started).

        With `wait=False` (the studio's button) it returns once the process exists, and a
        server of ours that is still starting (alive, not yet answering) is left to finish
        rather than joined by a second one on the same port.
        """
        info = self.credentials(port=port)
        pid = self.pid()
        if health(info.url):
            info.pid = pid
            return info, False
        if not wait and pid_alive(pid) and _is_label_studio(pid):
            info.pid = pid
            return info, False
        _make_private(self.dir)   # W/labelstudio/ and everything in it: 0700 / 0600
        try:
            started = start_server(self.data_dir, port=info.port, username=info.username,
                                   password=info.password, token=info.token,
                                   log_path=self.log_path, timeout=timeout, progress=progress,
                                   template=template, wait=wait, pid_file=self.pid_path)
        except (ReviewSyncError, KeyboardInterrupt):
            self.pid_path.unlink(missing_ok=True)   # it never came up (and was stopped)
            raise
        return started, True

    def stop(self) -> bool:
        """Stop the server this workspace started (exactly the pid in the pid file).

        A pid file left by a crash may name a pid the system has since given to another
        program: only a process whose command line is a `label-studio` one is ended.
        """
        pid = self.pid()
        stopped = stop_pid(pid) if pid and _is_label_studio(pid) else False
        self.pid_path.unlink(missing_ok=True)
        return stopped
