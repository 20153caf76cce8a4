"""Dedup quality and cost: precision/recall against generator ground truth, time vs raw encode.

Usage:
    python bench/dedup.py                         # the sample data (sample_data/, ~2.7k records)
    python bench/dedup.py --synthetic 20000       # a generated set with injected near duplicates
    python bench/dedup.py --synthetic 100000 --no-curve    # the scale run
    python bench/dedup.py --hard 20000            # issue 15's hard negatives (>= 3 of 6 slots)
    options: --model PATH (default: the packaged MiniLM), --no-raw, --json OUT.json

Each data set runs in its own process (so peak RSS is its own): generate (synthetic: the sample
generator with another seed and size; its truth.jsonl marks exact_duplicate / near_duplicate
rows with `duplicate_of` and hard_negative rows with `resembles`), ingest, then
1. raw `SentenceTransformer.encode` of every record text (the baseline, model already loaded);
2. `run_dedup` on a fresh cache (end to end: embed, exact levels, FAISS, verify, cluster, write);
3. `run_dedup` again on unchanged data (cache hit);
4. precision / recall of duplicate pairs (record pairs in one cluster, same-prompt records kept
   for review not counted) against the truth pairs, and how many hard negatives were merged;
5. the curve over `threshold`, with the fact/lexical verification and with cosine alone.
Pairs folded at ingest (byte-identical after whitespace/Unicode normalisation) are one record and
are reported separately, not counted as found pairs.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = (0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.96, 0.98)


def _generator():
    spec = importlib.util.spec_from_file_location("sample_generate", ROOT / "sample_data" / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _prepare(kind: str, n: int, tmp: Path):
    """Generate (or take the sample), ingest; return (workspace, truth path, ingest seconds)."""
    from pipelines.config import load_config
    from pipelines.ingest import IngestConfig, ingest
    from pipelines.samples import sample_dir
    from pipelines.store import Workspace

    if kind == "sample":
        data = sample_dir()
    else:
        data = tmp / "data"
        _generator().write(str(data), seed=7, n=n)
    cfg = load_config(data / "curation.yaml")
    ws = Workspace.create(tmp / "ws")
    t = time.perf_counter()
    ingest(ws, [data / f for f in cfg.files], IngestConfig.from_curation(cfg, skip_invalid=True))
    return ws, data / "truth.jsonl", time.perf_counter() - t


def _truth(ws, truth_path: Path):
    """Truth duplicate pairs (record ids), hard-negative pairs, and pairs folded at ingest."""
    with ws.connect() as conn:
        src = {(Path(f).name, r): rid for rid, f, r in
               conn.execute("SELECT record_id, file, row FROM record_sources")}
    parent: dict[str, str] = {}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    hard, folded = [], 0
    for line in truth_path.read_text(encoding="utf-8").splitlines():
        t = json.loads(line)
        a = src.get((t["file"], t["row"]))
        if a is None:
            continue   # a row rejected at ingest (empty note)
        if t.get("duplicate_of"):
            b = src.get((t["duplicate_of"]["file"], t["duplicate_of"]["row"]))
            if b is None:
                continue
            if a == b:
                folded += 1
                continue
            parent.setdefault(a, a)
            parent.setdefault(b, b)
            parent[find(a)] = find(b)
        if t.get("resembles"):
            b = src.get((t["resembles"]["file"], t["resembles"]["row"]))
            if b is not None and a != b:
                hard.append(tuple(sorted((a, b))))
    groups = defaultdict(list)
    for x in parent:
        groups[find(x)].append(x)
    pairs = {p for g in groups.values() for p in itertools.combinations(sorted(g), 2)}
    return pairs, hard, folded


def _found_pairs(result) -> set:
    out = set()
    for c in result.cluster_list:
        ids = sorted(m["record_id"] for m in c.members if m.get("rule") != "review")
        out.update(itertools.combinations(ids, 2))
    return out


def _score(found: set, truth: set, hard: list) -> dict:
    tp = len(found & truth)
    return {"pairs_found": len(found), "true_pairs": len(truth), "tp": tp,
            "precision": round(tp / len(found), 4) if found else 1.0,
            "recall": round(tp / len(truth), 4) if truth else 1.0,
            "hard_negatives_merged": sum(1 for p in hard if p in found),
            "hard_negatives": len(hard)}


def _missed(ws, model: str, missed: set, limit: int = 300) -> dict:
    """Why true pairs were missed: cosine, rank among neighbours, facts, lexical."""
    import numpy as np

    from pipelines.dedup import compare_facts, extract_facts, jaccard, shingles
    from pipelines.embed import EmbedConfig, embed_records
    from pipelines.store.dedup import record_texts

    emb = embed_records(ws, EmbedConfig(model=model))
    pos = {r: i for i, r in enumerate(emb.ids)}
    rows = []
    pairs = sorted(missed)[:limit]
    with ws.connect() as conn:
        texts = record_texts(conn, {x for p in pairs for x in p})
    for a, b in pairs:
        va, vb = emb.vectors[pos[a]], emb.vectors[pos[b]]
        cos = float(va @ vb)
        rank = int(min((emb.vectors @ va > cos).sum(), (emb.vectors @ vb > cos).sum())) - 1
        fc = compare_facts(extract_facts(texts[a]), extract_facts(texts[b]))
        rows.append({"cos": round(cos, 3), "rank": rank, "facts": fc.status, "shared": fc.shared,
                     "lexical": round(jaccard(shingles(texts[a]), shingles(texts[b])), 3)})
    return {"missed": len(missed),
            "below_candidate_threshold": sum(r["cos"] < 0.70 for r in rows),
            "beyond_neighbours": sum(r["cos"] >= 0.70 and r["rank"] >= 16 for r in rows),
            "facts_conflict": sum(r["facts"] == "conflict" for r in rows),
            "examples": rows[:40]}


def run_one(kind: str, n: int, model: str, raw: bool, curve: bool,
            neighbours: int = 16) -> dict:
    from pipelines.dedup import DedupConfig, run_dedup
    from pipelines.embed import load_model
    from pipelines.store.dedup import dedup_inputs

    with tempfile.TemporaryDirectory() as tmp:
        ws, truth_path, ingest_s = _prepare(kind, n, Path(tmp))
        truth, hard, folded = _truth(ws, truth_path)
        with ws.connect() as conn:
            texts = [r["text"] for r in dedup_inputs(conn) if r["text"].strip()]
        from pipelines.embed.static import resolve_alias

        model = resolve_alias(ws.path, model)    # auto / static -> the workspace's folder
        st = load_model(model)
        out: dict = {"data": kind, "records": len(texts), "ingest_s": round(ingest_s, 2),
                     "device": str(st.device), "folded_at_ingest": folded}
        if raw:
            t = time.perf_counter()
            st.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
            out["raw_encode_s"] = round(time.perf_counter() - t, 2)
        cfg = DedupConfig(model=model, neighbours=neighbours)
        first = run_dedup(ws, cfg)
        out["dedup_first_s"] = round(first.seconds, 2)
        out["timings"] = first.timings
        out["index"] = first.index
        rerun = run_dedup(ws, cfg)
        out["dedup_rerun_s"] = round(rerun.seconds, 2)
        out["rerun_embedded"] = rerun.embedded
        out["rerun_caches"] = {"candidates": rerun.pair_cache, "verification": rerun.verify_cache,
                               "rows_unchanged": rerun.unchanged}
        out["rerun_timings"] = rerun.timings
        if raw:
            out["ratio_vs_raw_encode"] = round(first.seconds / out["raw_encode_s"], 3)
        out["ratio_rerun_vs_first"] = round(rerun.seconds / first.seconds, 4)
        out["counts"] = {k: first.to_dict()[k] for k in
                         ("clusters", "excluded", "exact", "same_prompt", "review", "semantic",
                          "candidates", "conflicts", "conflicts_above_threshold")}
        found = _found_pairs(first)
        out["neighbours"] = neighbours
        out["default"] = _score(found, truth, hard)
        if truth - found:
            out["why_missed"] = _missed(ws, model, truth - found)
        if curve:
            out["curve"] = []
            for th in THRESHOLDS:
                for verify in (True, False):
                    r = run_dedup(ws, DedupConfig(model=model, threshold=th, verify=verify,
                                                  neighbours=neighbours),
                                  commit=False)
                    out["curve"].append({"threshold": th, "verify": verify,
                                         **_score(_found_pairs(r), truth, hard)})
        out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        return out


def _table(res: dict) -> str:
    lines = [f"## {res['data']} ({res['records']} records, encode on {res['device']}, "
             f"{res['index']} index)"]
    d = res["default"]
    lines.append(f"default threshold 0.92: precision {d['precision']:.3f}, recall {d['recall']:.3f}"
                 f" ({d['tp']}/{d['true_pairs']} pairs, {d['pairs_found']} found), hard negatives "
                 f"merged {d['hard_negatives_merged']}/{d['hard_negatives']}; "
                 f"{res['folded_at_ingest']} exact copies folded at ingest")
    if "raw_encode_s" in res:
        lines.append(f"raw encode {res['raw_encode_s']:.1f}s | dedup first run "
                     f"{res['dedup_first_s']:.1f}s | ratio {res['ratio_vs_raw_encode']:.3f}x")
    else:
        lines.append(f"dedup first run {res['dedup_first_s']:.1f}s (raw encode skipped)")
    lines.append(f"re-run unchanged {res['dedup_rerun_s']:.2f}s | ratio "
                 f"{res['ratio_rerun_vs_first']:.4f} | peak RSS {res['peak_rss_mb']:.0f} MB")
    lines.append(f"stage seconds: {res['timings']}")
    if "rerun_timings" in res:
        lines.append(f"re-run stage seconds: {res['rerun_timings']} (caches hit: "
                     f"{res['rerun_caches']})")
    if res.get("why_missed"):
        w = res["why_missed"]
        lines.append(f"missed pairs {w['missed']}: cosine < 0.70: {w['below_candidate_threshold']},"
                     f" beyond the {res['neighbours']} nearest: {w['beyond_neighbours']}, facts "
                     f"conflict: {w['facts_conflict']} (of the first 300)")
    if res.get("curve"):
        lines.append("threshold | verified P / R / hard-neg merged | cosine alone P / R / hard-neg merged")
        by = {(c["threshold"], c["verify"]): c for c in res["curve"]}
        for th in THRESHOLDS:
            v, c = by[(th, True)], by[(th, False)]
            lines.append(f"{th:.2f} | {v['precision']:.3f} / {v['recall']:.3f} / "
                         f"{v['hard_negatives_merged']} | {c['precision']:.3f} / {c['recall']:.3f}"
                         f" / {c['hard_negatives_merged']}")
    return "\n".join(lines)


# -- hard negatives (issue 15): templated claims that differ in >= 3 of 6 slots ------------------
WHO = ["The driver", "The homeowner", "A tenant", "The cyclist", "A shop owner", "The landlord",
       "A nurse", "The teacher", "A farmer", "The courier", "A retiree", "The student",
       "A mechanic", "The chef", "A plumber", "The pilot", "A cashier", "The gardener",
       "A painter", "The librarian", "A barber", "The jogger", "A baker"]
WHAT = ["a broken wrist after a fall", "water damage from a burst pipe", "a cracked windshield",
        "a stolen bicycle", "hail damage to the roof", "a kitchen fire", "a flooded basement",
        "a dented bumper", "a broken ankle on ice", "storm damage to a fence",
        "a smashed phone screen", "a dog bite", "mold behind the drywall", "a burglary",
        "a fallen tree on the garage", "a sprained knee", "smoke damage", "a lost suitcase",
        "a collapsed ceiling", "a scratched car door", "frozen pipes", "a power surge",
        "a roof leak"]
WHERE = ["Augusta", "Atlanta", "Boston", "Denver", "Austin", "Portland", "Phoenix", "Omaha",
         "Tucson", "Raleigh", "Fresno", "Mesa", "Tulsa", "Wichita", "Dayton", "Reno", "Boise",
         "Spokane", "Toledo", "Lincoln", "Madison", "Durham", "Tacoma"]
WHEN = ["two days ago", "on Monday", "on Tuesday", "on Wednesday", "on Thursday", "on Friday",
        "on Saturday", "on Sunday", "yesterday", "three days ago", "last week", "on March 3",
        "on April 12", "on May 9", "on June 21", "on July 4", "on August 15", "on 9/2/25",
        "on 10/14/25", "on November 30", "four days ago", "on December 8", "on January 19"]
AMOUNT = [310, 450, 520, 780, 960, 1200, 1350, 1500, 1875, 2100, 2400, 2750, 3100, 3300, 3650,
          4000, 4200, 4800, 5100, 5600, 6250, 7400, 8900]
DETAIL = ["No injuries.", "Estimate is pending.", "A witness was present.",
          "Photos were attached.", "The police were called.", "Repairs started at once.",
          "The adjuster will visit.", "A neighbour reported it first.", "Receipts are missing.",
          "The claimant asked for a rental.", "It happened at night.",
          "The area was cordoned off.", "A contractor gave a quote.",
          "The claimant has two prior claims.", "Nobody was home.", "The alarm did not sound.",
          "Coverage is being checked.", "The report was filed online.",
          "A tow truck was needed.", "The damage is cosmetic.", "An ambulance came.",
          "Payment is on hold.", "The deductible applies."]
P = 23   # every slot has 23 values; the code below is MDS over GF(23)


def _codewords(n: int, rng) -> list[tuple[int, ...]]:
    """n distinct 6-slot combinations, every two differing in >= 3 slots: a [6, 4, 3] MDS code
    over GF(23) (4 free slots, 2 checks), so no hand-made pair is closer than the issue's set."""
    seen: set[tuple[int, ...]] = set()
    out = []
    while len(out) < n:
        a, b, c, d = (int(x) for x in rng.integers(0, P, 4))
        if (a, b, c, d) in seen:
            continue
        seen.add((a, b, c, d))
        out.append((a, b, c, d, (a + b + c + d) % P, (a + 2 * b + 3 * c + 4 * d) % P))
    return out


