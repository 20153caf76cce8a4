"""Synthetic data: do the LFs catch the counterfactuals, does DPO learn the pairs, what does the
generator cost.

Usage: python bench/synth.py [--n 700] [--dpo-steps 40] [--gen 32]
       python bench/synth.py --pays [--seeds 5] [--per-class 30] [--scarce 20]
       python bench/synth.py --sft-dpo [--seeds 2] [--sft-steps 16] [--dpo-steps 8] \
           [--max-eval 30] [--max-new-tokens 48] [--rpo 1.0] [--out report.json]

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
import sys
import json
import tempfile
import time
import warnings
from collections import Counter
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


def dpo_vs_sft(ws: Workspace, n: int, steps: int | None, seeds: int = 1,
               lr: float | None = None) -> None:
    """The dpo head with its defaults (method auto = full on the tiny Llama, lr 1e-3, one epoch,
    unless `steps` is given) over `seeds`; then the sft head on the chat export for tokens/s,
    the same steps and batch (lr 2e-3, as in earlier runs)."""
    from pipelines.metrics import mean_ci
    from trainer import TrainConfig, train

    make_counterfactuals(ws, CounterfactualConfig(scheme="summary_quality", n=n))
    pref = export_dataset(ws, scheme="summary_quality", format="preference", eval_fraction=0.1)
    chat = export_dataset(ws, scheme="summary_quality", format="chat", eval_fraction=0.1,
                          synthetic="exclude")
    common = dict(batch_size=8, cpu_threads=1, eval_max_examples=100, save_steps=10**6,
                  generations=0)
    print(f"\n2. dpo on the tiny Llama: {pref.train} train / {pref.eval} held-out pairs, "
          f"{steps or 'one epoch of'} steps x 8, {seeds} seed(s)")
    print(f"{'seed':<6}{'method':>7}{'steps':>7}{'seconds':>9}{'logp acc':>18}{'logp margin':>20}"
          f"{'reward acc':>12}{'reward margin':>15}")
    rows, accs = [], []
    for seed in range(seeds):
        t0 = time.perf_counter()
        out = train(ws, pref.version, TrainConfig(head="dpo", seed=seed, learning_rate=lr,
                                                  **common,
                                                  **({"max_steps": steps} if steps else {})),
                    progress=False, echo=lambda m: None)
        seconds = time.perf_counter() - t0
        ev = json.loads((Path(out["path"]) / "eval.json").read_text())
        b, t = out["eval"]["base"], out["eval"]["tuned"]
        accs.append(t["reward_accuracy"])
        print(f"{seed:<6}{ev['method']:>7}{out['steps']:>7}{seconds:>9.1f}"
              f"{b['logp_accuracy']:>8.3f} -> {t['logp_accuracy']:<6.3f}"
              f"{b['logp_margin']:>10.2f} -> {t['logp_margin']:<6.2f}"
              f"{t['reward_accuracy']:>12.3f}{t['reward_margin']:>15.3f}")
        if seed == 0:
            dpo_steps = out["steps"]
            rows.append(("dpo", seconds, last_log(Path(out["path"])).get("tokens_per_s") or 0.0))
    if seeds > 1:
        mean, (lo, hi) = mean_ci(accs)
        print(f"reward accuracy over {seeds} seeds: {mean:.3f} [{lo:.3f}, {hi:.3f}]")
    t0 = time.perf_counter()
    out = train(ws, chat.version, TrainConfig(head="sft", max_steps=dpo_steps, learning_rate=2e-3,
                                              **common), progress=False, echo=lambda m: None)
    rows.append(("sft", time.perf_counter() - t0,
                 last_log(Path(out["path"])).get("tokens_per_s") or 0.0))
    print(f"{'head':<6}{'seconds':>9}{'tokens/s':>10}{'vs sft':>8}")
    sft_rate = rows[1][2] or 1.0
    for head, seconds, rate in rows:
        print(f"{head:<6}{seconds:>9.1f}{rate:>10.1f}{rate / sft_rate:>7.2f}x")


_FIXABLE = {"hallucinated_amount", "hallucinated_name", "wrong_state"}


def _like(value: str, template: str) -> str:
    """A dollar amount `value` ("2,105.00") written as `template` is ("$2105", "$2,105.00")."""
    out = value if "," in template else value.replace(",", "")
    if "." not in template and out.endswith(".00"):
        out = out[:-3]
    return "$" + out


def reviewer_corrections(ws: Workspace) -> dict[str, int]:
    """What a reviewer fixing the sample's real hallucinated summaries would store: for every
    record whose truth flaws are a hallucinated amount, a hallucinated name or a wrong state
    (and nothing else but PII), the summary with the wrong fact replaced by the note's (amount
    and state from the record's own columns, the claimant as the PII detector finds it in the
    note), stored as a review (ACCEPT + edited response), which the preference export turns into
    a correction pair (chosen = the fix, rejected = the real hallucination). A fix the LFs still
    reject, or a claimant not found, is not stored (counted)."""
    from pipelines.pii import detect
    from pipelines.store import iter_records
    from pipelines.store.exports import put_review
    from pipelines.weak_supervision import apply_lfs, load_lfs

    truth = _truth(ws)
    counts: Counter[str] = Counter()
    fixes: dict[str, str] = {}
    with ws.connect() as conn:
        recs = [r for r in iter_records(conn, with_gold=True) if r.id in truth]
    for rec in recs:
        t = truth[rec.id]
        flaws = set(t["flaws"]) - {"pii_in_note", "pii_in_summary"}
        if not flaws or not flaws <= _FIXABLE or not rec.response:
            continue
        d, fixed, meta = t.get("details") or {}, rec.response, rec.meta or {}
        if "hallucinated_amount" in flaws and d.get("hallucinated") and meta.get("amount"):
            fixed = fixed.replace(d["hallucinated"], _like(meta["amount"], d["hallucinated"]))
        if "wrong_state" in flaws and d.get("summary_state") and meta.get("state"):
            fixed = fixed.replace(f", {d['summary_state']}", f", {meta['state']}")
        if "hallucinated_name" in flaws and d.get("hallucinated"):
            adjuster = meta.get("adjuster") or ""
            names = [sp.value for sp in detect(rec.prompt or "", types=("PERSON",))
                     if sp.value not in adjuster and adjuster not in sp.value]
            if not names:
                counts["claimant not found"] += 1
                continue
            fixed = fixed.replace(d["hallucinated"], names[0])
        if fixed == rec.response:
            counts["fact not in the summary"] += 1
            continue
        fixes[rec.id] = fixed
    lfs = load_lfs(ws, "summary_quality")
    classes = list(lfs.scheme.classes)
    rows = [{"id": r.id, "kind": "instruction", "prompt": r.prompt, "response": fixes[r.id],
             "system": r.system, "meta": r.meta or {}, "text": f"{r.prompt}\n\n{fixes[r.id]}"}
            for r in recs if r.id in fixes]
    L = apply_lfs(rows, lfs.lfs, classes)[0] if rows else None
    with ws.transaction() as conn:
        for i, row in enumerate(rows):
            if (L[i] == classes.index("REJECT")).any():
                counts["fix rejected by an LF"] += 1
                continue
            put_review(conn, row["id"], "summary_quality", human_label="ACCEPT",
                       edited_response=row["response"], reviewer="bench")
            counts["stored"] += 1
    return dict(counts)


def _score_on(run_path: Path, base: str, rows: list[dict]) -> dict:
    """A finished dpo run's model (full fine-tune or LoRA adapter) scored on other pairs,
    against the base as the reference: the figures `train()` reports, on `rows`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer.dpo import pair_logps, preference_metrics

    ev = json.loads((run_path / "eval.json").read_text())
    adapter = run_path / "adapter"
    tok = AutoTokenizer.from_pretrained(str(adapter))
    ref_model = AutoModelForCausalLM.from_pretrained(base)
    if (adapter / "adapter_config.json").is_file():
        from peft import PeftModel

        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), str(adapter))
    else:
        model = AutoModelForCausalLM.from_pretrained(str(adapter))
    ref = pair_logps(ref_model, tok, rows, ev["max_seq_length"])
    tuned = pair_logps(model, tok, rows, ev["max_seq_length"])
    return {"base": preference_metrics(ref, ref, ev["beta"]),
            "tuned": preference_metrics(tuned, ref, ev["beta"])}


