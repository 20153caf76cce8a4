"""The `curate` command line: a thin caller of `pipelines/`.

Each step registers its commands on the shared `app` from its own module here; `main()` turns a
`StudioError` (the user's mistake) into one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys

from curate.cli._common import app
from pipelines.errors import StudioError

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

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    try:
        app(args=argv, prog_name="curate", standalone_mode=False)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # typer/click exit paths
        return int(exc.code or 0)
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
        raise
    return 0


def _entry() -> None:
    sys.exit(main())