def _render(w: tuple[int, ...], order: str = "plain") -> str:
    who, what, where, when, amount, detail = (WHO[w[0]], WHAT[w[1]], WHERE[w[2]], WHEN[w[3]],
                                              AMOUNT[w[4]], DETAIL[w[5]])
    if order == "plain":
        return (f"{who} filed for {what} near {where} {when}. Estimated loss ${amount:,}. "
                f"{detail}")
    # a paraphrase-like copy: clauses reordered, a few words changed, the same facts
    return (f"Estimated loss: ${amount:,}. {detail} {who} filed a claim for {what} near {where} "
            f"{when}.")


def _typo(text: str, rng, k: int = 2) -> str:
    chars = list(text)
    for _ in range(k):
        i = int(rng.integers(1, len(chars) - 1))
        if chars[i].isalpha():
            chars[i] = chars[i + 1] if rng.random() < 0.5 else ""
    return "".join(chars)


def hard_negative_set(n: int, seed: int = 15, copy_rate: float = 0.18):
    """(texts, original index of each text): n texts, ~82% distinct originals, the rest typo,
    paraphrase-like or whitespace copies of an original."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n_orig = int(round(n * (1 - copy_rate)))
    words = _codewords(n_orig, rng)
    texts = [_render(w) for w in words]
    origin = list(range(n_orig))
    for k in range(n - n_orig):
        o = int(rng.integers(0, n_orig))
        kind = k % 3
        if kind == 0:
            t = _typo(texts[o], rng, int(rng.integers(1, 4)))
        elif kind == 1:
            t = _render(words[o], "paraphrase")
        else:
            t = "  " + texts[o].replace(". ", ".\n   ").replace(" ", "  ", 3) + " "
        texts.append(t)
        origin.append(o)
    order = rng.permutation(len(texts))
    return [texts[i] for i in order], [origin[i] for i in order]


def _ingest_texts(ws, texts: list[str]) -> list[str]:
    """Store texts as records (ids as ingest makes them: a hash of the normalised content)."""
    import hashlib

    from pipelines.store import NewRecord, upsert_record, utcnow

    ids = []
    now = utcnow()
    with ws.transaction() as conn:
        for n, t in enumerate(texts, 1):
            norm = " ".join(t.split())
            rid = "r" + hashlib.sha256(norm.encode()).hexdigest()[:16]
            upsert_record(conn, NewRecord(id=rid, kind="text", text=t, file="hard.jsonl", row=n),
                          now)
            ids.append(rid)
    return ids


def _originals_lost(result, ids: list[str], origin: list[int]) -> int:
    """Distinct originals with no record kept: each was merged into a different original."""
    excluded = set()
    for c in result.cluster_list:
        excluded.update(m["record_id"] for m in c.members if m["excluded"])
    kept_groups = {origin[i] for i, rid in enumerate(ids) if rid not in excluded}
    return len(set(origin)) - len(kept_groups)


def run_hard(n: int, model: str, minilm_sample: int) -> dict:
    """The hard-negative set at size n: defaults vs the old plain rule (cosine >= 0.92 alone),
    datasketch MinHashLSH alone, and MiniLM encode timed on a sample."""
    import numpy as np

    from pipelines.dedup import DedupConfig, run_dedup
    from pipelines.dedup.pairs import fuzzy_pairs
    from pipelines.embed import encode_texts
    from pipelines.store import Workspace

    texts, origin = hard_negative_set(n)
    out: dict = {"data": f"hard negatives {n}", "records": n, "originals": len(set(origin))}
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.create(Path(tmp) / "ws")
        ids = _ingest_texts(ws, texts)
        groups = defaultdict(set)
        for rid, o in zip(ids, origin):
            groups[o].add(rid)
        truth = {p for g in groups.values() for p in itertools.combinations(sorted(g), 2)}
        rows = []
        for name, cfg in (("defaults", DedupConfig(model=model)),
                          ("old plain rule (cosine >= 0.92)",
                           DedupConfig(model=model, verify=False, fuzzy=False))):
            t = time.perf_counter()
            r = run_dedup(ws, cfg, commit=False)
            sec = time.perf_counter() - t
            s = _score(_found_pairs(r), truth, [])
            rows.append({"rule": name, "precision": s["precision"], "recall": s["recall"],
                         "originals_lost": _originals_lost(r, ids, origin),
                         "seconds": round(sec, 2), "embedded": r.embedded,
                         "timings": r.timings, "stages": r.stages, "rules": r.rules})
            if name == "defaults":   # the same run again on unchanged data: every cache hits
                t = time.perf_counter()
                again = run_dedup(ws, cfg, commit=False)
                again_s = time.perf_counter() - t
                out["rerun"] = {"seconds": round(again_s, 2),
                                "ratio_vs_first": round(again_s / sec, 4),
                                "candidates_cache": again.pair_cache,
                                "verification_cache": again.verify_cache,
                                "same_clusters": _found_pairs(again) == _found_pairs(r),
                                "timings": again.timings}
        out["runs"] = rows
        # datasketch MinHashLSH alone (threshold 0.8), clusters = connected components
        unique = list(dict.fromkeys(ids))
        text_of = dict(zip(ids, texts))
        t = time.perf_counter()
        pairs = fuzzy_pairs([text_of[r] for r in unique], 0.8)
        parent = list(range(len(unique)))

        def find(x):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x
        for i, j in pairs:
            parent[find(i)] = find(j)
        comp = defaultdict(list)
        for i in range(len(unique)):
            comp[find(i)].append(unique[i])
        found = {p for g in comp.values() for p in itertools.combinations(sorted(g), 2)}
        lsh_s = time.perf_counter() - t
        s = _score(found, truth, [])
        rep_groups = {origin[ids.index(g[0])] for g in comp.values()}   # one kept per component
        out["minhash_lsh_alone"] = {"precision": s["precision"], "recall": s["recall"],
                                    "originals_lost": len(set(origin)) - len(rep_groups),
                                    "seconds": round(lsh_s, 2)}
        sample = texts[:minilm_sample]
        encode_texts(sample[:8], "default")                  # load the model first
        t = time.perf_counter()
        encode_texts(sample, "default")
        per = (time.perf_counter() - t) / len(sample)
        out["minilm_encode"] = {"sample": len(sample), "texts_per_s": round(1 / per, 1),
                                "extrapolated_s": round(per * n, 1)}
        out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def _hard_table(res: dict) -> str:
    lines = [f"## {res['data']} ({res['originals']} distinct originals)",
             "rule | P | R | distinct originals lost | seconds (first run)"]
    for r in res["runs"]:
        lines.append(f"{r['rule']} | {r['precision']:.3f} | {r['recall']:.3f} | "
                     f"{r['originals_lost']} | {r['seconds']:.1f}")
    m = res["minhash_lsh_alone"]
    lines.append(f"datasketch MinHashLSH alone (0.8, components) | {m['precision']:.3f} | "
                 f"{m['recall']:.3f} | {m['originals_lost']} | {m['seconds']:.1f}")
    e = res["minilm_encode"]
    lines.append(f"MiniLM encode: {e['texts_per_s']}/s on {e['sample']} texts -> "
                 f"{e['extrapolated_s']:.0f} s for {res['records']} (extrapolated)")
    lines.append(f"stages (defaults): {res['runs'][0]['stages']}")
    lines.append(f"rules (defaults): {res['runs'][0]['rules']}; peak RSS {res['peak_rss_mb']:.0f} MB")
    if "rerun" in res:
        r = res["rerun"]
        lines.append(f"re-run of the defaults on unchanged data: {r['seconds']:.2f}s, ratio "
                     f"{r['ratio_vs_first']:.4f} of the first (caches: candidates "
                     f"{r['candidates_cache']}, verification {r['verification_cache']}; same "
                     f"clusters {r['same_clusters']}); stage seconds {r['timings']}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", type=int, nargs="*", default=None,
                    help="sizes of generated data sets (none: the sample data)")
    ap.add_argument("--model", default=os.environ.get("CURATE_BENCH_MODEL", "default"))
    ap.add_argument("--no-raw", action="store_true", help="skip the raw-encode baseline")
    ap.add_argument("--no-curve", action="store_true", help="skip the threshold curve")
    ap.add_argument("--neighbours", type=int, default=16, help="DedupConfig.neighbours")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--hard", type=int, default=None, metavar="N",
                    help="the hard-negative set of issue 15 at N records (defaults vs the plain "
                         "cosine rule vs MinHashLSH alone, MiniLM encode timed on a sample)")
    ap.add_argument("--minilm-sample", type=int, default=500,
                    help="texts MiniLM encodes to extrapolate its time (--hard)")
    ap.add_argument("--one", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.hard:
        model = "auto" if args.model == "default" and "CURATE_BENCH_MODEL" not in os.environ \
            else args.model
        res = run_hard(args.hard, model, args.minilm_sample)
        print(_hard_table(res), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=1))
        return
    if args.one:
        res = run_one(args.one[0], int(args.one[1]), args.model, not args.no_raw,
                      not args.no_curve, args.neighbours)
        print(json.dumps(res))
        return
    jobs = [("synthetic", n) for n in args.synthetic] if args.synthetic else [("sample", 0)]
    results = []
    for kind, n in jobs:
        cmd = [sys.executable, __file__, "--one", kind, str(n), "--model", args.model,
               "--neighbours", str(args.neighbours)]
        cmd += ["--no-raw"] * args.no_raw + ["--no-curve"] * args.no_curve
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-4000:])
            raise SystemExit(f"bench run {kind} {n} failed")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(res)
        print(_table(res), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
