"""Model-written synthetic records: paraphrases of accepted responses, or a second candidate
response to the same prompt (for pairwise review), through `pipelines.generate.Generator`.

The new records are ordinary `instruction` records flagged `meta["synthetic"]` (method
`generate`, task, source record, model, tokens), written in one transaction after every answer
came back: a generator that fails midway stores no record (its finished answers stay in the
cache, so a rerun asks only for the rest). Like counterfactuals they then go through dedup,
labeling, review and export as real records do; nothing here decides they are good.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines.errors import SynthError
from pipelines.generate import TASKS, GenerateConfig, Generator
from pipelines.ingest.normalize import normalize_text, record_id
from pipelines.store import NewRecord, Workspace, finish_run, start_run, upsert_record, utcnow
from pipelines.store.exports import iter_export_candidates
from pipelines.synth.config import CounterfactualConfig
from pipelines.synth.counterfactual import accepted_sources

__all__ = ["GeneratedResult", "generate_records", "PARAPHRASE_INSTRUCTION"]

PARAPHRASE_INSTRUCTION = ("Rewrite the following text in different words. Keep every amount, "
                          "date, name, place and identifier exactly as written.\n\n")


@dataclass
class GeneratedResult:
    task: str
    sources: int = 0
    created: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    stored: int = 0
    run_id: int | None = None

    def to_dict(self, examples: int = 5) -> dict[str, Any]:
        return {"task": self.task, "sources": self.sources, "created": len(self.created),
                "stored": self.stored, "skipped": self.skipped, "stats": self.stats,
                "run_id": self.run_id, "examples": self.created[:examples]}


def _messages(task: str, rec) -> list[dict[str, str]]:
    if task == "paraphrase":
        return [{"role": "user", "content": PARAPHRASE_INSTRUCTION + rec.response}]
    msgs = [{"role": "system", "content": rec.system}] if rec.system else []
    return msgs + [{"role": "user", "content": rec.prompt}]


def generate_records(ws: Workspace, gen_cfg: GenerateConfig, *, task: str = "paraphrase",
                     scheme: str | None = None, n: int = 20, commit: bool = True,
                     progress=None) -> GeneratedResult:
    """Up to `n` generated records from accepted `scheme` records (see the module docstring)."""
    from pipelines.config import load_config

    if task not in TASKS:
        raise SynthError(f"unknown generation task {task!r}; known: {', '.join(TASKS)}")
    sc = load_config(ws.config_path).scheme(scheme)
    result = GeneratedResult(task=task)
    with ws.connect() as conn:
        cands = list(iter_export_candidates(conn, sc.name))
    sources = accepted_sources(cands, CounterfactualConfig(scheme=sc.name, n=max(1, n)),
                               sc.name, result.skipped)[:n]
    result.sources = len(sources)
    if not sources:
        raise SynthError(f"no accepted {sc.name} record to generate from; label or review first")
    gen = Generator(gen_cfg, cache_dir=ws.subdir("cache"))
    try:
        outs = gen.generate([_messages(task, c.record) for c in sources], progress=progress)
    finally:
        gen.close()
        result.stats = gen.stats.to_dict()
    rows = []
    for cand, out in zip(sources, outs):
        rec = cand.record
        if not out.text or normalize_text(out.text) == normalize_text(rec.response):
            result.skipped["empty or unchanged answer"] = result.skipped.get(
                "empty or unchanged answer", 0) + 1
            continue
        rows.append((rec, out))
        result.created.append({"source_id": rec.id, "response": out.text,
                               "prompt_tokens": out.prompt_tokens,
                               "completion_tokens": out.completion_tokens, "cached": out.cached})
    if not commit:
        return result
    with ws.transaction() as conn:
        run_id = start_run(conn, "synth", {"method": "generate", "task": task,
                                           **gen_cfg.to_dict(), "n": n}, scheme=sc.name)
        now = utcnow()
        for i, (rec, out) in enumerate(rows, 1):
            parts = {"system": normalize_text(rec.system or ""), "prompt": normalize_text(rec.prompt),
                     "response": normalize_text(out.text)}
            meta = {"synthetic": {"method": "generate", "task": task, "source_id": rec.id,
                                  "model": gen_cfg.model, "endpoint": gen_cfg.endpoint,
                                  "prompt_tokens": out.prompt_tokens,
                                  "completion_tokens": out.completion_tokens, "run_id": run_id}}
            new = NewRecord(id=record_id("instruction", parts), kind="instruction",
                            text=f"{rec.prompt}\n\n{out.text}", prompt=rec.prompt,
                            response=out.text, system=rec.system, meta=meta,
                            file=f"synthetic:generate:{task}", row=i)
            result.stored += upsert_record(conn, new, now).added
            result.created[i - 1]["record_id"] = new.id
        result.run_id = run_id
        finish_run(conn, run_id, {k: v for k, v in result.to_dict(examples=0).items()
                                  if k != "examples"})
    return result
