"""Studio responsiveness with a large workspace: each page action, timed under AppTest.

    python bench/studio.py --records 100000

Builds a workspace of synthetic claim notes through the library (ingest), gives it dedup
clusters (written through the store, since embedding 100k notes on CPU takes ~10 min and is
`bench/dedup.py`'s subject) and real labels (`run_labeling`), then times each page of the studio:
opening it in a new session and its main actions, cold (first time in the process) and warm
(median of repeats, caches filled). The baseline, in the same run, is what a naive page would
do: load the whole records table into a DataFrame.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PAGES = ROOT / "studio" / "app_pages"

KINDS = {
    "auto_collision": ["was rear-ended at a light", "collided with a guardrail", "was sideswiped "
                       "on the highway", "hit a deer on a county road"],
    "property_water": ["found a burst pipe under the sink", "had a water heater leak into the "
                       "basement", "reported a sewer backup", "found standing water after a "
                       "supply line failed"],
    "property_fire": ["had a kitchen fire that charred the cabinets", "reported smoke damage "
                      "from a garage fire", "lost a shed to a brush fire"],
    "theft": ["reported a bicycle stolen from the garage", "had a break-in and a laptop taken",
              "found the car window smashed and a bag stolen"],
    "medical_injury": ["slipped on ice and fractured a wrist", "was injured by a falling shelf",
                       "needed stitches after a dog bit a guest"],
}
NAMES = ["Ana Ruiz", "Bob Lee", "Cy Park", "Di Moss", "Ed Fox", "Flo Diaz", "Gus Hale",
         "Hana Ito", "Ivan Roy", "Jo Kim", "Kai Berg", "Lu Chen"]
CITIES = ["Austin, TX", "Reno, NV", "Boise, ID", "Tulsa, OK", "Akron, OH", "Fresno, CA"]


def synth_rows(n: int, seed: int = 0):
    """Claim notes with a legacy label; ~8% are light rewrites of an earlier note."""
    rng = random.Random(seed)
    made: list[dict] = []
    for i in range(n):
        if made and rng.random() < 0.08:
            base = rng.choice(made[-2000:])
            note = base["note"].replace(";", ",").replace(" reported", " said they")
            row = {**base, "note": note + f" Ref {i}."}
        else:
            kind = rng.choice(list(KINDS))
            amount = rng.randint(200, 40_000)
            date = f"{rng.randint(1, 12)}/{rng.randint(1, 28)}/2026"
            who, city = rng.choice(NAMES), rng.choice(CITIES)
            note = (f"On {date} {who} of {city} {rng.choice(KINDS[kind])}; claimed "
                    f"${amount:,}. Claim {i:06d}.")
            summary = f"{kind.replace('_', ' ').title()}, ${amount:,}, {date}: {who}."
            label = kind if rng.random() > 0.15 else rng.choice(list(KINDS))
            row = {"note": note, "summary": summary, "claim_type": label}
        made.append(row)
        yield row


def build_workspace(path: Path, n: int) -> dict:
    """Ingest `n` synthetic records, store dedup clusters and run labeling; return timings."""
    import shutil

    from pipelines.config import load_config
    from pipelines.dedup import refresh_decisions
    from pipelines.ingest import IngestConfig, ingest
    from pipelines.samples import sample_dir
    from pipelines.store import Workspace, record_ids
    from pipelines.store.dedup import MemberRow, replace_members
    from pipelines.weak_supervision import LabelConfig, run_labeling

    out = {}
    ws = Workspace.create(path)
    shutil.copyfile(sample_dir() / "curation.yaml", ws.config_path)
    data = path.parent / "claims_synthetic.jsonl"
    with open(data, "w", encoding="utf-8") as fh:
        for row in synth_rows(n):
            fh.write(json.dumps(row) + "\n")
    t = time.perf_counter()
    ingest(ws, [data], IngestConfig.from_curation(load_config(ws.config_path)))
    out["ingest"] = time.perf_counter() - t

    # Clusters of 2-4 consecutive records over 10% of the data, as a dedup run would store them.
    t = time.perf_counter()
    with ws.connect() as conn:
        ids = record_ids(conn)
    rng = random.Random(1)
    members, i = [], 0
    while i < len(ids) // 10:
        size = rng.choice((2, 2, 2, 3, 4))
        cid = f"c{i:06d}"
        for rank, rid in enumerate(ids[i:i + size]):
            members.append(MemberRow(rid, cid, rank, "semantic" if rank else "semantic",
                                     similarity=1.0 if rank == 0 else 0.93, rule="cosine"))
        i += size
    with ws.transaction() as conn:
        replace_members(conn, members, None)
        refresh_decisions(conn)
    out["dedup (stored clusters)"] = time.perf_counter() - t

    t = time.perf_counter()
    run_labeling(ws, LabelConfig(scheme="claim_type"))
    out["labeling (13 LFs)"] = time.perf_counter() - t
    return out


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workspace", help="reuse a workspace built by an earlier run")
    args = ap.parse_args()

    from streamlit.testing.v1 import AppTest

    from pipelines.store import Workspace, list_records

    tmp = tempfile.TemporaryDirectory(prefix="bench-studio-")
    if args.workspace and (Path(args.workspace) / "studio.db").exists():
        ws_path, setup = Path(args.workspace), {}
    else:
        ws_path = Path(args.workspace or Path(tmp.name) / "ws")
        setup = build_workspace(ws_path, args.records)
    os.environ["CURATE_WORKSPACE"] = str(ws_path)
    ws = Workspace.open(ws_path)
    with ws.connect() as conn:
        n = conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    for step, sec in setup.items():
        print(f"setup: {step}: {sec:.1f} s")

    def baseline() -> None:
        import pandas as pd

        with ws.connect() as conn:
            pd.DataFrame(list_records(conn, scheme="claim_type"))

    def open_page(name: str):
        def go():
            at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=600)
            at.run()
            assert not at.exception, [e.value for e in at.exception]
            return at
        return go

    def action(name: str, act):
        """Open the page once (not timed), then time `act(at)` (a widget change + rerun)."""
        state = {}

        def prepare():
            state["at"] = open_page(name)()

        def go():
            at = state["at"]
            act(at)
            assert not at.exception, [e.value for e in at.exception]
        return prepare, go

    from pipelines.dedup import list_clusters

    cluster_ids = [c.cluster_id for c in list_clusters(ws, top=50)]

    def next_cluster(at):
        at.selectbox(key="dedup_cluster").set_value(random.choice(cluster_ids[1:])).run()

    cases = [
        ("Overview", "open", open_page("overview"), None),
        ("Data", "open (page 1 of 50 rows)", open_page("data"), None),
        ("Data", "text search (common words)",
         *reversed(action("data", lambda at: at.text_input(key="data_query")
                          .input(random.choice(["burst pipe", "stolen", "fire", "ice"])).run()))),
        ("Data", "text search, no match (scans every row)",
         *reversed(action("data", lambda at: at.text_input(key="data_query")
                          .input(f"no such text {random.random()}").run()))),
        ("Data", "go to page 1,000",
         *reversed(action("data", lambda at: at.number_input(key="data_page")
                          .set_value(random.randint(900, 1100)).run()))),
        ("Data", "filter label = theft",
         *reversed(action("data", lambda at: at.selectbox(key="data_label")
                          .set_value(random.choice(["theft", "property_fire"])).run()))),
        ("Dedup", "open", open_page("dedup"), None),
        ("Dedup", "open another cluster", *reversed(action("dedup", next_cluster))),
        ("Label", "open (LF analysis)", open_page("label"), None),
        ("Review", "open", open_page("review"), None),
        ("Export & Train", "open (preview counts)", open_page("export_train"), None),
        ("Export & Train", "change min. confidence",
         *reversed(action("export_train", lambda at: at.slider(key="exp_min_conf")
                          .set_value(random.choice([0.5, 0.6, 0.7, 0.85, 0.9])).run()))),
    ]

    base = statistics.median(timed(baseline) for _ in range(args.repeats))
    rows = []
    for page, what, fn, prepare in cases:
        if prepare:
            prepare()
        cold = timed(fn)
        warm = []
        for _ in range(args.repeats):
            if prepare:
                prepare()
            warm.append(timed(fn))
        rows.append((page, what, cold, statistics.median(warm)))

    print(f"\n{n:,} records; warm = median of {args.repeats}; baseline = whole records table "
          f"into a DataFrame: {base:.2f} s\n")
    print("| page | action | cold s | warm s | <= 1 s | vs baseline |")
    print("|---|---|---|---|---|---|")
    for page, what, cold, warm in rows:
        print(f"| {page} | {what} | {cold:.2f} | {warm:.2f} | {'yes' if warm <= 1 else 'NO'} | "
              f"{warm / base:.2f}x |")


if __name__ == "__main__":
    main()
