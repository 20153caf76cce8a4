"""One way to start a child process: the detached training run, the Label Studio server and the
LF sandbox all start through `start(ChildSpec(...))`, so they share one set of rules:

- Environment. Our own Python children run this interpreter with `-P` (the working directory
  is not put on `sys.path`, so a stray `datasets.py` beside the user cannot shadow a library)
  and the repo root first on PYTHONPATH (they import the same code as the parent, installed or
  not). A foreign program (Label Studio in its own venv) gets PYTHONPATH and VIRTUAL_ENV removed
  instead, so it never sees our packages. Every child gets HF_HUB_OFFLINE=1 unless the caller's
  environment sets it (nothing downloads behind the user's back), TOKENIZERS_PARALLELISM=false
  (a forked child of a process that used a fast tokenizer otherwise warns and disables it) and
  PYTHONUNBUFFERED=1 (a log shows progress as it happens).
- Its own session, so its process group id is its pid: `stop` ends the child and everything it
  started (SIGTERM to the group, SIGKILL after a grace period), and a Ctrl-C meant for the
  parent does not reach it.
- stdin is /dev/null (a child never waits on a terminal); stdout and stderr go to a log file
  (appended) or, for an attached child, to pipes that `Child.wait` returns.
- A pid file, when asked for, is written as soon as the child exists.

A detached child outlives its caller (the studio's training run); an attached one is waited for
with a time limit (`Child.wait`), and one that passes it is stopped with its group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

__all__ = ["REPO_ROOT", "ChildSpec", "Child", "Finished", "start", "stop", "pid_alive",
           "child_env"]

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class ChildSpec:
    """What to start and how.

    Args:
        argv: the command; `ChildSpec.python(module, ...)` builds one for our own code.
        log: append stdout and stderr here; None: pipes, returned by `Child.wait`.
        env: variables to set on top of the shared rules (None removes one).
        cwd: working directory (None: the caller's).
        detach: the caller will not wait; the child must log to a file.
        foreign: a program from another environment (its own venv): PYTHONPATH and
            VIRTUAL_ENV are removed rather than pointed at this checkout.
        pid_file: written with the child's pid right after it starts.
        terminal: the child writes to our terminal (a foreground server the user watches);
            `log` must then be None.
        umask: the child's file-creation mask (e.g. 0o077: what it creates is private to
            the user); None: ours. Set between fork and exec, without a `preexec_fn`.
    """

    argv: Sequence[str]
    log: Path | None = None
    env: Mapping[str, str | None] = field(default_factory=dict)
    cwd: Path | None = None
    detach: bool = False
    foreign: bool = False
    pid_file: Path | None = None
    terminal: bool = False
    umask: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "argv", tuple(str(a) for a in self.argv))
        if not self.argv:
            raise ValueError("ChildSpec.argv: empty command")
        if self.detach and self.log is None:
            raise ValueError("ChildSpec.log: a detached child needs a log file (no one reads "
                             "its pipes)")
        if self.terminal and (self.log is not None or self.detach):
            raise ValueError("ChildSpec.terminal: a child on our terminal has no log and is "
                             "not detached")

    @classmethod
    def python(cls, module: str, *args: object, **options) -> "ChildSpec":
        """`python -P -m <module> <args>` with this interpreter (our own code)."""
        return cls(argv=(sys.executable, "-P", "-m", module, *map(str, args)), **options)


@dataclass(frozen=True)
class Finished:
    """How an attached child ended: exit status, its output (empty when it went to a log), and
    whether it was stopped for passing its time limit."""

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False


def child_env(extra: Mapping[str, str | None] | None = None, *,
              foreign: bool = False) -> dict[str, str]:
    """The environment of a child: ours, with the shared rules above, then `extra`."""
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PYTHONUNBUFFERED"] = "1"
    if foreign:
        env.pop("PYTHONPATH", None)
        env.pop("VIRTUAL_ENV", None)
    else:
        rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                if p and Path(p).resolve() != REPO_ROOT]
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *rest])
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


class Child:
    """A started child: its pid, log, and the means to wait for it or stop it."""

    def __init__(self, proc: subprocess.Popen, spec: ChildSpec):
        self._proc = proc
        self.spec = spec

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def log(self) -> Path | None:
        return self.spec.log

    def poll(self) -> int | None:
        """The exit status, or None while it runs."""
        return self._proc.poll()

    def wait(self, timeout: float | None = None, *, grace_s: float = 1.0) -> Finished:
        """Wait for the child to end (its output, when piped); past `timeout` seconds stop its
        process group and return with `timed_out`. Any exception here (Ctrl-C) stops it too."""
        try:
            out, err = self._proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(grace_s)
            out, err = self._drain()
            return Finished(self._proc.returncode, out, err, timed_out=True)
        except BaseException:
            self.stop(grace_s)
            raise
        return Finished(self._proc.returncode, out or "", err or "")

    def _drain(self) -> tuple[str, str]:
        # A grandchild that left the group could hold the pipes open: do not wait on it forever.
        try:
            out, err = self._proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            return "", ""
        return out or "", err or ""

    def stop(self, grace_s: float = 20.0) -> bool:
        """End the child's process group (SIGTERM, then SIGKILL after `grace_s`)."""
        return _stop_group(self.pid, grace_s, lambda: self._proc.poll() is not None)


