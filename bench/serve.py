"""Micro-models on the sample: routing accuracy, served latency and throughput, adapter memory.

    .venv/bin/python bench/serve.py [--records 400] [--threads 2] [--requests 8]
    .venv/bin/python bench/serve.py --routing-only          # the router alone, no training
    .venv/bin/python bench/serve.py --base-model smollm2-135m --clients 1,4   # the real base
    .venv/bin/python bench/serve.py --base-model smollm2-135m --scores 16 --no-load \
        --batch-size 4 --out bench/results/serve_scores_smollm2-135m_cpu.json  # task scores only

Builds three task adapters on the sample claim notes, as a user would with `curate train`:
  claim_type-classifier   the claim-type classifier (MiniLM + LoRA, classification export)
  summary_quality-sft     the summary SFT adapter (the workspace's tiny Llama + LoRA, chat export)
  extraction-sft          extracting the claimed amount and state as JSON (derived from the notes)
(`--base-model` puts the two SFT adapters on another base, e.g. the pretrained smollm2-135m),
then trains the router on their exports' prompts and reports:
  - routing accuracy on the exports' held-out (eval) prompts, per task, and the confusion
    (`--routing-only`: only this, for each router feature set on one encoding of the prompts,
    with no adapter trained: the router needs only the exports; it also scores the same held-out
    rows under reworded instructions, REWORDED below, which no export contains, and the
    classifier's rows with an instruction added);
  - requests/s and p50/p95 latency through `curate serve` (HTTP, model "auto", 16 new tokens)
    at 1, 4 and 16 concurrent clients;
  - parameter memory of the loaded pool (one LM + one encoder + 3 adapters) vs 3 separate
    models (each its own base), the cost case of one base plus small adapters;
  - with `--scores N`: each task's first N held-out rows answered routed (model auto), by its
    adapter forced, by one SFT adapter trained on all three tasks' train rows mixed (3 x --steps
    steps: the budget of the three together), and by the base with no adapter, each score with
    a 95% bootstrap interval over the rows (`--no-load` skips the load test).
Labels are the sample's raw labels on `--records` notes (as the studio tests' fake labelling
does), so the bench needs no labeling run; the sample's gold-labelled notes (a fifth) are
exported too, since a gold label is a final label, which is why the summary and claim-type
exports are larger than `--records`; training is a few steps (on random-init tiny weights unless
`--base-model`), so the task scores say little beyond "what a few steps buy" (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

EXTRACT = "Extract the claimed amount and the state as JSON."
SUMMARY = "Summarise the claim note in one sentence."
_AMOUNT = re.compile(r"\$\s?([\d,]+(?:\.\d+)?)")
_STATE = re.compile(r",\s*([A-Z]{2})\b")


def note_state(note: str) -> str | None:
    """The note's state code: the first 'Town, ST', else the one state it names in full ('Joliet,
    Illinois'; a fifth of the sample's notes write it so, and without this their truth said null)."""
    from labeling_functions._patterns import state_codes_in

    m = _STATE.search(note)
    if m:
        return m.group(1)
    codes = state_codes_in(note)
    return next(iter(codes)) if len(codes) == 1 else None


def build_workspace(root: Path, n: int):
    """The sample, `n` records labelled, plus `n` derived extraction records; three exports."""
    import yaml

    from pipelines.export import export_dataset
    from pipelines.samples import load_sample
    from pipelines.store import NewRecord, Workspace, iter_records, upsert_record, utcnow
    from pipelines.store.exports import put_label

    ws = Workspace.create(root / "ws")
    load_sample(ws)
    cfg = yaml.safe_load(ws.config_path.read_text())
    cfg["schemes"]["extraction"] = {"classes": ["ACCEPT", "REJECT"]}
    ws.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    classes = set(cfg["schemes"]["claim_type"]["classes"])
    with ws.connect() as conn:
        recs = [r for r in iter_records(conn) if r.prompt and r.raw_label in classes][:n]
    with ws.transaction() as conn:
        for i, r in enumerate(recs):
            put_label(conn, r.id, "claim_type", r.raw_label, 0.99)
            put_label(conn, r.id, "summary_quality", "ACCEPT", 0.99)
            amount = _AMOUNT.search(r.prompt)
            answer = json.dumps({"amount": amount.group(1).replace(",", "") if amount else None,
                                 "state": note_state(r.prompt)})
            rid = f"extract-{r.id}"
            upsert_record(conn, NewRecord(id=rid, kind="instruction", text=f"{EXTRACT}\n{r.prompt}",
                                          prompt=f"{EXTRACT}\n\n{r.prompt}", response=answer,
                                          file="derived", row=i), utcnow())
            put_label(conn, rid, "extraction", "ACCEPT", 0.99)
    versions = {
        # surrogate names, not <PERSON>: the summary scorer checks that the claimant is named
        "summary_quality": export_dataset(ws, scheme="summary_quality", format="chat",
                                          system_prompt=SUMMARY, eval_fraction=0.2,
                                          pii="surrogate").version,
        "claim_type": export_dataset(ws, scheme="claim_type", format="classification",
                                     eval_fraction=0.2).version,
        "extraction": export_dataset(ws, scheme="extraction", format="chat", system_prompt="",
                                     eval_fraction=0.2).version,
    }
    return ws, versions


# Reworded instructions: never in an export, so never seen by the router in training. Each
# held-out row is re-rendered with one of its task's paraphrases (chosen by the row's index) in one
# of four placements, so every paraphrase and placement is tested.
REWORDED = {
    "summary_quality": ["Write a one-sentence summary of this claim note.",
                        "Briefly summarize the insurance claim below.",
                        "tl;dr of this claim in a single sentence, please",
                        "Condense the following adjuster note into one line.",
                        "Give me a short recap of what happened in this claim."],
    "extraction": ["Return the claim amount and the state in JSON format.",
                   "Pull out the dollar amount and the US state; answer with JSON.",
                   "What amount is claimed and in which state? Reply as a JSON object.",
                   "give me amount and state as json for this note",
                   "Parse the money figure and two-letter state code into JSON."],
}
# The claim-type export has no instruction (its text is the note and its summary), so there is
# none to reword: its rows keep the export's form, lower-cased in the fourth placement. A client
# that adds a classification instruction is a different case, measured apart (INSTRUCTED).
INSTRUCTED = ["What type of claim is this?",
              "Classify this claim: collision, water, fire, theft or injury.",
              "Which category does the following claim belong to?",
              "label the claim type of the note below"]
PLACEMENTS = ("system", "first line", "after the content", "lower case")


def reworded_prompt(task: str, content: str, i: int) -> str:
    """Held-out row `i`'s content with a reworded instruction of `task`, as the router sees a
    client's prompt (system and user turns joined by a newline, trainer.router.prompt_text)."""
    options = INSTRUCTED if task == "instructed" else REWORDED.get(task, [""])
    instr = options[i % len(options)]
    place = PLACEMENTS[(i // len(options)) % len(PLACEMENTS)]
    if place == "lower case":
        return f"{instr}\n{content}".strip().lower()
    if not instr:
        return content
    if place == "after the content":
        return f"{content}\n\n{instr}"
    return f"{instr}\n{content}" if place == "system" else f"{instr}\n\n{content}"


def reworded_set(ws, versions) -> dict[str, list[str]]:
    """{adapter name: reworded held-out prompts} from each export's eval split: the content a
    client sends (the note; the classifier's note and summary) under an unseen instruction."""
    from pipelines.export import read_split

    out = {}
    for scheme, version in versions.items():
        rows, content = read_split(ws, version, "eval"), []
        for r in rows:
            if scheme == "claim_type":
                content.append(r["text"])
            else:   # the user turn without the export's instruction
                user = next(m["content"] for m in r["messages"] if m["role"] == "user")
                content.append(user.removeprefix(EXTRACT).strip())
        out[adapter_name(scheme, version)] = [reworded_prompt(scheme, c, i)
                                              for i, c in enumerate(content)]
    return out


def router_l2(features: str, l2: float | None) -> float:
    from trainer.router import RouterConfig

    return RouterConfig(features=features, l2=l2).l2


def by_instruction(router, reworded: dict[str, list[str]]) -> dict[str, float]:
    """Routing accuracy of the reworded prompts per (task, instruction): which paraphrases fail."""
    out = {}
    for name, prompts in reworded.items():
        task = name.split("-")[0]
        options = REWORDED.get(task, [""])
        routes = router.route(prompts)
        for k, instr in enumerate(options):
            mine = [r.best == name for i, r in enumerate(routes) if i % len(options) == k]
            out[f"{task}: {instr or '(none: the export form)'}"] = round(sum(mine) / len(mine), 3)
    return out


def adapter_name(scheme: str, version: str) -> str:
    """The registry's name of the adapter trained on an export here (trainer.registry)."""
    return f"{scheme}-{'classifier' if scheme == 'claim_type' else 'sft'}-{version}"


def run_facts(run: dict) -> dict:
    """What one `train()` run saw: optimizer steps, examples per step, train rows, how many
    examples went through (steps x batch: below the train rows, not even one epoch), seconds."""
    import yaml

    path = Path(run["path"])
    cfg = yaml.safe_load((path / "config.yaml").read_text()) or {}
    events = [json.loads(x) for x in (path / "events.jsonl").read_text().splitlines() if x.strip()]
    start = next((e for e in events if e["event"] == "start"), {})
    chosen = next((e["chosen"] for e in events if e["event"] == "defaults"), {})
    batch = cfg.get("batch_size") or chosen.get("batch_size", {}).get("value")
    end = next((e for e in events if e["event"] == "end"), {})
    return {"steps": run["steps"], "batch_size": batch, "n_train": start.get("n_train"),
            "examples_seen": run["steps"] * batch if batch else None,
            "seconds": end.get("seconds")}


def train_adapters(ws, versions, steps: int, base_model: str | None = None,
                   eval_max: int = 200, batch_size: int | None = None) -> dict:
    """Train the three task adapters; {adapter name: run_facts}."""
    from trainer import TrainConfig, train

    facts = {}
    for scheme, version in versions.items():
        head = "classifier" if scheme == "claim_type" else "sft"
        extra = {"base_model": base_model} if base_model and head == "sft" else {}
        if batch_size and head == "sft":
            extra["batch_size"] = batch_size
        run = train(ws, version, TrainConfig(head=head, max_steps=steps, generations=0,
                                             save_steps=10_000, learning_rate=5e-3,
                                             eval_max_examples=eval_max, **extra),
                    progress=False, echo=lambda *_: None)
        facts[adapter_name(scheme, version)] = run_facts(run)
        print(f"  {adapter_name(scheme, version)}: {facts[adapter_name(scheme, version)]}",
              flush=True)
    return facts


def routing_only(ws, versions, args) -> dict:
    """Fit and evaluate the router for each feature set on the exports' prompts, embedding them
    once; nothing is trained but the router. Each router is scored on the exports' held-out
    prompts (the task's own instruction) and on the same rows under reworded instructions."""
    from types import SimpleNamespace

    import numpy as np

    from pipelines.embed import encode_texts
    from trainer.router import (FEATURES, RouterConfig, evaluate_router, fit_router,
                                prompt_lines, task_prompts)

    prompts = {}
    for scheme, version in versions.items():
        name = adapter_name(scheme, version)
        prompts[name] = task_prompts(ws, SimpleNamespace(name=name, export=version))
    reworded = reworded_set(ws, versions)
    rew = [p for ps in reworded.values() for p in ps]
    rew_truth = [m for m, ps in reworded.items() for _ in ps]
    # every string any feature set embeds (whole prompts and their lines), encoded once
    classifier = adapter_name("claim_type", versions["claim_type"])
    instructed = [reworded_prompt("instructed", p, i) for i, p in enumerate(prompts[classifier][1])]
    texts = [p for tr, ho in prompts.values() for p in tr + ho] + rew + instructed
    unique = sorted(set(texts) | {ln for t in texts for ln in prompt_lines(t)})
    t0 = time.perf_counter()
    vectors = dict(zip(unique, encode_texts(unique)))
    print(f"embedded {len(unique)} prompts and lines of {len(texts) - len(rew) - len(instructed)} "
          f"export, {len(rew)} reworded and {len(instructed)} instructed prompts: "
          f"{time.perf_counter() - t0:.0f} s")

    def cached(batch):
        return np.array([vectors[t] for t in batch])

    out = {}
    features = args.features.split(",") if args.features else FEATURES
    for feats in features:
        router, ev = fit_router(prompts, RouterConfig(threshold=0.5, features=feats, l2=args.l2),
                                encode=cached)
        rev = evaluate_router(router, rew, rew_truth)
        out[feats] = {"l2": router_l2(feats, args.l2), "held_out": ev, "reworded": rev,
                      "reworded_by_instruction": by_instruction(router, reworded)}
        for label, e in (("held-out", ev), ("reworded", rev)):
            print(f"\n[{feats}] routing accuracy on {e['n']} {label} prompts: {e['accuracy']} "
                  f"(fallback rate at 0.5: {e['fallback_rate']}; accuracy where routed: "
                  f"{e['confident_accuracy']})")
            for task, t in e["per_task"].items():
                print(f"  {task:<32} n {t['n']:>4}  accuracy {t['accuracy']}")
            print("  confusion (rows true, columns routed):", e["confusion"])
        routed = [r.best for r in router.route(instructed)]
        out[feats]["instructed_classifier"] = {
            "n": len(routed), "accuracy": round(routed.count(classifier) / len(routed), 4),
            "routed": {m: routed.count(m) for m in router.labels}}
        print(f"  classifier prompts with an added instruction: "
              f"{out[feats]['instructed_classifier']}")
        print("  reworded, by instruction:")
        for instr, acc in out[feats]["reworded_by_instruction"].items():
            print(f"    {acc:.3f}  {instr}")
    return out


def train_mixed(ws, versions, steps: int, base_model: str | None, eval_max: int,
                batch_size: int | None = None) -> tuple[str, dict]:
    """One SFT adapter on every task's train rows mixed (the classifier's as text -> label), as
    the alternative to one adapter per task; returns its registry name and run_facts. Only
    train-split rows go in, so no task's held-out row is trained on. The instruction is the user turn's first line
    (an export has one system prompt, and the three tasks differ by it)."""
    from pipelines.export import export_dataset, read_split
    from pipelines.store import NewRecord, upsert_record, utcnow
    from pipelines.store.exports import put_label
    from trainer import TrainConfig, train

    import yaml

    cfg = yaml.safe_load(ws.config_path.read_text())
    cfg["schemes"]["mixed"] = {"classes": ["ACCEPT", "REJECT"]}
    ws.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    with ws.transaction() as conn:
        for scheme, version in versions.items():
            for i, r in enumerate(read_split(ws, version, "train")):
                if scheme == "claim_type":
                    prompt, answer = r["text"], r["label"]
                else:
                    msgs = {m["role"]: m["content"] for m in r["messages"]}
                    prompt = "\n\n".join(x for x in (msgs.get("system"), msgs["user"]) if x)
                    answer = msgs["assistant"]
                rid = f"mixed-{scheme}-{i}"
                upsert_record(conn, NewRecord(id=rid, kind="instruction", text=f"{prompt}\n{answer}",
                                              prompt=prompt, response=answer, file="mixed", row=i),
                              utcnow())
                put_label(conn, rid, "mixed", "ACCEPT", 0.99)
    version = export_dataset(ws, scheme="mixed", format="chat", system_prompt="",
                             eval_fraction=0.1).version
    extra = {"base_model": base_model} if base_model else {}
    if batch_size:
        extra["batch_size"] = batch_size
    run = train(ws, version, TrainConfig(head="sft", max_steps=steps, generations=0,
                                         save_steps=10_000, learning_rate=5e-3,
                                         eval_max_examples=eval_max, **extra),
                progress=False, echo=lambda *_: None)
    return adapter_name("mixed", version), run_facts(run)


def _json_fields(text: str) -> dict:
    m = re.search(r"\{.*?\}", text, re.S)
    try:
        got = json.loads(m.group(0)) if m else {}
    except ValueError:
        got = {}
    return got if isinstance(got, dict) else {}


# New tokens per answer when scoring: a label and a two-field JSON object are short, so their
# tasks stop there rather than generating --score-tokens of nothing (a generator that does not
# stop on its own would otherwise spend most of the scoring time after the answer).
SCORE_TOKENS = {"claim_type": 8, "extraction": 24}


def _ci(values: list[float]) -> list[float]:
    """95% percentile bootstrap interval over rows of the mean (curate.roi.sft's, seeded)."""
    from curate.roi.sft import bootstrap_ci

    return [round(x, 4) for x in bootstrap_ci(values)]


def _macro_f1_ci(truth: list[str], pred: list[str], classes: list[str],
                 resamples: int = 2000) -> list[float]:
    """95% percentile bootstrap interval of macro-F1 over rows (rows resampled in pairs)."""
    import numpy as np

    from pipelines.metrics import macro_f1

    rng = np.random.default_rng(0)
    n = len(truth)
    vals = []
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        vals.append(macro_f1([truth[i] for i in idx], [pred[i] for i in idx], classes))
    return [round(float(np.percentile(vals, 2.5)), 4), round(float(np.percentile(vals, 97.5)), 4)]


def score_rows(scheme: str, rows: list[dict], answers: list[str], classes: list[str]) -> dict:
    """One task's score of `answers` to its held-out `rows`, with 95% bootstrap intervals over
    the rows. Classifier: accuracy and macro-F1 of the label (a generator's answer counts when it
    starts with the label); summary: curate.roi.summary_score (all four facts, nothing invented)
    and ROUGE-L against the reference; extraction: exact match of the amount and state fields."""
    from curate.roi.summary_score import score_summary, summary_accuracy
    from pipelines.metrics import classification_report

    if scheme == "claim_type":
        truth = [r["label"] for r in rows]
        pred = [next((c for c in classes if a.lower().startswith(c.lower())), "(none)")
                for a in answers]
        rep = classification_report(truth, pred, classes).to_dict()
        return {"accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"],
                "accuracy_ci": _ci([float(t == p) for t, p in zip(truth, pred)]),
                "macro_f1_ci": _macro_f1_ci(truth, pred, classes)}
    if scheme == "summary_quality":
        scores = [score_summary(
            next(m["content"] for m in r["messages"] if m["role"] == "user"), a,
            reference=next(m["content"] for m in r["messages"] if m["role"] == "assistant"))
            for r, a in zip(rows, answers)]
        out = summary_accuracy(scores)
        out["accuracy_ci"] = _ci([float(s.accurate) for s in scores])
        out["rouge_l_ci"] = _ci([s.rouge_l or 0.0 for s in scores])
        return out
    truth = [json.loads(next(m["content"] for m in r["messages"] if m["role"] == "assistant"))
             for r in rows]
    got = [_json_fields(a) for a in answers]
    # a field counts only when the answer states it: a note with no state has truth null, and an
    # answer with no JSON at all must not match it (str(None) == str(None))
    hits = {k: [float(k in g and str(g[k]) == str(t[k])) for g, t in zip(got, truth)]
            for k in ("amount", "state")}
    hits["both"] = [a * b for a, b in zip(hits["amount"], hits["state"])]
    out = {}
    for k, v in hits.items():
        out[f"{k}_exact"] = round(sum(v) / len(v), 4)
        out[f"{k}_exact_ci"] = _ci(v)
    out["parsed"] = round(sum(bool(g) for g in got) / len(got), 4)
    return out


def task_scores(service, ws, versions, mixed: str, n: int, max_tokens: int) -> dict:
    """Each task's first `n` held-out rows answered four ways through the service (no HTTP):
    routed (model auto), the task's adapter forced, the mixed adapter, the base (no adapter),
    scored by `score_rows`. The mixed adapter gets each prompt as it was trained on it (one user
    turn: the export's system prompt, a blank line, the user turn)."""
    from pipelines.export import read_split

    out = {}
    for scheme, version in versions.items():
        rows = read_split(ws, version, "eval")[:n]
        classes = sorted({r["label"] for r in read_split(ws, version, "train")}) \
            if scheme == "claim_type" else []
        own = adapter_name(scheme, version)
        tokens = min(max_tokens, SCORE_TOKENS.get(scheme, max_tokens))
        for way, model in (("routed", "auto"), ("forced", own), ("mixed", mixed), ("base", "base")):
            answers, routed_to = [], []
            t0 = time.perf_counter()
            for r in rows:
                if scheme == "claim_type":
                    msgs = [{"role": "user", "content": r["text"]}]
                else:
                    msgs = [m for m in r["messages"] if m["role"] != "assistant"]
                if model == mixed and scheme != "claim_type":   # mixed trained with it inline
                    msgs = [{"role": "user", "content": "\n\n".join(m["content"] for m in msgs
                                                                      if m["content"])}]
                reply = service.chat({"model": model, "messages": msgs, "max_tokens": tokens})
                answers.append(reply["choices"][0]["message"]["content"].strip())
                routed_to.append(reply["routing"]["model"])
            score = score_rows(scheme, rows, answers, classes)
            score["n"] = len(rows)
            score["max_tokens"] = tokens
            score["seconds"] = round(time.perf_counter() - t0)
            score["routed_to_own"] = round(routed_to.count(own) / len(rows), 4) if rows else None
            score["answers"] = answers   # whole, so that --rescore scores what was generated
            out.setdefault(scheme, {})[way] = score
            print(f"  {scheme:<16} {way:<7} "
                  f"{json.dumps({k: v for k, v in score.items() if k != 'answers'})}", flush=True)
    return out


def rescore(ws, versions, path: str) -> dict:
    """Score the answers a `--scores` run saved in `path` again, against the held-out rows as
    this bench derives them now (the workspace is rebuilt from the same sample and --records, so
    the rows are the same; only the extraction truth's state can differ, see note_state)."""
    from pipelines.export import read_split

    saved = json.loads(Path(path).read_text())
    out = {}
    for scheme, ways in saved["scores"].items():
        version = versions[scheme]
        classes = sorted({r["label"] for r in read_split(ws, version, "train")}) \
            if scheme == "claim_type" else []
        for way, s in ways.items():
            rows = read_split(ws, version, "eval")[:s["n"]]
            score = {**score_rows(scheme, rows, s["answers"], classes), "n": s["n"]}
            out.setdefault(scheme, {})[way] = score
            print(f"  {scheme:<16} {way:<7} {json.dumps(score)}", flush=True)
    saved["scores_rescored"] = out
    Path(path).write_text(json.dumps(saved, indent=1) + "\n")
    return out


def load_clients(url: str, prompts: list[str], clients: int, per_client: int) -> dict:
    """`clients` threads, each sending `per_client` chat requests (model auto) in turn."""
    from openai import OpenAI

    latencies: list[float] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        client = OpenAI(base_url=url + "/v1", api_key="local", max_retries=3)
        for j in range(per_client):
            p = prompts[(k * per_client + j) % len(prompts)]
            t0 = time.perf_counter()
            client.chat.completions.create(model="auto", max_tokens=16,
                                           messages=[{"role": "user", "content": p}])
            with lock:
                latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    # quantiles needs two points; with one, its latency is every percentile
    p95 = statistics.quantiles(latencies, n=20)[18] if len(latencies) > 1 else latencies[0]
    return {"clients": clients, "requests": len(latencies), "req_per_s": round(len(latencies) / wall, 2),
            "p50_ms": round(statistics.median(latencies) * 1000), "p95_ms": round(p95 * 1000)}


def memory(pool) -> dict:
    """Parameter bytes of the pool vs one full model per adapter."""
    shared, separate = 0, 0
    for group in ([pool.lm] if pool.lm else []) + list(pool.encoders.values()):
        params = list(group.model.named_parameters())
        total = sum(p.numel() * p.element_size() for _, p in params)
        per = {n: sum(p.numel() * p.element_size() for k, p in params if f".{n}." in k)
               for n in group.adapters}
        base = total - sum(per.values())
        shared += total
        separate += sum(base + b for b in per.values())
    return {"adapters": len(pool.names), "pool_mib": round(shared / 2**20, 1),
            "separate_mib": round(separate / 2**20, 1), "ratio": round(separate / shared, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=400,
                    help="notes labelled per task (plus the gold-labelled ones)")
    ap.add_argument("--steps", type=int, default=10, help="training steps per adapter")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--requests", type=int, default=8, help="requests per client")
    ap.add_argument("--eval-max", type=int, default=200,
                    help="eval examples of each run's before/after evaluation (TrainConfig "
                         "eval_max_examples; fewer is faster on a big base)")
    ap.add_argument("--clients", default="1,4,16", help="concurrent clients, comma-separated")
    ap.add_argument("--no-load", action="store_true",
                    help="skip the load test (requests/s, latency); routing, memory and "
                         "--scores still run")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="examples per step of the SFT adapters and the mixed one (default: "
                         "TrainConfig's, 8); the classifier keeps its own")
    ap.add_argument("--base-model", default=None,
                    help="base of the SFT adapters (e.g. smollm2-135m); default: the tiny Llama")
    ap.add_argument("--routing-only", action="store_true",
                    help="only the router's accuracy, per feature set; no adapter is trained")
    ap.add_argument("--scores", type=int, default=0,
                    help="also score each task's first N held-out rows routed, forced, with one "
                         "adapter trained on all tasks mixed, and with the base (0: skip)")
    ap.add_argument("--score-tokens", type=int, default=48,
                    help="new tokens per answer when scoring (the summary's; the label and the "
                         "JSON answers get at most SCORE_TOKENS)")
    ap.add_argument("--rescore", default=None, metavar="JSON",
                    help="score the answers saved by a --scores run again (same --records), "
                         "adding scores_rescored to that file; nothing is trained or generated")
    ap.add_argument("--l2", type=float, default=None,
                    help="--routing-only: the routers' L2 penalty (default: each feature set's)")
    ap.add_argument("--features", default=None,
                    help="--routing-only: router feature sets to compare, comma-separated "
                         "(default: all of trainer.router.FEATURES)")
    ap.add_argument("--out", default=None,
                    help="default: bench/results/serve_cpu.json (serve_routing_cpu.json with "
                         "--routing-only, serve_<base>_cpu.json with --base-model)")
    args = ap.parse_args()
    clients = [int(c) for c in args.clients.split(",") if c.strip()]
    if args.out is None:
        args.out = ("bench/results/serve_routing_cpu.json" if args.routing_only else
                    f"bench/results/serve_{args.base_model}_cpu.json" if args.base_model else
                    "bench/results/serve_cpu.json")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from curate.serve import ModelService, ServeConfig, serve_in_thread
    from trainer.registry import list_models
    from trainer.router import RouterConfig, task_prompts, train_router

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ws, versions = build_workspace(Path(tmp), args.records)
        print(f"sample and 3 exports: {time.perf_counter() - t0:.0f} s")
        if args.rescore:
            rescore(ws, versions, args.rescore)
            print(f"-> {args.rescore}")
            return
        if args.routing_only:
            result = {"records": args.records, "threads": torch.get_num_threads(),
                      "routing": routing_only(ws, versions, args)}
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
            print(f"-> {args.out}")
            return
        runs = train_adapters(ws, versions, args.steps, args.base_model, args.eval_max,
                              args.batch_size)
        setup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, entry = train_router(ws, RouterConfig(threshold=0.5))
        router_s = time.perf_counter() - t0
        ev = entry.evaluation
        print(f"setup (sample, 3 exports, 3 adapters): {setup_s:.0f} s; router fit: {router_s:.0f} s")
        print(f"routing accuracy on {ev['n']} held-out prompts: {ev['accuracy']} "
              f"(fallback rate at 0.5: {ev['fallback_rate']})")
        for task, t in ev["per_task"].items():
            print(f"  {task:<32} n {t['n']:>4}  accuracy {t['accuracy']}")
        print("  confusion (rows true, columns routed):", ev["confusion"])

        cfg = ServeConfig(port=0, max_queue=64, max_tokens=16)
        service = ModelService.from_workspace(ws, cfg)
        server, url = serve_in_thread(service, cfg)
        held = [p for e in list_models(ws, kind="adapter") for p in task_prompts(ws, e)[1]]
        rows = []
        if not args.no_load:
            load_clients(url, held, 1, 2)   # warm-up
            rows = [load_clients(url, held, c, args.requests) for c in clients]
        server.shutdown()
        if rows:
            print(f"\n{'clients':>8}{'requests':>10}{'req/s':>8}{'p50 ms':>8}{'p95 ms':>8}")
        for r in rows:
            print(f"{r['clients']:>8}{r['requests']:>10}{r['req_per_s']:>8}{r['p50_ms']:>8}"
                  f"{r['p95_ms']:>8}")
        mem = memory(service.pool)
        print(f"\nparameters: {mem['adapters']} adapters on shared bases {mem['pool_mib']} MiB vs "
              f"{mem['adapters']} separate models {mem['separate_mib']} MiB "
              f"({mem['ratio']}x)")
        result = {"records": args.records, "threads": torch.get_num_threads(),
                  "steps": args.steps, "eval_max": args.eval_max, "batch_size": args.batch_size,
                  "base_model": args.base_model or "tiny-llama",
                  "routing": ev, "runs": runs, "load": rows, "memory": mem,
                  "setup_s": round(setup_s),
                  "router_s": round(router_s)}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
        print(f"-> {args.out}")
        if args.scores:
            # the mixed adapter gets the three adapters' steps together (same budget as the sum);
            # trained after the router, which routes between the three task adapters only
            t0 = time.perf_counter()
            mixed, result["runs"]["mixed"] = train_mixed(ws, versions, 3 * args.steps,
                                                         args.base_model, args.eval_max,
                                                         args.batch_size)
            print(f"  {mixed}: {result['runs']['mixed']}", flush=True)
            print(f"\nmixed adapter ({3 * args.steps} steps): {time.perf_counter() - t0:.0f} s; "
                  f"each task's first {args.scores} held-out rows four ways:")
            service = ModelService.from_workspace(ws, ServeConfig(max_tokens=args.score_tokens),
                                                  log=False)
            t0 = time.perf_counter()
            result["scores"] = task_scores(service, ws, versions, mixed, args.scores,
                                           args.score_tokens)
            result["scores_s"], result["mixed_steps"] = round(time.perf_counter() - t0), 3 * args.steps
            Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
            print(f"-> {args.out}")


if __name__ == "__main__":
    main()
