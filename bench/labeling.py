"""Labeling functions: applier throughput vs snorkel's PandasLFApplier, and label model vs majority.

Usage: python bench/labeling.py [--rows 50000] [--dask-workers 2] [--no-dask]

1. Throughput on `--rows` records (the sample's records repeated, ids made unique): (a) 4 simple
   LFs through snorkel's `PandasLFApplier` (the baseline), our `fast` applier and our Dask
   applier on a LocalCluster; (b) 4 keyword LFs sharing a preprocessor (snorkel re-runs it per LF
   on a pickled copy of the row; we run it once per row), baseline on 5,000 rows. Ratios are of
   rows/s; `L` is checked identical to the baseline's on the rows both labelled.
2. The sample's full LF sets (both schemes) on its records: pandas vs fast.
3. Label model vs majority vote on the sample: accuracy on its gold labels (what `auto` decides
   on) and on the generator's ground truth for every record (truth.jsonl, never ingested).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.samples import load_sample, sample_dir
from pipelines.store import Workspace, iter_records
from snorkel.labeling import labeling_function

from pipelines.weak_supervision import LabelConfig, apply_lfs, load_lfs, run_labeling

warnings.filterwarnings("ignore", category=FutureWarning)


def sample_workspace(root: Path) -> Workspace:
    ws = Workspace.create(root / "ws")
    load_sample(ws)
    return ws


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


@labeling_function()
def lf_says_fire(x):
    return 2 if "fire" in x.text else -1


@labeling_function()
def lf_says_stolen(x):
    return 3 if "stolen" in x.text else -1


@labeling_function()
def lf_says_water(x):
    return 1 if "water" in x.text else -1


@labeling_function()
def lf_long_note(x):
    return 0 if len(x.text) > 400 else -1


def _compare(title: str, records: list[dict], lfs, classes, runs, baseline_rows: int) -> None:
    """Time the PandasLFApplier on the first `baseline_rows` rows, then each of `runs` on all."""
    from snorkel.labeling import PandasLFApplier

    df = pd.DataFrame(records[:baseline_rows])
    L_ref, t_ref = timed(lambda: PandasLFApplier(lfs).apply(df, progress_bar=False))
    ref_rate = len(df) / t_ref
    print(f"\n{title}")
    print(f"{'applier':<36}{'rows':>8}{'seconds':>9}{'rows/s':>10}{'speed-up':>10}  L identical")
    print(f"{'snorkel PandasLFApplier (baseline)':<36}{len(df):>8,}{t_ref:>9.2f}{ref_rate:>10,.0f}"
          f"{1:>9.2f}x  -")
    for name, kw in runs:
        (L, _), t = timed(lambda: apply_lfs(records, lfs, classes, **kw))
        same = bool(np.array_equal(L[:len(df)], L_ref))
        print(f"{name:<36}{len(records):>8,}{t:>9.2f}{len(records) / t:>10,.0f}"
              f"{len(records) / t / ref_rate:>9.2f}x  {same}")


def throughput(ws: Workspace, rows: int, dask_workers: int, use_dask: bool) -> None:
    import labeling_functions.claim_type as ct

    with ws.connect() as conn:
        base = [r.to_dict() for r in iter_records(conn, with_gold=False)]
    records = [{**base[i % len(base)], "id": f"{base[i % len(base)]['id']}-{i}"}
               for i in range(rows)]
    runs = [("fast (ours)", dict(engine="fast"))]
    cluster = None
    if use_dask:
        import logging

        from dask.distributed import LocalCluster

        runs.append((f"dask, new LocalCluster ({dask_workers} procs)",
                     dict(engine="dask", dask_workers=dask_workers)))
        cluster = LocalCluster(n_workers=dask_workers, threads_per_worker=1,
                               dashboard_address=":0", silence_logs=logging.CRITICAL)
        runs.append(("dask, running cluster (--dask-address)",
                     dict(engine="dask", dask_address=cluster.scheduler_address)))
    simple = [lf_says_fire, lf_says_stolen, lf_says_water, lf_long_note]
    try:
        _compare("1a. 4 simple LFs (substring / length tests, no preprocessor)", records, simple,
                 ct.CLASSES, runs, rows)
    finally:
        if cluster is not None:
            cluster.close()
    keyword = [ct.lf_collision_words, ct.lf_water_words, ct.lf_fire_words, ct.lf_theft_words]
    n_ref = min(rows, 5000)
    _compare(f"1b. 4 keyword LFs sharing a preprocessor (claim_type); baseline on {n_ref:,} rows",
             records, keyword, ct.CLASSES, runs[:1], n_ref)
    if use_dask:
        print("(dask times include shipping the rows to the workers; 'new' includes starting it)")


def full_sets(ws: Workspace) -> None:
    with ws.connect() as conn:
        records = [r.to_dict() for r in iter_records(conn, with_gold=False)]
    df = pd.DataFrame(records)
    from snorkel.labeling import PandasLFApplier

    print(f"\n2. the sample's LF sets on its {len(records):,} records")
    print(f"{'scheme':<18}{'LFs':>4}{'pandas rows/s':>15}{'fast rows/s':>13}{'speed-up':>10}"
          f"  L identical")
    for scheme in ("claim_type", "summary_quality"):
        lfset = load_lfs(ws, scheme)
        lfs = lfset.lfs
        L_ref, t_ref = timed(lambda: PandasLFApplier(lfs).apply(df, progress_bar=False))
        (L, _), t = timed(lambda: apply_lfs(records, lfs, lfset.scheme.classes))
        print(f"{scheme:<18}{len(lfs):>4}{len(df) / t_ref:>15,.0f}{len(df) / t:>13,.0f}"
              f"{t_ref / t:>9.2f}x  {bool(np.array_equal(L, L_ref))}")


def models(ws: Workspace) -> None:
    truth = {(t["file"], t["row"]): t
             for t in map(json.loads, open(sample_dir() / "truth.jsonl", encoding="utf-8"))}
    with ws.connect() as conn:
        source = {}
        for rid, f, row in conn.execute("SELECT record_id, file, row FROM record_sources"):
            source.setdefault(rid, (Path(f).name, row))
    print("\n3. label model vs majority vote on the sample")
    print(f"{'scheme':<18}{'gold n':>7}{'LM gold':>9}{'MV gold':>9}{'chosen':>13}"
          f"{'LM truth':>10}{'MV truth':>10}{'legacy':>8}{'run s':>7}")
    for scheme in ("claim_type", "summary_quality"):
        accs = {}
        for model in ("label_model", "majority"):
            res, t = timed(lambda: run_labeling(ws, LabelConfig(scheme=scheme, model=model)))
            with ws.connect() as conn:
                labels = dict(conn.execute(
                    "SELECT record_id, label FROM labels WHERE scheme = ?", (scheme,)))
            key = f"true_{scheme}"
            accs[model] = np.mean([labels[r] == truth[source[r]][key] for r in labels])
            if model == "label_model":
                lm_res, lm_t = res, t
        auto = run_labeling(ws, LabelConfig(scheme=scheme))
        legacy = next((s["emp_accuracy"] for s in auto.lf_summary if s["lf"] == "lf_legacy_label"),
                      None)
        print(f"{scheme:<18}{auto.n_gold:>7}{auto.label_model_accuracy:>9.3f}"
              f"{auto.majority_accuracy:>9.3f}{auto.model:>13}{accs['label_model']:>10.3f}"
              f"{accs['majority']:>10.3f}{'' if legacy is None else f'{legacy:.3f}':>8}"
              f"{lm_t:>7.1f}")
        for s in auto.lf_summary:
            acc = "n/a" if s["emp_accuracy"] is None else f"{s['emp_accuracy']:.3f}"
            print(f"    {s['lf']:<32} coverage {s['coverage']:.3f}  acc(gold) {acc}"
                  f"  (n={s['n_gold_votes']})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--dask-workers", type=int, default=2)
    ap.add_argument("--no-dask", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = sample_workspace(Path(tmp))
        throughput(ws, args.rows, args.dask_workers, not args.no_dask)
        full_sets(ws)
        models(ws)


if __name__ == "__main__":
    main()