def start(spec: ChildSpec) -> Child:
    """Start `spec` in its own session and return at once (see the module docstring).

    Raises:
        OSError: the program could not be started (missing, not executable).
    """
    log = open(spec.log, "ab") if spec.log is not None else None
    pipe = None if spec.terminal else subprocess.PIPE
    try:
        proc = subprocess.Popen(
            spec.argv, stdin=subprocess.DEVNULL,
            stdout=log if log else pipe,
            stderr=subprocess.STDOUT if log else pipe,
            text=log is None, env=child_env(spec.env, foreign=spec.foreign),
            cwd=str(spec.cwd) if spec.cwd is not None else None, start_new_session=True,
            umask=-1 if spec.umask is None else spec.umask)
    finally:
        if log:
            log.close()   # the child holds its own copy
    if spec.pid_file is not None:
        tmp = Path(spec.pid_file).with_suffix(".tmp")
        tmp.write_text(f"{proc.pid}\n")
        os.replace(tmp, spec.pid_file)
    return Child(proc, spec)


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this pid exists (a zombie, dead but not yet reaped, does not)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def stop(pid: int | None, grace_s: float = 20.0) -> bool:
    """End the process group of a child `start` made, known only by its pid (a pid file).

    SIGTERM first, so it can clean up; SIGKILL after `grace_s` seconds. A pid that does not
    lead a group (a foreground run's own pid) gets the signals itself. Returns False if it was
    not running.
    """
    if not pid_alive(pid):
        return False

    def gone() -> bool:
        try:
            os.waitpid(pid, os.WNOHANG)   # our own child: reap it, or it stays a zombie
        except ChildProcessError:
            pass
        return not pid_alive(pid)

    return _stop_group(pid, grace_s, gone)


def _signal(pid: int, sig: int) -> bool:
    try:
        os.killpg(pid, sig)
        return True
    except ProcessLookupError:   # no group of that id: a process that is not a group leader
        pass
    except PermissionError:
        pass
    try:
        os.kill(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _stop_group(pid: int, grace_s: float, gone: Callable[[], bool]) -> bool:
    if gone() or not _signal(pid, signal.SIGTERM):
        return False
    deadline = time.monotonic() + grace_s
    while not gone():
        if time.monotonic() > deadline:
            _signal(pid, signal.SIGKILL)
            kill_deadline = time.monotonic() + 5
            while not gone() and time.monotonic() < kill_deadline:
                time.sleep(0.05)
            break
        time.sleep(0.05)
    # The leader is gone; whatever it started in its group and left behind goes with it.
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return True
