"""Two-way sync between the workspace and Label Studio: push tasks, pull annotations.

Push is idempotent: each batch is journalled (`review_push_pending`) before its import and its
task ids stored after, in separate transactions; a push that died in between is reconciled on
the next run by the batch id kept in task data, so nothing is imported twice.
Pull fetches only tasks changed since the last pull (server clock), reads everything first and
stores it in one transaction: a server killed mid-pull loses nothing and stores nothing half.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator

from pipelines.config import CurationConfig, load_config
from pipelines.errors import ConfigError, ReviewSyncError
from pipelines.review._client import (
    LabelStudioClient,
    annotation_to_result,
    label_config,
    project_description,
    record_to_task,
)
from pipelines.review.agreement import agreement
from pipelines.review.server import WorkspaceServer
from pipelines.records import Candidate
from pipelines.store import Workspace, end_run, finish_run, list_runs, start_run, utcnow
from pipelines.store.review import (
    ReviewProject,
    StoredAnnotation,
    add_push_pending,
    annotation_labels,
    dominant_kind,
    forget_review_project,
    forget_tasks,
    get_review_project,
    pending_push_batches,
    push_candidates,
    resolve_push_batch,
    review_counts,
    save_review_project,
    set_pull_cursor,
    store_annotations,
    task_map,
)

__all__ = ["ReviewConfig", "PushResult", "PullResult", "connect", "push", "pull", "review_status",
           "ENV_URL", "ENV_TOKEN"]

ENV_URL = "CURATE_LABELSTUDIO_URL"
ENV_TOKEN = "CURATE_LABELSTUDIO_TOKEN"


@dataclass
class ReviewConfig:
    """The `review:` section of curation.yaml."""

    url: str | None = field(default=None, metadata={
        "help": "Label Studio URL (default: $CURATE_LABELSTUDIO_URL or the workspace's server)"})
    token: str | None = field(default=None, metadata={
        "help": "API token (default: $CURATE_LABELSTUDIO_TOKEN or the workspace's credentials)"})
    batch_size: int = field(default=5000, metadata={"help": "tasks per import call"})
    retries: int = field(default=4, metadata={"help": "retries on connection errors and 5xx"})
    title_prefix: str = field(default="Curation review", metadata={"help": "project title prefix"})

    def __post_init__(self):
        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= 100_000:
            raise ConfigError(f"review.batch_size must be an integer in 1..100000, "
                              f"got {self.batch_size!r}")
        if not isinstance(self.retries, int) or not 0 <= self.retries <= 10:
            raise ConfigError(f"review.retries must be an integer in 0..10, got {self.retries!r}")
        if self.url is not None and not str(self.url).startswith(("http://", "https://")):
            raise ConfigError(f"review.url must start with http:// or https://, got {self.url!r}")

    @classmethod
    def from_workspace(cls, ws: Workspace) -> "ReviewConfig":
        return cls.from_curation(load_config(ws.config_path), ws.config_path)

    @classmethod
    def from_curation(cls, cur: CurationConfig, where: Any = "curation.yaml") -> "ReviewConfig":
        """The `review:` section of an already parsed curation.yaml."""
        try:
            return cls(**cur.section("review"))
        except TypeError as exc:
            raise ConfigError(f"{where}: review: {exc}") from exc


def connect(ws: Workspace, cfg: ReviewConfig | None = None) -> LabelStudioClient:
    """A client for the workspace's Label Studio: config, then env vars, then its credentials."""
    cfg = cfg or ReviewConfig.from_workspace(ws)
    url = cfg.url or os.environ.get(ENV_URL)
    token = cfg.token or os.environ.get(ENV_TOKEN)
    server = WorkspaceServer.of(ws)
    if not (url and token):
        if not server.credentials_path.exists():
            raise ReviewSyncError(
                f"no Label Studio configured for {ws.path}: start one with `curate labelstudio "
                f"start --workspace {ws.path}` or set ${ENV_URL} and ${ENV_TOKEN}")
        info = server.credentials(create=False)
        url, token = url or info.url, token or info.token
    return LabelStudioClient(url, token, retries=cfg.retries,
                             start_hint=f"curate labelstudio start --workspace {ws.path}")


@dataclass
class PushResult:
    scheme: str
    project_id: int
    url: str
    created: int = 0
    skipped: int = 0          # records already pushed (not sent again)
    recovered: int = 0        # tasks of an interrupted push found on the server
    project_created: bool = False
    model_version_set: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PullResult:
    scheme: str
    project_id: int
    new: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    deleted_tasks: int = 0
    unknown_tasks: int = 0
    problems: list[str] = field(default_factory=list)
    agreement: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextlib.contextmanager
