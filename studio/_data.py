"""What the pages share: the workspace, cached calls into `pipelines/`, and error display.

Pages describe the UI; every piece of work is a call into `pipelines/` (or `trainer/`) made here,
cached with `@st.cache_data` (query results) or `@st.cache_resource` (handles, models). Query
caches are keyed by the workspace's *data version* (the database files' size and mtime), so a
write from any process - a button here, `curate` in a terminal, a training run - shows at once,
while an unchanged workspace answers from memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from itertools import islice
from pathlib import Path
from typing import Any, Iterator

import streamlit as st

from pipelines.config import CurationConfig, load_config
from pipelines.errors import StudioError, WorkspaceError
from pipelines.store import (
    Candidate,
    Record,
    Workspace,
    get_record,
    iter_records,
    list_records,
    list_runs,
    stage_counts,
)

__all__ = [
    "WORKSPACE_ENV", "workspace_path", "workspace", "data_version", "config", "config_with_schemes",
    "counts", "runs",
    "records_page", "record", "records_by_ids", "record_checks", "pii_marked", "signal_notes", "ingest_uploads", "show_errors", "refresh",
]

WORKSPACE_ENV = "CURATE_WORKSPACE"


def workspace_path() -> Path:
    """The workspace folder: $CURATE_WORKSPACE (set by `curate studio`), else ./workspace."""
    return Path(os.environ.get(WORKSPACE_ENV) or "workspace").expanduser().resolve()


@st.cache_resource(show_spinner=False)
def _workspace(path: str) -> Workspace:
    # Creating is what `curate ingest` does too: a new folder becomes an empty workspace, so the
    # Overview page can take the first upload.
    return Workspace.create(path)


def workspace() -> Workspace:
    return _workspace(str(workspace_path()))


def data_version(ws: Workspace | None = None) -> tuple:
    """A cheap token that changes whenever the workspace database or config changes."""
    ws = ws or workspace()
    token = []
    for p in (ws.db_path, Path(str(ws.db_path) + "-wal"), ws.config_path, ws.path / "lfs"):
        try:
            s = p.stat()
            token.append((s.st_size, s.st_mtime_ns))
        except FileNotFoundError:
            token.append(None)
    return tuple(token)


def refresh() -> None:
    """Forget cached query results (after a write this process made)."""
    st.cache_data.clear()


@contextlib.contextmanager
def show_errors() -> Iterator[None]:
    """Turn a `StudioError` (the user's mistake) into `st.error` with its message."""
    try:
        yield
    except StudioError as exc:
        st.error(str(exc), icon=":material/error:")


# -- cached reads ------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=8)
def _config(path: str, version: tuple) -> CurationConfig:
    return load_config(Path(path) / "curation.yaml")


def config() -> CurationConfig:
    """The workspace's curation.yaml. An invalid one shows its error and stops the page there:
    nothing below it could run."""
    ws = workspace()
    try:
        return _config(str(ws.path), data_version(ws))
    except StudioError as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()


def config_with_schemes(hint: str = "add one under `schemes:`.") -> CurationConfig:
    """The workspace's config; a page that needs label schemes stops with a warning when there
    are none."""
    cfg = config()
    if not cfg.schemes:
        st.warning(f"curation.yaml declares no label schemes: {hint}")
        st.stop()
    return cfg


@st.cache_data(show_spinner=False, max_entries=8)
def _counts(path: str, version: tuple) -> dict[str, Any]:
    with Workspace(Path(path)).connect() as conn:
        return stage_counts(conn)


def counts() -> dict[str, Any]:
    ws = workspace()
    return _counts(str(ws.path), data_version(ws))


@st.cache_data(show_spinner=False, max_entries=8)
def _runs(path: str, version: tuple, step: str | None) -> list[dict[str, Any]]:
    with Workspace(Path(path)).connect() as conn:
        return list_runs(conn, step)


def runs(step: str | None = None) -> list[dict[str, Any]]:
    ws = workspace()
    return _runs(str(ws.path), data_version(ws), step)


@st.cache_data(show_spinner=False, max_entries=64)
def _records_page(path: str, version: tuple, scheme: str | None, search: str | None,
                  excluded: bool | None, label: str | None, limit: int,
                  offset: int) -> list[dict[str, Any]]:
    with Workspace(Path(path)).connect() as conn:
        return list_records(conn, scheme=scheme, search=search or None, excluded=excluded,
                            label=label, limit=limit, offset=offset)


def records_page(*, scheme: str | None = None, search: str | None = None,
                 excluded: bool | None = None, label: str | None = None, limit: int = 50,
                 offset: int = 0) -> list[dict[str, Any]]:
    """One page of records, filtered and paginated in SQL (never the whole table)."""
    ws = workspace()
    return _records_page(str(ws.path), data_version(ws), scheme, search, excluded, label,
                         limit, offset)


@st.cache_data(show_spinner=False, max_entries=64)
def _records_by_ids(path: str, version: tuple, scheme: str | None,
                    ids: tuple[str, ...]) -> list[dict[str, Any]]:
    with Workspace(Path(path)).connect() as conn:
        rows = list_records(conn, scheme=scheme, ids=list(ids))
    order = {rid: i for i, rid in enumerate(ids)}
    return sorted(rows, key=lambda r: order.get(r["id"], len(order)))


def records_by_ids(ids: list[str], scheme: str | None = None) -> list[dict[str, Any]]:
    """These records (in the given order) with their stage columns."""
    ws = workspace()
    return _records_by_ids(str(ws.path), data_version(ws), scheme, tuple(ids))


@st.cache_data(show_spinner=False, max_entries=64)
def _record(path: str, version: tuple, record_id: str) -> Record | None:
    with Workspace(Path(path)).connect() as conn:
        return get_record(conn, record_id)


def record(record_id: str) -> Record | None:
    """One record with all its sources (no gold)."""
    ws = workspace()
    return _record(str(ws.path), data_version(ws), record_id)


# st.chat_message draws "user" and "assistant" itself; the other roles get an avatar here.
_AVATARS = {"system": ":material/settings:", "tool": ":material/build:"}


def chat_turns(rec: Record) -> list[tuple[str, str | None, str]]:
    """(role, avatar, content) of every turn of a chat record, in order (the Data page)."""
    return [(t.role, _AVATARS.get(t.role), t.content) for t in rec.turns]


@st.cache_data(show_spinner=False, max_entries=64)
def _record_checks(path: str, version: tuple, record_id: str) -> dict[str, Any]:
    from pipelines.store.filters import read_pii_spans, read_signals

    with Workspace(Path(path)).connect() as conn:
        spans = read_pii_spans(conn, [record_id]).get(record_id, [])
        signals = read_signals(conn, [record_id]).get(record_id)
    return {"pii": [{"start": s.start, "end": s.end, "type": s.type,
                     "confidence": s.confidence} for s in spans],
            "signals": signals}


def record_checks(record_id: str) -> dict[str, Any]:
    """The record's stored PII spans (the last `curate pii`, offsets into `rec.text`) and its
    quality signals with the rules that fired (the last `curate filter`; None before one)."""
    ws = workspace()
    return _record_checks(str(ws.path), data_version(ws), record_id)


_ENTITIES = str.maketrans({c: f"&#{ord(c)};" for c in "&<>\"'$*_`~#[]\\|"} | {"\n": "<br>"})


def _html_text(text: str) -> str:
    """Escaped for HTML, with markdown's and LaTeX's characters as entities and newlines as
    <br>: one line of raw HTML, so Streamlit's markdown reads none of the record as markup."""
    return text.translate(_ENTITIES)


def pii_marked(text: str, spans: list[dict[str, Any]]) -> str:
    """`text` as HTML with each PII span in a `<mark>` tagged with its type, for
    `st.markdown(unsafe_allow_html=True)`."""
    out, pos = [], 0
    for s in sorted(spans, key=lambda s: s["start"]):
        if s["start"] < pos or s["end"] > len(text):
            continue            # stale spans (the text changed since the scan): skip, not garble
        kind = _html_text(s["type"])
        out.append(_html_text(text[pos:s["start"]]))
        out.append(f'<mark title="{kind} {s["confidence"]:.2f}">'
                   f'{_html_text(text[s["start"]:s["end"]])} <sup>{kind}</sup></mark>')
        pos = s["end"]
    out.append(_html_text(text[pos:]))
    return "<div>" + "".join(out) + "</div>"


def signal_notes(signals: dict[str, Any] | None) -> list[str]:
    """The rules that fired on a record, its exclusion and any override, as short notes."""
    if not signals:
        return []
    notes = [f"fired: {rule}" for rule in signals.get("fired") or []]
    if signals.get("reason"):
        notes.append(("excluded: " if signals.get("excluded") else "") + signals["reason"])
    return notes


def condition_notes(rec: Record) -> list[str]:
    """The record's ingest conditions (`meta["conditions"]`, docs/ingest.md) as short notes."""
    notes = []
    for name, value in sorted((rec.meta.get("conditions") or {}).items()):
        if name == "empty_turn":
            notes.append(f"{value} empty turn(s) dropped at ingest")
        elif value is True:
            notes.append(name.replace("_", " "))
        else:
            notes.append(f"{name.replace('_', ' ')}: {value}")
    return notes


# -- writes ------------------------------------------------------------------------------------
def ingest_uploads(uploads: list[Any], *, skip_invalid: bool,
                   encoding: str = "utf-8") -> dict[str, Any]:
    """Ingest uploaded files exactly as `curate ingest` would (same validation and messages).

    Each upload is kept under its original name in the workspace's `uploads/` folder, so the
    messages and the lineage (record sources) name a file that still exists. If the ingest fails,
    the files written for it are removed again: nothing half-done stays behind.
    """
    from pipelines.ingest import IngestConfig, ingest

    ws = workspace()
    cfg = load_config(ws.config_path)
    folder = ws.subdir("uploads")
    created: list[Path] = []  # files this call wrote: removed again if the ingest fails
    paths: list[Path] = []
    try:
        for up in uploads:
            data = up.getvalue()
            path = _upload_path(folder, up.name, data)
            if not path.exists():
                fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-")
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
                created.append(path)
            paths.append(path)
        result = ingest(ws, paths, IngestConfig.from_curation(cfg, skip_invalid=skip_invalid,
                                                              encoding=encoding))
    except BaseException:
        for p in created:
            p.unlink(missing_ok=True)
        raise
    finally:
        refresh()
    return result.to_dict()


def _upload_path(folder: Path, name: str, data: bytes) -> Path:
    """Where an upload is kept: its own name, or name-<hash> if a different file has that name."""
    name = Path(name or "").name
    if not name or name.startswith("."):
        raise WorkspaceError(f"cannot use the uploaded file name {name!r}")
    path = folder / name
    if path.exists() and path.read_bytes() != data:
        digest = hashlib.sha256(data).hexdigest()[:8]
        # Keep a compressed file's two suffixes (x.jsonl.gz -> x-<hash>.jsonl.gz): the
        # format is read from them.
        n = 2 if path.suffix.lower() in (".gz", ".zst", ".zstd") else 1
        suffix = "".join(path.suffixes[-n:])
        path = folder / f"{name[:len(name) - len(suffix)]}-{digest}{suffix}"
    return path


# -- search ------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=32)
def _semantic_search(path: str, version: tuple, query: str, k: int) -> list[dict[str, Any]]:
    from pipelines.dedup import search

    return [{"id": h.record_id, "score": h.score}
            for h in search(Workspace(Path(path)), query, k)]


def semantic_search(query: str, k: int) -> list[dict[str, Any]]:
    """Nearest records to `query` by embedding, via `pipelines.dedup.search`."""
    ws = workspace()
    return _semantic_search(str(ws.path), data_version(ws), query, k)


# -- export ------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=1)
def _export_candidates(path: str, version: tuple, scheme: str) -> list[Candidate]:
    # Reading the candidates is most of a preview's cost (2.3 s of 2.8 s at 100k records);
    # kept for the current data version, so moving a slider only re-applies the rules.
    from pipelines.store.exports import iter_export_candidates

    with Workspace(Path(path)).connect() as conn:
        return list(iter_export_candidates(conn, scheme))


@st.cache_data(show_spinner=False, max_entries=16)
def _export_preview(path: str, version: tuple, options: tuple) -> dict[str, Any]:
    from pipelines.export import preview_export

    return preview_export(Workspace(Path(path)), **dict(options),
                          candidates=lambda scheme: _export_candidates(path, version, scheme))


def export_preview(**options: Any) -> dict[str, Any]:
    """Counts an export with these options would write (nothing is written)."""
    ws = workspace()
    return _export_preview(str(ws.path), data_version(ws), _freeze(options))


def _freeze(options: dict[str, Any]) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in options.items()))


