"""The SFT secondary comparison: the tiny causal LM tuned on raw vs curated summaries.

Two training sets that differ only in curation, one held-out set, the same model, seed and step
budget:

- **raw**: every trainable record's (claim note -> summary) pair rendered as chat, dedup
  decisions ignored and exact duplicates kept (one copy per source row), hallucinated or bad
  summaries included;
- **curated**: dedup-excluded records dropped, and only records whose quality-scheme label
  (`summary_quality`, the label model's, from the scheme's latest labeling run) is `ACCEPT`;
- **held-out**: the gold records whose gold quality label is `ACCEPT` (faithful summaries),
  rendered the same way. Gold records and their near-duplicates (dedup cluster, identical text,
  embedding cosine >= the threshold: the same rule as the classifier arms) never train.

Each arm trains the workspace's tiny Llama (`trainer.tiny`) with LoRA through the product's own
SFT trainer builder (`trainer.sft.build_sft_trainer`: TRL `SFTTrainer`, completion-only loss)
and is scored by eval loss on the held-out set. The base model's loss on the same set is the
common starting point.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from curate.roi.config import RoiConfig
from pipelines.config import load_config
from pipelines.errors import ConfigError, TrainError
from pipelines.metrics import mean_ci
from pipelines.store import Record, Workspace, iter_records

__all__ = ["SftSets", "SftBudget", "sft_sets", "run_sft_comparison", "format_sft_table"]


@dataclass
class SftSets:
    """Chat rows per arm and the held-out rows, with the ids behind them (for leakage checks)."""

    arms: dict[str, list[dict[str, Any]]]
    arm_ids: dict[str, list[str]]
    eval_rows: list[dict[str, Any]]
    eval_ids: list[str]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SftBudget:
    """The budget both SFT arms get."""

    max_steps: int = 150
    batch_size: int = 8
    learning_rate: float = 2e-3
    max_seq_length: int = 384
    lora_r: int = 8
    eval_max_examples: int = 200
    cpu_threads: int = 1
    base_model: str | None = None   # None: the workspace's tiny Llama (trainer.tiny)


def _chat(rec: Record, system_prompt: str | None) -> dict[str, Any] | None:
    from pipelines.errors import ExportError
    from pipelines.export.render import record_messages

    try:
        return {"messages": record_messages(rec, system_prompt)}
    except ExportError:
        return None   # no prompt/response: nothing to fine-tune on


def sft_sets(ws: Workspace, *, scheme: str = "summary_quality", accept: str = "ACCEPT",
             near_dup_threshold: float = 0.92,
             say: Callable[[str], None] = lambda m: None) -> SftSets:
    """Build the raw and curated chat training sets and the held-out faithful summaries.

    Runs dedup and the scheme's labeling functions first when the workspace lacks them.

    Raises:
        ConfigError: the scheme is unknown, lacks `accept`, or has no gold ACCEPT records.
    """
    from curate.roi.prepare import load_pool

    cfg = load_config(ws.config_path)
    sc = cfg.scheme(scheme)
    if accept not in sc.classes:
        raise ConfigError(f"roi sft: scheme {sc.name} has no class {accept!r} "
                          f"(classes: {', '.join(sc.classes)})")
    pool = load_pool(ws, RoiConfig(scheme=sc.name, review_budgets=(0,),
                                   near_dup_threshold=near_dup_threshold), say=say)
    system_prompt = (cfg.sections.get("export") or {}).get("system_prompt")
    with ws.connect() as conn:
        recs = {r.id: r for r in iter_records(conn)}
    raw_rows, raw_ids, cur_rows, cur_ids, skipped = [], [], [], [], 0
    for r in pool.trainable:
        row = _chat(recs[r.id], system_prompt)
        if row is None:
            skipped += 1
            continue
        raw_rows += [row] * max(1, r.n_sources)
        raw_ids += [r.id] * max(1, r.n_sources)
        if not r.excluded and r.label_model == accept:
            cur_rows.append(row)
            cur_ids.append(r.id)
    eval_rows, eval_ids = [], []
    for r in pool.gold:
        if r.gold == accept:
            row = _chat(recs[r.id], system_prompt)
            if row is not None:
                eval_rows.append(row)
                eval_ids.append(r.id)
    if not eval_rows:
        raise ConfigError(f"roi sft: no gold records labelled {accept} in scheme {sc.name} to "
                          f"hold out")
    notes = [f"held-out: the {len(eval_ids)} gold records with gold {sc.name} = {accept}",
             f"{len(pool.near_gold)} near-duplicates of gold records excluded from both arms",
             *pool.notes]
    truth = {r.id: r.truth for r in pool.trainable}
    for name, ids in (("raw", raw_ids), ("curated", cur_ids)):
        known = [truth[i] for i in ids if truth.get(i) is not None]
        if known:
            bad = sum(t != accept for t in known) / len(known)
            notes.append(f"{name}: {bad:.1%} of its training rows are not {accept} by the "
                         f"ground truth ({len(known)} rows with a truth label)")
    if skipped:
        notes.append(f"{skipped} records without a prompt and response left out")
    return SftSets(arms={"raw": raw_rows, "curated": cur_rows},
                   arm_ids={"raw": raw_ids, "curated": cur_ids},
                   eval_rows=eval_rows, eval_ids=eval_ids, notes=notes)


def check_sft_leakage(sets: SftSets) -> None:
    """Raise TrainError when a held-out id is in a training set."""
    held = set(sets.eval_ids)
    for name, ids in sets.arm_ids.items():
        hits = held & set(ids)
        if hits:
            raise TrainError(f"roi sft arm {name}: {len(hits)} held-out records in its training "
                             f"set (first: {sorted(hits)[0]})")


def _fit(base: str, rows: list[dict], eval_rows: list[dict], budget: SftBudget, seed: int,
         out_dir: Path) -> dict[str, Any]:
    from trainer.config import TrainConfig
    from trainer.device import plan_device
    from trainer.sft import build_sft_trainer

    cfg = TrainConfig(head="sft", base_model=base, max_steps=budget.max_steps,
                      batch_size=budget.batch_size, learning_rate=budget.learning_rate,
                      max_seq_length=budget.max_seq_length, lora_r=budget.lora_r,
                      lora_alpha=2 * budget.lora_r, seed=seed, device="auto",
                      cpu_threads=budget.cpu_threads, save_steps=10**6, logging_steps=10**6,
                      eval_max_examples=budget.eval_max_examples, generations=0)
    plan = plan_device(cfg)
    import torch

    if plan.device == "cpu":
        torch.set_num_threads(budget.cpu_threads)
    trainer, _tok, _notices = build_sft_trainer(cfg, base, plan, rows, eval_rows, "chat",
                                                out_dir, progress=False)
    base_loss = trainer.evaluate().get("eval_loss")
    t0 = time.perf_counter()
    out = trainer.train()
    seconds = time.perf_counter() - t0
    loss = trainer.evaluate().get("eval_loss")
    if loss is None or base_loss is None or not math.isfinite(loss):
        raise TrainError(f"roi sft: no finite eval loss (max_seq_length={budget.max_seq_length} "
                         f"may cut off every completion)")
    return {"seed": seed, "eval_loss": round(float(loss), 4),
            "base_eval_loss": round(float(base_loss), 4),
            "train_loss": round(float(out.training_loss), 4), "steps": trainer.state.global_step,
            "train_seconds": round(seconds, 2)}


def run_sft_comparison(ws: Workspace, *, seeds: int = 2, budget: SftBudget = SftBudget(),
                       scheme: str = "summary_quality", accept: str = "ACCEPT",
                       say: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Train raw and curated arms `seeds` times each; eval loss on the same held-out set."""
    from trainer.tiny import ensure_workspace_model

    if seeds < 1:
        raise ConfigError(f"roi sft: seeds must be >= 1, got {seeds}")
    sets = sft_sets(ws, scheme=scheme, accept=accept, say=say)
    check_sft_leakage(sets)
    eval_rows = sets.eval_rows[: budget.eval_max_examples]
    base = budget.base_model or str(ensure_workspace_model(ws))
    rows_out = []
    with tempfile.TemporaryDirectory(prefix="roi-sft-") as tmp:
        for name, rows in sets.arms.items():
            if not rows:
                raise TrainError(f"roi sft arm {name} has no training rows")
            per_seed = [_fit(base, rows, eval_rows, budget, seed, Path(tmp) / f"{name}-{seed}")
                        for seed in range(seeds)]
            loss, ci = mean_ci([s["eval_loss"] for s in per_seed], bounds=None)   # a loss
            row = {"name": name, "n_train": len(rows), "n_unique": len(set(sets.arm_ids[name])),
                   "eval_loss": round(loss, 4), "ci": [round(x, 4) for x in ci],
                   "perplexity": round(math.exp(loss), 2),
                   "base_eval_loss": per_seed[0]["base_eval_loss"],
                   "train_seconds": round(sum(s["train_seconds"] for s in per_seed)
                                          / len(per_seed), 2),
                   "per_seed": per_seed}
            rows_out.append(row)
            say(f"sft {name:<8} eval loss {loss:.4f} [{ci[0]:.4f}, {ci[1]:.4f}]  n_train "
                f"{len(rows)}  {row['train_seconds']:.1f} s/fit")
    by = {r["name"]: r for r in rows_out}
    delta = by["curated"]["eval_loss"] - by["raw"]["eval_loss"]
    return {"scheme": scheme, "accept": accept, "n_eval": len(eval_rows),
            "eval_ids": sets.eval_ids[: budget.eval_max_examples], "seeds": seeds,
            "budget": budget.__dict__, "base_model": base,
            "model": (f"LoRA on {base}" if budget.base_model else
                      "LoRA on the workspace's tiny Llama (trainer.tiny, random init)"),
            "arms": rows_out, "delta_eval_loss_curated_vs_raw": round(delta, 4),
            "intervals_overlap": not (by["curated"]["ci"][1] < by["raw"]["ci"][0]
                                      or by["raw"]["ci"][1] < by["curated"]["ci"][0]),
            "notes": sets.notes}


def format_sft_table(report: dict[str, Any]) -> str:
    rows = report["arms"]
    raw = next(r for r in rows if r["name"] == "raw")
    out = [f"{'arm':<10}{'n_train':>8}{'unique':>8}{'eval loss':>11}{'95% CI':>20}{'ppl':>8}"
           f"{'d loss':>9}{'s/fit':>8}"]
    for r in rows:
        ci = f"[{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]"
        out.append(f"{r['name']:<10}{r['n_train']:>8}{r['n_unique']:>8}{r['eval_loss']:>11.4f}"
                   f"{ci:>20}{r['perplexity']:>8.2f}{r['eval_loss'] - raw['eval_loss']:>+9.4f}"
                   f"{r['train_seconds']:>8.1f}")
    out.append(f"(held-out faithful summaries: {report['n_eval']}; base model eval loss "
               f"{raw['base_eval_loss']:.4f}; seeds: {report['seeds']}; {report['model']})")
    return "\n".join(out)
