"""The workspace store: the one place that owns SQL.

`Workspace` opens the folder and hands out connections and transactions; the sibling modules
(`records`, and those later steps add) hold the statements for their tables.
"""

from pipelines.records import Candidate, Record, RecordState, Source, Turn, render_turns
from pipelines.store.records import (
    NewRecord,
    count_records,
    finish_run,
    get_record,
    iter_records,
    list_records,
    list_runs,
    record_ids,
    stage_counts,
    start_run,
    upsert_record,
)
from pipelines.store.runs import Terminated, end_run, raise_on_sigterm, reap_stale_runs
from pipelines.store.schema import MIGRATIONS, SCHEMA_VERSION, Migration
from pipelines.store.workspace import SUBFOLDERS, Workspace, utcnow

__all__ = [
    "Record", "Turn", "Source", "RecordState", "Candidate", "render_turns",
    "Workspace", "SUBFOLDERS", "utcnow", "MIGRATIONS", "SCHEMA_VERSION", "Migration",
    "NewRecord", "upsert_record", "count_records", "iter_records", "get_record", "list_records",
    "record_ids", "start_run", "finish_run", "list_runs", "stage_counts",
    "end_run", "reap_stale_runs", "raise_on_sigterm", "Terminated",
]
