"""Curation ROI benchmark: the same micro-model trained on raw vs weakly labelled vs curated data.

    .venv/bin/python bench/roi.py                       # sample data, fresh temp workspace
    .venv/bin/python bench/roi.py --workspace W --scheme claim_type --seeds 3
    .venv/bin/python bench/roi.py --quick               # mechanics only, about a minute

LoRA head on a CPU, on a fixed small budget (the figures in docs/benchmarks.md):
    bench/roi.py --prepare-only build/roi/arms.json
    bench/roi.py --arms build/roi/arms.json --head lora --device cpu --threads 1 --seeds 3 \
        --max-steps 40 --batch-size 16 --max-len 64

SFT secondary table (tiny causal LM, raw vs curated summaries, eval loss on held-out faithful
summaries):
    bench/roi.py --sft [--workspace W] --seeds 3 --sft-steps 100

Split mode (prepare on the CPU box, train where a GPU is):
    bench/roi.py --prepare-only build/roi/arms.json --export-model build/roi/minilm
    bench/roi.py --arms build/roi/arms.json --model build/roi/minilm --device cuda --seeds 5

Prints the per-arm table (accuracy, 95% interval over seeds, macro-F1, n_train, seconds per fit)
and each arm's ratio/delta against the raw arm measured in the same run; --out writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def sample_workspace(root: Path):
    """A fresh workspace with the sample data ingested (as `curate init --sample`)."""
    from pipelines.samples import load_sample
    from pipelines.store import Workspace

    ws = Workspace.create(root)
    load_sample(ws)
    return ws


def export_half_model(out: Path) -> Path:
    """A float16 copy of the packaged encoder (45 MB instead of 90) to carry to another box."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from curate.roi.train import base_model_path

    src = base_model_path()
    AutoModel.from_pretrained(src, dtype=torch.float16).save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    return out


def audit_duplicates(ws, arms, truth_path: Path) -> dict[str, int]:
    """Against the generator's ground truth: of the known (near-)duplicate and hard-negative
    pairs that straddle the gold/training split, how many training sides reached an arm."""
    from pipelines.store.roi import record_source_rows

    with ws.connect() as conn:
        rec_of = {(Path(f).name, row): rid for rid, f, row in record_source_rows(conn)}
    gold, trained = set(arms.eval_ids), {i for a in arms.arms for i in a.ids}
    out: dict[str, int] = {}
    for line in truth_path.read_text(encoding="utf-8").splitlines():
        t = json.loads(line)
        other = t.get("duplicate_of") or t.get("resembles")
        if not other:
            continue
        kind = ("exact_duplicate" if "exact_duplicate" in t["flaws"] else
                "near_duplicate" if "near_duplicate" in t["flaws"] else "hard_negative")
        a, b = rec_of.get((t["file"], t["row"])), rec_of.get((other["file"], other["row"]))
        if a is None or b is None or a == b:
            continue   # folded into one record at ingest (or rejected): nothing can leak
        for x, y in ((a, b), (b, a)):
            if x in gold and y not in gold:
                out[f"{kind}_pairs_across_split"] = out.get(f"{kind}_pairs_across_split", 0) + 1
                out[f"{kind}_trained"] = out.get(f"{kind}_trained", 0) + (y in trained)
    return out


def sft_main(args) -> int:
    """`--sft`: the secondary table (eval loss of the tiny LM, raw vs curated summaries)."""
    from curate.roi.sft import SftBudget, format_sft_table, run_sft_comparison
    from pipelines.store import Workspace

    tmp = None
    if args.workspace:
        ws = Workspace.open(args.workspace)
    else:
        tmp = tempfile.mkdtemp(prefix="roi-sft-bench-")
        ws = sample_workspace(Path(tmp) / "ws")
    budget = SftBudget(max_steps=args.sft_steps, batch_size=args.sft_batch_size,
                       learning_rate=args.sft_lr, eval_max_examples=args.sft_max_eval,
                       cpu_threads=args.threads, base_model=args.sft_base_model)
    t0 = time.perf_counter()
    report = run_sft_comparison(ws, seeds=args.seeds or 3, budget=budget, say=print)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    print()
    print(format_sft_table(report))
    print(f"delta eval loss curated - raw: {report['delta_eval_loss_curated_vs_raw']:+.4f} "
          f"(intervals overlap: {report['intervals_overlap']}); {report['seconds']} s in all")
    return _finish(report, args, tmp)