def run_export(**options: Any) -> dict[str, Any]:
    """Write a new export version (atomic: a failure leaves no version behind)."""
    from pipelines.export import export_dataset

    try:
        return export_dataset(workspace(), **options).to_dict()
    finally:
        refresh()


@st.cache_data(show_spinner=False, max_entries=8)
def _exports(path: str, version: tuple) -> list[dict[str, Any]]:
    from pipelines.export import list_exports

    return list_exports(Workspace(Path(path)))


def exports() -> list[dict[str, Any]]:
    ws = workspace()
    return _exports(str(ws.path), data_version(ws))


@st.cache_data(show_spinner=False, max_entries=32)
def _manifest(path: str, version: str) -> dict[str, Any]:
    from pipelines.export import load_manifest

    # Export versions are immutable: the version alone is a valid cache key.
    m = load_manifest(Workspace(Path(path)), version)
    m["records"] = len(m.get("records", []))  # the per-record list is too long to show
    return m


def manifest(version: str) -> dict[str, Any]:
    return _manifest(str(workspace().path), version)


def export_file_reader(version: str, split: str):
    """A callable for `st.download_button` that reads the split only when clicked."""
    from pipelines.export import export_path

    path = export_path(workspace(), version) / f"{split}.jsonl"
    return lambda: path.read_bytes()


