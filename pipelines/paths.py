"""Turning a user's path into an absolute one, with the failures a path can have as one line."""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.errors import InputError, StudioError

__all__ = ["resolve_path"]


def resolve_path(path: str | os.PathLike, *, what: str = "path",
                 error: type[StudioError] = InputError) -> Path:
    """`path` expanded and resolved; a NUL byte or a symlink loop raises `error` (one line)
    instead of `ValueError` / `RuntimeError` from the standard library."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if "\x00" in text:
        raise error(f"{what} {text!r} contains a NUL byte")
    try:
        return Path(text).expanduser().resolve()
    except RuntimeError as exc:   # Python < 3.13: "Symlink loop from ..."
        raise error(f"{what} {text!r}: symbolic link loop ({exc})") from None
    except OSError as exc:        # Python >= 3.13 raises ELOOP as OSError
        raise error(f"{what} {text!r}: {exc.strerror or exc}") from None
