"""SQL for pairs of records: pairwise review (v8) and imported preference pairs (v9).

Pairwise review: the pairs pushed to Label Studio and every judgment pulled.

The Label Studio side is in `pipelines.review.pairs`; this module only reads and writes the
workspace. A pair is two records answering one prompt: `source_id` (the real or original
response) and `other_id` (a counterfactual, a generated second response, or another stored
response to the same prompt). `swapped` says which one reviewers saw on the left.

Imported pairs (`imported_pairs`): two records a preference data set ranked, written by ingest
(`NewPair`), read by the preference export (`imported_pairs`) and, for their rejected sides, by
every other export format (`rejected_ids`).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass
from typing import Iterator, Sequence

from pipelines.records import Record
from pipelines.store.records import NewRecord

__all__ = [
    "StoredPair",
    "PairJudgment",
    "pairable_records",
    "known_pairs",
    "add_pairs",
    "pending_pair_batches",
    "resolve_pair_batch",
    "pair_task_map",
    "store_pair_judgments",
    "pair_ratings",
    "judged_pairs",
    "pair_counts",
    "NewPair",
    "ImportedPair",
    "add_imported_pair",
    "imported_pairs",
    "rejected_ids",
]


@dataclass(frozen=True)
class StoredPair:
    pair_id: str
    source_id: str
    other_id: str
    origin: str
    swapped: bool

    @property
    def left_id(self) -> str:
        return self.other_id if self.swapped else self.source_id

    @property
    def right_id(self) -> str:
        return self.source_id if self.swapped else self.other_id

    def picked(self, choice: str) -> str:
        """The record id of the side `choice` ('left' | 'right') names."""
        return self.left_id if choice == "left" else self.right_id


@dataclass
class PairJudgment:
    """One annotation of a pair task as the workspace keeps it."""

    annotation_id: int
    task_id: int
    pair_id: str
    annotator: str | None
    choice: str | None            # left | right; None: skipped or no choice made
    picked_id: str | None
    skipped: bool
    problem: str | None
    created_at: str | None
    updated_at: str | None


def pairable_records(conn: sqlite3.Connection) -> Iterator[Record]:
    """Instruction records with a response that no quality rule excluded, in ingestion order.

    Dedup exclusion does not count here: two near-identical answers to one prompt are exactly
    what a pairwise judgment separates.
    """
    for row in conn.execute(
            "SELECT r.* FROM records r LEFT JOIN quality_signals q ON q.record_id = r.id"
            " WHERE r.kind = 'instruction' AND COALESCE(r.response, '') != ''"
            " AND COALESCE(q.excluded, 0) = 0 ORDER BY r.rowid"):
        yield Record.from_row(row)


def known_pairs(conn: sqlite3.Connection) -> dict[str, StoredPair]:
    return {r["pair_id"]: StoredPair(r["pair_id"], r["source_id"], r["other_id"], r["origin"],
                                     bool(r["swapped"]))
            for r in conn.execute("SELECT * FROM pairs ORDER BY rowid")}


def add_pairs(conn: sqlite3.Connection, pairs: Sequence[StoredPair], project_id: int,
              batch_id: str, now: str) -> None:
    """Journal a push batch: the pairs are written with no task id before their import."""
    conn.executemany(
        "INSERT INTO pairs (pair_id, source_id, other_id, origin, swapped, project_id, batch_id,"
        " created_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(pair_id) DO UPDATE SET"
        " project_id = excluded.project_id, batch_id = excluded.batch_id, task_id = NULL",
        [(p.pair_id, p.source_id, p.other_id, p.origin, int(p.swapped), project_id, batch_id, now)
         for p in pairs])


def pending_pair_batches(conn: sqlite3.Connection) -> dict[str, int]:
    """{batch_id: project_id} of pushes that did not record their task ids."""
    return {r[0]: r[1] for r in conn.execute(
        "SELECT DISTINCT batch_id, project_id FROM pairs WHERE task_id IS NULL"
        " AND batch_id IS NOT NULL")}


def resolve_pair_batch(conn: sqlite3.Connection, batch_id: str,
                       tasks: dict[str, int]) -> int:
    """Record the task ids of a batch ({pair_id: task_id}); pairs the server never got go."""
    conn.executemany("UPDATE pairs SET task_id = ? WHERE pair_id = ? AND batch_id = ?",
                     [(tid, pid, batch_id) for pid, tid in tasks.items()])
    conn.execute("DELETE FROM pairs WHERE batch_id = ? AND task_id IS NULL", (batch_id,))
    return len(tasks)


def pair_task_map(conn: sqlite3.Connection, project_id: int) -> dict[int, StoredPair]:
    """{task_id: pair} for the pushed pairs of `project_id`."""
    return {r["task_id"]: StoredPair(r["pair_id"], r["source_id"], r["other_id"], r["origin"],
                                     bool(r["swapped"]))
            for r in conn.execute("SELECT * FROM pairs WHERE project_id = ? AND task_id IS NOT"
                                  " NULL", (project_id,))}


def store_pair_judgments(conn: sqlite3.Connection, project_id: int,
                         tasks: dict[int, list[PairJudgment]], now: str) -> dict[str, int]:
    """Store the current annotations of the given tasks (as `review.store_annotations` does:
    same `updated_at` = unchanged, newer = updated, gone from the server = removed)."""
    counts = Counter(new=0, updated=0, removed=0, unchanged=0)
    for task_id, judgments in tasks.items():
        old = {r[0]: r[1] for r in conn.execute(
            "SELECT annotation_id, updated_at FROM pair_judgments WHERE project_id = ? AND"
            " task_id = ?", (project_id, task_id))}
        for j in judgments:
            if old.get(j.annotation_id, object()) == j.updated_at:
                counts["unchanged"] += 1
                continue
            counts["updated" if j.annotation_id in old else "new"] += 1
            conn.execute(
                "INSERT INTO pair_judgments (project_id, annotation_id, task_id, pair_id,"
                " annotator, choice, picked_id, skipped, problem, created_at, updated_at,"
                " pulled_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(project_id,"
                " annotation_id) DO UPDATE SET annotator = excluded.annotator,"
                " choice = excluded.choice, picked_id = excluded.picked_id,"
                " skipped = excluded.skipped, problem = excluded.problem,"
                " updated_at = excluded.updated_at, pulled_at = excluded.pulled_at",
                (project_id, j.annotation_id, task_id, j.pair_id, j.annotator, j.choice,
                 j.picked_id, int(j.skipped), j.problem, j.created_at, j.updated_at, now))
        gone = set(old) - {j.annotation_id for j in judgments}
        counts["removed"] += len(gone)
        conn.executemany("DELETE FROM pair_judgments WHERE project_id = ? AND annotation_id = ?",
                         [(project_id, g) for g in gone])
    return dict(counts)


def pair_ratings(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(pair_id, annotator, choice) of every judgment that made a choice, oldest first."""
    return [(r[0], r[1] or "?", r[2]) for r in conn.execute(
        "SELECT pair_id, annotator, choice FROM pair_judgments WHERE choice IS NOT NULL"
        " ORDER BY pair_id, updated_at, annotation_id")]