# -- training ----------------------------------------------------------------------------------
def train_defaults() -> "Any":
    """A TrainConfig from curation.yaml's `train:` section (the form's starting values)."""
    from trainer.config import TrainConfig

    return TrainConfig.from_dict(config().section("train"), where="curation.yaml train")


def start_training(export_version: str, values: dict[str, Any]) -> dict[str, Any]:
    """Validate the form's values and start the run in its own process (`start_detached`, as
    `curate train --detach` does): its config.yaml is the form's TrainConfig."""
    from trainer.config import TrainConfig
    from trainer.runs import start_detached

    cfg = TrainConfig.from_dict(values, where="the training form")
    return start_detached(workspace(), export_version, cfg)


def train_runs() -> list[dict[str, Any]]:
    """Every training run's summary, read from its files (cheap: no cache, always current)."""
    from trainer.runs import list_train_runs

    return list_train_runs(workspace())


def curation_pay(head: str) -> list[dict[str, Any]]:
    """Finished runs of one head, with their metrics and the change against the first run
    ("Did curation pay?"); read from the runs' eval.json, so always current."""
    from curate.roi import compare_runs

    return compare_runs(workspace(), head=head)


def sft_roi() -> dict[str, Any] | None:
    """The summary-accuracy benchmark beside "Did curation pay?": the workspace's own
    `sft_roi.json` or the packaged CPU figures, as table rows and a budget note; None if none."""
    from curate.roi import load_sft_report, sft_budget_note, sft_summary_rows

    found = load_sft_report(workspace())
    if found is None:
        return None
    report, path = found
    return {"rows": sft_summary_rows(report), "note": sft_budget_note(report), "path": str(path)}


