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
# The scale set (--scale) needs more than 23^4 = 279,841 originals for 1M rows: 14 more values
# per slot make it GF(37) (37^4 = 1.87M), the same construction and the same >= 3 of 6 rule.
SCALE_P = 37
_MORE = {
    "who": ["A welder", "The dentist", "A carpenter", "The florist", "A waiter", "The banker",
            "A lawyer", "The tailor", "A musician", "The janitor", "A surveyor", "The butcher",
            "A locksmith", "The optician"],
    "what": ["a cracked foundation", "a broken window", "a stolen laptop", "a chipped tooth",
             "a ruined carpet", "a leaking boiler", "a bent rim", "a torn awning",
             "a shattered mirror", "a stolen catalytic converter", "a burst water heater",
             "a fractured wrist on stairs", "a sagging porch", "a blown transformer"],
    "where": ["Albany", "Buffalo", "Camden", "Detroit", "Eugene", "Flint", "Gary", "Houston",
              "Irvine", "Jackson", "Kent", "Laredo", "Modesto", "Newark"],
    "when": ["on February 2", "on March 17", "on April 28", "on May 30", "on June 6",
             "on July 19", "on August 2", "on September 9", "on October 3", "on November 11",
             "on December 24", "on 3/14/25", "on 5/20/25", "five days ago"],
    "amount": [560, 640, 870, 1040, 1620, 1990, 2260, 2890, 3420, 3980, 4470, 5340, 6780, 9300],
    "detail": ["The tenant was away.", "A claim form is missing.", "The roof was recently fixed.",
               "A second opinion was asked for.", "The loss was reported late.",
               "Security footage exists.", "The claimant is disputing the estimate.",
               "An inspector is assigned.", "The owner was travelling.",
               "A translator was requested.", "The bank holds a lien.",
               "The car was parked legally.", "The fire brigade attended.",
               "A settlement offer was made."],
}
_SLOTS = {23: (WHO, WHAT, WHERE, WHEN, AMOUNT, DETAIL),
          37: tuple(base + _MORE[name] for base, name in
                    zip((WHO, WHAT, WHERE, WHEN, AMOUNT, DETAIL),
                        ("who", "what", "where", "when", "amount", "detail")))}


def _codewords(n: int, rng, p: int = P) -> list[tuple[int, ...]]:
    """n distinct 6-slot combinations, every two differing in >= 3 slots: a [6, 4, 3] MDS code
    over GF(p) (4 free slots, 2 checks), so no hand-made pair is closer than the issue's set."""
    if n > p ** 4:
        raise ValueError(f"{n} originals need more than {p}^4 codewords")
    seen: set[tuple[int, ...]] = set()
    out = []
    while len(out) < n:
        a, b, c, d = (int(x) for x in rng.integers(0, p, 4))
        if (a, b, c, d) in seen:
            continue
        seen.add((a, b, c, d))
        out.append((a, b, c, d, (a + b + c + d) % p, (a + 2 * b + 3 * c + 4 * d) % p))
    return out


def _render(w: tuple[int, ...], order: str = "plain", p: int = P) -> str:
    who, what, where, when, amount, detail = (s[x] for s, x in zip(_SLOTS[p], w))
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


