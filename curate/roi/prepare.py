"""From a workspace to an `ArmSet`: run what is missing, fill the pool, build and check the arms.

Steps (each reuses the product's own function, so the benchmark measures the real pipeline):
  1. dedup (`pipelines.dedup.run_dedup`) if the workspace has no dedup decisions yet;
  2. labeling (`pipelines.weak_supervision.run_labeling`) if the scheme has no labeling run yet;
     then both aggregations (majority vote and label model) are recomputed from the saved `L`
     without touching the stored labels;
  3. near-duplicates of gold records (dedup cluster, cosine on the cached embeddings, identical
     text) are set aside; the arms are built, capped and checked for leakage.

The simulated reviewer reads a ground-truth JSONL (the sample's `truth.jsonl`: `file`, `row`,
`true_<scheme>`) mapped onto records through `record_sources`; it is never used for anything
else, and the gold evaluation labels are never used for training or review.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable

import numpy as np

from curate.roi.arms import ArmSet, Pool, PoolRecord, build_arms, cap_arm
from curate.roi.config import RoiConfig
from curate.roi.leakage import check_leakage, near_gold_ids
from pipelines.config import load_config
from pipelines.errors import ConfigError, InputError
from pipelines.metrics import accuracy
from pipelines.store import Workspace, iter_records
from pipelines.store.roi import dedup_flags, record_source_rows

__all__ = ["prepare_arms", "arms_from_pool", "load_pool", "load_truth", "default_truth_path"]


def load_truth(path: str | Path, scheme: str) -> dict[tuple[str, int], str]:
    """{(file name, row): true label} from a ground-truth JSONL with `true_<scheme>`."""
    path = Path(path)
    out: dict[tuple[str, int], str] = {}
    key = f"true_{scheme}"
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                out[(Path(d["file"]).name, int(d["row"]))] = d[key]
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"not a truth row with file, row and {key}: {exc}",
                                 file=str(path), line=n) from None
    return out


def default_truth_path(source_files: list[str]) -> Path | None:
    """truth.jsonl beside the first ingested file that has one."""
    for f in dict.fromkeys(source_files):
        candidate = Path(f).parent / "truth.jsonl"
        if candidate.is_file():
            return candidate
    return None


def _ensure_dedup(ws: Workspace, say: Callable[[str], None]) -> None:
    with ws.connect() as conn:
        if dedup_flags(conn):
            return
    from pipelines.dedup import DedupConfig, run_dedup

    say("no dedup decisions yet: running dedup")
    run_dedup(ws, DedupConfig.from_section(load_config(ws.config_path).section("dedup")))


def _weak_labels(ws: Workspace, scheme: str, k: int, say: Callable[[str], None]):
    """(ids, majority labels+conf, label-model labels+conf) from the scheme's latest L."""
    from pipelines.store.labels import latest_lf_run
    from pipelines.weak_supervision import (
        MIN_LFS_FOR_LABEL_MODEL, LabelConfig, load_matrix, run_labeling)
    from pipelines.weak_supervision.aggregate import label_model_proba, majority_proba

    with ws.connect() as conn:
        run = latest_lf_run(conn, scheme)
    if run is None:
        say(f"no labeling run for {scheme} yet: running the LFs")
        section = load_config(ws.config_path).section("label")
        run_labeling(ws, LabelConfig.from_section(section, scheme=scheme))
        with ws.connect() as conn:
            run = latest_lf_run(conn, scheme)
    L, ids, _names = load_matrix(ws.path / run["matrix_path"])
    params = run.get("params") or {}
    covered = (L != -1).any(axis=1)

    def decide(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(proba) == 0:
            return np.full(len(L), -1), np.zeros(len(L))
        return (np.where(covered, proba.argmax(axis=1), -1),
                np.where(covered, proba.max(axis=1), 0.0))

    # Both aggregations straight from L: label-free (no gold), stored labels untouched.
    mv = decide(majority_proba(L, k))
    if L.shape[1] >= MIN_LFS_FOR_LABEL_MODEL:
        lm = decide(label_model_proba(L, k, epochs=int(params.get("epochs", 500)),
                                      lr=float(params.get("lr", 0.01)),
                                      seed=int(params.get("seed", 123))))
    else:
        say(f"only {L.shape[1]} LFs: the label model needs {MIN_LFS_FOR_LABEL_MODEL}; "
            f"label_model arms use majority vote")
        lm = mv
    return ids, mv, lm, run["run_id"]


def load_pool(ws: Workspace, config: RoiConfig, *,
              say: Callable[[str], None] = lambda m: None) -> Pool:
    """Every record of the workspace with what each arm needs (runs dedup/labeling if missing)."""
    cfg = load_config(ws.config_path)
    sc = cfg.scheme(config.scheme)
    classes = list(sc.classes)
    _ensure_dedup(ws, say)
    ids, mv, lm, label_run = _weak_labels(ws, sc.name, len(classes), say)
    pos = {rid: i for i, rid in enumerate(ids)}
    with ws.connect() as conn:
        rows = list(iter_records(conn, with_gold=True))
        sources = record_source_rows(conn)
        flags = dedup_flags(conn)
    by_record: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for rid, file, row in sources:
        by_record[rid].append((file, row))

    notes = [f"weak labels from labeling run {label_run} (L re-aggregated, stored labels "
             f"untouched)"]
    truth_path = Path(config.truth) if config.truth else default_truth_path(
        [f for _, f, _ in sources])
    truth: dict[tuple[str, int], str] = {}
    if truth_path is not None and truth_path.is_file():
        truth = load_truth(truth_path, sc.name)
        notes.append(f"review simulated with ground truth from {truth_path} (true_{sc.name}), "
                     f"mapped to records via record_sources; gold records are never reviewed")
    elif config.truth:
        raise ConfigError(f"roi.truth: no such file {config.truth}")
    elif any(n > 0 for n in config.review_budgets):
        notes.append("no ground truth (truth.jsonl) found: curated_<N> arms cannot simulate "
                     "review and equal curated_0")

    records = []
    for r in rows:
        gold = (r.gold or {}).get(sc.name)
        src = by_record.get(r.id, [])
        # A record folded from several rows takes the truth they agree on (else none).
        votes = Counter(truth[(Path(f).name, row)] for f, row in src
                        if (Path(f).name, row) in truth)
        true_label = votes.most_common(1)[0][0] if len(votes) == 1 else None
        cluster, excluded = flags.get(r.id, (None, False))
        i = pos.get(r.id)
        rec = PoolRecord(
            id=r.id, text=r.text, raw_label=r.raw_label,
            gold=gold if gold in classes else None, n_sources=max(1, len(src)),
            excluded=excluded, cluster_id=cluster, truth=true_label)
        if i is not None:
            if mv[0][i] >= 0:
                rec.majority, rec.majority_conf = classes[int(mv[0][i])], float(mv[1][i])
            if lm[0][i] >= 0:
                rec.label_model, rec.label_model_conf = classes[int(lm[0][i])], float(lm[1][i])
        records.append(rec)
    pool = Pool(scheme=sc.name, classes=classes, records=records, notes=notes)
    if not pool.gold:
        raise ConfigError(f"scheme {sc.name}: the workspace has no gold labels to evaluate on "
                          f"(columns {cfg.gold_prefix}{sc.name} in the ingested files)")

    from pipelines.embed import cached_embeddings, embed_records

    emb = cached_embeddings(ws)
    if emb is None or len(emb) < len(records):
        emb = embed_records(ws)
    vectors = {rid: emb.get(rid) for rid in (r.id for r in records)}
    vectors = {k: v for k, v in vectors.items() if v is not None}
    gold_ids = [r.id for r in pool.gold]
    non_gold = [r.id for r in records if r.gold is None]
    why = near_gold_ids(non_gold, gold_ids, vectors=vectors, threshold=config.near_dup_threshold,
                        clusters={r.id: r.cluster_id for r in records},
                        texts={r.id: r.text for r in records})
    pool.near_gold = set(why)
    reasons = Counter(w.split(" ")[0] for w in why.values())
    notes.append(f"{len(why)} training candidates set aside as near-duplicates of gold records "
                 f"({', '.join(f'{k}: {v}' for k, v in sorted(reasons.items())) or 'none'})")
    return pool


def arms_from_pool(pool: Pool, config: RoiConfig) -> ArmSet:
    """Build, cap and leakage-check the arms of `pool`."""
    arms = [cap_arm(a, config.max_train, seed=0) for a in build_arms(pool, config.review_budgets)]
    gold = pool.gold[: config.max_eval] if config.max_eval else pool.gold
    texts = {r.id: r.text for r in pool.records}
    leakage = check_leakage(arms, [r.id for r in pool.gold], pool.near_gold, texts)
    used = {i for a in arms for i in a.ids} | {r.id for r in gold}
    trainable = pool.trainable
    stats = {"records": len(pool.records), "gold": len(pool.gold), "eval": len(gold),
             "trainable": len(trainable), "near_gold_excluded": len(pool.near_gold),
             "dedup_excluded": sum(r.excluded for r in trainable),
             "raw_label_accuracy_vs_truth": _agreement(trainable, "raw_label"),
             "majority_accuracy_vs_truth": _agreement(trainable, "majority"),
             "label_model_accuracy_vs_truth": _agreement(trainable, "label_model")}
    return ArmSet(scheme=pool.scheme, classes=pool.classes,
                  texts={k: v for k, v in texts.items() if k in used},
                  eval_ids=[r.id for r in gold], eval_labels=[r.gold for r in gold], arms=arms,
                  leakage=leakage, pool_stats=stats, notes=list(pool.notes))


def _agreement(records: list[PoolRecord], attr: str) -> float | None:
    """How often a label source agrees with the ground truth (where both exist)."""
    pairs = [(getattr(r, attr), r.truth) for r in records
             if getattr(r, attr) is not None and r.truth is not None]
    return round(accuracy([b for _, b in pairs], [a for a, _ in pairs]), 4) if pairs else None


def prepare_arms(ws: Workspace, config: RoiConfig, *,
                 say: Callable[[str], None] = lambda m: None) -> ArmSet:
    return arms_from_pool(load_pool(ws, config, say=say), config)
