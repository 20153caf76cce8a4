"""The `curate` command line: a thin caller of `pipelines/`.

Each step registers its commands on the shared `app` from its own module here; `main()` turns a
`StudioError` (the user's mistake) into one line on stderr and exit status 2, any other
exception into one line and exit status 1 (`--debug` or CURATE_DEBUG=1: the traceback), and
SIGTERM into `Terminated` so that a run ends `interrupted` rather than `running` for ever.
"""

from __future__ import annotations

import os
import sys
import traceback

from curate.cli._common import app
from pipelines.errors import StudioError
from pipelines.store import Terminated, raise_on_sigterm
from pipelines.store.workspace import _is_disk_full, disk_full_error

# Each import registers that step's commands on `app`.
from curate.cli import core  # noqa: E402,F401
from curate.cli import dedup  # noqa: E402,F401
from curate.cli import filters  # noqa: E402,F401
from curate.cli import label  # noqa: E402,F401
from curate.cli import studio  # noqa: E402,F401
from curate.cli import export  # noqa: E402,F401
from curate.cli import train  # noqa: E402,F401
from curate.cli import review  # noqa: E402,F401
from curate.cli import roi  # noqa: E402,F401
from curate.cli import generate  # noqa: E402,F401
from curate.cli import models  # noqa: E402,F401
from curate.cli import serve  # noqa: E402,F401

__all__ = ["app", "main"]


def _debug(argv: list[str] | None) -> bool:
    args = sys.argv[1:] if argv is None else argv
    return os.environ.get("CURATE_DEBUG", "") not in ("", "0") or "--debug" in args


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


_GLOBAL_ENV = ("CURATE_DEBUG", "CURATE_LOCK_TIMEOUT")   # set by the global options


def main(argv: list[str] | None = None) -> int:
    saved = {k: os.environ.get(k) for k in _GLOBAL_ENV}
    try:
        return _main(argv)
    finally:   # an in-process caller (tests, the studio) keeps its own environment
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _main(argv: list[str] | None) -> int:
    sigterm = None
    try:
        with raise_on_sigterm() as sigterm:
            code = app(args=argv, prog_name="curate", standalone_mode=False)
        # click turns Ctrl-C (and so SIGTERM's Terminated) into a returned exit code (130)
        if sigterm.signalled:
            raise Terminated()
        if isinstance(code, int) and code:
            if code == 130:
                print("interrupted", file=sys.stderr)
            return code
    except StudioError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        if _debug(argv):
            traceback.print_exc()
        return 2
    except SystemExit as exc:  # typer/click exit paths
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except Terminated:
        print("terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # Usage errors from typer's (vendored) click in non-standalone mode: print them as click
        # would and keep click's exit status (2 for a usage error).
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            return int(exc.exit_code)
        if type(exc).__name__ == "Abort":
            return 1
        if _is_disk_full(exc):
            print(f"error: {disk_full_error(getattr(exc, 'filename', None) or os.getcwd())}",
                  file=sys.stderr)
            return 2
        if _debug(argv):
            traceback.print_exc()
        else:
            print(f"error: {type(exc).__name__}: {_one_line(exc)} (run with --debug for the "
                  f"traceback)", file=sys.stderr)
        return 1
    return 0


def _entry() -> None:
    sys.exit(main())
