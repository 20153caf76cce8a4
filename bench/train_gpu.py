"""QLoRA throughput on a GPU: the plain recipe vs our autotuned trainer, same data, same run.

    python bench/train_gpu.py                      # 7B shape, then 1.1B, 24 GiB budget
    python bench/train_gpu.py --shapes 7b --steps 5 --out results.json
    python bench/train_gpu.py --dry-run            # tiny shape on CPU, end to end

Both recipes start from the same random-init weights (same seed, NF4 + double quant, bf16
compute), the same LoRA init (r=16, alpha 32, all linear layers, dropout 0), AdamW lr 2e-4,
grad-norm clip 1.0, the same rows in the same order and the same effective batch.

* plain: ``prepare_model_for_kbit_training`` + LoRA, micro-batch 4, gradient checkpointing on
  every layer, bf16 autocast (what HF Trainer's ``bf16=True, gradient_checkpointing=True`` does).
* ours: bf16 base with fp32 LoRA weights and no per-layer input recasts, then
  ``trainer.gpu.autotune_model`` picks micro-batch x accumulation, how many layers to
  checkpoint and liger-kernel on/off from measured trials, under a hard allocator cap of the
  budget (``torch.cuda.set_per_process_memory_fraction``).

Prints a table (tokens/s, peak GiB, loss per step, ours/plain) and writes JSON with --out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from trainer.gpu import GIB, autotune_model, fmt_gib, limit_process_memory, parse_bytes  # noqa: E402
from trainer.gpu.autotune import Candidate  # noqa: E402
from trainer.gpu.runtime import (SHAPES, build_qlora_base, fixed_rows, free_memory,  # noqa: E402
                                 make_trial, packed_batches, padded_batches, plain_recipe,
                                 train_steps, tuned_recipe, variable_examples)


def log(msg: str) -> None:
    print(msg, flush=True)


def matmul_tflops(device: str) -> float | None:
    """Measured dense bf16 matmul rate (8192^3, median of 20, CUDA events): the MFU ceiling."""
    if not device.startswith("cuda"):
        return None
    n = 8192
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    times = []
    for _ in range(20):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        a @ b
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e) / 1000)
    times.sort()
    return 2 * n**3 / times[len(times) // 2] / 1e12


def flops_per_token(shape: str, seq_len: int) -> float:
    """Model FLOPs per trained token for LoRA: forward 2N + input-gradient backward 2N over the
    linear weights (frozen, so no weight gradients; LoRA's own are negligible), plus causal
    attention 2*s*h per layer forward and twice that backward. Recompute is not counted."""
    s = SHAPES[shape]
    h, i, L, v = s["hidden_size"], s["intermediate_size"], s["num_hidden_layers"], s["vocab_size"]
    kv = h * s["num_key_value_heads"] // s["num_attention_heads"]
    per_layer = h * h * 2 + h * kv * 2 + 3 * h * i
    n_linear = L * per_layer + h * v  # + lm_head
    return 4 * n_linear + 6 * L * seq_len * h


def run_shape(shape: str, a, device: str) -> dict:
    cfg = SHAPES[shape]
    rows = fixed_rows(cfg["vocab_size"], a.seq_len, seed=7)
    out: dict = {"shape": shape, "seq_len": a.seq_len, "effective_batch": a.effective_batch,
                 "budget_bytes": a.budget_bytes, "steps": a.steps, "warmup": a.warmup}
    ga = a.effective_batch // a.baseline_batch

    log(f"\n== {shape}: plain recipe, micro-batch {a.baseline_batch} x {ga}, checkpointing every layer")
    t = time.perf_counter()
    model = build_qlora_base(shape, seq_len=a.seq_len, device=device, seed=a.seed)
    out["build_s"] = time.perf_counter() - t
    log(f"   built in {out['build_s']:.1f} s")
    model = plain_recipe(model)
    base = train_steps(model, rows, micro_batch=a.baseline_batch, grad_accum=ga, steps=a.steps,
                       warmup=a.warmup, device=device, progress=log)
    out["plain"] = base.to_dict() | {"micro_batch": a.baseline_batch, "grad_accum": ga,
                                     "ckpt": "all", "liger": False}
    log(f"   plain: {base.tokens_per_s:,.0f} tokens/s, peak {fmt_gib(base.peak_bytes)}")
    del model
    free_memory(device)

    log(f"\n== {shape}: ours, autotuned within {fmt_gib(a.budget_bytes)}")
    if device.startswith("cuda"):
        out["memory_fraction"] = limit_process_memory(a.budget_bytes)
        torch.cuda.reset_peak_memory_stats()
    try:
        model = build_qlora_base(shape, seq_len=a.seq_len, device=device, seed=a.seed)
        model = tuned_recipe(model)
        t = time.perf_counter()
        choice = autotune_model(model, rows, budget_bytes=a.budget_bytes,
                                effective_batch=a.effective_batch, device=device,
                                try_liger=not a.no_liger, timed_steps=a.trial_steps,
                                time_limit_s=a.tune_time_limit, log=log)
        out["autotune"] = choice.to_dict()
        out["autotune_s"] = time.perf_counter() - t
        c = choice.candidate
        ours = train_steps(model, rows, micro_batch=c.micro_batch, grad_accum=c.grad_accum,
                           steps=a.steps, warmup=a.warmup, device=device, progress=log)
        out["ours"] = ours.to_dict() | {"micro_batch": c.micro_batch, "grad_accum": c.grad_accum,
                                        "ckpt": c.ckpt_layers, "liger": c.liger}
        log(f"   ours: {ours.tokens_per_s:,.0f} tokens/s, peak {fmt_gib(ours.peak_bytes)}")
        if a.ablate:
            # One change at a time on the tuned model, for predicted-vs-measured accounting.
            from trainer.gpu.switches import LigerSwitch, liger_available

            sw = LigerSwitch.for_model(model) if liger_available() and not a.no_liger else None
            trial = make_trial(model, rows, device=device, liger=sw)
            L = cfg["num_hidden_layers"]
            abl = []
            for cand in (Candidate(a.baseline_batch, ga, L, False),
                         Candidate(a.baseline_batch, ga, L, True),
                         Candidate(a.baseline_batch, ga, 0, True)):
                if cand.liger and sw is None:
                    continue
                r = trial(cand, a.trial_steps)
                abl.append(r.to_dict())
                log(f"   ablation {cand.label(L)}: "
                    + ("OOM at the budget" if r.oom else
                       f"{r.tokens_per_s or 0:,.0f} tokens/s, peak {fmt_gib(r.peak_bytes)}"))
            out["ablation"] = abl
    except Exception as e:  # keep the other shapes' figures: this is a benchmark, not a library
        import traceback

        traceback.print_exc()
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        if device.startswith("cuda"):
            torch.cuda.set_per_process_memory_fraction(1.0)
        model = None
        free_memory(device)
    if "ours" in out:
        out["ratio"] = out["ours"]["tokens_per_s"] / out["plain"]["tokens_per_s"]
        out["max_loss_diff"] = max(abs(x - y) for x, y in
                                   zip(out["ours"]["losses"], out["plain"]["losses"]))
    out["flops_per_token"] = flops_per_token(shape, a.seq_len)
    return out


def run_packed(shape: str, a, device: str) -> dict:
    """Variable-length examples: plain pads each micro-batch of 4 examples to its longest,
    ours packs them padding-free into full rows and autotunes on those packed rows (a packed row
    carries a block-diagonal attention mask, so SDPA cannot use its causal flash path and needs
    more memory than a fixed row: reusing the fixed-row choice ran out of memory on the H200
    at 24 GiB). tokens/s counts real tokens only."""
    cfg = SHAPES[shape]
    n = a.effective_batch * a.steps * 4
    examples = variable_examples(cfg["vocab_size"], n, a.seq_len, seed=11)
    out: dict = {"shape": shape, "examples": n, "mean_len": sum(map(len, examples)) / n}
    ga = a.effective_batch // a.baseline_batch
    log(f"\n== {shape} packed: {n} examples, mean {out['mean_len']:.0f} tokens; plain pads batches of {a.baseline_batch}")
    model = plain_recipe(build_qlora_base(shape, seq_len=a.seq_len, device=device, seed=a.seed))
    r = train_steps(model, padded_batches(examples), micro_batch=a.baseline_batch, grad_accum=ga,
                    steps=a.steps, warmup=a.warmup, device=device, progress=log)
    out["plain_padded"] = r.to_dict()
    del model
    free_memory(device)
    rows, fill = packed_batches(examples, a.seq_len)
    out["fill"] = fill
    if device.startswith("cuda"):
        limit_process_memory(a.budget_bytes)
    try:
        model = tuned_recipe(build_qlora_base(shape, seq_len=a.seq_len, device=device, seed=a.seed))
        choice = autotune_model(model, rows, budget_bytes=a.budget_bytes,
                                effective_batch=a.effective_batch, device=device,
                                try_liger=not a.no_liger, timed_steps=a.trial_steps,
                                time_limit_s=a.tune_time_limit, log=log)
        out["autotune"] = choice.to_dict()
        c = choice.candidate
        r2 = train_steps(model, rows, micro_batch=c.micro_batch, grad_accum=c.grad_accum,
                         steps=a.steps, warmup=a.warmup, device=device, progress=log)
        out["ours_packed"] = r2.to_dict() | {"micro_batch": c.micro_batch, "grad_accum": c.grad_accum,
                                             "ckpt": c.ckpt_layers, "liger": c.liger}
        out["ratio"] = r2.tokens_per_s / r.tokens_per_s
        log(f"   padded plain {r.tokens_per_s:,.0f} vs packed ours {r2.tokens_per_s:,.0f} real tokens/s "
            f"({out['ratio']:.2f}x), row fill {fill:.1%}")
    finally:
        if device.startswith("cuda"):
            torch.cuda.set_per_process_memory_fraction(1.0)
        model = None
        free_memory(device)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", default="7b,1.1b", help="comma list of: " + ",".join(SHAPES))
    p.add_argument("--budget", default="24GiB", help="memory budget for ours, e.g. 24GiB")
    p.add_argument("--effective-batch", type=int, default=16)
    p.add_argument("--baseline-batch", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=1024)
    p.add_argument("--steps", type=int, default=5, help="optimizer steps per recipe")
    p.add_argument("--warmup", type=int, default=1, help="untimed first steps")
    p.add_argument("--trial-steps", type=int, default=2, help="timed micro-steps per trial")
    p.add_argument("--tune-time-limit", type=float, default=90.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-liger", action="store_true")
    p.add_argument("--no-ablate", dest="ablate", action="store_false")
    p.add_argument("--packed-shape", default="1.1b",
                   help="also compare padded vs packed variable-length examples on this shape "
                        "(one of --shapes; '' to skip)")
    p.add_argument("--dry-run", action="store_true", help="tiny shape on CPU, 2 steps")
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    if a.dry_run:
        a.shapes, a.seq_len, a.effective_batch, a.baseline_batch = "tiny", 64, 4, 2
        a.packed_shape = "tiny" if a.packed_shape else ""
        a.steps, a.warmup, a.trial_steps = 2, 1, 1
        if a.budget == "24GiB":
            a.budget = "3MB"
    a.budget_bytes = parse_bytes(a.budget, field="--budget")
    device = "cuda" if torch.cuda.is_available() and not a.dry_run else "cpu"
    if a.effective_batch % a.baseline_batch:
        p.error("--effective-batch must be a multiple of --baseline-batch")
    torch.backends.cuda.matmul.allow_tf32 = True

    results = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
               "torch": torch.__version__, "versions": _versions(), "shapes": []}
    results["matmul_tflops"] = matmul_tflops(device)
    if results["matmul_tflops"]:
        log(f"bf16 matmul 8192^3: {results['matmul_tflops']:.0f} TFLOP/s (MFU ceiling)")
    for shape in a.shapes.split(","):
        try:
            r = run_shape(shape.strip(), a, device)
        except Exception as e:  # report and go on to the next shape
            import traceback

            traceback.print_exc()
            r = {"shape": shape, "error": f"{type(e).__name__}: {e}"}
            free_memory(device)
        if results["matmul_tflops"]:
            for k in ("plain", "ours"):
                if k in r:
                    r[k]["mfu"] = (r[k]["tokens_per_s"] * r["flops_per_token"]
                                   / (results["matmul_tflops"] * 1e12))
        results["shapes"].append(r)
        if shape.strip() == a.packed_shape and "autotune" in r:
            try:
                results["packed"] = run_packed(shape.strip(), a, device)
            except Exception as e:  # report, keep the rest
                import traceback

                traceback.print_exc()
                results["packed"] = {"shape": shape, "error": f"{type(e).__name__}: {e}"}
                free_memory(device)
        if a.out:
            a.out.write_text(json.dumps(results, indent=1))

    print_table(results)
    if a.out:
        a.out.write_text(json.dumps(results, indent=1))
    return 0 if all("ours" in r for r in results["shapes"]) else 1


def _versions() -> dict:
    import importlib.metadata as md

    v = {}
    for name in ("transformers", "peft", "bitsandbytes", "liger-kernel", "accelerate"):
        try:
            v[name] = md.version(name)
        except md.PackageNotFoundError:
            v[name] = None
    return v


def print_table(results: dict) -> None:
    pk = results.get("packed")
    if pk and "ours_packed" in pk:
        log(f"\nvariable-length examples on {pk['shape']} (mean {pk['mean_len']:.0f} tokens): plain padded "
            f"{pk['plain_padded']['tokens_per_s']:,.0f} vs ours packed {pk['ours_packed']['tokens_per_s']:,.0f} "
            f"real tokens/s = {pk['ratio']:.2f}x (row fill {pk['fill']:.1%}), peak "
            f"{pk['plain_padded']['peak_bytes'] / GIB:.2f} vs {pk['ours_packed']['peak_bytes'] / GIB:.2f} GiB")
    elif pk:
        log(f"\npacked comparison: {pk.get('error')}")
    log(f"\nQLoRA NF4 on {results['device']} (bf16 matmul {results['matmul_tflops'] or 0:.0f} TFLOP/s)")
    log("| shape | recipe | micro x accum | ckpt layers | liger | tokens/s | peak GiB | reserved GiB "
        "| MFU | loss per step | ours/plain |")
    log("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results["shapes"]:
        for k in ("plain", "ours"):
            if k not in r:
                continue
            x = r[k]
            ratio = f"{r['ratio']:.2f}x" if k == "ours" and "ratio" in r else ""
            mfu = f"{x['mfu']:.1%}" if "mfu" in x else "-"
            log(f"| {r['shape']} | {k} | {x['micro_batch']} x {x['grad_accum']} | {x['ckpt']} "
                f"| {'on' if x['liger'] else 'off'} | {x['tokens_per_s']:,.0f} "
                f"| {x['peak_bytes'] / GIB:.2f} | {x['reserved_bytes'] / GIB:.2f} | {mfu} "
                f"| {' '.join(f'{v:.4f}' for v in x['losses'])} | {ratio} |")
        if "error" in r:
            log(f"| {r['shape']} | ours | error: {r['error']} |")
        if "max_loss_diff" in r:
            log(f"  {r['shape']}: max |loss ours - plain| over {len(r['ours']['losses'])} steps "
                f"= {r['max_loss_diff']:.4f}; autotune took {r.get('autotune_s', 0):.0f} s")


if __name__ == "__main__":
    sys.exit(main())