def run_progress(run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary, log events) of one run, for the live view."""
    from trainer.runs import read_events, run_dir, run_summary

    rd = run_dir(workspace(), run_id)
    return run_summary(rd), [e for e in read_events(rd.events) if e.get("event") == "log"]


# -- dedup -------------------------------------------------------------------------------------
def dedup_index_kinds() -> tuple[str, ...]:
    from pipelines.dedup import INDEX_KINDS

    return INDEX_KINDS


def dedup_defaults() -> "Any":
    """A DedupConfig from curation.yaml's `dedup:` section (the page's starting values)."""
    from pipelines.dedup import DedupConfig

    return DedupConfig.from_section(config().section("dedup"))


@st.cache_data(show_spinner=False, max_entries=8)
def _language_note(path: str, version: tuple, model: str) -> str | None:
    from pipelines.embed.languages import workspace_language_note

    return workspace_language_note(Workspace(Path(path)), model)


def language_note(model: str) -> str | None:
    """A warning when much of the workspace is not English and `model` is an English one."""
    ws = workspace()
    return _language_note(str(ws.path), data_version(ws), model)


@st.cache_resource(show_spinner=False, max_entries=16)
def _dedup_preview(path: str, version: tuple, params: tuple,
                   _on_progress: Any = None) -> dict[str, Any]:
    # A resource, not data: the result is large and read-only, so it is kept, not pickled.
    # (`_on_progress` is not part of the cache key: a cached preview reports nothing.)
    from pipelines.dedup import DedupConfig, run_dedup

    result = run_dedup(Workspace(Path(path)), DedupConfig(**dict(params)), commit=False,
                       on_progress=_on_progress)
    return {"summary": result.to_dict(),
            "sizes": sorted((c.size for c in result.cluster_list), reverse=True)}


def dedup_preview(params: dict[str, Any], on_progress: Any = None) -> dict[str, Any]:
    """What a dedup run with `params` would do (clusters, exclusions); nothing is stored.
    `on_progress(StageProgress)` follows the stages (see `pipelines.dedup.progress`)."""
    ws = workspace()
    return _dedup_preview(str(ws.path), data_version(ws), _freeze(params), on_progress)


def dedup_commit(params: dict[str, Any], on_progress: Any = None) -> dict[str, Any]:
    """Run dedup and store its clusters and per-record decisions (one transaction)."""
    from pipelines.dedup import DedupConfig, run_dedup

    try:
        return run_dedup(workspace(), DedupConfig(**params), commit=True,
                         on_progress=on_progress).to_dict()
    finally:
        refresh()


@st.cache_data(show_spinner=False, max_entries=8)
def _clusters(path: str, version: tuple, top: int | None) -> list[dict[str, Any]]:
    from pipelines.dedup import list_clusters

    return [c.to_dict() for c in list_clusters(Workspace(Path(path)), top=top)]


def clusters(top: int | None = 50) -> list[dict[str, Any]]:
    """The largest stored clusters with their members (text, scores, decision)."""
    ws = workspace()
    return _clusters(str(ws.path), data_version(ws), top)


@st.cache_data(show_spinner=False, max_entries=8)
def _cluster_sizes(path: str, version: tuple) -> list[int]:
    from pipelines.store.dedup import cluster_sizes as sizes

    with Workspace(Path(path)).connect() as conn:
        return [n for _, n in sizes(conn, None)]


def cluster_sizes() -> list[int]:
    """Size of every stored cluster, largest first (counts only, no member texts)."""
    ws = workspace()
    return _cluster_sizes(str(ws.path), data_version(ws))


def set_override(record_id: str, decision: str | None) -> dict[str, Any]:
    """A person's keep/drop (None clears it): wins over every dedup run."""
    from pipelines.dedup import set_override as _set

    try:
        return _set(workspace(), record_id, decision)
    finally:
        refresh()


