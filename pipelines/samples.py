"""Where the bundled sample data lives."""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.errors import ConfigError

__all__ = ["sample_dir", "project_root", "load_sample"]


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def sample_dir() -> Path:
    """`sample_data/` of this checkout (or $CURATE_SAMPLE_DIR)."""
    d = Path(os.environ.get("CURATE_SAMPLE_DIR") or project_root() / "sample_data")
    if not (d / "curation.yaml").is_file():
        raise ConfigError(f"no sample data at {d} (expected {d / 'curation.yaml'})")
    return d


def load_sample(ws, src: Path | None = None):
    """Load the sample into workspace `ws`, as `curate init --sample` does.

    Copies the sample's `curation.yaml` unless the workspace has one, then ingests the files it
    lists. The sample has deliberately broken rows (empty notes): they are skipped and written to
    a reject report, the rest is stored. Returns the `IngestResult`; running it again adds nothing.
    """
    import shutil

    from pipelines.config import load_config
    from pipelines.ingest import IngestConfig, ingest

    src = Path(src) if src is not None else sample_dir()
    if not ws.config_path.exists():
        shutil.copyfile(src / "curation.yaml", ws.config_path)
    cfg = load_config(src / "curation.yaml")
    return ingest(ws, [src / f for f in cfg.files], IngestConfig.from_curation(cfg,
                                                                                 skip_invalid=True))
