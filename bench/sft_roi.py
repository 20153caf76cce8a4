"""The brief's headline: do curated summaries make a fine-tuned model summarise more accurately?

    .venv/bin/python bench/sft_roi.py                     # sample data, fresh temp workspace
    .venv/bin/python bench/sft_roi.py --workspace W --seeds 2 --steps 60 --max-eval 60 \
        --out bench/results/sft_roi_cpu.json      # or --out W/sft_roi.json: the studio shows it

The same LoRA budget on SmolLM2-135M-Instruct (the packaged GGUF, trainer/pretrained.py) trained
on (a) raw summaries as ingested (hallucinated ones and duplicates included), (b) curated ones
(dedup applied, only the summary_quality label model's ACCEPT), and (c) no fine-tuning. Each arm
summarises the same held-out gold notes greedily; the table gives summary accuracy (claim type,
amount, date and claimant of the note stated, nothing invented: curate/roi/summary_score.py) and
ROUGE-L against the gold summaries, with 95% bootstrap intervals over the held-out notes, seconds
per fit and training tokens/s. The delta curated - raw is measured in the same run, with a paired
bootstrap interval over the same notes. Before anything trains, the scorer is checked on the
sample's own summaries against truth.jsonl (every faithful one accurate, every fact-flawed one
rejected); the run stops if it errs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
# truth.jsonl flaws about the note or the data set, not about the summary
_NOT_SUMMARY_FLAWS = {"exact_duplicate", "near_duplicate", "hard_negative", "pii_in_note"}


def audit_sample_scorer(sample: Path = SAMPLE) -> dict:
    """The scorer on the sample's own summaries, against the generator's truth: every truly
    faithful summary must be accurate and every fact-flawed one (made-up amount, name or state,
    a missing fact, empty) must not be (`curate.roi.summary_score.audit_scorer`)."""
    import csv
    import json

    from curate.roi.summary_score import audit_scorer

    truth = {(d["file"], d["row"]): d for d in map(json.loads, (sample / "truth.jsonl").open())}
    with (sample / "claims.csv").open(newline="", encoding="utf-8") as f:
        files = {"claims.csv": list(csv.DictReader(f))}
    files["claims_batch2.jsonl"] = [json.loads(line) for line in
                                    (sample / "claims_batch2.jsonl").open(encoding="utf-8")]
    rows = []
    for name, records in files.items():
        for i, r in enumerate(records, 1):
            t = truth[(name, i)]
            rows.append({"note": r["note"], "summary": r["summary"],
                         "claim_type": t["true_claim_type"],
                         "flaws": [x for x in t["flaws"] if x not in _NOT_SUMMARY_FLAWS]})
    return audit_scorer(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workspace", help="existing workspace (default: sample data in a temp dir)")
    p.add_argument("--seeds", type=int, default=2, help="LoRA fits per fine-tuned arm")
    p.add_argument("--steps", type=int, default=60, help="optimizer steps per fit")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-seq-length", type=int, default=None,
                   help="default: from the training rows' token lengths (padded per batch)")
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--max-eval", type=int, default=60, help="held-out gold notes summarised")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1: on a loaded box 2 threads measured much slower)")
    p.add_argument("--base-model", default="smollm2-135m",
                   help="trainer.pretrained name or a model folder")
    p.add_argument("--base-user-prompt", action="store_true",
                   help="also score the base with the export's instruction as the user turn "
                        "(arm base_user; on 8 notes it scored below the system prompt)")
    p.add_argument("--rescore", metavar="REPORT",
                   help="score the generations kept in a report again (current scorer) and "
                        "print the table; trains nothing")
    p.add_argument("--out", help="write the JSON report here")
    args = p.parse_args(argv)

    audit = audit_sample_scorer()
    print(f"scorer check on the sample's own summaries: {audit['faithful_accurate']} of "
          f"{audit['faithful']} faithful ones accurate, {audit['flawed_rejected']} of "
          f"{audit['flawed']} fact-flawed ones rejected")
    if (audit["faithful_accurate"], audit["flawed_rejected"]) != (audit["faithful"],
                                                                  audit["flawed"]):
        print(f"scorer check failed: {audit['misses'][:3]}")
        return 1

    from bench.roi import _finish, sample_workspace
    from curate.roi.sft import (GenBudget, format_generation_table, rescore_generation_report,
                                run_sft_generation)
    from pipelines.store import Workspace

    if args.rescore:
        import json

        report = rescore_generation_report(json.loads(Path(args.rescore).read_text()))
        report["scorer_check"] = {k: v for k, v in audit.items() if k != "misses"}
        report["rescored"] = True
        print(format_generation_table(report))
        print(f"delta accuracy curated - raw: {report['delta_accuracy_curated_vs_raw']:+.3f} "
              f"(paired bootstrap 95% CI [{report['delta_ci'][0]:+.3f}, "
              f"{report['delta_ci'][1]:+.3f}])")
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=1), encoding="utf-8")
        return 0

    tmp = None
    if args.workspace:
        ws = Workspace.open(args.workspace)
    else:
        import tempfile

        tmp = tempfile.mkdtemp(prefix="sft-roi-bench-")
        ws = sample_workspace(Path(tmp) / "ws")
    budget = GenBudget(max_steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr,
                       max_seq_length=args.max_seq_length, lora_r=args.lora_r,
                       max_eval=args.max_eval, max_new_tokens=args.max_new_tokens,
                       cpu_threads=args.threads, base_model=args.base_model,
                       base_user_prompt=args.base_user_prompt)
    t0 = time.perf_counter()
    report = run_sft_generation(ws, seeds=args.seeds, budget=budget, say=print)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["scorer_check"] = {k: v for k, v in audit.items() if k != "misses"}
    print()
    print(format_generation_table(report))
    print(f"delta accuracy curated - raw: {report['delta_accuracy_curated_vs_raw']:+.3f} "
          f"(paired bootstrap 95% CI [{report['delta_ci'][0]:+.3f}, {report['delta_ci'][1]:+.3f}]"
          f"; arm intervals apart: {report['intervals_apart']}); {report['seconds']} s in all")
    for a in report["arms"]:
        print(f"sample {a['name']:<8}: {a['per_seed'][0]['samples'][0]!r}")
    print(f"gold reference : {report['references'][0]!r}")
    return _finish(report, args, tmp)


if __name__ == "__main__":
    sys.exit(main())