# -- quality filters ---------------------------------------------------------------------------
def filter_defaults() -> "Any":
    """The `filter:` section of curation.yaml as a `FilterConfig` (raises ConfigError)."""
    from pipelines.filters import FilterConfig

    return FilterConfig.from_section(config().section("filter"))


@st.cache_data(show_spinner=False, max_entries=4)
def _filter_signals(path: str, version: tuple) -> dict[str, dict[str, Any]]:
    from pipelines.filters import stored_signals

    return stored_signals(Workspace(Path(path)))


def filter_signals() -> dict[str, dict[str, Any]]:
    ws = workspace()
    return _filter_signals(str(ws.path), data_version(ws))


@st.cache_data(show_spinner=False, max_entries=32)
def _filter_preview(path: str, version: tuple, rules: tuple[str, ...]) -> dict[str, Any]:
    from pipelines.filters import preview_rules

    return preview_rules(Workspace(Path(path)), list(rules))


def filter_preview(rules: list[str]) -> dict[str, Any]:
    """Live count of what `rules` would exclude over the stored signals (raises ConfigError)."""
    ws = workspace()
    return _filter_preview(str(ws.path), data_version(ws), tuple(rules))


def filter_commit(rules: list[str]) -> dict[str, Any]:
    from pipelines.filters import FilterConfig, run_quality_filters

    cfg = FilterConfig.from_section(config().section("filter"), rules=rules)
    try:
        return run_quality_filters(workspace(), cfg).to_dict()
    finally:
        refresh()


def set_filter_override(record_id: str, decision: str | None) -> dict[str, Any]:
    from pipelines.filters import set_filter_override as _set

    try:
        return _set(workspace(), record_id, decision)
    finally:
        refresh()


