"""The workspace schema and its in-code migrations.

`PRAGMA user_version` holds the schema version. Each migration runs in its own transaction, so a
database is always at a whole version. Later steps add migrations at the end of `MIGRATIONS`;
never edit one that has shipped.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Migration", "MIGRATIONS", "SCHEMA_VERSION"]


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str


_V1 = """
-- One row per distinct (normalised) content. `rowid` is the ingestion order.
CREATE TABLE records (
    rowid        INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL CHECK (kind IN ('text', 'instruction', 'chat')),
    text         TEXT NOT NULL,          -- what LFs and embeddings read
    prompt       TEXT,
    response     TEXT,
    system       TEXT,
    messages     TEXT,                   -- JSON list of {role, content} (chat)
    raw_label    TEXT,                   -- a label column as ingested (may be noisy)
    gold         TEXT NOT NULL DEFAULT '{}',  -- JSON {scheme: label}; never shown to LFs
    meta         TEXT NOT NULL DEFAULT '{}',  -- JSON: every other column of the first source
    ingested_at  TEXT NOT NULL
);

-- Every (file, row) a record came from: exact duplicates fold into one record, nothing is lost.
CREATE TABLE record_sources (
    record_id    TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    file         TEXT NOT NULL,          -- absolute path as ingested
    row          INTEGER NOT NULL,       -- 1-based data row (CSV header excluded; JSONL line)
    line         INTEGER,                -- physical line where the row starts
    file_sha256  TEXT,
    meta         TEXT NOT NULL DEFAULT '{}',
    ingested_at  TEXT NOT NULL,
    PRIMARY KEY (file, row, record_id)
);
CREATE INDEX record_sources_record ON record_sources(record_id);

-- Lineage: one row per pipeline step run (ingest, dedup, filter, label, review, export, train).
CREATE TABLE runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    step         TEXT NOT NULL,
    scheme       TEXT,
    params       TEXT NOT NULL DEFAULT '{}',
    metrics      TEXT NOT NULL DEFAULT '{}',
    status       TEXT NOT NULL DEFAULT 'done',
    started_at   TEXT NOT NULL,
    finished_at  TEXT
);
CREATE INDEX runs_step ON runs(step, id);

-- Dedup / filter decisions: flags, never deletions.
CREATE TABLE dedup (
    record_id          TEXT PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
    cluster_id         TEXT,
    representative_id  TEXT,
    similarity         REAL,
    method             TEXT,              -- exact | semantic | filter
    excluded           INTEGER NOT NULL DEFAULT 0,
    reason             TEXT,
    run_id             INTEGER REFERENCES runs(id)
);
CREATE INDEX dedup_cluster ON dedup(cluster_id);

-- A person's keep/drop decision; later runs respect it.
CREATE TABLE dedup_overrides (
    record_id   TEXT PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
    decision    TEXT NOT NULL CHECK (decision IN ('keep', 'drop')),
    decided_at  TEXT NOT NULL
);

-- Aggregated programmatic labels, per scheme.
CREATE TABLE labels (
    record_id   TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    scheme      TEXT NOT NULL,
    label       TEXT,                     -- NULL: every LF abstained
    confidence  REAL,
    model       TEXT,                     -- label_model | majority
    run_id      INTEGER REFERENCES runs(id),
    PRIMARY KEY (record_id, scheme)
);
CREATE INDEX labels_scheme ON labels(scheme, confidence);

-- Human review state, per scheme (record <-> Label Studio task).
CREATE TABLE review (
    record_id        TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    scheme           TEXT NOT NULL,
    project_id       INTEGER,
    task_id          INTEGER,
    status           TEXT NOT NULL DEFAULT 'pending',   -- pending | reviewed | skipped
    human_label      TEXT,
    edited_response  TEXT,
    reviewer         TEXT,
    reviewed_at      TEXT,
    PRIMARY KEY (record_id, scheme)
);
CREATE INDEX review_task ON review(task_id);
"""

# v3 (labeling): one row per labeling run (where its L matrix lies) and per-LF statistics.
_V3 = """
CREATE TABLE lf_runs (
    run_id       INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    scheme       TEXT NOT NULL,
    matrix_path  TEXT NOT NULL,          -- labels/<scheme>/run-<id>.npz: L, record ids, LF names
    n_records    INTEGER NOT NULL,
    n_lfs        INTEGER NOT NULL,
    chosen_model TEXT,                   -- label_model | majority
    created_at   TEXT NOT NULL
);
CREATE INDEX lf_runs_scheme ON lf_runs(scheme, run_id);