def _finish(report: dict, args, tmp) -> int:
    """Print the report's notes, save it as JSON with --out, remove the temporary workspace."""
    for n in report["notes"]:
        print(f"note: {n}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1), encoding="utf-8")
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workspace", help="existing workspace (default: sample data in a temp dir)")
    p.add_argument("--scheme", default="claim_type")
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="CI-sized: few records, few steps")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--model", help="encoder folder (default: the packaged MiniLM)")
    p.add_argument("--prepare-only", metavar="ARMS_JSON", help="write the arms and stop")
    p.add_argument("--arms", metavar="ARMS_JSON", help="train/score arms written by --prepare-only")
    p.add_argument("--export-model", metavar="DIR", help="write a float16 copy of the encoder")
    p.add_argument("--max-train", type=int, help="cap per arm (default 2400)")
    p.add_argument("--max-eval", type=int, help="cap on gold evaluation records (default: all)")
    p.add_argument("--epochs", type=float, help="passes over each arm (default 2)")
    p.add_argument("--max-len", type=int, help="tokens per record (default 128)")
    p.add_argument("--max-steps", type=int, help="cap on optimizer steps per fit (default: none)")
    p.add_argument("--batch-size", type=int, help="training batch size (default 16)")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-3)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: more only spin on a shared box)")
    p.add_argument("--head", choices=("lora", "probe"), help="lora (default) | probe")
    p.add_argument("--out", help="write the JSON report here")
    p.add_argument("--sft", action="store_true",
                   help="the SFT secondary table instead: the tiny causal LM tuned on raw vs "
                        "curated (summary_quality ACCEPT, dedup applied) summaries, eval loss on "
                        "held-out gold ACCEPT summaries")
    p.add_argument("--sft-steps", type=int, default=100, help="--sft: optimizer steps per fit")
    p.add_argument("--sft-batch-size", type=int, default=8, help="--sft: batch size")
    p.add_argument("--sft-lr", type=float, default=2e-3, help="--sft: learning rate")
    p.add_argument("--sft-base-model", help="--sft: base model folder (default: the "
                   "workspace's tiny Llama)")
    p.add_argument("--sft-max-eval", type=int, default=200, help="--sft: held-out rows scored")
    args = p.parse_args(argv)
    if args.sft:
        return sft_main(args)

    from curate.roi import RoiConfig, format_table
    from curate.roi.arms import ArmSet
    from curate.roi.run import evaluate_arms

    kw = dict(scheme=args.scheme, seeds=args.seeds, device=args.device, model_path=args.model,
              max_train=args.max_train, max_eval=args.max_eval, epochs=args.epochs,
              max_len=args.max_len, head=args.head, max_steps=args.max_steps,
              batch_size=args.batch_size, lr=args.lr, cpu_threads=args.threads)
    config = RoiConfig.quick(**kw) if args.quick else RoiConfig(
        **{k: v for k, v in kw.items() if v is not None})
    if args.export_model:
        print(f"encoder (float16) -> {export_half_model(Path(args.export_model))}")

    t0 = time.perf_counter()
    tmp = None
    if args.arms:
        arms = ArmSet.from_dict(json.loads(Path(args.arms).read_text(encoding="utf-8")))
    else:
        from curate.roi.prepare import prepare_arms
        from pipelines.store import Workspace

        if args.workspace:
            ws = Workspace.open(args.workspace)
        else:
            tmp = tempfile.mkdtemp(prefix="roi-bench-")
            ws = sample_workspace(Path(tmp) / "ws")
        arms = prepare_arms(ws, config, say=print)
        from curate.roi.prepare import default_truth_path
        from pipelines.store.roi import record_source_rows

        with ws.connect() as conn:
            truth_path = Path(config.truth) if config.truth else default_truth_path(
                [f for _, f, _ in record_source_rows(conn)])
        if truth_path is not None and truth_path.is_file():
            audit = audit_duplicates(ws, arms, truth_path)
            arms.leakage["ground_truth_audit"] = audit
            print(f"ground-truth duplicate audit (pairs across the gold split; trained = the "
                  f"training side reached an arm): {json.dumps(audit)}")
        if args.prepare_only:
            Path(args.prepare_only).parent.mkdir(parents=True, exist_ok=True)
            Path(args.prepare_only).write_text(json.dumps(arms.to_dict()), encoding="utf-8")
            print(f"arms -> {args.prepare_only} ({time.perf_counter() - t0:.0f} s): "
                  + ", ".join(f"{a.name}={a.n_train}" for a in arms.arms))
            print(json.dumps({"pool": arms.pool_stats, "leakage": arms.leakage,
                              "notes": arms.notes}, indent=1))
            return 0
    prep_s = time.perf_counter() - t0
    from curate.roi.arms import cap_arm

    arms.arms = [cap_arm(a, config.max_train, seed=0) for a in arms.arms]
    if config.max_eval:
        arms.eval_ids, arms.eval_labels = (arms.eval_ids[: config.max_eval],
                                           arms.eval_labels[: config.max_eval])
    vectors = None
    if config.head == "probe":
        if args.arms:
            raise SystemExit("--head probe needs a workspace (its cached embeddings), not --arms")
        from pipelines.embed import cached_embeddings

        vectors = cached_embeddings(ws)
    report = evaluate_arms(arms, config, progress=True, say=print, vectors=vectors)
    report["prepare_seconds"] = round(prep_s, 1)

    print()
    print(format_table(report))
    raw = next(r for r in report["arms"] if r["name"] == "raw")
    print("\nratio vs raw (same run):")
    for r in report["arms"]:
        print(f"  {r['name']:<12} accuracy x{r['accuracy'] / max(raw['accuracy'], 1e-9):.3f}  "
              f"macro-F1 x{r['macro_f1'] / max(raw['macro_f1'], 1e-9):.3f}")
    print(f"\npool: {json.dumps(report['pool'])}")
    print(f"leakage: ok={report['leakage'].get('ok')} gold={report['leakage'].get('gold_records')}"
          f" near-gold excluded={report['leakage'].get('near_gold_excluded')}"
          f" audit={json.dumps(report['leakage'].get('ground_truth_audit'))}")
    print(f"verdict: {json.dumps(report['verdict'])}")
    print(f"note: {report['simulated_review']}")
    return _finish(report, args, tmp)


if __name__ == "__main__":
    sys.exit(main())
