"""Where the bundled sample data lives."""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.errors import ConfigError

__all__ = ["sample_dir", "project_root"]


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def sample_dir() -> Path:
    """`sample_data/` of this checkout (or $CURATE_SAMPLE_DIR)."""
    d = Path(os.environ.get("CURATE_SAMPLE_DIR") or project_root() / "sample_data")
    if not (d / "curation.yaml").is_file():
        raise ConfigError(f"no sample data at {d} (expected {d / 'curation.yaml'})")
    return d
