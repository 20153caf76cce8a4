"""Benchmark review sync against a real Label Studio server.

1. Push N tasks (default 10,000): `curate review push` (project check, candidates query, push
   journal, import, storing task ids) vs ONE raw `import_tasks` call of the same tasks into
   another project, in the same run. Goal: ratio <= 1.5. Then a re-push (must create 0).
2. Pull 1,000 new annotations from the N-task project vs from a project holding only those
   1,000 tasks (goal: the same time, i.e. independent of project size), and the naive way
   (listing every task of the big project with its annotations) for reference.

Usage:
    .venv/bin/python bench/review.py [--tasks 10000] [--annotations 1000] [--no-naive]
    .venv/bin/python bench/review.py --url http://127.0.0.1:8089 --token TOKEN
Without --url it starts its own server (reusing the test suite's cached database if present).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.review._client import LabelStudioClient, choice_result, record_to_task  # noqa: E402
from pipelines.review.server import LS_VERSION, free_port, start_server, stop_pid  # noqa: E402
from pipelines.review.sync import pull, push  # noqa: E402
from pipelines.store import NewRecord, Workspace, upsert_record, utcnow  # noqa: E402
from pipelines.store.review import push_candidates, review_rows, seed_labels  # noqa: E402

CLASSES = ["auto_collision", "property_water", "property_fire", "theft", "medical_injury"]


def make_ws(path: Path, n: int, tag: str) -> Workspace:
    ws = Workspace.create(path)
    ws.config_path.write_text("schema: instruction\nschemes:\n  claim_type:\n    classes: ["
                              + ", ".join(CLASSES) + "]\n")
    now = utcnow()
    with ws.transaction() as conn:
        rows = []
        for i in range(n):
            rid = hashlib.sha256(f"{tag}-{i}".encode()).hexdigest()
            upsert_record(conn, NewRecord(
                id=rid, kind="instruction", text=f"claim note {i}",
                prompt=f"Claim note {i}: water leaked from a pipe into the kitchen of unit {i}.",
                response=f"Property water claim {i}, about {100 + i} EUR."), now)
            rows.append((rid, CLASSES[i % 5], round((i % 97) / 97, 3)))
        seed_labels(conn, "claim_type", rows)
    return ws


class _AnnotatedImport:
    """A client whose imports carry one annotation per task (a fast way to annotate)."""

    def __init__(self, client: LabelStudioClient):
        self._c = client

    def __getattr__(self, name):
        return getattr(self._c, name)

    def import_tasks(self, project_id: int, tasks: list[dict]) -> list[int]:
        for t in tasks:
            t["annotations"] = [{"result": choice_result("theft", "instruction")}]
        return self._c.import_tasks(project_id, tasks)


def annotate(client: LabelStudioClient, task_ids: list[int]) -> float:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda t: client.annotate(t, choice_result("theft", "instruction")),
                      task_ids))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--annotations", type=int, default=1_000)
    ap.add_argument("--url")
    ap.add_argument("--token")
    ap.add_argument("--no-naive", action="store_true", help="skip listing the whole project")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-review-"))
    pid = None
    try:
        if args.url:
            url, token = args.url, args.token
        else:
            template = ROOT / ".pytest_cache" / "d" / f"labelstudio-db-{LS_VERSION}"
            t0 = time.perf_counter()
            info = start_server(tmp / "ls" / "data", port=free_port(), username="admin@example.com",
                                password="test-password-123", token="test-token-0123456789",
                                template=template)
            url, token, pid = info.url, info.token, info.pid
            print(f"server ready in {time.perf_counter() - t0:.1f} s at {url}")
        client = LabelStudioClient(url, token)
        n, k = args.tasks, args.annotations
        results: list[tuple[str, float, str]] = []

        # 1. push vs one raw import of the same tasks
        big = make_ws(tmp / "big", n, "big")
        with big.connect() as conn:
            cands = push_candidates(conn, "claim_type")
        tasks = [record_to_task(c.record, batch_id="raw", label=c.state.label,
                                confidence=c.state.confidence, model_version="raw") for c in cands]
        raw_pid = client.create_project("bench raw import", _config(), "raw baseline")
        t0 = time.perf_counter()
        client.import_tasks(raw_pid, tasks)
        raw_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = push(big, "claim_type", client=client)
        push_s = time.perf_counter() - t0
        assert res.created == n, res
        t0 = time.perf_counter()
        again = push(big, "claim_type", client=client)
        repush_s = time.perf_counter() - t0
        assert again.created == 0, again
        results += [(f"raw import_tasks, {n} tasks (baseline)", raw_s, "1.00x"),
                    (f"curate review push, {n} tasks", push_s, f"{push_s / raw_s:.2f}x"),
                    (f"re-push (creates 0)", repush_s, f"{repush_s / raw_s:.2f}x")]

        # 2. pull k new annotations: big project vs a project of only k tasks
        pull(big, "claim_type", client=client)  # sets the cursor (nothing annotated yet)
        # The baseline project's k annotations ride in with its tasks (creating them one by one
        # through the API takes minutes); the big project's are created through the API.
        small = make_ws(tmp / "small", k, "small")
        push(small, "claim_type", client=_AnnotatedImport(client))
        with big.connect() as conn:
            ids = [r["task_id"] for r in review_rows(conn, "claim_type")][:k]
        ann_s = annotate(client, ids)
        print(f"annotated {len(ids)} tasks through the API in {ann_s:.1f} s")
        timings = {}
        for name, ws in (("big", big), ("small", small)):
            t0 = time.perf_counter()
            pr = pull(ws, "claim_type", client=client)
            timings[name] = time.perf_counter() - t0
            assert pr.new == k, pr
            t0 = time.perf_counter()
            pr2 = pull(ws, "claim_type", client=client)
            timings[name + "_re"] = time.perf_counter() - t0
            assert pr2.new == 0 and pr2.updated == 0, pr2
        results += [(f"pull {k} new, project of {k} tasks (baseline)", timings["small"], "1.00x"),
                    (f"pull {k} new, project of {n} tasks", timings["big"],
                     f"{timings['big'] / timings['small']:.2f}x"),
                    (f"re-pull, project of {n} tasks (changes nothing)", timings["big_re"],
                     f"{timings['big_re'] / timings['small']:.2f}x")]
        if not args.no_naive:
            t0 = time.perf_counter()
            with big.connect() as conn:
                project_id = conn.execute("SELECT project_id FROM review_projects").fetchone()[0]
            all_tasks = list(client.sdk.tasks.list(project=project_id, fields="all",
                                                   page_size=1000))
            naive_s = time.perf_counter() - t0
            assert len(all_tasks) == n
            results.append((f"naive: list all {n} tasks with annotations", naive_s,
                            f"{naive_s / timings['small']:.2f}x"))

        w = max(len(r[0]) for r in results)
        print(f"\n{'step':<{w}}  {'seconds':>8}  ratio")
        for name, s, ratio in results:
            print(f"{name:<{w}}  {s:8.2f}  {ratio}")
    finally:
        if pid:
            stop_pid(pid)
        shutil.rmtree(tmp, ignore_errors=True)


def _config() -> str:
    from pipelines.review._client import label_config

    return label_config("instruction", CLASSES)


if __name__ == "__main__":
    main()
