"""Synthetic data: do the LFs catch the counterfactuals, does DPO learn the pairs, what does the
generator cost.

Usage: python bench/synth.py [--n 700] [--dpo-steps 40] [--gen 32]

1. Counterfactuals on the sample's accepted summary_quality records (gold held out): caught /
   missed per edit kind by the scheme's LF set, against the baseline set without the three LFs
   added for counterfactuals (lf_date_not_in_note, lf_identifier_not_in_note,
   lf_drops_note_amount), judged on the same edits in the same run.
2. DPO on the tiny Llama (random init, ~1M parameters): the preference export of the caught
   counterfactuals; held-out preference accuracy before and after, and tokens/s of the dpo head
   against the sft head on the chat export of the same records, same steps and batch.
3. The generator on the local tiny model: N paraphrase prompts cold, then again from the cache.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=700, help="counterfactuals to make")
    ap.add_argument("--dpo-steps", type=int, default=40)
    ap.add_argument("--gen", type=int, default=32, help="generator prompts")
    ap.add_argument("--skip-train", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.create(Path(tmp) / "ws")
        load_sample(ws)
        run_labeling(ws, LabelConfig(scheme="summary_quality"))
        catch_rates(ws, args.n)
        if not args.skip_train:
            dpo_vs_sft(ws, args.n, args.dpo_steps)
        generator(ws, args.gen)


if __name__ == "__main__":
    main()