CREATE TABLE lf_stats (
    run_id          INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    lf_name         TEXT NOT NULL,
    scheme          TEXT NOT NULL,
    origin          TEXT,                -- module name or workspace file the LF came from
    source_sha256   TEXT,
    coverage        REAL,
    overlaps        REAL,
    conflicts       REAL,
    emp_accuracy    REAL,                -- NULL: no gold-labelled record where it voted
    n_gold_votes    INTEGER,
    faults          INTEGER NOT NULL DEFAULT 0,
    fault_examples  TEXT NOT NULL DEFAULT '[]',   -- JSON list of record ids
    fault_message   TEXT,
    PRIMARY KEY (run_id, lf_name)
);
"""

_V4 = """
-- Review (Label Studio) sync state. One project per label scheme.
CREATE TABLE review_projects (
    scheme        TEXT PRIMARY KEY,
    project_id    INTEGER NOT NULL,
    url           TEXT NOT NULL,
    label_config  TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    pull_cursor   TEXT,                    -- newest task updated_at (server clock) a pull has seen
    last_pull_at  TEXT
);

-- A push writes its intent here before importing: after a crash between the import and the
-- commit of task ids, the next push finds the imported tasks by `batch_id` (kept in task data).
CREATE TABLE review_push_pending (
    batch_id    TEXT NOT NULL,
    scheme      TEXT NOT NULL,
    project_id  INTEGER NOT NULL,
    record_id   TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (batch_id, record_id)
);

-- Every annotation pulled (several annotators per task are kept; agreement is computed on them).
CREATE TABLE review_annotations (
    project_id       INTEGER NOT NULL,
    annotation_id    INTEGER NOT NULL,
    task_id          INTEGER NOT NULL,
    record_id        TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    scheme           TEXT NOT NULL,
    annotator        TEXT,
    label            TEXT,                 -- NULL: skipped, no choice, or not in the scheme
    edited_response  TEXT,
    skipped          INTEGER NOT NULL DEFAULT 0,
    problem          TEXT,                 -- e.g. a choice that is not a class of the scheme
    created_at       TEXT,
    updated_at       TEXT,
    pulled_at        TEXT NOT NULL,
    PRIMARY KEY (project_id, annotation_id)
);
CREATE INDEX review_annotations_record ON review_annotations(scheme, record_id);
"""

# v2 (dedup): cluster membership with pair scores, and similarity-filter flags. IF NOT EXISTS:
# pipelines.store.dedup re-runs it for workspaces that passed version 2 before it existed.
_V2 = """
-- Dedup run output: one row per record in a cluster of two or more (rank 0 = the centre).
CREATE TABLE IF NOT EXISTS dedup_members (
    record_id     TEXT PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
    cluster_id    TEXT NOT NULL,
    rank          INTEGER NOT NULL,
    method        TEXT NOT NULL,          -- centre | exact | same_prompt | semantic
    similarity    REAL,                   -- cosine to the centre (1.0 for exact levels)
    lexical       REAL,                   -- character-shingle Jaccard to the centre
    facts         TEXT,                   -- agree | none (conflicting pairs never merge)
    shared_facts  INTEGER,
    rule          TEXT,                   -- which check merged it: exact | same_prompt | facts | lexical | cosine
    run_id        INTEGER REFERENCES runs(id)
);
CREATE INDEX IF NOT EXISTS dedup_members_cluster ON dedup_members(cluster_id, rank);