def dpo_with_corrections(ws: Workspace, n: int, seeds: int, base_model: str | None = None,
                         steps: int | None = None, lr: float | None = None,
                         batch_size: int = 8) -> dict:
    """DPO on the tiny Llama with the dpo head's defaults, trained (A) on counterfactual pairs
    only and (B) on counterfactual + reviewer-correction pairs (`reviewer_corrections`), each
    scored on the held-out pairs of both origins: does what DPO learns from synthetic edits carry
    over to the real hallucinations a reviewer fixed, and what do the corrections add?"""
    import yaml

    from pipelines.export import load_manifest, read_split
    from pipelines.metrics import mean_ci
    from trainer import TrainConfig, train

    make_counterfactuals(ws, CounterfactualConfig(scheme="summary_quality", n=n))
    only_cf = export_dataset(ws, scheme="summary_quality", format="preference", eval_fraction=0.1)
    counts = reviewer_corrections(ws)
    both = export_dataset(ws, scheme="summary_quality", format="preference", eval_fraction=0.1)
    m = load_manifest(ws, both.version)
    held = read_split(ws, both.version, "eval")
    origin = {e["line"]: e["label"] for e in m["records"] if e["split"] == "eval"}
    held_corr = [r for i, r in enumerate(held, 1) if origin[i] == "correction"]
    print(f"\n2c. dpo with reviewer corrections: {counts}; export A (counterfactuals) "
          f"{only_cf.train} train / {only_cf.eval} held out; export B (+ corrections) "
          f"{both.train} / {both.eval} (labels {m['counts'].get('labels') or m.get('labels')})")
    common = dict(batch_size=batch_size, cpu_threads=1, eval_max_examples=None,
                  save_steps=10**6, generations=0, base_model=base_model, learning_rate=lr,
                  **({"max_steps": steps} if steps else {}))
    results: dict[str, list] = {"A": [], "B": []}
    print(f"{'train':<7}{'seed':>5}{'steps':>7}{'seconds':>9}{'held-out cf':>13}"
          f"{'held-out corr':>15}")
    for seed in range(seeds):
        for arm, version in (("A", only_cf.version), ("B", both.version)):
            t0 = time.perf_counter()
            out = train(ws, version, TrainConfig(head="dpo", seed=seed, **common),
                        progress=False, echo=lambda m: None)
            seconds = time.perf_counter() - t0
            ev = json.loads((Path(out["path"]) / "eval.json").read_text())
            cf = ev["by_origin"]["counterfactual"]["tuned"]["reward_accuracy"]
            if arm == "A":   # the correction pairs it never saw, scored with its model
                cfg = yaml.safe_load((Path(out["path"]) / "config.yaml").read_text())
                scored = _score_on(Path(out["path"]), cfg["base_model"], held_corr)
            else:
                scored = ev["by_origin"]["correction"]
            corr, corr_base = scored["tuned"], scored["base"]
            results[arm].append({"seed": seed, "steps": out["steps"], "seconds": round(seconds, 1),
                                 "counterfactual": cf, "correction": corr["reward_accuracy"],
                                 "correction_n": corr["n_pairs"],
                                 "correction_logp": [corr_base["logp_accuracy"],
                                                     corr["logp_accuracy"]]})
            print(f"{arm:<7}{seed:>5}{out['steps']:>7}{seconds:>9.1f}{cf:>13.3f}"
                  f"{corr['reward_accuracy']:>15.3f}   corr logp acc "
                  f"{corr_base['logp_accuracy']:.3f} -> {corr['logp_accuracy']:.3f}")
    for arm, rs in results.items():
        for key in ("counterfactual", "correction"):
            mean, (lo, hi) = mean_ci([r[key] for r in rs]) if len(rs) > 1 else (rs[0][key], (0, 0))
            print(f"{arm} held-out {key}: {mean:.3f} [{lo:.3f}, {hi:.3f}]")
    return {"corrections": counts, "results": results}


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
    # balanced None: the CV chooses the weighting, as the product's default does; True: forced
    model = fit_probe(X, [y for _, y in train], classes, c=None,
                      class_weight="balanced" if balanced else None, seed=seed)
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


