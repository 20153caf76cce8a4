"""One labeling run: load LFs, apply them, aggregate, store labels, stats and lineage.

`run_labeling(ws, config)` is what `curate label` and the studio call; `analyze(ws, scheme)`
rebuilds the full analysis of the latest run from its saved label matrix.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.config import load_config
from pipelines.errors import LabelingError
from pipelines.store import Workspace, end_run, finish_run, iter_records, start_run
from pipelines.store.labels import (
    LabelRow, LFStatRow, gold_labels, latest_lf_run, get_lf_stats, record_lf_run, replace_labels,
)
from pipelines.weak_supervision.aggregate import aggregate
from pipelines.weak_supervision.analysis import LFReport, analyze_matrix
from pipelines.weak_supervision.apply import LFFault, LFTimeLimit, apply_lfs, lf_time_limit
from pipelines.weak_supervision.config import LabelConfig
from pipelines.weak_supervision.discovery import LFSet, load_lfs
from pipelines.weak_supervision.veto import apply_vetoes, collect_vetoes
from pipelines.store.filters import read_signals

__all__ = ["LabelingResult", "run_labeling", "analyze", "load_matrix"]


@dataclass
class LabelingResult:
    scheme: str
    run_id: int
    n_records: int
    labelled: int
    abstained: int                       # records where every LF abstained (left unlabelled)
    n_lfs: int
    coverage: float
    faults: int                          # total LF exceptions
    model: str                           # the model whose labels were stored
    label_model_accuracy: float | None   # on gold labels; None without gold or < 3 LFs
    majority_accuracy: float | None
    n_gold: int
    engine: str
    seconds: float
    matrix_path: str
    lf_summary: list[dict[str, Any]] = field(default_factory=list)
    label_counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    load_errors: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    # model -> ModelScore.to_dict(): covered-of-total, accuracy counting abstentions, per class,
    # confusion against gold
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme, "run_id": self.run_id, "n_records": self.n_records,
            "labelled": self.labelled, "abstained": self.abstained, "n_lfs": self.n_lfs,
            "coverage": self.coverage, "faults": self.faults, "model": self.model,
            "chosen": self.model, "label_model_accuracy": self.label_model_accuracy,
            "majority_accuracy": self.majority_accuracy, "n_gold": self.n_gold,
            "engine": self.engine, "seconds": self.seconds, "matrix_path": self.matrix_path,
            "label_counts": self.label_counts, "lf_summary": self.lf_summary,
            "notes": self.notes, "load_errors": self.load_errors,
            "classes": self.classes, "scores": self.scores,
        }


def _attach_embeddings(ws: Workspace, rows: list[dict[str, Any]]) -> bool:
    """Give each row `embedding` (its cached vector, or None) when the dedup step cached any."""
    try:
        from pipelines.embed import cached_embeddings
    except ImportError:
        return False
    emb = cached_embeddings(ws)
    if emb is None:
        return False
    for r in rows:
        r["embedding"] = emb.get(r["id"])
    return True


def _save_matrix(ws: Workspace, scheme: str, run_id: int, L: np.ndarray, ids: list[str],
                 names: list[str]) -> Path:
    folder = ws.subdir("labels") / scheme
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"run-{run_id:05d}.npz"
    tmp = folder / f".run-{run_id:05d}.tmp.npz"
    np.savez_compressed(tmp, L=L, record_ids=np.asarray(ids, dtype=str),
                        lf_names=np.asarray(names, dtype=str))
    os.replace(tmp, path)
    return path


def load_matrix(path: str | Path) -> tuple[np.ndarray, list[str], list[str]]:
    """(L, record ids, LF names) of a saved run."""
    with np.load(path) as z:
        return z["L"], z["record_ids"].tolist(), z["lf_names"].tolist()


def run_labeling(ws: Workspace, config: LabelConfig, *, progress: bool = False,
                 lfs: LFSet | None = None) -> LabelingResult:
    """Label every record of the workspace under `config.scheme`.

    Records where every LF abstains get label NULL and confidence 0.0 (review takes them
    first). Everything the run writes (labels, the L file, LF stats, the lineage row) lands in
    one transaction: a failed run leaves the previous labels in place.
    """
    t0 = time.perf_counter()
    cfg = load_config(ws.config_path)
    sc = cfg.scheme(config.scheme)
    classes = sc.classes
    lfset = lfs if lfs is not None else load_lfs(ws, sc)
    with ws.connect() as conn:
        # LFs read plain dicts (`x.text`, `x.prompt`...) and never see gold
        rows = [r.to_dict() for r in iter_records(conn, with_gold=False)]
        gold_by_id = gold_labels(conn, sc.name)
    if not rows:
        raise LabelingError(f"workspace {ws.path} has no records: ingest data first "
                            f"(`curate ingest FILE --workspace {ws.path}`)")
    notes = [f"skipped: {e}" for e in lfset.errors]
    has_embeddings = _attach_embeddings(ws, rows)
    if not has_embeddings and any("embedding" in n for n in lfset.names):
        notes.append("no cached embeddings (run dedup first): embedding LFs abstain")

    params = {**config.to_dict(), "scheme": sc.name, "classes": classes,
              "lf_names": lfset.names, "lfs": dict(lfset.hashes),
              "lf_origins": dict(lfset.origins)}
    with ws.transaction() as conn:
        run_id = start_run(conn, "label", params, scheme=sc.name)
    try:
        ids = [r["id"] for r in rows]
        # Votes outside the scheme (an unknown name, an index past its classes) are faults of
        # their LF, like exceptions: counted and reported, and the run goes on.
        try:
            with lf_time_limit(config.time_limit_s):
                L, faults = apply_lfs(rows, lfset.lfs, classes, engine=config.engine,
                                      dask_address=config.dask_address,
                                      dask_workers=config.dask_workers,
                                      max_examples=config.fault_examples, progress=progress)
        except LFTimeLimit as exc:
            who = (f"LF {exc.lf!r} ({lfset.origins.get(exc.lf, '?')}) was still running on "
                   f"record {exc.record_id}: does it loop forever?" if exc.lf else
                   "an LF was still running")
            raise LabelingError(f"labeling {sc.name!r} stopped after {exc.seconds:g} s "
                                f"(label.time_limit_s, --time-limit): {who}; no labels "
                                f"changed") from None
        unknown_gold = sorted({g for g in gold_by_id.values() if g not in classes})
        if unknown_gold:
            notes.append(f"gold labels outside the scheme ignored: {', '.join(unknown_gold)}")
        gold = np.array([classes.index(gold_by_id[i]) if gold_by_id.get(i) in classes else -1
                         for i in ids], dtype=int)
        agg = aggregate(L, len(classes), gold, model=config.model, epochs=config.epochs,
                        lr=config.lr, seed=config.seed)
        notes += agg.notes
        # Hard rules win over the aggregate (pipelines/weak_supervision/veto.py).
        vetoes = collect_vetoes(lfset.lfs, lfset.names, classes, config.vetoes)
        veto_stats: dict[str, dict[str, int]] = {}
        if vetoes:
            signals = None
            if config.vetoes:
                with ws.connect() as conn:
                    stored = read_signals(conn)
                signals = [stored.get(i, {}).get("signals") for i in ids]
            out = apply_vetoes(agg.labels, agg.confidence, L, vetoes, signals)
            agg.labels, agg.confidence, veto_stats = out.labels, out.confidence, out.stats
            notes += out.notes()
        report = analyze_matrix(L, lfset.names, classes, record_ids=ids, gold=gold,
                                faults=faults, origins=lfset.origins,
                                wrong_examples=config.wrong_examples, scheme=sc.name)
        path = _save_matrix(ws, sc.name, run_id, L, ids, lfset.names)
        label_rows = [
            LabelRow(rid, classes[lab] if lab >= 0 else None,
                     round(float(conf), 6) if lab >= 0 else 0.0, agg.chosen)
            for rid, lab, conf in zip(ids, agg.labels.tolist(), agg.confidence.tolist())
        ]
        stat_rows = [
            LFStatRow(lf_name=s.name, origin=s.origin, source_sha256=lfset.hashes.get(s.name),
                      coverage=s.coverage, overlaps=s.overlaps, conflicts=s.conflicts,
                      emp_accuracy=s.emp_accuracy, n_gold_votes=s.n_gold_votes, faults=s.faults,
                      fault_examples=s.fault_examples, fault_message=s.fault_message or None)
            for s in report.lfs
        ]
        labelled = int((agg.labels >= 0).sum())
        counts = {c: int((agg.labels == k).sum()) for k, c in enumerate(classes)}
        lm, mv = agg.scores.get("label_model"), agg.scores["majority"]
        result = LabelingResult(
            scheme=sc.name, run_id=run_id, n_records=len(rows), labelled=labelled,
            abstained=len(rows) - labelled, n_lfs=len(lfset), coverage=report.coverage,
            faults=sum(f.count for f in faults.values()), model=agg.chosen,
            label_model_accuracy=lm.accuracy if lm else None, majority_accuracy=mv.accuracy,
            n_gold=int((gold >= 0).sum()), engine=config.engine,
            seconds=round(time.perf_counter() - t0, 3), matrix_path=str(path),
            lf_summary=[_summary_row(s) for s in report.lfs], label_counts=counts, notes=notes,
            load_errors=list(lfset.errors), classes=list(classes),
            scores={k: v.to_dict() for k, v in agg.scores.items()},
        )
        metrics = {k: v for k, v in result.to_dict().items() if k not in ("lf_summary", "scores")}
        metrics["models"] = {k: v.to_dict() for k, v in agg.scores.items()}
        metrics["vetoes"] = veto_stats
        with ws.transaction() as conn:
            replace_labels(conn, sc.name, label_rows, run_id)
            record_lf_run(conn, run_id, sc.name, str(path.relative_to(ws.path)), len(rows),
                          len(lfset), agg.chosen, stat_rows)
            finish_run(conn, run_id, metrics)
    except BaseException as exc:
        # The L file of a run that did not finish is nobody's: remove it (disk full, Ctrl-C).
        orphan = ws.subdir("labels") / sc.name / f"run-{run_id:05d}.npz"
        orphan.unlink(missing_ok=True)
        end_run(ws, run_id, exc)   # failed, or interrupted (Ctrl-C, SIGTERM)
        raise
    return result


def _summary_row(s) -> dict[str, Any]:
    return {"lf": s.name, "polarity": s.polarity, "coverage": round(s.coverage, 4),
            "overlaps": round(s.overlaps, 4), "conflicts": round(s.conflicts, 4),
            "emp_accuracy": None if s.emp_accuracy is None else round(s.emp_accuracy, 4),
            "n_gold_votes": s.n_gold_votes, "faults": s.faults,
            "fault_examples": s.fault_examples, "fault_message": s.fault_message}


def analyze(ws: Workspace, scheme: str | None = None, *, wrong_examples: int = 10) -> LFReport:
    """The analysis of the latest labeling run of `scheme` (rebuilt from its saved L)."""
    cfg = load_config(ws.config_path)
    sc = cfg.scheme(scheme)
    with ws.connect() as conn:
        run = latest_lf_run(conn, sc.name)
        if run is None:
            raise LabelingError(f"no labeling run for scheme {sc.name!r} yet: run "
                                f"`curate label --workspace {ws.path} --scheme {sc.name}`")
        stats = {s.lf_name: s for s in get_lf_stats(conn, run["run_id"])}
        gold_by_id = gold_labels(conn, sc.name)
    path = ws.path / run["matrix_path"]
    if not path.is_file():
        raise LabelingError(f"label matrix of run {run['run_id']} is missing: {path}")
    L, ids, names = load_matrix(path)
    classes = run["params"].get("classes") or sc.classes
    gold = np.array([classes.index(gold_by_id[i]) if gold_by_id.get(i) in classes else -1
                     for i in ids], dtype=int)
    faults = {n: LFFault(n, count=s.faults, examples=s.fault_examples,
                         message=s.fault_message or "")
              for n, s in stats.items() if s.faults}
    report = analyze_matrix(L, names, classes, record_ids=ids, gold=gold, faults=faults,
                            origins={n: s.origin for n, s in stats.items()},
                            wrong_examples=wrong_examples, scheme=sc.name)
    report.run_id = run["run_id"]
    report.models = run["metrics"].get("models", {})
    report.chosen = run["chosen_model"]
    report.notes = list(run["metrics"].get("notes", []))
    return report