# -- labeling ----------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=8)
def _label_report(path: str, version: tuple, scheme: str) -> dict[str, Any] | None:
    from pipelines.store.labels import latest_lf_run
    from pipelines.weak_supervision import analyze

    ws = Workspace(Path(path))
    with ws.connect() as conn:
        if latest_lf_run(conn, scheme) is None:
            return None
    return analyze(ws, scheme).to_dict()


def label_report(scheme: str) -> dict[str, Any] | None:
    """The LF analysis of the scheme's latest labeling run; None before the first run."""
    ws = workspace()
    return _label_report(str(ws.path), data_version(ws), scheme)


def run_labeling(scheme: str) -> dict[str, Any]:
    """Apply the scheme's LFs to every record, aggregate, store labels (one transaction)."""
    from pipelines.sandbox import label_in_child

    # In a child process: saved analyst code runs there, and a loop or crash cannot hang us.
    try:
        return label_in_child(workspace(), scheme)
    finally:
        refresh()


def lf_files() -> list[str]:
    """Names (without .py) of the workspace's LF files."""
    from pipelines.sandbox import lf_files as _files

    return [p.stem for p in _files(workspace())]


def lf_source(name: str) -> str:
    return (workspace().subdir("lfs") / f"{name}.py").read_text(encoding="utf-8")


@st.cache_data(show_spinner=False, max_entries=16)
def _try_lf(path: str, version: tuple, source: str, scheme: str, n: int,
            exclude: str | None) -> "Any":
    from pipelines.sandbox import lf_files as _files, run_lf_source

    ws = Workspace(Path(path))
    cfg = load_config(ws.config_path)
    sc = cfg.scheme(scheme)
    with ws.connect() as conn:
        # the same record dicts a labeling run hands its LFs (messages, system and meta too)
        sample = [r.to_dict() for r in islice(iter_records(conn, batch_size=n), n)]
    context = [p for p in _files(ws) if p.stem != exclude]
    return run_lf_source(source, sample, sc.classes, context_modules=sc.lf_modules,
                         context_files=context, scheme=sc.name)


def try_lf(source: str, scheme: str, n: int, editing: str | None = None) -> "Any":
    """Run editor source on the first `n` records in the sandbox (a child process, time limit),
    beside the scheme's other LFs; `editing` is the workspace file it replaces, if any."""
    ws = workspace()
    return _try_lf(str(ws.path), data_version(ws), source, scheme, n, editing)


def save_lf(name: str, source: str) -> Path:
    from pipelines.sandbox import save_lf_source

    try:
        return save_lf_source(workspace(), name, source)
    finally:
        refresh()


# -- review ------------------------------------------------------------------------------------
def labelstudio_status() -> dict[str, Any]:
    """Whether the workspace's Label Studio answers, its URL and pid (a quick /health probe)."""
    from pipelines.review import WorkspaceServer
    from pipelines.review.sync import ENV_URL

    status = WorkspaceServer.of(workspace()).status()
    status["env_url"] = os.environ.get(ENV_URL)
    return status


def start_labelstudio() -> int | None:
    """Start the workspace's Label Studio and return at once (`WorkspaceServer.start` without
    waiting: a fresh server migrates its database for ~80 s; the page polls its status). Its pid,
    or None when one of ours is already up or starting. A server that cannot start (not
    installed, port taken) shows its error and stops the page there."""
    from pipelines.review import WorkspaceServer

    try:
        info, started = WorkspaceServer.of(workspace()).start(wait=False)
    except StudioError as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()
    return info.pid if started else None


@st.cache_data(show_spinner=False, max_entries=8)
def _review_status(path: str, version: tuple, scheme: str) -> dict[str, Any]:
    from pipelines.review import review_status

    return review_status(Workspace(Path(path)), scheme)


def review_status(scheme: str) -> dict[str, Any]:
    """Counts (pushed, annotated, pending ...), agreement and the project URL (no server call)."""
    ws = workspace()
    return _review_status(str(ws.path), data_version(ws), scheme)


def review_push(scheme: str, budget: int | None, max_confidence: float | None) -> dict[str, Any]:
    from pipelines.review import push

    try:
        return push(workspace(), scheme, budget=budget, max_confidence=max_confidence).to_dict()
    finally:
        refresh()


def review_pull(scheme: str) -> dict[str, Any]:
    from pipelines.review import pull

    try:
        return pull(workspace(), scheme).to_dict()
    finally:
        refresh()