def judged_pairs(conn: sqlite3.Connection) -> list[tuple[StoredPair, list[PairJudgment]]]:
    """Every pair with at least one judgment that made a choice, with all its judgments."""
    pairs = known_pairs(conn)
    by_pair: dict[str, list[PairJudgment]] = {}
    for r in conn.execute("SELECT * FROM pair_judgments WHERE choice IS NOT NULL AND skipped = 0"
                          " ORDER BY pair_id, updated_at, annotation_id"):
        d = dict(r)
        d.pop("project_id"), d.pop("pulled_at")
        d["skipped"] = bool(d["skipped"])
        by_pair.setdefault(d["pair_id"], []).append(PairJudgment(**d))
    return [(pairs[pid], js) for pid, js in by_pair.items() if pid in pairs]


def pair_counts(conn: sqlite3.Connection) -> dict[str, int]:
    one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
    return {
        "pushed": one("SELECT COUNT(*) FROM pairs WHERE task_id IS NOT NULL"),
        "judged": one("SELECT COUNT(DISTINCT pair_id) FROM pair_judgments WHERE choice IS NOT"
                      " NULL"),
        "judgments": one("SELECT COUNT(*) FROM pair_judgments WHERE choice IS NOT NULL"),
        "no_choice": one("SELECT COUNT(*) FROM pair_judgments WHERE choice IS NULL"),
        "in_flight": one("SELECT COUNT(*) FROM pairs WHERE task_id IS NULL"),
    }



# -- imported preference pairs (v9) ----------------------------------------------------------
@dataclass
class NewPair:
    """A validated preference row: two records answering one prompt, `chosen` preferred."""

    chosen: NewRecord
    rejected: NewRecord
    prompt_id: str             # hash of the shared prompt turns: pairs of one prompt split alike

    @property
    def pair_id(self) -> str:
        return f"{self.chosen.id}>{self.rejected.id}"


@dataclass(frozen=True)
class ImportedPair:
    pair_id: str
    chosen_id: str
    rejected_id: str
    prompt_id: str
    file: str
    row: int


def add_imported_pair(conn: sqlite3.Connection, pair: NewPair, now: str) -> bool:
    """Store a pair whose two records are stored; False when it was already there."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO imported_pairs (pair_id, chosen_id, rejected_id, prompt_id, file,"
        " row, created_at) VALUES (?,?,?,?,?,?,?)",
        (pair.pair_id, pair.chosen.id, pair.rejected.id, pair.prompt_id, pair.chosen.file,
         pair.chosen.row, now))
    return cur.rowcount == 1


def imported_pairs(conn: sqlite3.Connection) -> list[ImportedPair]:
    """Every imported pair, in ingestion order."""
    return [ImportedPair(r["pair_id"], r["chosen_id"], r["rejected_id"], r["prompt_id"],
                         r["file"], r["row"])
            for r in conn.execute("SELECT * FROM imported_pairs ORDER BY rowid")]


def rejected_ids(conn: sqlite3.Connection) -> set[str]:
    """The records some imported pair rejected: never a good example in an SFT export."""
    return {r[0] for r in conn.execute("SELECT DISTINCT rejected_id FROM imported_pairs")}
