"""Versioned, hashed dataset export: `W/exports/vNNNN/{train,eval}.jsonl` + `manifest.json`."""

from pipelines.export.config import FORMATS, ExportConfig
from pipelines.export.export import (
    ExportResult,
    diff_exports,
    export_dataset,
    export_path,
    list_exports,
    load_manifest,
    parse_version,
    preview_export,
    read_split,
    resolve_config,
)
from pipelines.export.render import record_messages
from pipelines.export.select import final_label, split_of

__all__ = ["ExportConfig", "FORMATS", "ExportResult", "export_dataset", "preview_export",
           "list_exports", "load_manifest", "read_split", "diff_exports", "export_path",
           "parse_version", "resolve_config", "split_of", "final_label", "record_messages"]
