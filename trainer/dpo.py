"""DPO head: TRL `DPOTrainer` + a peft `LoraConfig` on a `preference` export.

The reference model is the base seen through the adapter (peft's `disable_adapter`, TRL's
`ref_model=None`), so no second copy of the weights is loaded; `qlora` loads the base in 4-bit
like the SFT head. `full` (what method auto picks for a base under 20M parameters, the tiny
random Llama) trains every weight with no adapter, and TRL loads the base a second time as the
frozen reference.

Defaults for the fields left unset come from the data (`choose_dpo_defaults`): batch 8, one
epoch, learning rate 2e-4 with LoRA and 2e-3 full, and `max_seq_length` long enough for the
longest pair: TRL keeps the *start* of a sequence that is too long, and a pair whose chosen and
rejected answers differ only in the cut tail teaches nothing (both sides become the same
tokens), so the rule is the longest pair rather than the sft head's 95th percentile (padding is
per batch: a long limit costs nothing on short pairs).

With `init_adapter` (SFT, then DPO) the SFT run's adapter is trained on and the reference is a
frozen copy of it (TRL's "ref" adapter): DPO moves away from the SFT model. Events, checkpoints
and resume are `trainer.train`'s, as for SFT.

The before/after evaluation scores each held-out pair with summed log-probabilities of its two
answers (`pair_logps`):

- `logp_accuracy`: the model gives the chosen answer the higher log-probability (base and tuned);
- `reward_accuracy` / `reward_margin` (tuned): DPO's implicit reward
  r = beta * (log pi(y|x) - log pi_ref(y|x)) is higher for chosen than rejected, and by how much
  on average. Before training the adapter is zero, pi = pi_ref and every reward is 0, so the
  base's reward accuracy is 0 by construction; its `logp_accuracy` is the honest "before".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.errors import TrainError
from trainer.config import TrainConfig
from trainer.device import Plan

__all__ = ["build_dpo_trainer", "pair_logps", "preference_metrics", "pair_lengths",
           "choose_dpo_defaults", "DPO_BATCH_SIZE", "DPO_LEARNING_RATE"]

DPO_BATCH_SIZE = 8
# Peak learning rates by method. full: 2e-3 on the tiny random Llama, one epoch of 561
# counterfactual pairs: held-out reward accuracy 0.911 [0.873, 0.950] over 5 seeds, where 1e-3
# gave 0.883 [0.824, 0.941] and 3e-3 0.914 (LoRA r 8 at 2e-3: 0.83); two epochs were no better
# (0.88), so one epoch stays the default. With the mixed amount edits that replaced the scale
# slips 0.870 (5 seeds), and real reviewer corrections stay at chance for this random model
# (docs/benchmarks.md 2c, 2d). lora: the sft head's rate, kept.
DPO_LEARNING_RATE = {"lora": 2e-4, "qlora": 2e-4, "full": 2e-3}


def _check_rows(rows: list[dict], where: str) -> None:
    for i, r in enumerate(rows, 1):
        missing = [k for k in ("prompt", "chosen", "rejected") if not r.get(k)]
        if missing:
            raise TrainError(f"{where} row {i}: a preference row needs prompt, chosen and "
                             f"rejected (missing {', '.join(missing)})")


def pair_lengths(tok, rows: list[dict]) -> list[tuple[int, int]]:
    """Per row: (tokens of prompt + the longer answer, index of the first token at which the
    chosen and rejected sequences differ)."""
    out = []
    for row in rows:
        _, c = _ids(tok, row["prompt"], row["chosen"])
        _, r = _ids(tok, row["prompt"], row["rejected"])
        first = next((i for i, (a, b) in enumerate(zip(c, r)) if a != b), min(len(c), len(r)))
        out.append((max(len(c), len(r)), first))
    return out


def choose_dpo_defaults(cfg: TrainConfig, method: str, lengths: list[tuple[int, int]],
                        model_max: int) -> tuple[TrainConfig, dict[str, Any]]:
    """Fill the fields the user left unset (see the module docstring); returns the filled config
    and `{field: {"value", "why"}}` for what was chosen (explicit values are kept, not listed)."""
    import math

    from trainer.lengths import MEMORY_CAP, ROUND_TO

    fill: dict[str, Any] = {}
    chosen: dict[str, Any] = {}
    if cfg.batch_size is None:
        fill["batch_size"] = DPO_BATCH_SIZE
        chosen["batch_size"] = {"value": DPO_BATCH_SIZE, "why": "dpo default"}
    if cfg.learning_rate is None:
        fill["learning_rate"] = DPO_LEARNING_RATE[method]
        chosen["learning_rate"] = {"value": fill["learning_rate"], "why": f"dpo, method {method}"}
    if cfg.epochs is None:
        fill["epochs"] = 1.0
        if cfg.max_steps == -1:
            chosen["epochs"] = {"value": 1.0, "why": "dpo default (more epochs measured worse "
                                                     "on held-out pairs)"}
    if cfg.max_seq_length is None:
        longest = max((n for n, _ in lengths), default=ROUND_TO)
        limit = min(MEMORY_CAP, model_max)
        value = min(limit, max(ROUND_TO, math.ceil(longest / ROUND_TO) * ROUND_TO))
        fill["max_seq_length"] = value
        chosen["max_seq_length"] = {"value": value, "why": (
            f"from the data: the longest of {len(lengths)} pairs ({longest} tokens) rounded up "
            f"to {ROUND_TO}" + (f", capped at {limit}" if longest > limit else ""))}
    return (cfg.replace(**fill) if fill else cfg), chosen


def build_dpo_trainer(cfg: TrainConfig, base: str, plan: Plan, train_rows: list[dict],
                      eval_rows: list[dict], output_dir: Path, callbacks: list | None = None,
                      progress: bool = True, init_adapter: Path | None = None):
    """A ready `DPOTrainer` and its tokenizer: a fresh LoRA adapter whose reference is the base
    (the adapter disabled), every weight (`plan.method` full, the reference a second copy of the
    base), or with `init_adapter` an SFT adapter trained on, whose reference is a frozen copy of
    it. The defaults chosen for unset fields are `trainer.dpo_defaults` (field -> value, why);
    the pairs whose answers differ only past `max_seq_length` are counted in the notices."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from trainer.sft import load_causal_lm, trl_args

    if not progress:
        import datasets

        datasets.disable_progress_bars()
    _check_rows(train_rows, "train.jsonl")
    _check_rows(eval_rows, "eval.jsonl")
    model, tok, notices = load_causal_lm(cfg, base, plan)
    max_pos = getattr(model.config, "max_position_embeddings", None) or 2048
    lengths = pair_lengths(tok, train_rows)
    cfg, chosen = choose_dpo_defaults(cfg, plan.method, lengths, max_pos)
    max_len = min(cfg.max_seq_length, max_pos)
    cut = sum(first >= max_len for _, first in lengths)
    if cut == len(lengths):
        raise TrainError(f"max_seq_length {max_len}: every train pair's chosen and rejected "
                         f"answers differ only after token {max_len} (TRL keeps the start of a "
                         f"sequence), so DPO would learn nothing; raise max_seq_length or leave "
                         f"it unset (the longest pair)")
    if cut:
        notices.append(f"max_seq_length {max_len}: {cut} of {len(lengths)} train pairs differ "
                       f"only after it and teach nothing (TRL keeps the start); raise it or "
                       f"leave it unset")
    peft_config = None if plan.method == "full" else LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
        target_modules=cfg.lora_targets(), task_type="CAUSAL_LM")
    if init_adapter is not None:
        # SFT, then DPO: the SFT adapter trains on; TRL copies it into a frozen "ref" adapter,
        # so the reference is the SFT model, still with one copy of the base weights
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(init_adapter), is_trainable=True)
        peft_config = None
    args = DPOConfig(
        **trl_args(cfg, plan, output_dir),
        max_length=max_len,
        beta=cfg.dpo_beta,
        **({"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, float(cfg.dpo_sft_weight)]}
           if cfg.dpo_sft_weight else {}),
        seed=cfg.seed,
        data_seed=cfg.seed,
        include_num_input_tokens_seen="non_padding",   # tokens/s in the events, as for sft
        disable_tqdm=not progress,
        dataloader_num_workers=0,
    )
    trainer = DPOTrainer(model=model, ref_model=None, args=args,
                         train_dataset=Dataset.from_list(train_rows),
                         eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
                         processing_class=tok, peft_config=peft_config, callbacks=callbacks or [])
    if not progress:
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    trainer.dpo_defaults = chosen
    return trainer, tok, notices, max_len


def _ids(tok, prompt, answer) -> tuple[list[int], list[int]]:
    """(prompt ids, prompt + answer ids) as the chat template (or plain text) renders them."""
    if isinstance(prompt, list):
        p = tok.apply_chat_template(prompt, add_generation_prompt=True, return_dict=True)["input_ids"]
        full = tok.apply_chat_template(prompt + answer, return_dict=True)["input_ids"]
    else:
        p = tok(prompt)["input_ids"]
        full = tok(prompt + answer)["input_ids"]
    return list(p), list(full)


def pair_logps(model, tok, rows: list[dict], max_length: int) -> list[tuple[float, float]]:
    """(sum log p(chosen | prompt), sum log p(rejected | prompt)) per row, answer tokens only."""
    import torch

    model.eval()
    out = []
    for row in rows:
        pair = []
        for side in ("chosen", "rejected"):
            p, full = _ids(tok, row["prompt"], row[side])
            start = next((i for i, (a, b) in enumerate(zip(p, full)) if a != b), len(p))
            if len(full) > max_length:           # keep the answer: drop the oldest prompt tokens
                cut = len(full) - max_length
                full, start = full[cut:], max(1, start - cut)
            ids = torch.tensor([full], device=model.device)
            with torch.no_grad():
                logits = model(input_ids=ids).logits.float()
            logp = torch.log_softmax(logits[0, :-1], dim=-1)
            targets = ids[0, 1:]
            token_logp = logp.gather(1, targets[:, None])[:, 0]
            pair.append(float(token_logp[max(start, 1) - 1:].sum()))
        out.append((pair[0], pair[1]))
    return out


def preference_metrics(logps: list[tuple[float, float]],
                       ref: list[tuple[float, float]] | None = None,
                       beta: float = 0.1) -> dict[str, Any]:
    """Accuracy and margins over pairs; with `ref`, DPO's implicit-reward ones too."""
    n = len(logps)
    if not n:
        return {"n_pairs": 0}
    out: dict[str, Any] = {
        "n_pairs": n,
        "logp_accuracy": round(sum(c > r for c, r in logps) / n, 4),
        "logp_margin": round(sum(c - r for c, r in logps) / n, 4),
    }
    if ref is not None:
        margins = [beta * ((c - rc) - (r - rr)) for (c, r), (rc, rr) in zip(logps, ref)]
        out["reward_accuracy"] = round(sum(m > 0 for m in margins) / n, 4)
        out["reward_margin"] = round(sum(margins) / n, 4)
    return out
