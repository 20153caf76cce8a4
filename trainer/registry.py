"""The workspace's model registry: every finished run's adapter, and the routers trained over them.

    entries = list_models(ws)          # registers finished runs not yet listed, drops vanished ones
    entry = get_model(ws, "topic-classifier-v0002")
    remove_model(ws, entry.name)       # deletes the adapter folder and the row

One row per model in the `models` table of `studio.db` (SQL in `pipelines/store/models.py`):
its name (what a client asks for, `<scheme>-<head>-<export>` by default), kind (`adapter`;
`model` for a full fine-tune, whose folder holds the whole weights; or `router`), head (`sft`,
`classifier`, `dpo`, `router`), task (`<scheme>/<head>`), base model, export
version, the run it came from, its folder, size on disk and evaluation (the run's eval.json).
A base model is only ever a string (a folder or a hub id), compared as given.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipelines.errors import ModelError, StudioError
from pipelines.store import utcnow
from pipelines.store.models import MODEL_COLUMNS, delete_model, model_rows, put_model

__all__ = ["SERVED_HEADS", "ModelEntry", "list_models", "get_model", "remove_model", "register_router",
           "sync_registry", "folder_size"]

# Heads whose adapters `curate serve` loads and a router routes between (a dpo adapter is a
# tuned generator too, but its export holds pairs, not the prompts a router learns from).
SERVED_HEADS = ("sft", "classifier")


@dataclass(frozen=True)
class ModelEntry:
    """One registered model. `classes` is set for a classifier (its labels) and a router (the
    model names it routes between)."""

    name: str
    kind: str
    head: str
    path: str
    size_bytes: int
    created_at: str
    scheme: str | None = None
    base_model: str | None = None
    export: str | None = None
    run_id: str | None = None
    classes: list[str] | None = None
    evaluation: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def task(self) -> str:
        return f"{self.scheme or '-'}/{self.head}"

    def score(self) -> str:
        """Its headline evaluation in words: a router's routing accuracy, else the tuned run's
        first of accuracy, macro-F1, reward accuracy (dpo) and eval loss; "-" without one."""
        ev = self.evaluation or {}
        if self.kind == "router":
            return f"routing accuracy {ev.get('accuracy')}" if ev else "-"
        tuned = ev.get("tuned") or {}
        return next((f"{k} {tuned[k]}" for k in ("accuracy", "macro_f1", "reward_accuracy",
                                                 "eval_loss") if tuned.get(k) is not None), "-")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "task": self.task}

    @classmethod
    def _from_row(cls, row: dict[str, Any], root: Path) -> "ModelEntry":
        raw = dict(row)
        raw["path"] = str(root / raw["path"])   # stored relative: a copied workspace still works
        raw["classes"] = json.loads(raw["classes"]) if raw["classes"] else None
        raw["evaluation"] = json.loads(raw["evaluation"]) if raw["evaluation"] else None
        return cls(**raw)

    def _to_row(self, root: Path) -> dict[str, Any]:
        d = asdict(self)
        path = Path(d["path"])
        d["path"] = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        d["classes"] = json.dumps(d["classes"]) if d["classes"] is not None else None
        d["evaluation"] = json.dumps(d["evaluation"], default=str) if d["evaluation"] else None
        return {c: d[c] for c in MODEL_COLUMNS}


def folder_size(path: str | Path) -> int:
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else 0


def _root(ws) -> Path:
    return Path(ws.path).resolve()


def _rows(ws, conn) -> list[ModelEntry]:
    return [ModelEntry._from_row(r, _root(ws)) for r in model_rows(conn)]


def _put(ws, conn, entry: ModelEntry) -> None:
    put_model(conn, entry._to_row(_root(ws)))


def _entry_for_run(ws, summary: dict[str, Any], taken: set[str]) -> ModelEntry | None:
    """The registry row of one finished run, or None when it left no adapter (or full model)."""
    from pipelines.export import load_manifest

    run = Path(summary["path"]).resolve()
    adapter = run / "adapter"
    if summary["status"] != "done":
        return None
    if (adapter / "adapter_config.json").is_file():
        kind = "adapter"
    elif (adapter / "config.json").is_file() and any(adapter.glob("*.safetensors")):
        kind = "model"      # a full fine-tune (dpo head, method full): the whole weights
    else:
        return None
    cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")) or {}
    head = cfg.get("head") or summary.get("head") or "sft"
    export = summary.get("export")
    scheme = None
    if export:
        try:
            scheme = load_manifest(ws, export).get("scheme")
        except (OSError, StudioError):
            scheme = None   # the export was removed; the adapter still serves
    evaluation = summary.get("eval")
    classes = evaluation.get("classes") if isinstance(evaluation, dict) else None
    stem = name = f"{scheme or 'task'}-{head}-{export or summary['run_id']}"
    n = 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}"
    return ModelEntry(name=name, kind=kind, head=head, path=str(adapter),
                      size_bytes=folder_size(adapter), created_at=utcnow(), scheme=scheme,
                      base_model=cfg.get("base_model"), export=export,
                      run_id=summary["run_id"], classes=classes, evaluation=evaluation)


def sync_registry(ws) -> list[ModelEntry]:
    """Register every finished run with an adapter that is not listed yet; drop rows whose folder
    is gone. Returns all entries, oldest first."""
    from trainer.runs import list_train_runs

    runs = list_train_runs(ws)
    with ws.transaction() as conn:
        entries = _rows(ws, conn)
        for e in entries:
            if not Path(e.path).exists():
                delete_model(conn, e.name)
        entries = [e for e in entries if Path(e.path).exists()]
        known_runs = {e.run_id for e in entries if e.run_id}
        taken = {e.name for e in entries}
        for s in runs:
            if s["run_id"] in known_runs:
                continue
            entry = _entry_for_run(ws, s, taken)
            if entry is not None:
                _put(ws, conn, entry)
                entries.append(entry)
                taken.add(entry.name)
        return _rows(ws, conn)


def list_models(ws, kind: str | None = None) -> list[ModelEntry]:
    """Registered models (after `sync_registry`), optionally only one kind."""
    return [e for e in sync_registry(ws) if kind is None or e.kind == kind]


def get_model(ws, name: str, entries: list[ModelEntry] | None = None) -> ModelEntry:
    entries = list_models(ws) if entries is None else entries
    for e in entries:
        if e.name == name or (e.run_id and e.run_id == name):
            return e
    known = ", ".join(e.name for e in entries) or "none (train a run first: curate train)"
    raise ModelError(f"no model {name!r} in {ws.path}; registered: {known}")


def remove_model(ws, name: str) -> ModelEntry:
    """Delete a model's folder (a run's adapter/, or a router's folder) and its registry row.
    The run's other files (events, eval.json, checkpoints) stay."""
    entry = get_model(ws, name)
    with ws.transaction() as conn:
        delete_model(conn, entry.name)
        path = Path(entry.path)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    return entry


def register_router(ws, name: str, path: str | Path, *, routes: list[str], base_model: str,
                    evaluation: dict[str, Any]) -> ModelEntry:
    """Register (or replace) a router trained over the adapters `routes`."""
    entry = ModelEntry(name=name, kind="router", head="router", path=str(Path(path).resolve()),
                       size_bytes=folder_size(path), created_at=utcnow(), scheme="route",
                       base_model=base_model, classes=list(routes), evaluation=evaluation)
    with ws.transaction() as conn:
        clash = [e for e in _rows(ws, conn) if e.name == name and e.kind != "router"]
        if clash:
            raise ModelError(f"{name!r} already names an adapter; pick another router name")
        _put(ws, conn, entry)
    return entry
