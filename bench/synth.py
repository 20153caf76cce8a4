"""Synthetic data: do the LFs catch the counterfactuals, does DPO learn the pairs, what does the
generator cost.

Usage: python bench/synth.py [--n 700] [--dpo-steps 40] [--gen 32]
       python bench/synth.py --pays [--seeds 5] [--per-class 30] [--scarce 20]

1. Counterfactuals on the sample's accepted summary_quality records (gold held out): caught /
   missed per edit kind by the scheme's LF set, against the baseline set without the three LFs
   added for counterfactuals (lf_date_not_in_note, lf_identifier_not_in_note,
   lf_drops_note_amount), judged on the same edits in the same run.
2. DPO on the tiny Llama (random init, ~1M parameters): the preference export of the caught
   counterfactuals; held-out preference accuracy before and after, and tokens/s of the dpo head
   against the sft head on the chat export of the same records, same steps and batch.
3. The generator on the local tiny model: N paraphrase prompts cold, then again from the cache.

--pays: does synthetic data pay? The probe head (trainer/probe.py: logistic regression on frozen
embeddings, the static model by default) trained on a scarce real subset (labels from the
sample's truth file, as a reviewer would give them) against the same subset plus synthetic
records made from it only, scored on the held-out real gold set, over seeds (each seed draws
another subset), every arm in the same run:
- summary_quality: `--per-class` real ACCEPT and REJECT; + counterfactual negatives of the real
  ACCEPTs (up to 3 per source, or 1, caught by the LFs); + private copies of every real example (label
  kept); + both. Gold accuracy, macro-F1, and recall on the gold's real hallucinations (truth
  flaws hallucinated_amount / hallucinated_name / wrong_state).
- claim_type: `--scarce` real examples of one class, `--per-class` of the others; + 3 private
  copies of each scarce example; + counterfactuals of them (the claim type survives a wrong
  fact); + both. Gold accuracy, macro-F1 and the scarce class's F1.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
import warnings
from pathlib import Path

from pipelines.export import export_dataset
from pipelines.generate import GenerateConfig, Generator
from pipelines.samples import load_sample
from pipelines.store import Workspace
from pipelines.synth import CounterfactualConfig, judge_edits, make_counterfactuals
from pipelines.weak_supervision import LabelConfig, load_lfs, run_labeling

warnings.filterwarnings("ignore")
NEW_LFS = {"lf_date_not_in_note", "lf_identifier_not_in_note", "lf_drops_note_amount"}


def catch_rates(ws: Workspace, n: int) -> list:
    res = make_counterfactuals(ws, CounterfactualConfig(scheme="summary_quality", n=n),
                               commit=False)
    items = res.created + res.missed
    baseline = copy.deepcopy(items)
    names = [x for x in load_lfs(ws, "summary_quality").names if x not in NEW_LFS]
    judge_edits(ws, "summary_quality", baseline, only=names)
    print(f"\n1. counterfactuals from {res.sources} accepted records ({len(items)} made)")
    print(f"{'edit':<8}{'made':>6}{'caught (all LFs)':>18}{'caught (baseline)':>19}{'ratio':>8}")
    kinds = sorted({c.edit.kind for c in items})
    for kind in kinds + ["all"]:
        sel = [i for i, c in enumerate(items) if kind in ("all", c.edit.kind)]
        full = sum(items[i].caught for i in sel)
        base = sum(baseline[i].caught for i in sel)
        ratio = f"{full / base:.2f}x" if base else "inf"
        print(f"{kind:<8}{len(sel):>6}{full / len(sel):>18.3f}{base / len(sel):>19.3f}{ratio:>8}")
    return items


def last_log(run_path: Path) -> dict:
    events = [json.loads(x) for x in (run_path / "events.jsonl").read_text().splitlines()]
    return [e for e in events if e["event"] == "log"][-1]


def dpo_vs_sft(ws: Workspace, n: int, steps: int) -> None:
    from trainer import TrainConfig, train

    make_counterfactuals(ws, CounterfactualConfig(scheme="summary_quality", n=n))
    pref = export_dataset(ws, scheme="summary_quality", format="preference", eval_fraction=0.1)
    chat = export_dataset(ws, scheme="summary_quality", format="chat", eval_fraction=0.1,
                          synthetic="exclude")
    common = dict(max_steps=steps, batch_size=8, learning_rate=2e-3, cpu_threads=1,
                  eval_max_examples=100, save_steps=max(steps, 1), generations=0)
    print(f"\n2. dpo on the tiny Llama: {pref.train} train / {pref.eval} held-out pairs, "
          f"{steps} steps x 8")
    rows = []
    for head, exp in (("dpo", pref), ("sft", chat)):
        t0 = time.perf_counter()
        out = train(ws, exp.version, TrainConfig(head=head, **common), progress=False,
                    echo=lambda m: None)
        seconds = time.perf_counter() - t0
        log = last_log(Path(out["path"]))
        rows.append((head, seconds, log.get("tokens_per_s") or 0.0))
        if head == "dpo":
            b, t = out["eval"]["base"], out["eval"]["tuned"]
            print(f"{'metric':<18}{'before':>10}{'after':>10}")
            for k in ("logp_accuracy", "logp_margin", "reward_accuracy", "reward_margin"):
                print(f"{k:<18}{b.get(k, 0):>10.3f}{t.get(k, 0):>10.3f}")
    print(f"{'head':<6}{'seconds':>9}{'tokens/s':>10}{'vs sft':>8}")
    sft_rate = rows[1][2] or 1.0
    for head, seconds, rate in rows:
        print(f"{head:<6}{seconds:>9.1f}{rate:>10.1f}{rate / sft_rate:>7.2f}x")


def generator(ws: Workspace, n: int) -> None:
    from trainer.tiny import ensure_workspace_model

    from pipelines.synth.generated import PARAPHRASE_INSTRUCTION

    model = str(ensure_workspace_model(ws))
    with ws.connect() as conn:
        texts = [r[0] for r in conn.execute("SELECT response FROM records WHERE response IS NOT "
                                            "NULL LIMIT ?", (n,))]
    prompts = [[{"role": "user", "content": PARAPHRASE_INSTRUCTION + t}] for t in texts]
    cfg = GenerateConfig(model=model, max_new_tokens=32, batch_size=8)
    print(f"\n3. generator, local tiny Llama, {len(prompts)} prompts x 32 new tokens")
    print(f"{'run':<8}{'seconds':>9}{'prompts/s':>11}{'out tok/s':>11}{'cache hits':>12}")
    base = None
    for run in ("cold", "cached"):
        gen = Generator(cfg, cache_dir=ws.subdir("cache"))
        gen.generate(prompts)
        s = gen.stats
        gen.close()
        rate = s.prompts / max(s.seconds, 1e-9)
        base = base or rate
        print(f"{run:<8}{s.seconds:>9.2f}{rate:>11.1f}{s.completion_tokens / max(s.seconds, 1e-9):>11.1f}"
              f"{s.cache_hits:>7}/{s.prompts:<4} {rate / base:.0f}x")


HALLUCINATION_FLAWS = {"hallucinated_amount", "hallucinated_name", "wrong_state"}


def _truth(ws: Workspace) -> dict[str, dict]:
    """Record id -> its truth row (sample_data/truth.jsonl, joined on the record's sources)."""
    from pipelines.samples import sample_dir

    by_src = {}
    for line in (sample_dir() / "truth.jsonl").read_text(encoding="utf-8").splitlines():
        t = json.loads(line)
        by_src[(t["file"], t["row"])] = t
    out = {}
    with ws.connect() as conn:
        for rid, file, row in conn.execute("SELECT record_id, file, row FROM record_sources"):
            t = by_src.get((Path(file).name, row))
            if t is not None:
                out.setdefault(rid, t)
    return out


def _counterfactuals(ws: Workspace, recs: list, per_source: int, seed: int) -> list[str]:
    """Texts of caught counterfactuals of `recs` (up to `per_source` edit kinds each)."""
    import random

    from pipelines.synth import EDIT_KINDS, Counterfactual, apply_edit

    items = []
    for i, rec in enumerate(recs):
        rng = random.Random(f"{seed}:{rec.id}")
        kinds = list(EDIT_KINDS)
        rng.shuffle(kinds)
        made = 0
        for kind in kinds:
            edit = apply_edit(kind, rec.prompt, rec.response, rng)
            if edit is not None:
                items.append(Counterfactual(rec.id, rec.prompt, rec.response, edit.text, edit))
                made += 1
                if made == per_source:
                    break
    judge_edits(ws, "summary_quality", items)
    return [f"{c.prompt}\n\n{c.rejected}" for c in items if c.caught]


def _private_texts(recs: list, copies: int, seed: int) -> list[str]:
    from pipelines.synth import Surrogates, private_fields

    out = []
    for k in range(copies):
        sur = Surrogates(salt=f"bench:{seed}:{k}")
        for rec in recs:
            f = private_fields(rec, sur).fields
            out.append(f"{f['prompt']}\n\n{f['response']}")
    return out


def _fit_score(encode, train: list[tuple[str, str]], test_texts, test_y, classes, seed,
               balanced=None):
    from trainer.probe import fit_probe

    X = encode([t for t, _ in train])
    model = fit_probe(X, [y for _, y in train], classes, c=None, balanced=balanced, seed=seed)
    return model.predict(encode(test_texts))


def does_synthetic_pay(ws: Workspace, seeds: int, per_class: int, scarce: int,
                       model: str) -> None:
    import random

    import numpy as np

    from pipelines.embed import encode_texts
    from pipelines.embed.static import resolve_alias
    from pipelines.metrics import accuracy, classification_report, macro_f1, mean_ci
    from pipelines.store import iter_records

    model = resolve_alias(ws.path, model)
    cache: dict[str, np.ndarray] = {}

    def encode(texts):
        todo = [t for t in dict.fromkeys(texts) if t not in cache]
        if todo:
            for t, v in zip(todo, encode_texts(todo, model)):
                cache[t] = v
        return np.stack([cache[t] for t in texts])

    truth = _truth(ws)
    with ws.connect() as conn:
        recs = [r for r in iter_records(conn, with_gold=True) if r.kind == "instruction"]
    gold = [r for r in recs if r.gold]
    # the pool: real non-gold records with a truth label, duplicates left out (no gold leak)
    pool = [r for r in recs if not r.gold and r.id in truth
            and not {"exact_duplicate", "near_duplicate"} & set(truth[r.id]["flaws"])]
    t0 = time.perf_counter()
    encode([r.text for r in gold + pool])
    print(f"\n4. does synthetic data pay? probe head on {model.split('/')[-1]} embeddings "
          f"({time.perf_counter() - t0:.1f} s to embed {len(gold) + len(pool)} real texts); "
          f"pool {len(pool)} real non-gold, test = gold, {seeds} seeds")

    def table(title, arms, metrics):
        print(f"\n{title}")
        print(f"{'arm':<22}{'train':>7}" + "".join(f"{m:>22}" for m in metrics)
              + f"{'vs real':>9}")
        base = None
        for arm, (sizes, scores) in arms.items():
            cells = []
            for m in metrics:
                mean, (lo, hi) = mean_ci([s[m] for s in scores])
                cells.append(f"{mean:.3f} [{lo:.3f}, {hi:.3f}]")
            first = float(np.mean([s[metrics[1]] for s in scores]))
            base = base if base is not None else first
            print(f"{arm:<22}{int(np.mean(sizes)):>7}" + "".join(f"{c:>22}" for c in cells)
                  + f"{first / base:>8.2f}x")

    # -- summary_quality --------------------------------------------------------------------
    sq_gold = [r for r in gold if r.gold.get("summary_quality")]
    sq_y = [r.gold["summary_quality"] for r in sq_gold]
    hall = [i for i, r in enumerate(sq_gold)
            if r.id in truth and HALLUCINATION_FLAWS & set(truth[r.id]["flaws"])]
    arms: dict[str, tuple[list, list]] = {}
    for seed in range(seeds):
        rng = random.Random(seed)
        by = {c: [r for r in pool if truth[r.id]["true_summary_quality"] == c]
              for c in ("ACCEPT", "REJECT")}
        real = {c: rng.sample(v, per_class) for c, v in by.items()}
        base = [(r.text, c) for c, rs in real.items() for r in rs]
        cf = [(t, "REJECT") for t in _counterfactuals(ws, real["ACCEPT"], 3, seed)]
        cf1 = [(t, "REJECT") for t in _counterfactuals(ws, real["ACCEPT"], 1, seed)]
        priv = [(t, c) for c, rs in real.items() for t in _private_texts(rs, 1, seed)]
        for arm, train in (("real", base), ("real + counterfactual", base + cf),
                           ("real + 1 cf / source", base + cf1),
                           ("same, balanced weights", base + cf1),
                           ("real + private copies", base + priv),
                           ("real + both", base + cf + priv)):
            pred = _fit_score(encode, train, [r.text for r in sq_gold], sq_y,
                              ["ACCEPT", "REJECT"], seed,
                              balanced=True if arm.startswith("same, balanced") else None)
            scores = {"accuracy": accuracy(sq_y, pred),
                      "macro_f1": macro_f1(sq_y, pred, ["ACCEPT", "REJECT"]),
                      "hallucination recall": sum(pred[i] == "REJECT" for i in hall) / max(1, len(hall)),
                      "REJECT recall": classification_report(sq_y, pred, ["ACCEPT", "REJECT"])
                      .per_class["REJECT"].recall}
            arms.setdefault(arm, ([], []))
            arms[arm][0].append(len(train))
            arms[arm][1].append(scores)
    table(f"summary_quality: {per_class} real per class; gold {len(sq_gold)} "
          f"({sq_y.count('REJECT')} REJECT, {len(hall)} real hallucinations)", arms,
          ["accuracy", "macro_f1", "REJECT recall", "hallucination recall"])

    # -- claim_type, one class made scarce ---------------------------------------------------
    ct_gold = [r for r in gold if r.gold.get("claim_type")]
    ct_y = [r.gold["claim_type"] for r in ct_gold]
    classes = sorted({truth[r.id]["true_claim_type"] for r in pool})
    counts = {c: sum(truth[r.id]["true_claim_type"] == c for r in pool) for c in classes}
    rare = min(counts, key=counts.get)
    arms = {}
    for seed in range(seeds):
        rng = random.Random(100 + seed)
        by = {c: [r for r in pool if truth[r.id]["true_claim_type"] == c] for c in classes}
        real = {c: rng.sample(v, scarce if c == rare else per_class) for c, v in by.items()}
        base = [(r.text, c) for c, rs in real.items() for r in rs]
        priv = [(t, rare) for t in _private_texts(real[rare], 3, seed)]
        cf = [(t, rare) for t in _counterfactuals(ws, real[rare], 3, seed)]
        for arm, train in (("real", base), ("real + private copies", base + priv),
                           ("real + counterfactual", base + cf), ("real + both", base + priv + cf)):
            pred = _fit_score(encode, train, [r.text for r in ct_gold], ct_y, classes, seed)
            rep = classification_report(ct_y, pred, classes).per_class[rare]
            scores = {"accuracy": accuracy(ct_y, pred), "macro_f1": macro_f1(ct_y, pred, classes),
                      f"{rare} recall": rep.recall, f"{rare} F1": rep.f1}
            arms.setdefault(arm, ([], []))
            arms[arm][0].append(len(train))
            arms[arm][1].append(scores)
    table(f"claim_type: {scarce} real {rare} (scarce), {per_class} real of each other class; "
          f"gold {len(ct_gold)} ({ct_y.count(rare)} {rare})", arms,
          ["accuracy", "macro_f1", f"{rare} recall", f"{rare} F1"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=700, help="counterfactuals to make")
    ap.add_argument("--dpo-steps", type=int, default=40)
    ap.add_argument("--gen", type=int, default=32, help="generator prompts")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--pays", action="store_true", help="only the 'does synthetic data pay' study")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--per-class", type=int, default=30)
    ap.add_argument("--scarce", type=int, default=20)
    ap.add_argument("--model", default="static", help="embedding model of the probe")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.create(Path(tmp) / "ws")
        load_sample(ws)
        if args.pays:
            does_synthetic_pay(ws, args.seeds, args.per_class, args.scarce, args.model)
            return
        run_labeling(ws, LabelConfig(scheme="summary_quality"))
        catch_rates(ws, args.n)
        if not args.skip_train:
            dpo_vs_sft(ws, args.n, args.dpo_steps)
        generator(ws, args.gen)


if __name__ == "__main__":
    main()
