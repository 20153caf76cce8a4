"""Ingest: CSV / JSON / JSONL / Parquet / Arrow / text files and dataset folders -> workspace
records with stable ids and lineage."""

from pipelines.ingest.config import IngestConfig
from pipelines.ingest.formats import LAYOUTS, Layout, detect_layout
from pipelines.ingest.ingest import (CONDITIONS, FileSummary, IngestResult, Preview, build_record,
                                     ingest, preview)
from pipelines.ingest.normalize import ROLE_ALIASES, canonical_role, normalize_text, record_id
from pipelines.ingest.readers import read_rows

__all__ = ["IngestConfig", "IngestResult", "FileSummary", "Preview", "ingest", "preview",
           "build_record", "Layout", "LAYOUTS", "detect_layout", "CONDITIONS", "ROLE_ALIASES",
           "canonical_role", "normalize_text", "record_id", "read_rows"]
