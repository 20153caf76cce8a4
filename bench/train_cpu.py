"""CPU training throughput of the trainer's SFT and classifier heads, vs TRL's defaults.

    .venv/bin/python bench/train_cpu.py [--steps 10] [--threads 2]

Builds the tiny Llama (~1M parameters) on toy claim text, then times optimizer steps for:
  baseline  TRL SFTConfig defaults on CPU (bf16=True, gradient_checkpointing=True)
  lora      our CPU plan (float32, no checkpointing)
  qlora     4-bit NF4 base (bitsandbytes CPU path, float32 compute) + LoRA
  classifier  LoRA on the packaged all-MiniLM-L6-v2 (sequence classification)
and prints steps/s, tokens/s and the ratio to the baseline, measured in the same process.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _timed_steps(trainer, steps: int) -> tuple[float, float]:
    """steps/s and tokens/s over `steps` optimizer steps, after the first (warm-up) step."""
    from transformers import TrainerCallback

    marks: list[tuple[float, int]] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            marks.append((time.perf_counter(), state.num_input_tokens_seen or 0))

    trainer.add_callback(Clock())
    trainer.args.max_steps = steps + 1
    trainer.train()
    (t0, n0), (t1, n1) = marks[0], marks[-1]
    return (len(marks) - 1) / (t1 - t0), (n1 - n0) / (t1 - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    args = ap.parse_args()

    import torch

    from trainer.classifier import build_classifier_trainer, default_encoder
    from trainer.config import TrainConfig
    from trainer.device import Plan
    from trainer.sft import build_sft_trainer
    from trainer.tiny import build_tiny_llama

    if args.threads:
        torch.set_num_threads(args.threads)
    notes = ["a pipe burst and water flooded the kitchen floor of the insured home",
             "lightning set the garage on fire and smoke damaged the attic",
             "the insured's car was rear-ended at a red light on the highway",
             "a laptop and jewellery were stolen after a break-in through the back door"]
    rows = [{"messages": [{"role": "user", "content": f"{n} (claim {i})"},
                          {"role": "assistant", "content": f"summary of claim {i}: {n[:40]}"}]}
            for i, n in enumerate(notes * 16)]
    tmp = Path(tempfile.mkdtemp(prefix="bench_train_"))
    model = str(build_tiny_llama(tmp / "tiny", [t for r in rows for m in r["messages"]
                                                for t in [m["content"]]] * 4, vocab_size=512))
    cfg = TrainConfig(batch_size=args.batch, max_seq_length=args.seq, save_steps=10_000,
                      logging_steps=1000)
    results = []
    cases = [("baseline (TRL defaults: bf16 + grad ckpt)", "lora", True, True),
             ("lora (fp32, no ckpt)", "lora", False, False),
             ("qlora nf4 (fp32 compute, no ckpt)", "qlora", False, False)]
    for name, method, bf16, gc in cases:
        plan = Plan(device="cpu", method=method, bf16=bf16, gradient_checkpointing=gc, notices=[])
        trainer, _, _ = build_sft_trainer(cfg.replace(method=method), model, plan, rows, [], "chat",
                                          tmp / name.split()[0], progress=False)
        results.append((name, *_timed_steps(trainer, args.steps)))
    crow = [{"text": r["messages"][0]["content"], "label": ["water", "fire", "auto", "theft"][i % 4]}
            for i, r in enumerate(rows)]
    plan = Plan(device="cpu", method="lora", bf16=False, gradient_checkpointing=False, notices=[])
    trainer, _, _, _ = build_classifier_trainer(cfg.replace(head="classifier"), default_encoder(), plan,
                                          crow, ["water", "fire", "auto", "theft"], tmp / "cls",
                                          progress=False)
    results.append(("classifier (MiniLM + LoRA)", *_timed_steps(trainer, args.steps)))

    base = results[0][1]
    print(f"torch threads {torch.get_num_threads()}, batch {args.batch}, seq <= {args.seq}, "
          f"{args.steps} timed steps, load average {os.getloadavg()[0]:.1f}")
    print(f"{'case':<44}{'steps/s':>9}{'tokens/s':>10}{'x baseline':>12}")
    for name, sps, tps in results:
        print(f"{name:<44}{sps:>9.2f}{tps:>10.0f}{sps / base:>12.1f}")


if __name__ == "__main__":
    main()
