#!/usr/bin/env bash
# QLoRA check: train a TinyLlama-1.1B-shape model (random init, built locally from a config with a
# BPE tokenizer trained on the sample claims) through `curate train --method qlora` on CUDA, and
# write tokens/s, peak GPU memory and loss to $OUT/qlora_check.json.
#
#   scripts/gpu_check_qlora.sh              # on the GPU machine (OUT set by the device tool)
#   scripts/gpu_check_qlora.sh --dry-run    # here, on CPU: tiny shape, 3 steps, same code path
#
# Env: OUT (result folder; default test-artifacts/gpu_check), PYTHON (default: .venv/bin/python
# when present, else python3), STEPS (default 30), BATCH (8), SEQ (1024), BUDGET (24GiB: a second
# run with --memory-budget, the autotuned path of docs/gpu.md; 'none' skips it), PLAIN (1; 0 skips
# the plain qlora run).
# The GPU image lacks bitsandbytes/TRL/datasets: when .whl/ is there and they do not import, the
# wheels are installed into /tmp/site (no network). curation-studio itself is not installed
# there: the repo root goes on PYTHONPATH.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DRY=0
[[ "${1:-}" == "--dry-run" ]] && DRY=1
OUT="${OUT:-$REPO/test-artifacts/gpu_check}"
mkdir -p "$OUT"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$REPO/.venv/bin/python" ]]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
fi
if [[ -d "$REPO/.whl" ]] && ! "$PYTHON" -c "import trl, bitsandbytes, datasets" 2>/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$REPO"/.whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export GPU_CHECK_DRY=$DRY GPU_CHECK_OUT="$OUT" GPU_CHECK_REPO="$REPO" GPU_CHECK_PYTHON="$PYTHON"
cd "$REPO"
exec "$PYTHON" - <<'PY'
import csv, json, os, subprocess, sys, tempfile, time
from pathlib import Path

dry = os.environ["GPU_CHECK_DRY"] == "1"
out = Path(os.environ["GPU_CHECK_OUT"])
repo = Path(os.environ["GPU_CHECK_REPO"])
python = os.environ["GPU_CHECK_PYTHON"]
steps = int(os.environ.get("STEPS", "3" if dry else "30"))
batch = int(os.environ.get("BATCH", "2" if dry else "8"))
seq = int(os.environ.get("SEQ", "512" if dry else "1024"))
budget_arg = os.environ.get("BUDGET", "24GiB")
shape = "tiny" if dry else "tinyllama-1.1b"
result = {"ok": False, "dry_run": dry, "shape": shape, "max_steps": steps, "batch_size": batch,
          "max_seq_length": seq}
