"""One exception base for everything a user can cause, with small named subclasses.

The CLI prints a `StudioError` as one line and exits 2; the studio shows it with `st.error`.
Messages name the file, row, field or value at fault.
"""

from __future__ import annotations

__all__ = [
    "StudioError",
    "InputError",
    "ConfigError",
    "WorkspaceError",
    "WorkspaceBusyError",
    "DedupError",
    "LabelingError",
    "ReviewSyncError",
    "ExportError",
    "TrainError",
    "ModelError",
]


class StudioError(Exception):
    """Base class for errors caused by input, configuration or an external system's state."""


class InputError(StudioError):
    """A data file is malformed: the message names the file, the row (line) and the field."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 line: int | None = None, field: str | None = None):
        self.file, self.row, self.line, self.field = file, row, line, field
        self.reason = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}" + (f" (line {self.line})" if self.line is not None else ""))
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.field:
            where.append(f"field '{self.field}'")
        return (": ".join([", ".join(where), self.reason]) if where else self.reason)


class ConfigError(StudioError):
    """A configuration value (CLI option, curation.yaml, dataclass field) is invalid."""


class WorkspaceError(StudioError):
    """The workspace is missing, locked, or from an incompatible version."""


class WorkspaceBusyError(WorkspaceError):
    """Another process held the workspace's write lock for longer than the lock timeout."""


class DedupError(StudioError):
    """Deduplication or similarity search cannot run as asked."""


class LabelingError(StudioError):
    """Labeling functions or the label model cannot run as asked."""


class ReviewSyncError(StudioError):
    """Label Studio is unreachable or disagrees with the workspace."""


class ExportError(StudioError):
    """A dataset export cannot be written or read."""


class TrainError(StudioError):
    """A training run cannot start, continue or be evaluated."""


class ModelError(StudioError):
    """A registered model is unknown, missing on disk, or cannot serve what was asked of it."""
