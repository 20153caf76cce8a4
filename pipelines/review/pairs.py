"""Pairwise review: two candidate responses to one prompt, side by side in Label Studio.

Which pairs: for every instruction record derived from another (`meta["synthetic"]` with a
`source_id`: a counterfactual, a generated second response, a paraphrase) the pair (source,
derived); and for real records that answer the same prompt (same system and prompt after
whitespace normalisation) the first of them paired with each of the others (`same_prompt`).
Which side is shown on the left is decided by the pair id's hash, so reviewers cannot learn
that the original is always on one side.

Push journals each batch (the pairs with no task id) before the import and stores the task
ids after, as `sync.push` does; a push that died in between is reconciled by its batch id on
the next run. Pull stores every judgment (annotator, time, the side and the record picked) in
one transaction and reports agreement over pairs judged by two or more people. What a pair
becomes in the `preference` export (majority, ties skipped) is `pipelines.export.preference`.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Sequence

from pipelines.errors import ConfigError, ReviewSyncError
from pipelines.ingest.normalize import normalize_text
from pipelines.records import Record
from pipelines.review._client import (
    PAIRWISE_DESCRIPTION,
    LabelStudioClient,
    annotation_to_choice,
    pair_to_task,
    pairwise_label_config,
)
from pipelines.review.agreement import agreement
from pipelines.review.sync import ReviewConfig, _scheme_lock, connect, updated_tasks
from pipelines.store import Workspace, end_run, finish_run, start_run, utcnow
from pipelines.store.pairs import (
    PairJudgment,
    StoredPair,
    add_pairs,
    known_pairs,
    pair_counts,
    pair_ratings,
    pair_task_map,
    pairable_records,
    pending_pair_batches,
    resolve_pair_batch,
    store_pair_judgments,
)
from pipelines.store.review import (
    ReviewProject,
    forget_review_project,
    get_review_project,
    save_review_project,
    set_pull_cursor,
)

__all__ = ["PAIRWISE_KEY", "ORIGINS", "find_pairs", "PairPushResult", "PairPullResult",
           "push_pairs", "pull_pairs", "pair_status"]

# The review_projects key of the pairwise project (not a scheme: no label scheme owns a pair).
PAIRWISE_KEY = "(pairwise)"
ORIGINS = ("counterfactual", "second_response", "paraphrase", "same_prompt")


def _pair(source: Record, other: Record, origin: str) -> StoredPair:
    pair_id = f"{source.id}~{other.id}"
    swapped = int(hashlib.sha256(pair_id.encode()).hexdigest()[:8], 16) % 2 == 1
    return StoredPair(pair_id, source.id, other.id, origin, swapped)


def _origin(rec: Record) -> str | None:
    syn = rec.synthetic
    if syn is None:
        return None
    method = str(syn.get("method") or "")
    return "counterfactual" if method == "counterfactual" else str(syn.get("task") or method)


def find_pairs(records: Iterable[Record], *, known: Iterable[str] = (),
               origins: Sequence[str] = ORIGINS) -> list[StoredPair]:
    """The pairs the records hold (see the module docstring), minus the `known` pair ids."""
    bad = [o for o in origins if o not in ORIGINS]
    if bad:
        raise ConfigError(f"pair origin must be one of {', '.join(ORIGINS)}, got {bad[0]!r}")
    recs = list(records)
    by_id = {r.id: r for r in recs}
    seen = set(known)
    out: list[StoredPair] = []

    def add(p: StoredPair) -> None:
        if p.origin in origins and p.pair_id not in seen and p.source_id != p.other_id:
            seen.add(p.pair_id)
            out.append(p)

    first_of_prompt: dict[tuple[str, str], Record] = {}
    for rec in recs:
        syn = rec.synthetic
        if syn is not None:
            source = by_id.get(str(syn.get("source_id")))
            # the same prompt, or it is not a second answer to the source's question
            if (source is not None and normalize_text(source.prompt or "")
                    == normalize_text(rec.prompt or "")):
                add(_pair(source, rec, _origin(rec) or "second_response"))
            continue
        key = (normalize_text(rec.system or ""), normalize_text(rec.prompt or ""))
        if key in first_of_prompt:
            add(_pair(first_of_prompt[key], rec, "same_prompt"))
        else:
            first_of_prompt[key] = rec
    return out


@dataclass
class PairPushResult:
    project_id: int
    url: str
    created: int = 0
    skipped: int = 0           # pairs already pushed
    recovered: int = 0         # tasks of an interrupted push found on the server
    by_origin: dict[str, int] = field(default_factory=dict)
    project_created: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PairPullResult:
    project_id: int
    new: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    no_choice: int = 0         # annotations seen that skipped or picked no side (not stored
                               # as a choice; counted again by a pull that sees them again)
    unknown_tasks: int = 0
    problems: list[str] = field(default_factory=list)
    agreement: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ensure_project(ws: Workspace, client: LabelStudioClient, cfg: ReviewConfig,
                    recreate: bool) -> tuple[ReviewProject, bool]:
    with ws.connect() as conn:
        project = get_review_project(conn, PAIRWISE_KEY)
    if project is not None:
        if client.get_project(project.project_id) is not None:
            return project, False
        if not recreate:
            raise ReviewSyncError(
                f"the pairwise Label Studio project {project.project_id} no longer exists at "
                f"{client.url} (deleted in the UI?); rerun `curate review pairs push --recreate`"
                f" to make a new one (judgments already pulled stay)")
        with ws.transaction() as conn:
            forget_review_project(conn, PAIRWISE_KEY)
            conn.execute("DELETE FROM pairs WHERE pair_id NOT IN (SELECT pair_id FROM"
                         " pair_judgments)")
    xml = pairwise_label_config()
    pid = client.create_project(f"{cfg.title_prefix}: pairwise ({ws.path.name})", xml,
                                PAIRWISE_DESCRIPTION)
    project = ReviewProject(scheme=PAIRWISE_KEY, project_id=pid, url=client.url,
                            label_config=xml, created_at=utcnow())
    with ws.transaction() as conn:
        save_review_project(conn, project)
    return project, True


def push_pairs(ws: Workspace, *, budget: int | None = None,
               origins: Sequence[str] = ORIGINS, recreate: bool = False,
               client: LabelStudioClient | None = None, cfg: ReviewConfig | None = None,
               progress: Callable[[int, int], None] | None = None) -> PairPushResult:
    """Send the workspace's pairs not pushed yet to the pairwise project (made on first use).

    Args:
        budget: at most this many new tasks.
        origins: which kinds of pair to send (`ORIGINS`).
        recreate: make a new project when the stored one was deleted on the server.
    """
    if budget is not None and budget < 0:
        raise ConfigError(f"budget must be >= 0, got {budget}")
    with _scheme_lock(ws, PAIRWISE_KEY):
        t0 = time.perf_counter()
        cfg = cfg or ReviewConfig.from_workspace(ws)
        with ws.connect() as conn:
            records = list(pairable_records(conn))
        by_id = {r.id: r for r in records}
        client = client or connect(ws, cfg)
        client.check()
        project, created = _ensure_project(ws, client, cfg, recreate)
        recovered = 0
        with ws.connect() as conn:
            batches = pending_pair_batches(conn)
        for batch_id, project_id in batches.items():
            tasks = client.tasks_of_batch(project_id, batch_id)
            with ws.transaction() as conn:
                recovered += resolve_pair_batch(conn, batch_id, tasks)
        with ws.connect() as conn:
            known = known_pairs(conn)
        todo = find_pairs(records, known=known, origins=origins)
        if budget is not None:
            todo = todo[:budget]
        result = PairPushResult(project_id=project.project_id,
                                url=f"{client.url}/projects/{project.project_id}",
                                skipped=len(known), recovered=recovered, project_created=created)
        if todo:
            with ws.transaction() as conn:
                run_id = start_run(conn, "review_pairs_push",
                                   {"budget": budget, "origins": list(origins)})
            try:
                for start in range(0, len(todo), cfg.batch_size):
                    chunk = todo[start:start + cfg.batch_size]
                    batch_id = uuid.uuid4().hex
                    tasks = []
                    for p in chunk:
                        src = by_id[p.source_id]
                        tasks.append(pair_to_task(p.pair_id, src.prompt or "",
                                                  by_id[p.left_id].response or "",
                                                  by_id[p.right_id].response or "",
                                                  batch_id=batch_id, system=src.system))
                    with ws.transaction() as conn:
                        add_pairs(conn, chunk, project.project_id, batch_id, utcnow())
                    ids = client.import_tasks(project.project_id, tasks)
                    with ws.transaction() as conn:
                        resolve_pair_batch(conn, batch_id,
                                           {p.pair_id: tid for p, tid in zip(chunk, ids)})
                    result.created += len(ids)
                    for p in chunk:
                        result.by_origin[p.origin] = result.by_origin.get(p.origin, 0) + 1
                    if progress:
                        progress(result.created, len(todo))
            except BaseException as exc:
                end_run(ws, run_id, exc, {"created": result.created})
                raise
            result.seconds = round(time.perf_counter() - t0, 3)
            with ws.transaction() as conn:
                finish_run(conn, run_id, {"created": result.created, "skipped": result.skipped,
                                          "recovered": recovered, "by_origin": result.by_origin,
                                          "project_id": project.project_id,
                                          "seconds": result.seconds})
        result.seconds = round(time.perf_counter() - t0, 3)
        return result


def pull_pairs(ws: Workspace, *, client: LabelStudioClient | None = None,
               cfg: ReviewConfig | None = None) -> PairPullResult:
    """Fetch pairwise judgments created, updated or deleted since the last pull; store them all.

    Everything is read before one write transaction, as in `sync.pull`.
    """
    with _scheme_lock(ws, PAIRWISE_KEY):
        t0 = time.perf_counter()
        cfg = cfg or ReviewConfig.from_workspace(ws)
        with ws.connect() as conn:
            project = get_review_project(conn, PAIRWISE_KEY)
            if project is None:
                raise ReviewSyncError(f"no pairs pushed yet; run `curate review pairs push "
                                      f"--workspace {ws.path}` first")
            tmap = pair_task_map(conn, project.project_id)
        client = client or connect(ws, cfg)
        client.check()
        if client.get_project(project.project_id) is None:
            raise ReviewSyncError(
                f"the pairwise Label Studio project {project.project_id} no longer exists at "
                f"{client.url}; `curate review pairs push --recreate` makes a new one")
        tasks, users, cursor = updated_tasks(client, project)
        result = PairPullResult(project_id=project.project_id)
        per_task: dict[int, list[PairJudgment]] = {}
        for t in tasks:
            pair = tmap.get(t["id"])
            if pair is None:
                result.unknown_tasks += 1
                continue
            judgments = []
            for raw in t["annotations"]:
                c = annotation_to_choice(raw)
                if c.problem:
                    result.problems.append(f"task {t['id']} (pair {pair.pair_id[:12]}...), "
                                           f"annotation {c.annotation_id}: {c.problem}")
                judgments.append(PairJudgment(
                    annotation_id=c.annotation_id, task_id=t["id"], pair_id=pair.pair_id,
                    annotator=users.get(c.annotator_id, str(c.annotator_id) if c.annotator_id
                                        else None),
                    choice=c.choice, picked_id=pair.picked(c.choice) if c.choice else None,
                    skipped=c.skipped, problem=c.problem, created_at=c.created_at,
                    updated_at=c.updated_at))
            result.no_choice += sum(j.choice is None for j in judgments)
            per_task[t["id"]] = judgments
        with ws.transaction() as conn:
            counts = store_pair_judgments(conn, project.project_id, per_task, utcnow())
            set_pull_cursor(conn, PAIRWISE_KEY, cursor, utcnow())
            for k in ("new", "updated", "removed", "unchanged"):
                setattr(result, k, counts[k])
            result.agreement = agreement(pair_ratings(conn))
            result.seconds = round(time.perf_counter() - t0, 3)
            run_id = start_run(conn, "review_pairs_pull", {})
            finish_run(conn, run_id, {k: v for k, v in result.to_dict().items()
                                      if k != "problems"} | {"problems": len(result.problems)})
        return result


def pair_status(ws: Workspace) -> dict[str, Any]:
    """Counts (pushed, judged, judgments, no choice), agreement and the project URL; no server."""
    from pipelines.export.preference import pick_of
    from pipelines.store.pairs import judged_pairs

    with ws.connect() as conn:
        project = get_review_project(conn, PAIRWISE_KEY)
        counts = pair_counts(conn)
        agr = agreement(pair_ratings(conn))
        picks = [pick_of(js) for _, js in judged_pairs(conn)]
    return {**counts, "decided": sum(p is not None for p in picks),
            "tied": sum(p is None for p in picks), "agreement": agr,
            "project_id": project.project_id if project else None,
            "url": f"{project.url}/projects/{project.project_id}" if project else None,
            "last_pull_at": project.last_pull_at if project else None}