t_all = time.time()
try:
    import torch
    result["torch"] = torch.__version__
    result["cuda"] = torch.cuda.is_available()
    if result["cuda"]:
        result["gpu"] = torch.cuda.get_device_name(0)
    if not dry and not result["cuda"]:
        raise SystemExit("no CUDA: run with --dry-run on a CPU machine")
    from importlib import metadata
    result["versions"] = {}
    for dist in ("transformers", "peft", "trl", "bitsandbytes", "datasets", "accelerate", "pyarrow",
                 "snorkel", "liger-kernel", "tokenizers", "typer"):
        try:
            result["versions"][dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            result["versions"][dist] = None
    for mod in ("transformers", "peft", "trl", "bitsandbytes", "datasets", "accelerate"):
        __import__(mod)

    from pipelines.export import export_dataset
    from pipelines.store import NewRecord, Workspace, upsert_record, utcnow
    from pipelines.store.exports import put_label
    from trainer.runs import recent_tokens_per_s
    from trainer.tiny import build_tiny_llama

    # 1. a workspace with the sample claim notes/summaries, all labelled ACCEPT
    root = Path(tempfile.mkdtemp(prefix="qlora_check_"))
    ws = Workspace.create(root / "ws")
    ws.config_path.write_text(
        "schema: instruction\nschemes:\n  quality: {classes: [ACCEPT, REJECT]}\n"
        "export:\n  system_prompt: \"Summarise the adjuster's claim note.\"\n", encoding="utf-8")
    with open(repo / "sample_data" / "claims.csv", newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if (r.get("note") or "").strip() and (r.get("summary") or "").strip()]
    rows = rows[:96] if dry else rows
    with ws.transaction() as conn:
        for i, r in enumerate(rows):
            rid = f"c{i:05d}"
            upsert_record(conn, NewRecord(id=rid, kind="instruction", text=r["note"] + "\n" + r["summary"],
                                          prompt=r["note"], response=r["summary"], file="claims.csv",
                                          row=i + 1), utcnow())
            put_label(conn, rid, "quality", "ACCEPT", 1.0)
    exp = export_dataset(ws, scheme="quality", format="chat", eval_fraction=0.05)
    result["export"] = {"version": exp.version, "train": exp.train, "eval": exp.eval}

    # 2. the base model: TinyLlama-1.1B shape, random init, tokenizer trained on these texts
    t0 = time.time()
    texts = [t for r in rows for t in (r["note"], r["summary"])]
    base = build_tiny_llama(root / "base", texts, shape=shape, vocab_size=8000 if not dry else 1024,
                            dtype="float32" if dry else "bfloat16")
    result["build_seconds"] = round(time.time() - t0, 1)
    cfg = json.loads((base / "config.json").read_text())
    result["model"] = {k: cfg.get(k) for k in ("hidden_size", "num_hidden_layers", "intermediate_size",
                                               "num_attention_heads", "num_key_value_heads", "vocab_size")}

    # 3. curate train --method qlora (the CLI; the library function if the CLI cannot import here)
    probe = subprocess.run([python, "-c", "import curate.cli"], capture_output=True, text=True)
    via_cli = probe.returncode == 0
    result["via"] = "curate train (CLI)" if via_cli else (
        "trainer.train (library; `import curate.cli` failed: "
        + (probe.stderr.strip().splitlines() or ["?"])[-1][:200] + ")")

    def run_train(tag, budget=None):
        args = ["train", "--workspace", str(ws.path), "--export", exp.version, "--method", "qlora",
                "--base-model", str(base), "--max-steps", str(steps), "--batch-size", str(batch),
                "--max-seq-length", str(seq), "--set", "packing=true", "--set", "save_steps=1000",
                "--set", "eval_max_examples=32", "--set", "generations=2", "--set", "max_new_tokens=16",
                "--set", "logging_steps=1", "--json"]
        if budget:
            args += ["--memory-budget", budget]
        if dry:
            args += ["--device", "cpu"]
        t0 = time.time()
        if via_cli:
            proc = subprocess.run([python, "-c", "from curate.cli import _entry; _entry()", *args],
                                  capture_output=True, text=True)
            (out / f"train_{tag}.log").write_text(proc.stdout[-200000:] + "\n--- stderr ---\n" + proc.stderr[-200000:])
            if proc.returncode != 0:
                raise RuntimeError(f"curate train ({tag}) exited {proc.returncode}: {proc.stderr[-1500:]}")
            summary = json.loads(proc.stdout.strip().splitlines()[-1])
        else:
            from trainer import TrainConfig, train
            tc = TrainConfig(method="qlora", base_model=str(base), max_steps=steps, batch_size=batch,
                             max_seq_length=seq, packing=True, save_steps=1000, eval_max_examples=32,
                             generations=2, max_new_tokens=16, memory_budget=budget,
                             device="cpu" if dry else "auto")
            summary = train(ws, exp.version, tc, progress=False)
        run = ws.path / "runs" / summary["run_id"]
        events = [json.loads(l) for l in (run / "events.jsonl").read_text().splitlines() if l.strip()]
        logs = [e for e in events if e["event"] == "log"]
        ev = json.loads((run / "eval.json").read_text())
        (out / f"events_{tag}.jsonl").write_text((run / "events.jsonl").read_text())
        # `tokens_per_s` in the events is the average since training began (warm-up included);
        # the steady rate is taken over the last two thirds of the steps.
        steady = (recent_tokens_per_s(logs, window=len(logs) - len(logs) // 3 - 1)
                  if len(logs) > 1 else None)
        return {
            "ok": summary["status"] == "done" and len(logs) > 0, "memory_budget": budget,
            "wall_seconds": round(time.time() - t0, 1),
            "status": summary["status"], "steps": summary["steps"], "method": ev.get("method"),
            "device": ev.get("device"), "notices": ev.get("notices"),
            "tokens_per_s_last": logs[-1]["tokens_per_s"] if logs else None,
            "tokens_per_s_steady": round(steady, 1) if steady is not None else None,
            "loss_first": logs[0]["loss"] if logs else None, "loss_last": logs[-1]["loss"] if logs else None,
            "peak_memory_gib": ev.get("peak_memory_gib"), "eval": {"base": ev["base"], "tuned": ev["tuned"]},
            "train_seconds": ev.get("train_seconds"),
        }

    result["runs"] = {}
    if os.environ.get("PLAIN", "1") != "0":   # PLAIN=0: only the --memory-budget run
        result["runs"]["qlora"] = run_train("qlora")
    result["ok"] = all(r["ok"] for r in result["runs"].values())
    if budget_arg and budget_arg.lower() != "none":
        try:
            result["runs"]["qlora_budget"] = run_train("qlora_budget", budget_arg)
            result["ok"] = result["ok"] and result["runs"]["qlora_budget"]["ok"]
        except Exception as exc:  # the issue-6 check stands on its own; record the budget run's failure
            result["runs"]["qlora_budget"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[-2000:]}
            result["ok"] = False
    result["ok"] = result["ok"] and bool(result["runs"])
except BaseException as exc:  # record whatever broke, then fail
    import traceback
    result["error"] = f"{type(exc).__name__}: {exc}"
    result["traceback"] = traceback.format_exc()[-4000:]
finally:
    result["total_seconds"] = round(time.time() - t_all, 1)
    (out / "qlora_check.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "traceback"}, default=str))
sys.exit(0 if result["ok"] else 1)
PY