def hard_negative_set(n: int, seed: int = 15, copy_rate: float = 0.18, p: int = P):
    """(texts, original index of each text): n texts, ~82% distinct originals, the rest typo,
    paraphrase-like or whitespace copies of an original. `p`: values per slot (23, or 37 for
    the scale set)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n_orig = int(round(n * (1 - copy_rate)))
    words = _codewords(n_orig, rng, p)
    texts = [_render(w, p=p) for w in words]
    origin = list(range(n_orig))
    for k in range(n - n_orig):
        o = int(rng.integers(0, n_orig))
        kind = k % 3
        if kind == 0:
            t = _typo(texts[o], rng, int(rng.integers(1, 4)))
        elif kind == 1:
            t = _render(words[o], "paraphrase", p)
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


# -- scale: 10k to 1M short records (issue 15's speed goal) ---------------------------------------
def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _rss_now_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _components(n: int, pairs) -> list[list[int]]:
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    for i, j in pairs:
        parent[find(i)] = find(j)
    comp = defaultdict(list)
    for i in range(n):
        comp[find(i)].append(i)
    return list(comp.values())


def _datasketch_alone(texts: list[str], threshold: float = 0.8, num_perm: int = 64) -> set:
    """What a user of `datasketch` alone writes: MinHash (bulk) of the character 5-grams, then
    MinHashLSH insert + query, one record at a time. Pairs (j, i), j < i."""
    from datasketch import MinHash, MinHashLSH

    from pipelines.dedup.facts import loose_key

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    out = set()
    for start in range(0, len(texts), 2048):
        grams = [{s[i:i + 5].encode("utf-8") for i in range(max(1, len(s) - 4))}
                 for s in (loose_key(t) for t in texts[start:start + 2048])]
        for k, mh in enumerate(MinHash.bulk(grams, num_perm=num_perm)):
            for j in lsh.query(mh):
                out.add((j, start + k))
            lsh.insert(start + k, mh, check_duplication=False)
    return out


def write_texts(path: Path, texts: list[str]) -> Path:
    """`texts` as a JSONL file of `{"text": ...}` rows, what the scale runs ingest."""
    with path.open("w", encoding="utf-8") as fh:
        for text in texts:
            fh.write(json.dumps({"text": text}) + "\n")
    return path


def run_scale(n: int, model: str, minilm_sample: int, lsh_max: int, rerun: bool,
              baselines: bool = True) -> dict:
    """End to end at n short records: generate, ingest (timed apart), `run_dedup` with the
    defaults (committed), P / R / originals lost, then the baselines in the same process:
    datasketch MinHashLSH alone (on all records up to `lsh_max`, else timed on the first
    `lsh_max` and extrapolated linearly) and MiniLM encode + FAISS (encode timed on
    `minilm_sample` texts and extrapolated linearly; FAISS k-NN timed on min(n, lsh_max)
    random 384-dim vectors with the index `auto` picks at n, scaled linearly to n: a floor).
    The dedup run's peak RSS is read before the baselines load anything, and the resident
    memory at the end of each stage (`stage_rss_mb`, from /proc). `baselines=False`
    (`--no-baselines`): the dedup run alone, for sizes where the baselines were measured
    smaller and are extrapolated."""
    from pipelines.dedup import DedupConfig, run_dedup
    from pipelines.ingest import IngestConfig, ingest
    from pipelines.store import Workspace

    t = time.perf_counter()
    texts, origin = hard_negative_set(n, p=SCALE_P)
    out: dict = {"data": f"scale {n}", "records_generated": n, "originals": len(set(origin)),
                 "generate_s": round(time.perf_counter() - t, 1),
                 "load_average_at_start": round(os.getloadavg()[0], 1)}
    with tempfile.TemporaryDirectory() as tmp:
        data = write_texts(Path(tmp) / "scale.jsonl", texts)
        ws = Workspace.create(Path(tmp) / "ws")
        t = time.perf_counter()
        ingested = ingest(ws, [data], IngestConfig(schema="text"))
        out["ingest_s"] = round(time.perf_counter() - t, 1)
        out["ingest_rss_mb"] = _peak_rss_mb()
        with ws.connect() as conn:
            rid_of_row = dict(conn.execute("SELECT row, record_id FROM record_sources"))
        ids = [rid_of_row[row] for row in range(1, n + 1)]
        del rid_of_row
        out["records"] = len(set(ids))
        del ingested

        cfg = DedupConfig(model=model)
        stage_rss: dict[str, float] = {}

        def note_rss(p) -> None:   # the last report of a stage: its end
            stage_rss[p.stage] = _rss_now_mb()
        t = time.perf_counter()
        first = run_dedup(ws, cfg, on_progress=note_rss)
        out["dedup_s"] = round(time.perf_counter() - t, 1)
        out["dedup_rss_mb"] = _peak_rss_mb()
        out["stage_rss_mb"] = stage_rss
        out["load_average_after_dedup"] = round(os.getloadavg()[0], 1)
        out["timings"] = first.timings
        out["stages"] = first.stages
        out["rules"] = first.rules
        out["index"] = first.index
        out["counts"] = {k: getattr(first, k) for k in
                         ("units", "candidates", "merged_pairs", "conflicts", "clusters",
                          "excluded", "exact", "semantic")}
        groups = defaultdict(set)
        for rec, o in zip(ids, origin):
            groups[o].add(rec)
        truth = {p for g in groups.values() for p in itertools.combinations(sorted(g), 2)}
        found = _found_pairs(first)
        s = _score(found, truth, [])
        out["quality"] = {"precision": s["precision"], "recall": s["recall"],
                          "pairs_found": s["pairs_found"], "true_pairs": s["true_pairs"],
                          "originals_lost": _originals_lost(first, ids, origin)}
        del first, found
        if rerun:
            t = time.perf_counter()
            again = run_dedup(ws, cfg)
            out["rerun_s"] = round(time.perf_counter() - t, 1)
            out["rerun_timings"] = again.timings
            del again
        if not baselines:
            out["peak_rss_mb"] = _peak_rss_mb()
            return out

        out.update(_scale_baselines(ids, texts, truth, cfg, lsh_max, minilm_sample))
        out["peak_rss_mb"] = _peak_rss_mb()
    return out


def run_scale_baselines(n: int, model: str, minilm_sample: int, lsh_max: int) -> dict:
    """`run_scale`'s two baselines alone (`--scale N --baselines-only`), on the same generated
    set, for a size whose dedup run was timed on its own (`--no-baselines`): records are the
    texts folded as ingest folds them (`pipelines.ingest.record_id`)."""
    from pipelines.dedup import DedupConfig
    from pipelines.ingest.normalize import normalize_text, record_id

    texts, origin = hard_negative_set(n, p=SCALE_P)
    ids = [record_id("text", {"text": normalize_text(t)}) for t in texts]
    groups = defaultdict(set)
    for rec, o in zip(ids, origin):
        groups[o].add(rec)
    truth = {p for g in groups.values() for p in itertools.combinations(sorted(g), 2)}
    out = {"data": f"scale {n} (baselines only)", "records_generated": n,
           "records": len(set(ids)), "load_average_at_start": round(os.getloadavg()[0], 1)}
    out.update(_scale_baselines(ids, texts, truth, DedupConfig(model=model), lsh_max,
                                minilm_sample))
    out["load_average_at_end"] = round(os.getloadavg()[0], 1)
    return out


def _scale_baselines(ids: list[str], texts: list[str], truth: set, cfg, lsh_max: int,
                     minilm_sample: int) -> dict:
    """The two baselines of `run_scale` on the records `ids` (row i's record, texts[i] its
    text; `truth`: the true duplicate pairs of record ids), with the dedup run's config."""
    import numpy as np

    from pipelines.dedup.index import choose_index, knn_pairs
    from pipelines.embed import encode_texts

    # baseline 1: datasketch MinHashLSH alone (threshold 0.8), clusters = components
    unique = list(dict.fromkeys(ids))
    text_of = dict(zip(ids, texts))
    sub = [text_of[r] for r in unique[:lsh_max]]
    t = time.perf_counter()
    pairs = _datasketch_alone(sub)
    comps = _components(len(sub), pairs)
    lsh_s = time.perf_counter() - t
    lsh = {"records_timed": len(sub), "seconds": round(lsh_s, 1),
           "extrapolated": len(sub) < len(unique),
           "seconds_at_n": round(lsh_s * len(unique) / len(sub), 1)}
    if len(sub) == len(unique):
        found = {tuple(sorted((unique[a], unique[b])))
                 for g in comps for a, b in itertools.combinations(g, 2)}
        s = _score(found, truth, [])
        lsh.update(precision=s["precision"], recall=s["recall"])
    out = {"datasketch_alone": lsh}
    del pairs, comps, text_of

    # baseline 2: MiniLM encode (sample, extrapolated) + FAISS k-NN of 384-dim vectors
    sample = texts[:minilm_sample]
    encode_texts(sample[:8], "default")                  # load the model first
    t = time.perf_counter()
    encode_texts(sample, "default")
    per = (time.perf_counter() - t) / len(sample)
    rng = np.random.default_rng(0)
    m = min(len(unique), lsh_max)     # FAISS timed on m vectors, linear above (a floor)
    vecs = rng.standard_normal((m, 384), dtype=np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    kind = choose_index(len(unique), cfg.index, cfg.flat_max)
    t = time.perf_counter()
    knn_pairs(vecs, cfg.neighbours, cfg.candidate_threshold, kind)
    faiss_s = (time.perf_counter() - t) * len(unique) / m
    del vecs
    out["minilm_faiss"] = {"sample": len(sample), "texts_per_s": round(1 / per, 1),
                           "encode_s_extrapolated": round(per * len(unique), 1),
                           "faiss_index": kind, "faiss_vectors_timed": m,
                           "faiss_s": round(faiss_s, 1),
                           "total_s": round(per * len(unique) + faiss_s, 1)}
    return out


def _scale_table(results: list[dict]) -> str:
    stages = ("exact", "embed", "search", "verify", "cluster", "write")
    lines = ["records | ingest s | dedup s | " + " | ".join(stages)
             + " | fuzzy s | semantic s | index | P | R | lost | dedup RSS MB | "
               "datasketch alone s (P / R) | MiniLM+FAISS s (extrapolated)"]
    for r in results:
        t, st, q = r["timings"], r["stages"], r["quality"]
        ds = r.get("datasketch_alone", {"seconds_at_n": "-"})
        dq = (f" ({ds['precision']:.3f} / {ds['recall']:.3f})" if "precision" in ds
              else f" (extrapolated from {ds['records_timed']})" if "records_timed" in ds else "")
        lines.append(
            f"{r['records']} | {r['ingest_s']} | {r['dedup_s']} | "
            + " | ".join(str(t.get(k, t.get("pairs_cached", "")) if k == "search" else t.get(k, ""))
                         for k in stages)
            + f" | {st['fuzzy']['seconds']} | {st['semantic']['seconds']} | {r['index']} | "
              f"{q['precision']:.3f} | {q['recall']:.3f} | {q['originals_lost']} | "
              f"{r['dedup_rss_mb']:.0f} | {ds['seconds_at_n']}{dq} | "
              f"{r.get('minilm_faiss', {}).get('total_s', '-')}")
    return "\n".join(lines)


def run_crossover(n: int, model: str, neighbours: int = 16, min_sim: float = 0.70,
                  queries: int = 2000, flat_full_max: int = 50_000) -> dict:
    """Flat vs HNSW vs IVF at n vectors of the scale set (the static model's 256 dims): build and
    all-against-all k-NN seconds, and the recall of the candidate pairs (the k nearest at cosine
    >= min_sim) against the exact search, on `queries` random records. Above `flat_full_max`
    the flat search runs on those queries only and its all-against-all time is extrapolated
    (linear in the queries, exact: every query scans all n)."""
    import numpy as np

    from pipelines.dedup.index import build_index
    from pipelines.embed import encode_texts
    from pipelines.embed.static import ensure_static_model

    texts, _ = hard_negative_set(n, p=SCALE_P)
    texts = list(dict.fromkeys(" ".join(t.split()) for t in texts))   # as ingest folds them
    with tempfile.TemporaryDirectory() as tmp:
        folder = str(ensure_static_model(Path(tmp)))
        vecs = np.ascontiguousarray(
            encode_texts(texts, folder if model in ("auto", "static") else model), np.float32)
    n = len(vecs)
    k = min(neighbours + 1, n)
    sample = np.random.default_rng(0).choice(n, min(queries, n), replace=False)

    def pairs_of(rows, sims, nbs):
        return {(int(q), int(j)) for q, srow, nrow in zip(rows, sims, nbs)
                for s, j in zip(srow, nrow) if j >= 0 and j != q and s >= min_sim}

    out = {"n": n, "dims": int(vecs.shape[1]), "neighbours": neighbours, "kinds": {}}
    ref = None
    for kind in ("flat", "hnsw", "ivf"):
        t = time.perf_counter()
        index = build_index(vecs, kind)
        build_s = time.perf_counter() - t
        full = kind != "flat" or n <= flat_full_max
        t = time.perf_counter()
        if full:
            for start in range(0, n, 4096):
                index.search(vecs[start:start + 4096], k)
            search_s = time.perf_counter() - t
        else:
            index.search(vecs[sample], k)
            search_s = (time.perf_counter() - t) * n / len(sample)
        sims, nbs = index.search(vecs[sample], k)
        got = pairs_of(sample, sims, nbs)
        ref = got if ref is None else ref
        out["kinds"][kind] = {"build_s": round(build_s, 2), "search_s": round(search_s, 2),
                              "total_s": round(build_s + search_s, 2),
                              "search_extrapolated": not full,
                              "recall_vs_flat": round(len(got & ref) / len(ref), 4) if ref else 1.0}
        del index
    return out


def _subprocess_json(args: list[str]) -> dict:
    """Run this script with `args` in a fresh process (its own peak RSS); its last line is JSON."""
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          cwd=ROOT)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"bench run {' '.join(args)} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


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
    ap.add_argument("--scale", type=_sizes, default=None, metavar="N,N,...",
                    help="end to end at each size of short generated records (~20 words), "
                         "with datasketch alone and MiniLM + FAISS (extrapolated) beside it")
    ap.add_argument("--lsh-max", type=int, default=200_000,
                    help="--scale: datasketch alone runs on at most this many records "
                         "(extrapolated linearly above)")
    ap.add_argument("--rerun", action="store_true", help="--scale: time a re-run as well")
    ap.add_argument("--no-baselines", action="store_true",
                    help="--scale: the dedup run alone (no datasketch, no MiniLM + FAISS)")
    ap.add_argument("--baselines-only", action="store_true",
                    help="--scale: the baselines alone, on the same generated set (for a size "
                         "whose dedup run was timed with --no-baselines)")
    ap.add_argument("--crossover", type=_sizes, default=None, metavar="N,N,...",
                    help="flat vs HNSW vs IVF search time and recall at each size")
    ap.add_argument("--one", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    scale_model = "auto" if args.model == "default" and "CURATE_BENCH_MODEL" not in os.environ \
        else args.model
    if args.one and args.one[0] in ("scale", "crossover"):
        n = int(args.one[1])
        if args.one[0] == "crossover":
            res = run_crossover(n, scale_model, args.neighbours)
        elif args.baselines_only:
            res = run_scale_baselines(n, scale_model, args.minilm_sample, args.lsh_max)
        else:
            res = run_scale(n, scale_model, args.minilm_sample, args.lsh_max, args.rerun,
                            not args.no_baselines)
        print(json.dumps(res))
        return
    if args.scale or args.crossover:
        kind, sizes = ("scale", args.scale) if args.scale else ("crossover", args.crossover)
        results = []
        for n in sizes:
            cmd = ["--one", kind, str(n), "--model", args.model, "--neighbours",
                   str(args.neighbours), "--minilm-sample", str(args.minilm_sample),
                   "--lsh-max", str(args.lsh_max)] + ["--rerun"] * args.rerun \
                + ["--no-baselines"] * args.no_baselines \
                + ["--baselines-only"] * args.baselines_only
            results.append(_subprocess_json(cmd))
            print(json.dumps(results[-1]), flush=True)
            if args.json:   # after each size, so a long run keeps what it finished
                Path(args.json).parent.mkdir(parents=True, exist_ok=True)
                Path(args.json).write_text(json.dumps(results, indent=1))
        if kind == "scale" and not args.baselines_only:
            print(_scale_table(results))
        elif kind == "scale":
            pass   # the JSON lines above are the figures
        else:
            print("n | " + " | ".join(f"{k} build+search s (recall)" for k in ("flat", "hnsw", "ivf")))
            for r in results:
                print(f"{r['n']} | " + " | ".join(
                    f"{v['build_s']}+{v['search_s']}{'*' if v['search_extrapolated'] else ''}"
                    f" ({v['recall_vs_flat']:.3f})" for v in r["kinds"].values()))
        return
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