@st.cache_data(show_spinner=False, max_entries=8)
def _pair_status(path: str, version: tuple) -> dict[str, Any]:
    from pipelines.review.pairs import pair_status

    return pair_status(Workspace(Path(path)))


def pair_status() -> dict[str, Any]:
    """Pairwise review counts (pushed, judged, decided, tied), agreement, URL (no server call)."""
    ws = workspace()
    return _pair_status(str(ws.path), data_version(ws))


def pairs_push(budget: int | None) -> dict[str, Any]:
    from pipelines.review.pairs import push_pairs

    try:
        return push_pairs(workspace(), budget=budget).to_dict()
    finally:
        refresh()


def pairs_pull() -> dict[str, Any]:
    from pipelines.review.pairs import pull_pairs

    try:
        return pull_pairs(workspace()).to_dict()
    finally:
        refresh()


# -- models (the registry, the router, the playground) -------------------------------------------
def registered_models() -> list[Any]:
    """Every registered model (`trainer.registry`): finished runs' adapters and the routers."""
    from trainer.registry import list_models

    return list_models(workspace())


def train_router(threshold: float, fallback: str) -> Any:
    """Train and register the router over every registered adapter (as `curate models router
    train` does); the playground's service is rebuilt on its next use."""
    from trainer.router import RouterConfig, train_router as _train

    _, entry = _train(workspace(), RouterConfig(threshold=threshold, fallback=fallback))
    _model_service.clear()
    return entry


@st.cache_resource(show_spinner="Loading the models...", max_entries=1)
def _model_service(path: str, registry: tuple) -> Any:
    from curate.serve import ModelService

    return ModelService.from_workspace(Workspace.open(path), log=False)


def model_service() -> Any:
    """The models loaded once (a base per head, the adapters on it, the router), rebuilt when
    the registry changes."""
    key = tuple((e.name, e.created_at) for e in registered_models())
    return _model_service(str(workspace_path()), key)


def playground(prompt: str, model: str, max_tokens: int) -> dict[str, Any]:
    """One prompt through the service as the server would answer it: the routing (model,
    confidence, scores) and the answer, or the class and its scores for a classifier."""
    from curate.serve import RequestError

    service = model_service()
    try:
        reply = service.chat({"model": model, "max_tokens": max_tokens,
                              "messages": [{"role": "user", "content": prompt}]})
    except RequestError as exc:
        raise StudioError(exc.message) from None
    return {**reply["routing"], "answer": reply["choices"][0]["message"]["content"]}


# -- synthetic data ----------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=8)
def _synthetic(path: str, version: tuple) -> dict[str, Any]:
    from pipelines.synth.browse import synthetic_overview

    return synthetic_overview(Workspace(Path(path))).to_dict()


def synthetic() -> dict[str, Any]:
    """The workspace's synthetic records (source, what made them) and counts by method/kind."""
    ws = workspace()
    return _synthetic(str(ws.path), data_version(ws))


def make_counterfactuals(*, commit: bool, **options: Any) -> dict[str, Any]:
    """`curate synth counterfactuals`: preview (commit False) or store."""
    from pipelines.synth import CounterfactualConfig, make_counterfactuals as make

    try:
        return make(workspace(), CounterfactualConfig(**options), commit=commit).to_dict(examples=5)
    finally:
        if commit:
            refresh()


def make_private_copies(*, commit: bool, **options: Any) -> dict[str, Any]:
    """`curate synth private`: preview (commit False, with the real values beside the fakes on
    this screen only) or store."""
    from pipelines.synth import PrivateCopyConfig, make_private_copies as make

    try:
        return make(workspace(), PrivateCopyConfig(**options), commit=commit).to_dict(examples=5)
    finally:
        if commit:
            refresh()


def diff_marked(before: str, after: str) -> tuple[str, str]:
    """The two texts as HTML with the words that differ marked (<del> / <mark>)."""
    import difflib
    import re

    a, b = re.findall(r"\S+|\s+", before or ""), re.findall(r"\S+|\s+", after or "")
    left, right = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        x, y = _html_text("".join(a[i1:i2])), _html_text("".join(b[j1:j2]))
        if op == "equal":
            left.append(x)
            right.append(y)
        else:
            left.append(f"<del>{x}</del>" if x else "")
            right.append(f"<mark>{y}</mark>" if y else "")
    return "".join(left), "".join(right)
