"""Write, list, read and compare immutable, hashed dataset versions under `W/exports/vNNNN/`.

A version is written into a temporary folder next to the final one and renamed into place only
when every file and the manifest are complete, so a crash mid-export leaves no `vNNNN`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from pipelines.config import load_config
from pipelines.errors import ExportError
from pipelines.hashing import sha256_file
from pipelines.export.config import ExportConfig
from pipelines.export.preference import render_pair, select_pairs
from pipelines.export.render import render_row
from pipelines.export.select import Selection, is_synthetic_row, resolve_format, select_rows
from pipelines.export.turns import estimate_tokens, length_summary
from pipelines.pii import Redactor, metadata_names, name_edit_names, pair_names
from pipelines.store import Candidate, Workspace, finish_run, start_run, utcnow
from pipelines.store.exports import iter_export_candidates, latest_runs, source_files
from pipelines.store.pairs import imported_pairs, judged_pairs, rejected_ids

__all__ = ["ExportResult", "resolve_config", "preview_export", "export_dataset", "list_exports",
           "export_path", "load_manifest", "read_split", "diff_exports", "parse_version"]

_VERSION_RE = re.compile(r"^v(\d{4,})$")
LINEAGE_STEPS = ("ingest", "dedup", "filter", "quality_filter", "pii", "label", "review",
                 "review_pairs_pull")


@dataclass
class ExportResult:
    version: str
    path: Path
    format: str
    scheme: str
    train: int
    eval: int
    skipped: dict[str, int] = field(default_factory=dict)
    labels: dict[str, dict[str, int]] = field(default_factory=dict)
    unchanged: bool = False   # the latest version already held exactly this; none was written
    conditions: dict[str, int] = field(default_factory=dict)   # turns.CONDITIONS -> count
    lengths: dict[str, Any] = field(default_factory=dict)      # estimated tokens per row
    pii: dict[str, Any] = field(default_factory=dict)   # mode, redacted/remaining counts per type
    synthetic: dict[str, int] = field(default_factory=dict)    # synthetic rows per split
    gold: dict[str, Any] = field(default_factory=dict)  # Selection.gold: did gold train, counts

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "path": str(self.path), "format": self.format,
                "scheme": self.scheme, "train": self.train, "eval": self.eval,
                "skipped": self.skipped, "labels": self.labels, "unchanged": self.unchanged,
                "conditions": self.conditions, "lengths": self.lengths, "pii": self.pii,
                "synthetic": self.synthetic, "gold": self.gold}


def _tool_version() -> str:
    try:
        return metadata.version("curation-studio")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0.1.0+source"


def parse_version(version: str | int) -> str:
    """'v1', '1', 'v0001' or 1 -> 'v0001'."""
    text = str(version).strip().lower().lstrip("v")
    if not text.isdigit():
        raise ExportError(f"export version must look like v0001 (or 1), got {version!r}")
    return f"v{int(text):04d}"


def export_path(ws: Workspace, version: str | int) -> Path:
    """The folder of an existing version; `ExportError` listing the known ones otherwise."""
    name = parse_version(version)
    path = ws.subdir("exports") / name
    if not (path / "manifest.json").is_file():
        known = [e["version"] for e in list_exports(ws)]
        raise ExportError(f"unknown export version {version!r} in {path.parent}; "
                          f"known: {', '.join(known) if known else 'none (run `curate export`)'}")
    return path


def resolve_config(ws: Workspace, **overrides: Any) -> tuple[ExportConfig, Any]:
    """The export config from curation.yaml's `export:` section plus overrides, and the scheme."""
    cur = load_config(ws.config_path)
    cfg = ExportConfig.from_section(cur.section("export"), **overrides)
    scheme = cur.scheme(cfg.scheme)
    cfg.scheme = scheme.name
    return cfg, scheme


CandidateLoader = Callable[[str], list[Candidate]]


def _select(ws: Workspace, cfg: ExportConfig, scheme,
            candidates: CandidateLoader | None = None) -> tuple[str, Selection]:
    if candidates is not None:
        cands = candidates(scheme.name)
    else:
        with ws.connect() as conn:
            cands = list(iter_export_candidates(conn, scheme.name))
    fmt = resolve_format(cfg, scheme, {c.record.kind for c in cands})
    with ws.connect() as conn:
        if fmt == "preference":
            judged, imported = judged_pairs(conn), imported_pairs(conn)
            return fmt, select_pairs(cands, cfg, scheme, judged, imported)
        rejected = rejected_ids(conn)
    return fmt, select_rows(cands, cfg, scheme, fmt, rejected)


