"""Ingest throughput and memory: `curate ingest` vs a bare csv.reader pass over the same file.

Usage: python bench/ingest.py [--rows 100000]

Prints rows/s for the baseline (parse only) and for ingest (parse, validate, hash, store in one
transaction), their ratio, a re-ingest of the same file (all unchanged), and the peak RSS.
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import tempfile
import time
from pathlib import Path

from pipelines.ingest import IngestConfig, ingest
from pipelines.store import Workspace


def make_csv(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    words = ("claim water fire theft vehicle roof pipe kitchen policy adjuster damage estimate "
             "collision injury hospital window basement storm").split()
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["prompt", "response", "label", "claim_id"])
        for i in range(rows):
            note = " ".join(rng.choice(words) for _ in range(40)) + f" #{i}"
            w.writerow([note, " ".join(rng.choice(words) for _ in range(12)), "x", f"C{i}"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "claims.csv"
        make_csv(data, args.rows)
        t = time.perf_counter()
        with open(data, newline="", encoding="utf-8") as fh:
            n = sum(1 for _ in csv.DictReader(fh))
        base = time.perf_counter() - t
        ws = Workspace.create(Path(tmp) / "ws")
        t = time.perf_counter()
        res = ingest(ws, [data], IngestConfig(schema="instruction"))
        first = time.perf_counter() - t
        t = time.perf_counter()
        again = ingest(ws, [data], IngestConfig(schema="instruction"))
        second = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        size = data.stat().st_size / 2**20
    print(f"rows: {n:,}  file: {size:.1f} MiB")
    print(f"{'step':<28}{'seconds':>10}{'rows/s':>12}{'vs parse':>10}")
    print(f"{'csv.DictReader (baseline)':<28}{base:>10.2f}{n / base:>12,.0f}{1:>10.2f}x")
    print(f"{'ingest (new)':<28}{first:>10.2f}{n / first:>12,.0f}{first / base:>10.2f}x")
    print(f"{'re-ingest (unchanged)':<28}{second:>10.2f}{n / second:>12,.0f}{second / base:>10.2f}x")
    print(f"added={res.added:,} unchanged on re-ingest={again.unchanged:,}  peak RSS {rss:,.0f} MiB")


if __name__ == "__main__":
    main()
