"""Micro-models on the sample: routing accuracy, served latency and throughput, adapter memory.

    .venv/bin/python bench/serve.py [--records 400] [--threads 2] [--requests 8]
    .venv/bin/python bench/serve.py --routing-only          # the router alone, no training
    .venv/bin/python bench/serve.py --base-model smollm2-135m --clients 1,4   # the real base

Builds three task adapters on the sample claim notes, as a user would with `curate train`:
  claim_type-classifier   the claim-type classifier (MiniLM + LoRA, classification export)
  summary_quality-sft     the summary SFT adapter (the workspace's tiny Llama + LoRA, chat export)
  extraction-sft          extracting the claimed amount and state as JSON (derived from the notes)
(`--base-model` puts the two SFT adapters on another base, e.g. the pretrained smollm2-135m),
then trains the router on their exports' prompts and reports:
  - routing accuracy on the exports' held-out (eval) prompts, per task, and the confusion
    (`--routing-only`: only this, for each router feature set on one encoding of the prompts,
    with no adapter trained: the router needs only the exports);
  - requests/s and p50/p95 latency through `curate serve` (HTTP, model "auto", 16 new tokens)
    at 1, 4 and 16 concurrent clients;
  - parameter memory of the loaded pool (one LM + one encoder + 3 adapters) vs 3 separate
    models (each its own base), the cost case of one base plus small adapters.
Labels are the sample's raw labels on `--records` notes (as the studio tests' fake labelling
does), so the bench needs no labeling run; the sample's gold-labelled notes (a fifth) are
exported too, since a gold label is a final label, which is why the summary and claim-type
exports are larger than `--records`; training is a few steps (on random-init tiny weights unless
`--base-model`), so the adapters' task scores mean nothing here and are not reported (see
docs/serving.md).
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
            amount, state = _AMOUNT.search(r.prompt), _STATE.search(r.prompt)
            answer = json.dumps({"amount": amount.group(1).replace(",", "") if amount else None,
                                 "state": state.group(1) if state else None})
            rid = f"extract-{r.id}"
            upsert_record(conn, NewRecord(id=rid, kind="instruction", text=f"{EXTRACT}\n{r.prompt}",
                                          prompt=f"{EXTRACT}\n\n{r.prompt}", response=answer,
                                          file="derived", row=i), utcnow())
            put_label(conn, rid, "extraction", "ACCEPT", 0.99)
    versions = {
        "summary_quality": export_dataset(ws, scheme="summary_quality", format="chat",
                                          system_prompt=SUMMARY, eval_fraction=0.2).version,
        "claim_type": export_dataset(ws, scheme="claim_type", format="classification",
                                     eval_fraction=0.2).version,
        "extraction": export_dataset(ws, scheme="extraction", format="chat", system_prompt="",
                                     eval_fraction=0.2).version,
    }
    return ws, versions


def train_adapters(ws, versions, steps: int, base_model: str | None = None,
                   eval_max: int = 200) -> None:
    from trainer import TrainConfig, train

    for scheme, version in versions.items():
        head = "classifier" if scheme == "claim_type" else "sft"
        extra = {"base_model": base_model} if base_model and head == "sft" else {}
        train(ws, version, TrainConfig(head=head, max_steps=steps, generations=0, save_steps=10_000,
                                       learning_rate=5e-3, eval_max_examples=eval_max, **extra),
              progress=False, echo=lambda *_: None)


def routing_only(ws, versions, args) -> dict:
    """Fit and evaluate the router for each feature set on the exports' prompts, embedding them
    once; nothing is trained but the router."""
    from types import SimpleNamespace

    import numpy as np

    from pipelines.embed import encode_texts
    from trainer.router import FEATURES, RouterConfig, fit_router, task_prompts

    heads = {"claim_type": "classifier"}
    prompts = {}
    for scheme, version in versions.items():
        name = f"{scheme}-{heads.get(scheme, 'sft')}-{version}"
        prompts[name] = task_prompts(ws, SimpleNamespace(name=name, export=version))
    train = [p for tr, _ in prompts.values() for p in tr]
    held = [p for _, ho in prompts.values() for p in ho]
    t0 = time.perf_counter()
    emb = encode_texts(train + held)
    embedded = {"train": emb[:len(train)], "held": emb[len(train):]}
    print(f"embedded {len(train)} train + {len(held)} held-out prompts: "
          f"{time.perf_counter() - t0:.0f} s")
    out = {}
    for features in FEATURES:
        _, ev = fit_router(prompts, RouterConfig(threshold=0.5, features=features),
                           encode=lambda texts: np.zeros((len(texts), 0)), embedded=embedded)
        out[features] = ev
        print(f"\n[{features}] routing accuracy on {ev['n']} held-out prompts: {ev['accuracy']} "
              f"(fallback rate at 0.5: {ev['fallback_rate']}; accuracy where routed: "
              f"{ev['confident_accuracy']})")
        for task, t in ev["per_task"].items():
            print(f"  {task:<32} n {t['n']:>4}  accuracy {t['accuracy']}")
        print("  confusion (rows true, columns routed):", ev["confusion"])
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
    q = statistics.quantiles(latencies, n=20)
    return {"clients": clients, "requests": len(latencies), "req_per_s": round(len(latencies) / wall, 2),
            "p50_ms": round(statistics.median(latencies) * 1000), "p95_ms": round(q[18] * 1000)}


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
    ap.add_argument("--base-model", default=None,
                    help="base of the SFT adapters (e.g. smollm2-135m); default: the tiny Llama")
    ap.add_argument("--routing-only", action="store_true",
                    help="only the router's accuracy, per feature set; no adapter is trained")
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
        if args.routing_only:
            result = {"records": args.records, "threads": torch.get_num_threads(),
                      "routing": routing_only(ws, versions, args)}
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
            print(f"-> {args.out}")
            return
        train_adapters(ws, versions, args.steps, args.base_model, args.eval_max)
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
        load_clients(url, held, 1, 2)   # warm-up
        rows = [load_clients(url, held, c, args.requests) for c in clients]
        server.shutdown()
        print(f"\n{'clients':>8}{'requests':>10}{'req/s':>8}{'p50 ms':>8}{'p95 ms':>8}")
        for r in rows:
            print(f"{r['clients']:>8}{r['requests']:>10}{r['req_per_s']:>8}{r['p50_ms']:>8}"
                  f"{r['p95_ms']:>8}")
        mem = memory(service.pool)
        print(f"\nparameters: {mem['adapters']} adapters on shared bases {mem['pool_mib']} MiB vs "
              f"{mem['adapters']} separate models {mem['separate_mib']} MiB "
              f"({mem['ratio']}x)")
        result = {"records": args.records, "threads": torch.get_num_threads(),
                  "steps": args.steps, "eval_max": args.eval_max, "base_model": args.base_model or "tiny-llama",
                  "routing": ev, "load": rows, "memory": mem, "setup_s": round(setup_s),
                  "router_s": round(router_s)}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
        print(f"-> {args.out}")


if __name__ == "__main__":
    main()