# -- SFT alone vs SFT + DPO on the packaged SmolLM2 -------------------------------------------
def counterfactual_pairs(ws: Workspace, rows: dict[str, dict], n: int, seed: int = 0) -> list[dict]:
    """DPO pairs from caught counterfactuals of the records in `rows` (record id -> its SFT chat
    row): prompt = the row's system + user turns, chosen = the accepted summary, rejected = the
    counterfactual. Sources outside `rows` (gold, near-gold, not curated) are left out, so no
    held-out note is a pair's prompt."""
    res = make_counterfactuals(ws, CounterfactualConfig(scheme="summary_quality", n=n, seed=seed),
                               commit=False)
    out = []
    for c in res.created:
        row = rows.get(c.source_id)
        if row is not None:
            out.append({"prompt": row["messages"][:-1],
                        "chosen": [{"role": "assistant", "content": c.chosen}],
                        "rejected": [{"role": "assistant", "content": c.rejected}],
                        "edit": c.edit.kind})
    return out


def held_out_pairs(ws: Workspace, items: list[dict], seed: int = 0) -> list[dict]:
    """One caught counterfactual of each held-out note's gold summary (the first edit kind, in a
    seeded order, that applies and that the LFs catch): pairs DPO never trains on."""
    import random

    from pipelines.synth import EDIT_KINDS, Counterfactual, apply_edit

    tried = []
    for it in items:
        rng = random.Random(f"{seed}:{it['id']}")
        kinds = list(EDIT_KINDS)
        rng.shuffle(kinds)
        for kind in kinds:
            edit = apply_edit(kind, it["note"], it["reference"], rng)
            if edit is not None:
                tried.append((it, Counterfactual(it["id"], it["note"], it["reference"], edit.text,
                                                 edit)))
    judge_edits(ws, "summary_quality", [c for _, c in tried])
    out, seen = [], set()
    for it, c in tried:
        if c.caught and it["id"] not in seen:
            seen.add(it["id"])
            out.append({"prompt": it["prompt"], "edit": c.edit.kind,
                        "chosen": [{"role": "assistant", "content": c.chosen}],
                        "rejected": [{"role": "assistant", "content": c.rejected}]})
    return out


