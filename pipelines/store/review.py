"""SQL for human review: the review table (v1), projects, the push journal and annotations (v4).

The Label Studio side is in `pipelines.review`; this module only reads and writes the workspace.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from pipelines.records import Candidate, Record, RecordState

__all__ = [
    "ReviewProject",
    "StoredAnnotation",
    "seed_labels",
    "get_review_project",
    "save_review_project",
    "forget_review_project",
    "set_pull_cursor",
    "push_candidates",
    "dominant_kind",
    "add_push_pending",
    "pending_push_batches",
    "resolve_push_batch",
    "task_map",
    "store_annotations",
    "forget_tasks",
    "annotation_labels",
    "review_counts",
    "review_rows",
]


@dataclass
class ReviewProject:
    scheme: str
    project_id: int
    url: str
    label_config: str
    created_at: str
    pull_cursor: str | None = None
    last_pull_at: str | None = None


@dataclass
class StoredAnnotation:
    """One annotation as the workspace keeps it (see `pipelines.review._client`)."""

    annotation_id: int
    task_id: int
    record_id: str
    annotator: str | None
    label: str | None
    edited_response: str | None
    skipped: bool
    problem: str | None
    created_at: str | None
    updated_at: str | None


def seed_labels(conn: sqlite3.Connection, scheme: str,
                rows: Iterable[tuple[str, str | None, float | None]], *,
                model: str = "label_model", run_id: int | None = None) -> int:
    """Write weak labels (record_id, label, confidence) for `scheme`; for tests and benchmarks.

    The weak-supervision step owns the real writer; review only reads the `labels` table.
    """
    n = 0
    for record_id, label, confidence in rows:
        conn.execute(
            "INSERT INTO labels (record_id, scheme, label, confidence, model, run_id)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT(record_id, scheme) DO UPDATE SET"
            " label = excluded.label, confidence = excluded.confidence, model = excluded.model,"
            " run_id = excluded.run_id",
            (record_id, scheme, label, confidence, model, run_id))
        n += 1
    return n


# -- projects ------------------------------------------------------------------------------------
def get_review_project(conn: sqlite3.Connection, scheme: str) -> ReviewProject | None:
    row = conn.execute("SELECT * FROM review_projects WHERE scheme = ?", (scheme,)).fetchone()
    return ReviewProject(**dict(row)) if row else None


def save_review_project(conn: sqlite3.Connection, project: ReviewProject) -> None:
    conn.execute(
        "INSERT INTO review_projects (scheme, project_id, url, label_config, created_at,"
        " pull_cursor, last_pull_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT(scheme) DO UPDATE SET"
        " project_id = excluded.project_id, url = excluded.url,"
        " label_config = excluded.label_config, created_at = excluded.created_at,"
        " pull_cursor = excluded.pull_cursor, last_pull_at = excluded.last_pull_at",
        (project.scheme, project.project_id, project.url, project.label_config,
         project.created_at, project.pull_cursor, project.last_pull_at))


def forget_review_project(conn: sqlite3.Connection, scheme: str) -> int:
    """Drop the link to a project (deleted in the UI): pending tasks go, human results stay.

    Returns how many pending review rows were dropped (they will be pushed again).
    """
    conn.execute("DELETE FROM review_projects WHERE scheme = ?", (scheme,))
    conn.execute("DELETE FROM review_push_pending WHERE scheme = ?", (scheme,))
    n = conn.execute("DELETE FROM review WHERE scheme = ? AND status = 'pending'",
                     (scheme,)).rowcount
    conn.execute("UPDATE review SET task_id = NULL, project_id = NULL WHERE scheme = ?", (scheme,))
    return n


def set_pull_cursor(conn: sqlite3.Connection, scheme: str, cursor: str | None, now: str) -> None:
    conn.execute("UPDATE review_projects SET pull_cursor = COALESCE(?, pull_cursor),"
                 " last_pull_at = ? WHERE scheme = ?", (cursor, now, scheme))


# -- push ----------------------------------------------------------------------------------------
def push_candidates(conn: sqlite3.Connection, scheme: str, *, budget: int | None = None,
                    max_confidence: float | None = None) -> list[Candidate]:
    """Records to send for review: not excluded, not yet pushed, least confident first.

    A record without a weak label (every LF abstained) counts as the least confident. Gold
    labels are not read: reviewers never see them.
    """
    where = ["COALESCE(d.excluded, 0) = 0", "COALESCE(q.excluded, 0) = 0", "v.record_id IS NULL", "p.record_id IS NULL"]
    params: list[Any] = [scheme, scheme, scheme]
    if max_confidence is not None:
        where.append("(l.confidence IS NULL OR l.confidence <= ?)")
        params.append(max_confidence)
    sql = f"""
        SELECT r.id, r.kind, r.text, r.prompt, r.response, r.system, r.messages, r.raw_label,
               r.meta, r.ingested_at,
               l.label, l.confidence, l.model AS label_model, l.run_id AS label_run_id
        FROM records r
        LEFT JOIN dedup d ON d.record_id = r.id
        LEFT JOIN quality_signals q ON q.record_id = r.id
        LEFT JOIN labels l ON l.record_id = r.id AND l.scheme = ?
        LEFT JOIN review v ON v.record_id = r.id AND v.scheme = ?
        LEFT JOIN review_push_pending p ON p.record_id = r.id AND p.scheme = ?
        WHERE {" AND ".join(where)}
        ORDER BY COALESCE(l.confidence, -1.0), r.rowid
        LIMIT ?
    """
    params.append(-1 if budget is None else budget)
    return [Candidate(Record.from_row(r), RecordState.from_row(r))
            for r in conn.execute(sql, params)]


def dominant_kind(conn: sqlite3.Connection) -> str | None:
    """The most common record kind of the workspace (None when it has no records)."""
    row = conn.execute("SELECT kind, COUNT(*) n FROM records GROUP BY kind ORDER BY n DESC"
                       " LIMIT 1").fetchone()
    return row[0] if row else None


def add_push_pending(conn: sqlite3.Connection, batch_id: str, scheme: str, project_id: int,
                     record_ids: Sequence[str], now: str) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO review_push_pending (batch_id, scheme, project_id, record_id,"
        " created_at) VALUES (?,?,?,?,?)",
        [(batch_id, scheme, project_id, rid, now) for rid in record_ids])


def pending_push_batches(conn: sqlite3.Connection, scheme: str) -> dict[str, int]:
    """{batch_id: project_id} of pushes that did not record their task ids."""
    return {r[0]: r[1] for r in conn.execute(
        "SELECT DISTINCT batch_id, project_id FROM review_push_pending WHERE scheme = ?",
        (scheme,))}


def resolve_push_batch(conn: sqlite3.Connection, batch_id: str, scheme: str, project_id: int,
                       tasks: dict[str, int]) -> int:
    """Record the task ids of a push batch ({record_id: task_id}); clear its journal rows."""
    conn.executemany(
        "INSERT INTO review (record_id, scheme, project_id, task_id, status) VALUES (?,?,?,?,"
        "'pending') ON CONFLICT(record_id, scheme) DO UPDATE SET project_id = excluded.project_id,"
        " task_id = excluded.task_id",
        [(rid, scheme, project_id, tid) for rid, tid in tasks.items()])
    conn.execute("DELETE FROM review_push_pending WHERE batch_id = ?", (batch_id,))
    return len(tasks)


def task_map(conn: sqlite3.Connection, scheme: str, project_id: int) -> dict[int, str]:
    """{task_id: record_id} for the tasks of `project_id`."""
    return {r[0]: r[1] for r in conn.execute(
        "SELECT task_id, record_id FROM review WHERE scheme = ? AND project_id = ?"
        " AND task_id IS NOT NULL", (scheme, project_id))}


# -- pull ----------------------------------------------------------------------------------------
def store_annotations(conn: sqlite3.Connection, scheme: str, project_id: int,
                      tasks: dict[int, list[StoredAnnotation]], now: str) -> dict[str, int]:
    """Store the current annotations of the given tasks (all of each task's annotations).

    An annotation seen before with the same `updated_at` is unchanged; a newer one replaces it;
    one the server no longer has for that task is removed. The review row of every touched
    record is then recomputed. Returns counts new, updated, removed, unchanged.
    """
    counts = Counter(new=0, updated=0, removed=0, unchanged=0)
    touched: set[str] = set()
    for task_id, anns in tasks.items():
        old = {r["annotation_id"]: r["updated_at"] for r in conn.execute(
            "SELECT annotation_id, updated_at FROM review_annotations WHERE project_id = ?"
            " AND task_id = ?", (project_id, task_id))}
        seen = set()
        for a in anns:
            seen.add(a.annotation_id)
            if a.annotation_id in old and old[a.annotation_id] == a.updated_at:
                counts["unchanged"] += 1
                continue
            counts["updated" if a.annotation_id in old else "new"] += 1
            touched.add(a.record_id)
            conn.execute(
                "INSERT INTO review_annotations (project_id, annotation_id, task_id, record_id,"
                " scheme, annotator, label, edited_response, skipped, problem, created_at,"
                " updated_at, pulled_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT(project_id, annotation_id) DO UPDATE SET"
                " annotator = excluded.annotator, label = excluded.label,"
                " edited_response = excluded.edited_response, skipped = excluded.skipped,"
                " problem = excluded.problem, updated_at = excluded.updated_at,"
                " pulled_at = excluded.pulled_at",
                (project_id, a.annotation_id, a.task_id, a.record_id, scheme, a.annotator,
                 a.label, a.edited_response, int(a.skipped), a.problem, a.created_at,
                 a.updated_at, now))
        gone = set(old) - seen
        if gone:
            counts["removed"] += len(gone)
            rid = conn.execute("SELECT record_id FROM review WHERE task_id = ? AND project_id = ?",
                               (task_id, project_id)).fetchone()
            if rid:
                touched.add(rid[0])
            conn.executemany("DELETE FROM review_annotations WHERE project_id = ? AND"
                             " annotation_id = ?", [(project_id, g) for g in gone])
    for record_id in touched:
        _recompute_review(conn, scheme, record_id)
    return dict(counts)


def _recompute_review(conn: sqlite3.Connection, scheme: str, record_id: str) -> None:
    """The record's review result from all its annotations: majority label, latest on ties."""
    anns = conn.execute(
        "SELECT annotator, label, edited_response, skipped, updated_at FROM review_annotations"
        " WHERE scheme = ? AND record_id = ? ORDER BY updated_at, annotation_id",
        (scheme, record_id)).fetchall()
    labelled = [a for a in anns if a["label"] is not None and not a["skipped"]]
    edited = [a["edited_response"] for a in anns if a["edited_response"] and not a["skipped"]]
    if labelled or edited:
        status = "reviewed"
        votes = Counter(a["label"] for a in labelled)
        top = max(votes.values()) if votes else 0
        # Ties go to the most recent annotation among the tied labels.
        label = next((a["label"] for a in reversed(labelled) if votes[a["label"]] == top), None)
    elif anns and all(a["skipped"] for a in anns):
        status, label = "skipped", None
    else:
        status, label = "pending", None
    reviewers = sorted({a["annotator"] for a in anns if a["annotator"]})
    conn.execute(
        "UPDATE review SET status = ?, human_label = ?, edited_response = ?, reviewer = ?,"
        " reviewed_at = ? WHERE record_id = ? AND scheme = ?",
        (status, label, edited[-1] if edited else None, ", ".join(reviewers) or None,
         anns[-1]["updated_at"] if anns else None, record_id, scheme))


def forget_tasks(conn: sqlite3.Connection, scheme: str, project_id: int,
                 task_ids: Iterable[int]) -> int:
    """Tasks deleted on the server: pending rows go (re-pushable); reviewed ones keep results."""
    n = 0
    for tid in task_ids:
        conn.execute("DELETE FROM review WHERE scheme = ? AND project_id = ? AND task_id = ?"
                     " AND status = 'pending'", (scheme, project_id, tid))
        conn.execute("UPDATE review SET task_id = NULL WHERE scheme = ? AND project_id = ? AND"
                     " task_id = ?", (scheme, project_id, tid))
        n += 1
    return n


def annotation_labels(conn: sqlite3.Connection, scheme: str) -> list[tuple[str, str, str]]:
    """(record_id, annotator, label) of every labelled, not skipped annotation of `scheme`."""
    return [(r[0], r[1] or "?", r[2]) for r in conn.execute(
        "SELECT record_id, annotator, label FROM review_annotations WHERE scheme = ? AND"
        " label IS NOT NULL AND skipped = 0 ORDER BY record_id, annotation_id", (scheme,))]


def review_counts(conn: sqlite3.Connection, scheme: str) -> dict[str, int]:
    one = lambda sql: conn.execute(sql, (scheme,)).fetchone()[0]  # noqa: E731
    return {
        "pushed": one("SELECT COUNT(*) FROM review WHERE scheme = ? AND task_id IS NOT NULL"),
        "annotated": one("SELECT COUNT(*) FROM review WHERE scheme = ? AND status = 'reviewed'"),
        "skipped": one("SELECT COUNT(*) FROM review WHERE scheme = ? AND status = 'skipped'"),
        "pending": one("SELECT COUNT(*) FROM review WHERE scheme = ? AND status = 'pending'"),
        "annotations": one("SELECT COUNT(*) FROM review_annotations WHERE scheme = ?"),
        "problems": one("SELECT COUNT(*) FROM review_annotations WHERE scheme = ? AND"
                        " problem IS NOT NULL"),
        "in_flight": one("SELECT COUNT(*) FROM review_push_pending WHERE scheme = ?"),
    }


def review_rows(conn: sqlite3.Connection, scheme: str) -> list[dict[str, Any]]:
    """The review table for `scheme` joined with the weak label, in ingestion order."""
    return [dict(r) for r in conn.execute(
        "SELECT v.*, l.label AS weak_label, l.confidence FROM review v JOIN records r ON"
        " r.id = v.record_id LEFT JOIN labels l ON l.record_id = v.record_id AND l.scheme ="
        " v.scheme WHERE v.scheme = ? ORDER BY r.rowid", (scheme,))]