def _synthetic_counts(sel: Selection) -> dict[str, int]:
    """Synthetic rows per split (the manifest says how much of a version is generated)."""
    out = {"train": 0, "eval": 0}
    for r in sel.rows:
        out[r.split] += is_synthetic_row(r)
    return out


def _label_counts(sel: Selection) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {"train": {}, "eval": {}}
    for r in sel.rows:
        key = r.label if r.label is not None else "(none)"
        out[r.split][key] = out[r.split].get(key, 0) + 1
    return out


def _resolve_and_select(ws: Workspace, cfg: ExportConfig | None, overrides: dict[str, Any],
                        candidates: CandidateLoader | None = None):
    """(config, scheme, format, selection) for `cfg` (or curation.yaml) with `overrides` on top."""
    if cfg is None:
        cfg, scheme = resolve_config(ws, **overrides)
    else:
        cfg, scheme = resolve_config(ws, **{**cfg.to_dict(), **overrides})
    fmt, sel = _select(ws, cfg, scheme, candidates)
    return cfg, scheme, fmt, sel


def preview_export(ws: Workspace, cfg: ExportConfig | None = None, *,
                   candidates: CandidateLoader | None = None, **overrides: Any) -> dict[str, Any]:
    """Counts an export with these options would write, without writing anything (studio).

    `candidates(scheme_name)` supplies the scheme's export candidates (the rows of
    `iter_export_candidates`) where the caller keeps them cached; by default they are read.
    """
    cfg, scheme, fmt, sel = _resolve_and_select(ws, cfg, overrides, candidates)
    counts = _label_counts(sel)
    return {"scheme": scheme.name, "format": fmt,
            "train": sum(counts["train"].values()), "eval": sum(counts["eval"].values()),
            "labels": counts, "skipped": sel.skipped, "conditions": sel.conditions,
            "synthetic": _synthetic_counts(sel), "gold": sel.gold}


def _dump_line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)


def _next_version(exports: Path) -> str:
    nums = [int(m.group(1)) for p in exports.iterdir() if (m := _VERSION_RE.match(p.name))]
    return f"v{(max(nums) + 1 if nums else 1):04d}"


def _write_files(tmp: Path, sel: Selection, fmt: str, cfg: ExportConfig,
                 redactor: Redactor, lengths: list[int] | None = None,
                 collapsed: list | None = None) -> list[dict[str, Any]]:
    """Write train/eval JSONL, each row redacted by `redactor` (which counts what it replaced
    and what it found left); return the manifest's per-record entries (and append each row's
    estimated token length to `lengths`, and each preference pair that redaction made
    identical, which is not written, to `collapsed`)."""
    collapsed = [] if collapsed is None else collapsed
    entries: list[dict[str, Any]] = []
    handles = {s: open(tmp / f"{s}.jsonl", "w", encoding="utf-8") for s in ("train", "eval")}
    lines = {"train": 0, "eval": 0}
    # A name the detector finds only through a name edit (pii.name_edit_names) is the source
    # record's claimant: it is redacted in the other pairs of that record, and anywhere else
    learnt = list(dict.fromkeys(n for row in sel.rows if fmt == "preference"
                                for n in name_edit_names(row.chosen, row.rejected, row.names)))
    try:
        for row in sel.rows:
            rendered = (render_pair(row, cfg.preference_style) if fmt == "preference"
                        else render_row(row, fmt, cfg.system_prompt))
            if fmt == "preference":
                # one set of names for the whole pair (prompt and both answers), so a name
                # found on one side is redacted on every side (pii.pair_names)
                texts = [*(m["content"] for m in row.prompt), row.chosen, row.rejected]
                names = pair_names(texts, row.chosen, row.rejected, [*row.names, *learnt])
            else:
                names = metadata_names(row.record.record.meta)
            rendered = redactor.redact_obj(rendered, names)
            if redactor.mode != "none":
                for s in redactor.leftover(rendered, names):
                    redactor.remaining[s.type] = redactor.remaining.get(s.type, 0) + 1
            if fmt == "preference" and rendered["chosen"] == rendered["rejected"]:
                # Redaction made the two answers one (e.g. a name edit under placeholders):
                # no longer a preference. Counted; `pii: surrogate` keeps such pairs apart.
                collapsed.append(row)
                continue
            if lengths is not None:
                lengths.append(estimate_tokens(rendered))
            line = _dump_line(rendered)
            handles[row.split].write(line + "\n")
            lines[row.split] += 1
            entries.append({"id": row.id, "split": row.split, "line": lines[row.split],
                            "label": row.label, "label_source": row.label_source,
                            "sha256": hashlib.sha256(line.encode("utf-8")).hexdigest()})
    finally:
        for fh in handles.values():
            fh.close()
    return entries


def _write_manifest(tmp: Path, manifest: dict[str, Any]) -> None:
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False,
                                                  sort_keys=True) + "\n", encoding="utf-8")