def _invented_flags(per_seed: list[dict]) -> list[float]:
    """Per held-out note, the share of seeds whose summary invents a fact."""
    cols = [[float(bool(v["invented"])) for v in s["per_note"]] for s in per_seed]
    return [sum(c) / len(c) for c in zip(*cols)]


def sft_then_dpo(ws: Workspace, *, seeds: int, sft_steps: int, dpo_steps: int, batch_size: int,
                 dpo_batch_size: int, lr: float, dpo_lr: float | None, beta: float | None,
                 max_eval: int, max_new_tokens: int, n_pairs: int, threads: int,
                 base_model: str, max_held: int = 16, rpo: float = 0.0, say=print) -> dict:
    """Per seed: LoRA SFT on the curated summaries, greedy summaries of the held-out gold notes;
    then DPO from that SFT adapter (its frozen copy is the reference) on counterfactual pairs of
    the SFT's own training records, and the same summaries again. Both are scored by
    `curate.roi.summary_score`; the headline is the share of summaries that invent an amount,
    name, date or state, with a bootstrap interval over the notes and a paired one for the
    difference."""
    import torch

    from curate.roi.sft import (_arm_row, _eval_items, _score, bootstrap_ci, check_sft_leakage,
                                sft_sets)
    from trainer.config import TrainConfig
    from trainer.device import plan_device
    from trainer.dpo import build_dpo_trainer, pair_logps, preference_metrics
    from trainer.pretrained import resolve_model_name
    from trainer.sft import build_sft_trainer, generate

    torch.set_num_threads(threads)
    sets = sft_sets(ws, say=say)
    check_sft_leakage(sets)
    sft_rows = sets.arms["curated"]
    by_id = dict(zip(sets.arm_ids["curated"], sft_rows))
    items = _eval_items(ws, sets, max_eval)
    pairs = counterfactual_pairs(ws, by_id, n_pairs)
    held = held_out_pairs(ws, items)[:max_held]
    held_ids = set(sets.eval_ids)
    notes = {it["note"] for it in items}
    leaked = sum(p["prompt"][-1]["content"] in notes for p in pairs)
    if leaked:
        raise SystemExit(f"sft-dpo: {leaked} dpo pairs have a held-out note as their prompt")
    base = resolve_model_name(base_model, say=say)
    say(f"sft rows {len(sft_rows)}, dpo pairs {len(pairs)} (from curated records only), "
        f"held-out notes {len(items)}, held-out pairs {len(held)}; {len(held_ids)} gold held out")
    prompts = [it["prompt"] for it in items]
    # plain DPO, and with --rpo W DPO + W x the SFT loss on chosen (RPO), from the same SFT model
    dpo_arms = [("sft+dpo", 0.0)] + ([("sft+rpo", rpo)] if rpo else [])
    per = {"sft": [], **{arm: [] for arm, _ in dpo_arms}}
    pref = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sft-dpo-") as tmp:
        for seed in range(seeds):
            common = dict(base_model=base, seed=seed, device="cpu", cpu_threads=threads,
                          save_steps=10**6, logging_steps=10**6, generations=0,
                          lora_r=8, lora_alpha=16)
            cfg = TrainConfig(head="sft", max_steps=sft_steps, batch_size=batch_size,
                              learning_rate=lr, **common)
            plan = plan_device(cfg)
            tr, tok, _ = build_sft_trainer(cfg, base, plan, sft_rows, [], "chat",
                                           Path(tmp) / f"sft{seed}", progress=False)
            t0 = time.perf_counter()
            out = tr.train()
            sft_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            texts = generate(tr.model, tok, prompts, max_new_tokens, batch_size=8)
            gen_s = time.perf_counter() - t0
            adapter = Path(tmp) / f"sft{seed}" / "adapter"
            tr.save_model(str(adapter))
            per["sft"].append({"seed": seed, **_score(items, texts), "generations": texts,
                               "train_seconds": round(sft_s, 1), "generate_seconds": round(gen_s, 1),
                               "train_loss": round(float(out.training_loss), 4),
                               "seconds_per_step": round(sft_s / max(1, tr.state.global_step), 1)})
            say(f"seed {seed} sft: {sft_s:.0f} s train ({sft_s / sft_steps:.1f} s/step), "
                f"{gen_s:.0f} s generate; invented {per['sft'][-1]['invented']:.3f}, "
                f"accuracy {per['sft'][-1]['accuracy']:.3f}")
            del tr
            for arm, sft_weight in dpo_arms:
                dcfg = TrainConfig(head="dpo", max_steps=dpo_steps, batch_size=dpo_batch_size,
                                   learning_rate=dpo_lr, init_adapter=str(adapter),
                                   dpo_sft_weight=sft_weight,
                                   **({"dpo_beta": beta} if beta else {}), **common)
                tr, tok, _, max_len = build_dpo_trainer(dcfg, base, plan, pairs, [],
                                                       Path(tmp) / f"{arm}{seed}", progress=False,
                                                       init_adapter=adapter)
                t0 = time.perf_counter()
                ref = pair_logps(tr.model, tok, held, max_len)
                ref_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                out = tr.train()
                dpo_s = time.perf_counter() - t0
                tuned = pair_logps(tr.model, tok, held, max_len)
                m = {**preference_metrics(tuned, ref, dcfg.dpo_beta), "seed": seed, "arm": arm,
                     "sft_logp_accuracy": preference_metrics(ref)["logp_accuracy"],
                     "learning_rate": tr.args.learning_rate, "beta": dcfg.dpo_beta,
                     "sft_weight": sft_weight, "max_seq_length": max_len,
                     "train_loss": round(float(out.training_loss), 4)}
                pref.append(m)
                t0 = time.perf_counter()
                texts = generate(tr.model, tok, prompts, max_new_tokens, batch_size=8)
                gen_s = time.perf_counter() - t0
                per[arm].append({"seed": seed, **_score(items, texts), "generations": texts,
                                 "train_seconds": round(dpo_s, 1),
                                 "generate_seconds": round(gen_s, 1),
                                 "train_loss": m["train_loss"],
                                 "seconds_per_step": round(dpo_s / max(1, tr.state.global_step),
                                                           1)})
                say(f"seed {seed} {arm}: {dpo_s:.0f} s train ({dpo_s / dpo_steps:.1f} s/step), "
                    f"{ref_s:.0f} s to score {len(held)} held-out pairs, {gen_s:.0f} s generate; "
                    f"invented {per[arm][-1]['invented']:.3f}, accuracy "
                    f"{per[arm][-1]['accuracy']:.3f}; held-out reward accuracy "
                    f"{m['reward_accuracy']:.3f} (sft logp accuracy {m['sft_logp_accuracy']:.3f})")
                del tr
    arms = [_arm_row(name, len(sft_rows) if name == "sft" else len(pairs), 0, ps)
            for name, ps in per.items()]
    for a in arms:
        a["invented_ci"] = [round(x, 4) for x in bootstrap_ci(_invented_flags(a["per_seed"]))]
    delta = bootstrap_ci(_invented_flags(per["sft"]), _invented_flags(per["sft+dpo"]),
                         paired_delta=True)
    acc_delta = bootstrap_ci(*[[float(v["accurate"]) for s in per[k] for v in s["per_note"]]
                               for k in ("sft", "sft+dpo")], paired_delta=True)
    deltas = {}
    for arm, _ in dpo_arms[1:]:
        deltas[arm] = {
            "invented_vs_sft": [round(x, 4) for x in bootstrap_ci(
                _invented_flags(per["sft"]), _invented_flags(per[arm]), paired_delta=True)],
            "accuracy_vs_sft": [round(x, 4) for x in bootstrap_ci(
                *[[float(v["accurate"]) for s in per[k] for v in s["per_note"]]
                  for k in ("sft", arm)], paired_delta=True)],
            "accuracy_vs_dpo": [round(x, 4) for x in bootstrap_ci(
                *[[float(v["accurate"]) for s in per[k] for v in s["per_note"]]
                  for k in ("sft+dpo", arm)], paired_delta=True)]}
    report = {"base_model": base, "seeds": seeds, "n_eval": len(items), "n_pairs": len(pairs),
              "pair_edits": {k: sum(p["edit"] == k for p in pairs)
                             for k in sorted({p["edit"] for p in pairs})},
              "n_held_pairs": len(held), "budget": dict(
                  sft_steps=sft_steps, dpo_steps=dpo_steps, batch_size=batch_size,
                  dpo_batch_size=dpo_batch_size, lr=lr, max_new_tokens=max_new_tokens,
                  threads=threads),
              "arms": arms, "preference": pref,
              "delta_invented_dpo_vs_sft": round(arms[1]["invented"] - arms[0]["invented"], 4),
              "delta_invented_ci": [round(x, 4) for x in delta],
              "delta_accuracy_ci": [round(x, 4) for x in acc_delta],
              "rpo_deltas": deltas,
              "ci_method": "95% percentile bootstrap over the held-out notes (a note's value is "
                           "its mean over seeds; the delta is paired on the same notes)",
              "seconds": round(time.perf_counter() - t_all),
              "eval": [{k: it[k] for k in ("id", "note", "reference", "claim_type")}
                       for it in items]}
    print(f"\nSFT alone vs SFT + DPO on {base.split('/')[-1]}: {len(items)} held-out notes, "
          f"{seeds} seeds, {len(pairs)} counterfactual pairs")
    print(f"{'arm':<9}{'invented':>9}{'95% CI':>18}{'accuracy':>10}{'95% CI':>18}{'ROUGE-L':>9}"
          f"{'type':>6}{'amt':>6}{'date':>6}{'who':>6}{'s/step':>8}")
    for a in arms:
        ci, aci = a["invented_ci"], a["ci"]
        sps = sum(s["seconds_per_step"] for s in a["per_seed"]) / len(a["per_seed"])
        print(f"{a['name']:<9}{a['invented']:>9.3f}{f'[{ci[0]:.3f}, {ci[1]:.3f}]':>18}"
              f"{a['accuracy']:>10.3f}{f'[{aci[0]:.3f}, {aci[1]:.3f}]':>18}{a['rouge_l']:>9.3f}"
              f"{a['claim_type_stated']:>6.2f}{a['amount_stated']:>6.2f}{a['date_stated']:>6.2f}"
              f"{a['claimant_stated']:>6.2f}{sps:>8.1f}")
    print(f"delta invented (sft+dpo - sft): {report['delta_invented_dpo_vs_sft']:+.3f} "
          f"{report['delta_invented_ci']}; delta accuracy CI {report['delta_accuracy_ci']}")
    for arm, d in deltas.items():
        print(f"{arm}: invented vs sft CI {d['invented_vs_sft']}; accuracy vs sft CI "
              f"{d['accuracy_vs_sft']}, vs sft+dpo CI {d['accuracy_vs_dpo']}")
    for m in pref:
        print(f"seed {m['seed']} {m['arm']}: held-out pairs reward accuracy "
              f"{m['reward_accuracy']:.3f} "
              f"(margin {m['reward_margin']:.3f}); logp accuracy {m['sft_logp_accuracy']:.3f} -> "
              f"{m['logp_accuracy']:.3f}")
    print(f"{report['seconds']} s in all")
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=700, help="counterfactuals to make")
    ap.add_argument("--dpo-steps", type=int, default=None,
                    help="dpo steps (default: the dpo head's one epoch; --sft-dpo: 8)")
    ap.add_argument("--gen", type=int, default=32, help="generator prompts")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--pays", action="store_true", help="only the 'does synthetic data pay' study")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--per-class", type=int, default=30)
    ap.add_argument("--scarce", type=int, default=20)
    ap.add_argument("--model", default="static", help="embedding model of the probe")
    ap.add_argument("--sft-dpo", action="store_true",
                    help="only SFT alone vs SFT + DPO on the packaged SmolLM2 (slow on CPU)")
    ap.add_argument("--sft-steps", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=4, help="sft batch (--sft-dpo)")
    ap.add_argument("--dpo-batch-size", type=int, default=2)
    ap.add_argument("--lr", type=float, default=2e-3, help="sft learning rate (--sft-dpo)")
    ap.add_argument("--dpo-lr", type=float, default=None, help="default: the dpo head's")
    ap.add_argument("--beta", type=float, default=None, help="default: the dpo head's")
    ap.add_argument("--max-eval", type=int, default=30)
    ap.add_argument("--max-held", type=int, default=16,
                    help="held-out counterfactual pairs scored before/after DPO (--sft-dpo)")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--pairs", type=int, default=400, help="counterfactuals to make (--sft-dpo)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--corrections", action="store_true",
                    help="only DPO on the tiny Llama trained on counterfactual pairs vs "
                         "counterfactual + reviewer-correction pairs, scored on both")
    ap.add_argument("--rpo", type=float, default=0.0,
                    help="--sft-dpo: also an arm with this weight of the SFT loss added to DPO "
                         "(RPO, the dpo head's dpo_sft_weight)")
    ap.add_argument("--base-model", default=None,
                    help="--sft-dpo: default smollm2-135m; --corrections: default the tiny Llama")
    ap.add_argument("--out", help="write the --sft-dpo report (with every generation) here")
    args = ap.parse_args()
    args.seeds_set = "--seeds" in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.create(Path(tmp) / "ws")
        load_sample(ws)
        if args.sft_dpo:
            report = sft_then_dpo(ws, seeds=args.seeds, sft_steps=args.sft_steps,
                                  dpo_steps=args.dpo_steps or 8, batch_size=args.batch_size,
                                  dpo_batch_size=args.dpo_batch_size, lr=args.lr,
                                  dpo_lr=args.dpo_lr, beta=args.beta, max_eval=args.max_eval,
                                  max_new_tokens=args.max_new_tokens, n_pairs=args.pairs,
                                  threads=args.threads,
                                  base_model=args.base_model or "smollm2-135m",
                                  max_held=args.max_held, rpo=args.rpo)
            if args.out:
                Path(args.out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
            return
        if args.pays:
            does_synthetic_pay(ws, args.seeds, args.per_class, args.scarce, args.model)
            return
        run_labeling(ws, LabelConfig(scheme="summary_quality"))
        if args.corrections:
            report = dpo_with_corrections(
                ws, args.n, args.seeds, args.base_model,
                args.dpo_steps, args.dpo_lr, args.dpo_batch_size if args.dpo_steps else 8)
            if args.out:
                Path(args.out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
            return
        catch_rates(ws, args.n)
        if not args.skip_train:
            dpo_vs_sft(ws, args.n, args.dpo_steps, args.seeds if args.seeds_set else 1,
                       args.dpo_lr)
        generator(ws, args.gen)


if __name__ == "__main__":
    main()
