"""Ingest: CSV / JSONL / Parquet -> workspace records with stable ids and lineage."""

from pipelines.ingest.config import IngestConfig
from pipelines.ingest.ingest import FileSummary, IngestResult, build_record, ingest
from pipelines.ingest.normalize import normalize_text, record_id
from pipelines.ingest.readers import read_rows

__all__ = ["IngestConfig", "IngestResult", "FileSummary", "ingest", "build_record",
           "normalize_text", "record_id", "read_rows"]