def _same_as_latest(exports: Path, files: dict[str, dict[str, Any]], scheme: str, fmt: str,
                    cfg: ExportConfig) -> str | None:
    """The latest version's name when it holds byte-identical `files` (the manifest's entry:
    name -> sha256 and bytes) for the same scheme, format and config (so exporting unchanged data
    twice does not pile up copies), else None."""
    versions = sorted(p for p in exports.iterdir() if _VERSION_RE.match(p.name)
                      and (p / "manifest.json").is_file())
    if not versions:
        return None
    try:
        m = json.loads((versions[-1] / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if (m.get("scheme"), m.get("format"), m.get("config")) != (scheme, fmt, cfg.to_dict()):
        return None
    if m.get("files") != files:
        return None
    return versions[-1].name


def export_dataset(ws: Workspace, cfg: ExportConfig | None = None, *, force: bool = False,
                   **overrides: Any) -> ExportResult:
    """Select, split and render records into a new immutable version `W/exports/vNNNN/`.

    When the latest version has the same scheme, format, config and byte-identical files, no
    version is written and that one is returned with `unchanged=True` (`force=True` writes anyway).

    Args:
        cfg: a full config; when None, curation.yaml's `export:` section plus `overrides`.
    PII in the rendered rows is redacted by `cfg.pii`; an export where detected PII would remain
    (mode `none`, or a detection the redaction missed) is refused unless `cfg.allow_pii`.

    Raises:
        ExportError: when the train split would be empty, a record cannot be rendered, or PII
            would remain without `allow_pii`.
    """
    cfg, scheme, fmt, sel = _resolve_and_select(ws, cfg, overrides)
    counts = _label_counts(sel)
    n_train, n_eval = sum(counts["train"].values()), sum(counts["eval"].values())
    if n_train == 0:
        raise ExportError(_empty_train_message(scheme.name, fmt, cfg, sel))

    exports = ws.subdir("exports")
    _remove_leftovers(exports)
    version = _next_version(exports)
    tmp = exports / f".tmp-{version}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        token_lengths: list[int] = []
        redactor = Redactor(cfg.pii)
        collapsed: list = []
        entries = _write_files(tmp, sel, fmt, cfg, redactor, token_lengths, collapsed)
        if collapsed:
            dropped = {id(r) for r in collapsed}
            sel.rows = [r for r in sel.rows if id(r) not in dropped]
            sel.skipped["identical_after_redaction"] = len(collapsed)
            counts = _label_counts(sel)
            n_train, n_eval = sum(counts["train"].values()), sum(counts["eval"].values())
        lengths = {"estimate": "chars/4 + 4 per turn", **length_summary(token_lengths)}
        if redactor.remaining and not cfg.allow_pii:
            left = ", ".join(f"{k} {v}" for k, v in sorted(redactor.remaining.items()))
            raise ExportError(f"export refused: detected PII would remain in it ({left}; pii mode "
                              f"{cfg.pii!r}); redact it (--pii placeholder|surrogate) or allow "
                              f"it explicitly (--allow-pii)")
        pii_summary = {"mode": cfg.pii, "allow_pii": cfg.allow_pii,
                       "redacted": dict(sorted(redactor.redacted.items())),
                       "remaining": dict(sorted(redactor.remaining.items())),
                       "contains_pii": bool(redactor.remaining)}
        files = {name: {"sha256": sha256_file(tmp / name), "bytes": (tmp / name).stat().st_size}
                 for name in ("train.jsonl", "eval.jsonl")}
        same = None if force else _same_as_latest(exports, files, scheme.name, fmt, cfg)
        if same is not None:
            shutil.rmtree(tmp)
            return ExportResult(version=same, path=exports / same, format=fmt, scheme=scheme.name,
                                train=n_train, eval=n_eval, skipped=sel.skipped, labels=counts,
                                unchanged=True, conditions=sel.conditions, lengths=lengths,
                                pii=pii_summary, synthetic=_synthetic_counts(sel),
                                gold=sel.gold)
        with ws.connect() as conn:
            lineage = latest_runs(conn, LINEAGE_STEPS, scheme.name)
            sources = source_files(conn)
        manifest = {
            "version": version,
            "created_at": utcnow(),
            "tool": {"name": "curation-studio", "version": _tool_version()},
            "scheme": scheme.name,
            "format": fmt,
            "config": cfg.to_dict(),
            "counts": {"train": n_train, "eval": n_eval, "labels": counts,
                       "skipped": sel.skipped, "conditions": sel.conditions,
                       "synthetic": _synthetic_counts(sel), "gold": sel.gold},
            "lengths": lengths,
            "files": files,
            "pii": pii_summary,
            "lineage": {step: {"run_id": r["id"], "finished_at": r["finished_at"],
                               "params": r["params"]} for step, r in lineage.items()},
            "sources": sources,
            "records": entries,
        }
        _write_manifest(tmp, manifest)
        final = exports / version
        if final.exists():
            raise ExportError(f"{final} appeared while exporting (another export running?)")
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    with ws.transaction() as conn:
        run_id = start_run(conn, "export", {"version": version, "format": fmt, **cfg.to_dict()},
                           scheme=scheme.name)
        finish_run(conn, run_id, {"train": n_train, "eval": n_eval, "path": str(final)})
    return ExportResult(version=version, path=final, format=fmt, scheme=scheme.name,
                        train=n_train, eval=n_eval, skipped=sel.skipped, labels=counts,
                        conditions=sel.conditions, lengths=lengths, pii=pii_summary,
                        synthetic=_synthetic_counts(sel), gold=sel.gold)


def _empty_train_message(scheme: str, fmt: str, cfg: ExportConfig, sel: Selection) -> str:
    """Why the train split is empty, naming the reasons that actually emptied it."""
    why = ", ".join(f"{k}: {v}" for k, v in sorted(sel.skipped.items()))
    held = sel.gold.get("eval", 0) if not sel.gold.get("trains") else 0
    parts = [f"{held} gold record(s) held out for eval (gold_train: {cfg.gold_train})"] \
        if held else []
    if why:
        parts.append(f"left out: {why}")
    hints = []
    if held:
        hints.append("let gold train (--gold-train auto|always)")
    if sel.skipped.get("below min_confidence"):
        hints.append(f"lower min_confidence (now {cfg.min_confidence})")
    if any(k.startswith("label ") for k in sel.skipped):
        hints.append("widen accept_labels")
    if sel.skipped.get("preference: rejected side"):
        hints.append("export imported preference pairs with --format preference (or their "
                     "chosen answers with --include-unlabelled)")
    if sel.skipped.get("unlabelled"):
        hints.append("label or review more records")
    if not hints:
        hints.append("label or review more records")
    return (f"export of scheme {scheme!r} ({fmt}) would have an empty train split ("
            f"{'; '.join(parts) or 'no records'}); {', or '.join(hints)}")


def _remove_leftovers(exports: Path) -> None:
    """Remove `.tmp-*` folders a killed export left (their pid is gone; a live export's stays)."""
    from pipelines.store.runs import process_alive

    for tmp in exports.glob(".tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if tmp.is_dir() and not (pid.isdigit() and int(pid) != os.getpid()
                                 and process_alive(int(pid))):
            shutil.rmtree(tmp, ignore_errors=True)


def load_manifest(ws: Workspace, version: str | int) -> dict[str, Any]:
    path = export_path(ws, version) / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ExportError(f"{path}: corrupt manifest ({exc})") from exc


def read_split(ws: Workspace, version: str | int, split: str) -> list[dict[str, Any]]:
    """The rows of train.jsonl or eval.jsonl of a version."""
    path = export_path(ws, version) / f"{split}.jsonl"
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def list_exports(ws: Workspace) -> list[dict[str, Any]]:
    """Every complete version, oldest first: version, created_at, scheme, format, counts."""
    out = []
    for p in sorted(ws.subdir("exports").iterdir()):
        if not _VERSION_RE.match(p.name) or not (p / "manifest.json").is_file():
            continue
        m = json.loads((p / "manifest.json").read_text(encoding="utf-8"))
        out.append({"version": m["version"], "created_at": m["created_at"], "scheme": m["scheme"],
                    "format": m["format"], "train": m["counts"]["train"],
                    "eval": m["counts"]["eval"], "path": str(p)})
    return out


def diff_exports(ws: Workspace, a: str | int, b: str | int) -> dict[str, Any]:
    """Records added, removed and changed (content, label or split) from version a to b."""
    ma, mb = load_manifest(ws, a), load_manifest(ws, b)
    ra = {e["id"]: e for e in ma["records"]}
    rb = {e["id"]: e for e in mb["records"]}
    changed = []
    for rid in sorted(ra.keys() & rb.keys()):
        what = [k for k in ("sha256", "label", "split") if ra[rid][k] != rb[rid][k]]
        if what:
            changed.append({"id": rid, "fields": ["content" if k == "sha256" else k for k in what],
                            "from": {k: ra[rid][k] for k in ("label", "split")},
                            "to": {k: rb[rid][k] for k in ("label", "split")}})
    return {"from": ma["version"], "to": mb["version"],
            "added": sorted(rb.keys() - ra.keys()), "removed": sorted(ra.keys() - rb.keys()),
            "changed": changed}
