"""A workspace with three task adapters, for the registry, router, server and Models page tests.

Two causal-LM tasks on the tiny local Llama (summarise a claim; extract its amount as JSON), each
with its own export, and a topic classifier on the packaged MiniLM. The adapters are LoRA weights
drawn at random (a different seed each, B not zero) rather than trained: they must only answer
differently, fast. `fake_run` writes the files a finished `trainer.train` run leaves
(config.yaml, events.jsonl start/end, eval.json, adapter/), which is all the registry reads.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from pipelines.export import export_dataset
from pipelines.store import NewRecord, Workspace, upsert_record, utcnow
from pipelines.store.exports import put_label

CURATION = """
schema: instruction
schemes:
  summary: {classes: [ACCEPT, REJECT]}
  extract: {classes: [ACCEPT, REJECT]}
  topic: {classes: [water, fire]}
"""

THINGS = ["a burst pipe", "a roof leak", "a kitchen fire", "storm damage", "a broken window",
          "a flooded basement", "a chimney fire", "hail on the car", "a cracked boiler",
          "smoke damage", "a fallen tree", "a stolen bicycle", "a garage fire", "water under the door",
          "a leaking dishwasher", "lightning on the roof", "a frozen pipe", "a burnt deck"]


def task_rows():
    """(id, task, prompt, response, topic) rows: every thing once per task."""
    rows = []
    for i, thing in enumerate(THINGS):
        topic = "fire" if any(w in thing for w in ("fire", "smoke", "burnt", "lightning")) else "water"
        amount = 500 + 137 * i
        rows.append((f"s{i:03d}", "summary",
                     f"Summarise this claim in one sentence: the customer reports {thing} at home "
                     f"and asks for ${amount}.", f"A claim for {thing}.", topic))
        rows.append((f"x{i:03d}", "extract",
                     f"Return JSON with amount and state. Claim text: {thing}, amount {amount} "
                     f"dollars, state NY.", json.dumps({"amount": amount, "state": "NY"}), topic))
    return rows


def make_task_ws(root) -> Workspace:
    ws = Workspace.create(root)
    ws.config_path.write_text(CURATION, encoding="utf-8")
    with ws.transaction() as conn:
        for n, (rid, task, prompt, response, topic) in enumerate(task_rows()):
            upsert_record(conn, NewRecord(id=rid, kind="instruction", text=f"{prompt}\n{response}",
                                          prompt=prompt, response=response, file="toy", row=n),
                          utcnow())
            put_label(conn, rid, task, "ACCEPT", 0.99)
            put_label(conn, rid, "topic", topic, 0.99)
    return ws


def fake_run(ws, export: str, head: str, base: str, seed: int, *, classes=None) -> Path:
    """A finished run folder with a random LoRA adapter on `base` (see the module docstring)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from trainer.config import TrainConfig

    run = ws.subdir("runs") / f"20260101-00000{seed}-{head}-{export}"
    run.mkdir(parents=True)
    TrainConfig(head=head, base_model=base).save_yaml(run / "config.yaml")
    torch.manual_seed(seed)
    if head == "sft":
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(base)
        lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                          init_lora_weights=False)
        ev = {"base": {"eval_loss": 6.0}, "tuned": {"eval_loss": 5.0}, "head": head}
    else:
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=len(classes))
        lora = LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"],
                          task_type="SEQ_CLS", init_lora_weights=False)
        ev = {"classes": list(classes), "base": {"accuracy": 0.5}, "tuned": {"accuracy": 0.9},
              "head": head}
    peft_model = get_peft_model(model, lora)
    with torch.no_grad():   # large random B so the adapters visibly change the answers
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    peft_model.save_pretrained(run / "adapter")
    (run / "eval.json").write_text(json.dumps(ev), encoding="utf-8")
    now = time.time()
    (run / "events.jsonl").write_text(
        json.dumps({"event": "start", "time": now, "run_id": run.name, "export": export,
                    "head": head, "base_model": base}) + "\n"
        + json.dumps({"event": "end", "time": now + 1, "status": "done"}) + "\n",
        encoding="utf-8")
    return run


def make_micro_models(root, tiny_model: str, *, classifier: bool = True) -> Workspace:
    """The three-adapter workspace: summary-sft-v0001, extract-sft-v0002 (and
    topic-classifier-v0003 on MiniLM)."""
    ws = make_task_ws(root)
    v1 = export_dataset(ws, scheme="summary", format="chat", eval_fraction=0.3).version
    v2 = export_dataset(ws, scheme="extract", format="chat", eval_fraction=0.3).version
    fake_run(ws, v1, "sft", tiny_model, 1)
    fake_run(ws, v2, "sft", tiny_model, 2)
    if classifier:
        from trainer.classifier import default_encoder

        v3 = export_dataset(ws, scheme="topic", format="classification", eval_fraction=0.3).version
        fake_run(ws, v3, "classifier", default_encoder(), 3, classes=["water", "fire"])
    return ws


def build_tiny(root) -> str:
    """The tiny Llama the trainer tests use, with a tokenizer trained on these prompts."""
    from trainer.tiny import build_tiny_llama

    texts = [t for _, _, p, r, _ in task_rows() for t in (p, r)] * 3
    return str(build_tiny_llama(Path(root) / "llama", texts, vocab_size=400))