def _scheme_lock(ws: Workspace, scheme: str) -> Iterator[None]:
    """One push or pull per scheme at a time: two concurrent pushes would both send a record."""
    path = ws.subdir("labelstudio") / f"sync-{hashlib.sha1(scheme.encode()).hexdigest()[:12]}.lock"
    with open(path, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ReviewSyncError(f"another review push or pull for scheme '{scheme}' is running "
                                  f"on {ws.path}; wait for it to finish") from exc
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _data_kind(ws: Workspace, cur: CurationConfig) -> str:
    """The data kind the labeling interface is built for: curation.yaml's schema, else the
    workspace's most common kind."""
    if cur.schema:
        return cur.schema
    with ws.connect() as conn:
        return dominant_kind(conn) or "text"


def _ensure_project(ws: Workspace, client: LabelStudioClient, cfg: ReviewConfig, scheme: str,
                    kind: str, classes: list[str], recreate: bool) -> tuple[ReviewProject, bool]:
    with ws.connect() as conn:
        project = get_review_project(conn, scheme)
    config_xml = label_config(kind, classes)
    if project is not None:
        if client.get_project(project.project_id) is not None:
            if project.label_config != config_xml:
                # The scheme's classes changed in curation.yaml: update the interface.
                client.set_label_config(project.project_id, config_xml)
                project.label_config = config_xml
                with ws.transaction() as conn:
                    save_review_project(conn, project)
            return project, False
        if not recreate:
            raise ReviewSyncError(
                f"Label Studio project {project.project_id} for scheme '{scheme}' no longer exists"
                f" at {client.url} (deleted in the UI?); rerun `curate review push --scheme "
                f"{scheme} --recreate` to create a new project (human results already pulled stay)")
        with ws.transaction() as conn:
            forget_review_project(conn, scheme)
    pid = client.create_project(f"{cfg.title_prefix}: {scheme} ({ws.path.name})", config_xml,
                                project_description(scheme, kind, classes))
    project = ReviewProject(scheme=scheme, project_id=pid, url=client.url,
                            label_config=config_xml, created_at=utcnow())
    with ws.transaction() as conn:
        save_review_project(conn, project)
    return project, True


def _reconcile(ws: Workspace, client: LabelStudioClient, scheme: str) -> int:
    """Finish pushes that imported tasks but died before storing their ids."""
    with ws.connect() as conn:
        batches = pending_push_batches(conn, scheme)
    found = 0
    for batch_id, project_id in batches.items():
        tasks = client.tasks_of_batch(project_id, batch_id)
        with ws.transaction() as conn:
            found += resolve_push_batch(conn, batch_id, scheme, project_id, tasks)
    return found


def _sent_by_unfinished_push(ws: Workspace, scheme: str) -> int:
    """Tasks the latest push of `scheme` stored before it failed (0 if it finished)."""
    with ws.connect() as conn:
        runs = [r for r in list_runs(conn, "review_push") if r["scheme"] == scheme]
    if not runs or runs[-1]["status"] == "done":
        return 0
    return int(runs[-1]["metrics"].get("created") or 0)


def push(ws: Workspace, scheme: str, *, budget: int | None = None,
         max_confidence: float | None = None, recreate: bool = False,
         client: LabelStudioClient | None = None, cfg: ReviewConfig | None = None,
         progress: Callable[[int, int], None] | None = None) -> PushResult:
    """Send records not yet reviewed, least confident first, pre-annotated with the weak label.

    Args:
        budget: at most this many new tasks; a rerun that recovers tasks of a push that died
            mid-import finishes that push (a crashed `--budget 2000` push and its rerun send
            2000 in all).
        max_confidence: only records whose weak-label confidence is at most this.
        recreate: make a new project when the stored one was deleted on the server.
        client, cfg: a client / config instead of the workspace's.
        progress: called with (tasks sent so far, tasks to send).
    """
    with _scheme_lock(ws, scheme):
        return _push(ws, scheme, budget=budget, max_confidence=max_confidence,
                     recreate=recreate, client=client, cfg=cfg, progress=progress)


def _push(ws: Workspace, scheme: str, *, budget: int | None = None,
         max_confidence: float | None = None, recreate: bool = False,
         client: LabelStudioClient | None = None, cfg: ReviewConfig | None = None,
         progress: Callable[[int, int], None] | None = None) -> PushResult:
    if budget is not None and budget < 0:
        raise ConfigError(f"budget must be >= 0, got {budget}")
    if max_confidence is not None and not 0.0 <= max_confidence <= 1.0:
        raise ConfigError(f"max_confidence must be in [0, 1], got {max_confidence}")
    t0 = time.perf_counter()
    cur = load_config(ws.config_path)   # parsed once for the whole push
    cfg = cfg or ReviewConfig.from_curation(cur, ws.config_path)
    kind = _data_kind(ws, cur)
    classes = cur.scheme(scheme).classes  # an unknown scheme fails before any server call
    client = client or connect(ws, cfg)
    client.check()
    project, created_project = _ensure_project(ws, client, cfg, scheme, kind, classes, recreate)
    recovered = _reconcile(ws, client, scheme)
    left = budget
    if budget is not None and recovered:
        # A push died after the server committed a batch: this rerun finishes that push, so
        # what it sent (its stored batches and the recovered one) counts against the budget.
        left = max(0, budget - recovered - _sent_by_unfinished_push(ws, scheme))
    with ws.connect() as conn:
        already = review_counts(conn, scheme)["pushed"]
        todo = (push_candidates(conn, scheme, budget=left, max_confidence=max_confidence)
                if left != 0 else [])
    result = PushResult(scheme=scheme, project_id=project.project_id,
                        url=f"{client.url}/projects/{project.project_id}", skipped=already,
                        recovered=recovered, project_created=created_project)
    if todo:
        runs = sorted({c.state.label_run_id for c in todo if c.state.label_run_id is not None})
        model_version = (f"label-run-{runs[-1]}" if runs
                         else (todo[0].state.label_model or "weak-labels"))
        with ws.transaction() as conn:
            run_id = start_run(conn, "review_push", {"budget": budget,
                                                      "max_confidence": max_confidence},
                               scheme=scheme)
        try:
            for start in range(0, len(todo), cfg.batch_size):
                chunk = todo[start:start + cfg.batch_size]
                _push_batch(ws, client, scheme, project.project_id, chunk, model_version, result)
                if progress:
                    progress(result.created, len(todo))
        except BaseException as exc:
            end_run(ws, run_id, exc, {"created": result.created})
            raise
        result.seconds = round(time.perf_counter() - t0, 3)
        with ws.transaction() as conn:
            finish_run(conn, run_id, {"created": result.created, "skipped": result.skipped,
                                      "recovered": recovered, "project_id": project.project_id,
                                      "seconds": result.seconds})
    result.seconds = round(time.perf_counter() - t0, 3)
    return result


def _push_batch(ws: Workspace, client: LabelStudioClient, scheme: str, project_id: int,
                chunk: list[Candidate], model_version: str, result: PushResult) -> None:
    """Journal, import and record one batch (see the module docstring for why in that order)."""
    batch_id = uuid.uuid4().hex
    tasks = [record_to_task(c.record, batch_id=batch_id, label=c.state.label,
                            confidence=c.state.confidence, model_version=model_version)
             for c in chunk]
    with ws.transaction() as conn:
        add_push_pending(conn, batch_id, scheme, project_id, [c.id for c in chunk], utcnow())
    ids = client.import_tasks(project_id, tasks)
    with ws.transaction() as conn:
        resolve_push_batch(conn, batch_id, scheme, project_id,
                           {c.id: tid for c, tid in zip(chunk, ids)})
    result.created += len(ids)
    if not result.model_version_set and any("predictions" in t for t in tasks):
        # The server accepts a model version only once predictions carry it; without it the
        # reviewers would not see the weak labels pre-selected.
        client.set_model_version(project_id, model_version)
        result.model_version_set = True


def _cursor_minus(cursor: str, seconds: float = 1.0) -> str:
    """The pull filter's lower bound: a little before the newest change seen (server clock)."""
    dt = datetime.fromisoformat(cursor.replace("Z", "+00:00")) - timedelta(seconds=seconds)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def updated_tasks(client: LabelStudioClient, project) -> tuple[list[dict], dict, str | None]:
    """A pull's reading of the server, shared by label and pairwise pulls: the project's tasks
    updated since its cursor (less an overlap), the annotators' emails by id, and the new cursor
    (the newest `updated_at` seen)."""
    since = _cursor_minus(project.pull_cursor) if project.pull_cursor else None
    tasks = client.tasks_updated_since(project.project_id, since)
    users = client.user_emails() if tasks else {}
    cursor = project.pull_cursor
    for t in tasks:
        if t["updated_at"] and (cursor is None or t["updated_at"] > cursor):
            cursor = t["updated_at"]
    return tasks, users, cursor


def pull(ws: Workspace, scheme: str, *, client: LabelStudioClient | None = None,
         cfg: ReviewConfig | None = None) -> PullResult:
    """Fetch annotations created, updated or deleted since the last pull and store them.

    Everything is read from the server before one write transaction: a failure mid-pull
    stores nothing, and the next pull starts from the same cursor.
    """
    with _scheme_lock(ws, scheme):
        return _pull(ws, scheme, client=client, cfg=cfg)


def _pull(ws: Workspace, scheme: str, *, client: LabelStudioClient | None,
          cfg: ReviewConfig | None) -> PullResult:
    t0 = time.perf_counter()
    cur = load_config(ws.config_path)
    cfg = cfg or ReviewConfig.from_curation(cur, ws.config_path)
    classes = cur.scheme(scheme).classes
    with ws.connect() as conn:
        project = get_review_project(conn, scheme)
        if project is None:
            raise ReviewSyncError(f"nothing pushed for scheme '{scheme}' yet; run `curate review "
                                  f"push --scheme {scheme} --workspace {ws.path}` first")
        tmap = task_map(conn, scheme, project.project_id)
    client = client or connect(ws, cfg)
    client.check()
    info = client.get_project(project.project_id)
    if info is None:
        raise ReviewSyncError(
            f"Label Studio project {project.project_id} for scheme '{scheme}' no longer exists at "
            f"{client.url} (deleted in the UI?); `curate review push --scheme {scheme} --recreate` "
            f"makes a new one")
    tasks, users, cursor = updated_tasks(client, project)
    result = PullResult(scheme=scheme, project_id=project.project_id)
    per_task: dict[int, list[StoredAnnotation]] = {}
    for t in tasks:
        record_id = tmap.get(t["id"])
        if record_id is None:
            result.unknown_tasks += 1
            continue
        anns = []
        for raw in t["annotations"]:
            a = annotation_to_result(raw, classes)
            if a.problem:
                result.problems.append(f"task {t['id']} (record {record_id[:12]}), annotation "
                                       f"{a.annotation_id}: {a.problem}")
            anns.append(StoredAnnotation(
                annotation_id=a.annotation_id, task_id=t["id"], record_id=record_id,
                annotator=users.get(a.annotator_id, str(a.annotator_id) if a.annotator_id
                                    else None),
                label=a.label, edited_response=a.edited_response, skipped=a.skipped,
                problem=a.problem, created_at=a.created_at, updated_at=a.updated_at))
        per_task[t["id"]] = anns
    # A task deleted in the UI: noticed when the server holds fewer tasks than we pushed.
    deleted: set[int] = set()
    if info["task_number"] is not None and info["task_number"] < len(tmap):
        deleted = set(tmap) - client.task_ids(project.project_id)
    with ws.transaction() as conn:
        counts = store_annotations(conn, scheme, project.project_id, per_task, utcnow())
        result.deleted_tasks = forget_tasks(conn, scheme, project.project_id, deleted)
        set_pull_cursor(conn, scheme, cursor, utcnow())
        run_id = start_run(conn, "review_pull", {}, scheme=scheme)
        for k in ("new", "updated", "removed", "unchanged"):
            setattr(result, k, counts[k])
        result.agreement = agreement(annotation_labels(conn, scheme))
        result.seconds = round(time.perf_counter() - t0, 3)
        finish_run(conn, run_id, {k: v for k, v in result.to_dict().items() if k != "problems"}
                   | {"problems": len(result.problems)})
    return result


def review_status(ws: Workspace, scheme: str) -> dict[str, Any]:
    """Counts (pushed, annotated, agreed, pending), agreement and the project URL; no server."""
    load_config(ws.config_path).scheme(scheme)  # an unknown scheme fails here
    with ws.connect() as conn:
        project = get_review_project(conn, scheme)
        counts = review_counts(conn, scheme)
        agr = agreement(annotation_labels(conn, scheme))
    return {"scheme": scheme, **counts, "agreed": agr["agreed"], "agreement": agr,
            "project_id": project.project_id if project else None,
            "url": f"{project.url}/projects/{project.project_id}" if project else None,
            "last_pull_at": project.last_pull_at if project else None}