-- Similarity filter output (curate filter): best cosine to the on-topic exemplars.
CREATE TABLE IF NOT EXISTS filter_flags (
    record_id   TEXT PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
    similarity  REAL NOT NULL,
    flagged     INTEGER NOT NULL,          -- 1: below min_sim, excluded unless kept
    run_id      INTEGER REFERENCES runs(id)
);
"""

# v5 (hardening): which process owns a run, so that a `running` row whose process is gone can be
# marked `interrupted` when the workspace opens.
_V5 = """
ALTER TABLE runs ADD COLUMN pid INTEGER;
ALTER TABLE runs ADD COLUMN host TEXT;
"""

# v6 (quality filters, PII): per-record signals and the rules that fired, a person's overrides of
# them, and detected PII spans (offsets into records.text; the values themselves are not copied).
_V6 = """
CREATE TABLE quality_signals (
    record_id   TEXT PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
    signals     TEXT NOT NULL DEFAULT '{}',   -- JSON {signal: value}
    details     TEXT NOT NULL DEFAULT '{}',   -- JSON evidence: matched phrase, ftfy fix, per-turn lang
    fired       TEXT NOT NULL DEFAULT '[]',   -- JSON list of the rules that hold
    excluded    INTEGER NOT NULL DEFAULT 0,   -- derived: fired (or a person's drop) unless kept
    reason      TEXT,
    run_id      INTEGER REFERENCES runs(id)
);
CREATE INDEX quality_signals_excluded ON quality_signals(excluded);

CREATE TABLE quality_overrides (
    record_id   TEXT PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
    decision    TEXT NOT NULL CHECK (decision IN ('keep', 'drop')),
    decided_at  TEXT NOT NULL
);

CREATE TABLE pii_spans (
    record_id   TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    start       INTEGER NOT NULL,
    end         INTEGER NOT NULL,
    type        TEXT NOT NULL,                -- EMAIL | PHONE | CREDIT_CARD | IBAN | SSN | ...
    confidence  REAL NOT NULL,
    run_id      INTEGER REFERENCES runs(id),
    PRIMARY KEY (record_id, start)
);
CREATE INDEX pii_spans_type ON pii_spans(type);
"""

# v7 (micro-models): the model registry, one row per trained adapter or router.
_V7 = """
CREATE TABLE IF NOT EXISTS models (
    name        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,                -- adapter | router
    head        TEXT NOT NULL,                -- sft | classifier | probe | router ...
    scheme      TEXT,
    base_model  TEXT,
    export      TEXT,
    run_id      TEXT,
    path        TEXT NOT NULL,                -- relative to the workspace when inside it
    size_bytes  INTEGER NOT NULL,
    classes     TEXT,                         -- JSON list: a classifier's labels, a router's routes
    evaluation  TEXT,                         -- JSON: the run's eval.json or the router's report
    created_at  TEXT NOT NULL
);
"""

# v8 (pairwise review): two candidate responses to one prompt shown side by side in Label Studio,
# and every judgment pulled back. The pairwise project itself is a `review_projects` row under
# the reserved key `(pairwise)` (not a scheme name: a pair's choice belongs to no label scheme).
_V8 = """
CREATE TABLE IF NOT EXISTS pairs (
    pair_id     TEXT PRIMARY KEY,             -- '<source_id>~<other_id>'
    source_id   TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    other_id    TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    origin      TEXT NOT NULL,                -- counterfactual | second_response | paraphrase | same_prompt
    swapped     INTEGER NOT NULL DEFAULT 0,   -- 1: the source is shown on the right
    project_id  INTEGER,
    task_id     INTEGER,                      -- NULL while its push batch is in flight
    batch_id    TEXT,
    created_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pairs_task ON pairs(project_id, task_id);

CREATE TABLE IF NOT EXISTS pair_judgments (
    project_id     INTEGER NOT NULL,
    annotation_id  INTEGER NOT NULL,
    task_id        INTEGER NOT NULL,
    pair_id        TEXT NOT NULL REFERENCES pairs(pair_id) ON DELETE CASCADE,
    annotator      TEXT,
    choice         TEXT CHECK (choice IN ('left', 'right')),   -- NULL: skipped or no choice
    picked_id      TEXT,                      -- the record of the chosen side
    skipped        INTEGER NOT NULL DEFAULT 0,
    problem        TEXT,
    created_at     TEXT,
    updated_at     TEXT,
    pulled_at      TEXT NOT NULL,
    PRIMARY KEY (project_id, annotation_id)
);
CREATE INDEX IF NOT EXISTS pair_judgments_pair ON pair_judgments(pair_id);
"""

# v9 (preference import): a pair of records an ingested preference data set ranked (TRL
# prompt/chosen/rejected rows, HH-RLHF transcripts). Kept apart from `pairs`, which journals what
# was pushed to Label Studio: an imported pair is data, not a review task.
_V9 = """
CREATE TABLE IF NOT EXISTS imported_pairs (
    pair_id      TEXT PRIMARY KEY,             -- '<chosen_id>><rejected_id>'
    chosen_id    TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    rejected_id  TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    prompt_id    TEXT NOT NULL,                -- hash of the shared prompt turns (the split key)
    file         TEXT NOT NULL,                -- where it was first ingested from
    row          INTEGER NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS imported_pairs_rejected ON imported_pairs(rejected_id);
"""

MIGRATIONS: list[Migration] = [
    Migration(1, "records, sources, runs, dedup, labels, review", _V1),
    Migration(2, "dedup: members with pair scores, filter flags", _V2),
    Migration(3, "labeling: lf_runs, lf_stats", _V3),
    Migration(4, "review: projects, push journal, annotations", _V4),
    Migration(5, "runs: pid and host of the process that owns a run", _V5),
    Migration(6, "quality filters: signals, overrides; PII spans", _V6),
    Migration(7, "models: the registry of adapters and routers", _V7),
    Migration(8, "pairwise review: pairs and their judgments", _V8),
    Migration(9, "imported preference pairs", _V9),
]

SCHEMA_VERSION = max(m.version for m in MIGRATIONS)
