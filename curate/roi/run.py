"""Train the same micro-model on every arm, score it on the gold set, and report.

`run_roi(ws, config)` is what `curate roi` and `bench/roi.py` call: it prepares the arms from the
workspace (prepare.py), then `evaluate_arms` fits one model per (arm, seed) with the same budget
and reports accuracy and macro-F1 on the gold records with a 95% interval over seeds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from curate.roi.arms import ArmSet
from curate.roi.config import RoiConfig
from pipelines.errors import ConfigError
from pipelines.metrics import classification_report, mean_ci

__all__ = ["evaluate_arms", "run_roi", "format_table", "SIMULATED_REVIEW_NOTE"]

SIMULATED_REVIEW_NOTE = (
    "curated_<N>: the human review is SIMULATED: the N least-confident training records (by "
    "label-model confidence) get their ground-truth label; gold evaluation records are never "
    "reviewed or trained on")


def _budget(config: RoiConfig):
    from curate.roi.train import ArmBudget

    return ArmBudget(epochs=config.epochs, batch_size=config.batch_size, max_len=config.max_len,
                     lr=config.lr, lora_r=config.lora_r, max_steps=config.max_steps,
                     model_path=config.model_path, device=config.device,
                     cpu_threads=config.cpu_threads)


def evaluate_arms(arms: ArmSet, config: RoiConfig, *, progress: bool = False,
                  say: Callable[[str], None] = lambda m: None,
                  vectors: Any = None) -> dict[str, Any]:
    """Fit every arm `config.seeds` times and score it on the gold set; the report dict.

    Args:
        vectors: `head="probe"` only: sentence embeddings by record id (`Embeddings.get`-able
            or a mapping) for every training and evaluation record.
    """
    import numpy as np
    from tqdm import tqdm

    from curate.roi.train import fit_and_predict, fit_probe

    from curate.roi.arms import why_empty

    budget = _budget(config)
    # An arm with nothing to train on (no raw labels ingested, say) is skipped with its reason,
    # never fitted: the other arms still compare.
    skipped = {a.name: why_empty(a) for a in arms.arms if not a.ids}
    for name, why in skipped.items():
        say(f"{name:<12} skipped: no training records ({why})")
    fit_arms = [a for a in arms.arms if a.ids]
    if not fit_arms:
        raise ConfigError("roi: no arm has training records: " + "; ".join(
            f"{k}: {v}" for k, v in skipped.items()))
    eval_texts = [arms.texts[i] for i in arms.eval_ids]
    if config.head == "probe":
        if vectors is None:
            raise ConfigError("roi head 'probe' needs the records' cached embeddings (run dedup)")
        missing = [i for i in {*arms.eval_ids, *(i for a in fit_arms for i in a.ids)}
                   if vectors.get(i) is None]
        if missing:
            raise ConfigError(f"roi head 'probe': {len(missing)} records have no cached "
                              f"embedding (first: {missing[0]}); run `curate dedup` first")
        eval_vecs = np.stack([vectors.get(i) for i in arms.eval_ids])
    seeds = list(range(config.seeds))
    bar = tqdm(total=len(fit_arms) * len(seeds), desc="roi fits", unit=" fit",
               disable=not (progress and sys.stderr.isatty()))
    rows, device = [], None
    t_all = time.perf_counter()
    try:
        for arm in fit_arms:
            per_seed = []
            texts = [arms.texts[i] for i in arm.ids]
            vecs = np.stack([vectors.get(i) for i in arm.ids]) if config.head == "probe" else None
            for seed in seeds:
                if config.head == "probe":
                    fit = fit_probe(vecs, arm.labels, eval_vecs, arms.classes, seed=seed)
                else:
                    fit = fit_and_predict(texts, arm.labels, eval_texts, arms.classes, seed=seed,
                                          budget=budget)
                device = fit.device
                score = classification_report(arms.eval_labels, fit.predictions, arms.classes)
                per_seed.append({
                    "seed": seed, "accuracy": round(score.accuracy, 4),
                    "macro_f1": round(score.macro_f1, 4),
                    "train_seconds": round(fit.train_seconds, 2), "steps": fit.steps,
                    "final_loss": round(fit.final_loss, 4)})
                bar.update(1)
            acc, acc_ci = mean_ci([s["accuracy"] for s in per_seed])
            f1, f1_ci = mean_ci([s["macro_f1"] for s in per_seed])
            secs = [s["train_seconds"] for s in per_seed]
            row = {"name": arm.name, "accuracy": round(acc, 4), "macro_f1": round(f1, 4),
                   "ci": [round(x, 4) for x in acc_ci], "ci_macro_f1": [round(x, 4) for x in f1_ci],
                   "n_train": arm.n_train, "reviewed": arm.reviewed,
                   "train_seconds": round(sum(secs) / len(secs), 2),
                   "train_seconds_total": round(sum(secs), 2), "steps": per_seed[0]["steps"],
                   "label_counts": arm.label_counts(), "per_seed": per_seed, "notes": arm.notes}
            rows.append(row)
            say(f"{arm.name:<12} acc {acc:.3f} [{acc_ci[0]:.3f}, {acc_ci[1]:.3f}]  macro-F1 "
                f"{f1:.3f}  n_train {arm.n_train}  {row['train_seconds']:.1f} s/fit")
    finally:
        bar.close()
    return _report(arms, config, rows, device, time.perf_counter() - t_all, skipped)


def _report(arms: ArmSet, config: RoiConfig, rows: list[dict], device: str | None,
            seconds: float, skipped: dict[str, str] | None = None) -> dict[str, Any]:
    by = {r["name"]: r for r in rows}
    raw = by.get("raw")
    curated = [r for r in rows if r["name"].startswith("curated_")]
    best = max(curated, key=lambda r: r["accuracy"]) if curated else None
    verdict: dict[str, Any] = {}
    if raw and best:
        delta = best["accuracy"] - raw["accuracy"]
        verdict = {"best_curated": best["name"], "delta_accuracy_vs_raw": round(delta, 4),
                   "delta_macro_f1_vs_raw": round(best["macro_f1"] - raw["macro_f1"], 4),
                   "intervals_overlap": not (best["ci"][0] > raw["ci"][1]
                                             or raw["ci"][0] > best["ci"][1]),
                   "goal": "curated >= raw + 0.10 accuracy, intervals not overlapping"}
        verdict["goal_met"] = delta >= 0.10 and not verdict["intervals_overlap"]
    elif best:
        verdict = {"best_curated": best["name"],
                   "note": "no raw arm (skipped: no training records), so no delta against raw"}
    return {
        "scheme": arms.scheme, "classes": arms.classes, "n_eval": len(arms.eval_ids),
        "seeds": config.seeds, "device": device, "seconds": round(seconds, 1),
        "budget": {k: getattr(config, k) for k in ("epochs", "batch_size", "max_len", "lr",
                                                   "lora_r", "max_steps", "max_train",
                                                   "cpu_threads")},
        "head": config.head,
        "model": ("LoRA (r=%d) + classifier head on all-MiniLM-L6-v2" % config.lora_r
                  if config.head == "lora" else
                  "linear probe on frozen all-MiniLM-L6-v2 sentence embeddings"),
        "arms": rows, "verdict": verdict, "leakage": arms.leakage, "pool": arms.pool_stats,
        "simulated_review": SIMULATED_REVIEW_NOTE, "notes": arms.notes,
        "skipped_arms": dict(skipped or {}),
    }


def format_table(report: dict[str, Any]) -> str:
    """The report as a plain-text table with deltas against the raw arm."""
    rows = report["arms"]
    raw = next((r for r in rows if r["name"] == "raw"), rows[0])   # no raw arm: the first
    out = [f"{'arm':<13}{'n_train':>8}{'reviewed':>9}{'accuracy':>10}{'95% CI':>17}"
           f"{'macro-F1':>10}{'d acc':>8}{'s/fit':>8}"]
    for r in rows:
        ci = f"[{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]"
        out.append(f"{r['name']:<13}{r['n_train']:>8}{r['reviewed']:>9}{r['accuracy']:>10.3f}"
                   f"{ci:>17}{r['macro_f1']:>10.3f}{r['accuracy'] - raw['accuracy']:>+8.3f}"
                   f"{r['train_seconds']:>8.1f}")
    for name, why in (report.get("skipped_arms") or {}).items():
        out.append(f"{name:<13}skipped: no training records ({why})")
    out.append(f"(gold eval records: {report['n_eval']}; seeds: {report['seeds']}; device: "
               f"{report['device']}; {report['model']})")
    return "\n".join(out)


def run_roi(ws, config: RoiConfig, *, progress: bool = False,
            say: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Prepare the arms from `ws`, evaluate them, record a lineage row and `W/roi/<id>.json`."""
    from curate.roi.prepare import prepare_arms
    from pipelines.store import end_run, finish_run, start_run

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with ws.transaction() as conn:
        run_id = start_run(conn, "roi", config.to_dict(), scheme=config.scheme)
    try:
        arms = prepare_arms(ws, config, say=say)
        say(f"arms ready: {', '.join(f'{a.name}={a.n_train}' for a in arms.arms)}; "
            f"leakage check passed")
        vectors = None
        if config.head == "probe":
            from pipelines.embed import cached_embeddings

            vectors = cached_embeddings(ws)
        report = evaluate_arms(arms, config, progress=progress, say=say, vectors=vectors)
    except BaseException as exc:
        end_run(ws, run_id, exc)   # failed, or interrupted (Ctrl-C, SIGTERM)
        raise
    report["run_id"] = run_id
    report["seconds"] = round(time.perf_counter() - t0, 1)
    path = ws.subdir("roi") / f"roi-{run_id:05d}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    report["report_path"] = str(path)
    metrics = {"verdict": report["verdict"], "report_path": str(path),
               "arms": {r["name"]: {k: r[k] for k in ("accuracy", "macro_f1", "ci", "n_train")}
                        for r in report["arms"]}}
    with ws.transaction() as conn:
        finish_run(conn, run_id, metrics)
    return report
