"""One `run_dedup` on the scale set (`bench/dedup.py --scale`'s data) as JSON: timings, the
resident memory at the end of each stage, rule counts, P / R / originals lost and (with
`--clusters`) the whole `cluster_list` and a re-run from the caches; to compare two versions of
the dedup code on the same data (run it from each checkout, then diff the files).

    python bench/dedup_snapshot.py 10000 before.json --clusters     # in the old checkout
    python bench/dedup_snapshot.py 10000 after.json --clusters      # in the new one
    python bench/dedup_snapshot.py --diff before.json after.json
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dedup as bench  # noqa: E402  (bench/dedup.py: the generator and the scores)


def _rss() -> dict[str, int]:
    with open("/proc/self/status", encoding="ascii") as fh:
        return {k: int(v.split()[0]) // 1024 for k, v in
                (line.split(":", 1) for line in fh if line.startswith(("VmRSS", "VmHWM")))}


def snapshot(n: int, clusters: bool) -> dict:
    from pipelines.dedup import DedupConfig, run_dedup
    from pipelines.ingest import IngestConfig, ingest
    from pipelines.store import Workspace

    texts, origin = bench.hard_negative_set(n, p=bench.SCALE_P)
    stage_end: dict[str, tuple[float, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = bench.write_texts(Path(tmp) / "scale.jsonl", texts)
        ws = Workspace.create(Path(tmp) / "ws")
        ingest(ws, [data], IngestConfig(schema="text"))
        with ws.connect() as conn:
            rid = dict(conn.execute("SELECT row, record_id FROM record_sources"))
        ids = [rid[r] for r in range(1, n + 1)]
        load = os.getloadavg()[0]
        # the resident memory sampled every 0.1 s, its maximum per stage (the stage last reported)
        current, stage_peak, running = ["start"], {}, [True]

        def sample():
            while running[0]:
                rss = _rss()["VmRSS"]
                stage_peak[current[0]] = max(stage_peak.get(current[0], 0), rss)
                time.sleep(0.1)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        def on_progress(p) -> None:
            current[0] = p.stage
            stage_end[p.stage] = (round(time.perf_counter() - t0, 1), _rss())
        t0 = time.perf_counter()
        res = run_dedup(ws, DedupConfig(model="auto"), on_progress=on_progress)
        wall = time.perf_counter() - t0
        running[0] = False
        sampler.join()
        groups = collections.defaultdict(set)
        for r, o in zip(ids, origin):
            groups[o].add(r)
        truth = {p for g in groups.values() for p in itertools.combinations(sorted(g), 2)}
        s = bench._score(bench._found_pairs(res), truth, [])
        out = {"n": n, "wall_s": round(wall, 1), "timings": res.timings, "stage_end": stage_end,
               "stage_peak_rss_mb": stage_peak,
               "rss_mb": _rss(), "rules": res.rules, "stages": res.stages,
               "counts": {k: getattr(res, k) for k in (
                   "units", "candidates", "merged_pairs", "conflicts",
                   "conflicts_above_threshold", "segments", "clusters", "excluded", "semantic")},
               "quality": {"precision": s["precision"], "recall": s["recall"],
                           "originals_lost": bench._originals_lost(res, ids, origin)},
               "load_average": [round(load, 1), round(os.getloadavg()[0], 1)]}
        if clusters:
            out["clusters"] = [c.to_dict() for c in res.cluster_list]
            t1 = time.perf_counter()
            again = run_dedup(ws, DedupConfig(model="auto"), commit=False)
            out["rerun_s"] = round(time.perf_counter() - t1, 1)
            out["rerun_same_clusters"] = [c.to_dict() for c in again.cluster_list] == out["clusters"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int)
    ap.add_argument("out", nargs="?")
    ap.add_argument("--clusters", action="store_true", help="store the clusters and re-run")
    ap.add_argument("--diff", nargs=2, metavar=("A", "B"), help="compare two snapshots")
    args = ap.parse_args()
    if args.diff:
        a, b = (json.loads(Path(p).read_text()) for p in args.diff)
        for key in ("clusters", "rules", "counts", "quality"):
            print(f"{key}: " + ("not stored" if key not in a or key not in b
                                else "same" if a[key] == b[key] else "DIFFERENT"))
        print(f"wall s: {a.get('wall_s', a.get('wall'))} -> {b.get('wall_s', b.get('wall'))}; "
              f"peak RSS MB: {a.get('rss_mb', a.get('rss'))['VmHWM']} -> "
              f"{b.get('rss_mb', b.get('rss'))['VmHWM']}")
        return
    if args.n is None or args.out is None:
        ap.error("give N and OUT, or --diff A B")
    res = snapshot(args.n, args.clusters)
    Path(args.out).write_text(json.dumps(res))
    print(json.dumps({k: v for k, v in res.items() if k != "clusters"}))


if __name__ == "__main__":
    main()
