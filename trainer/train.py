"""One training run from an export version to `W/runs/<id>/`: the function the CLI and studio call.

    result = train(ws, "v0001", TrainConfig(head="sft", max_steps=30))

reads the export, plans device and precision, builds the head's trainer (TRL SFT, a LoRA
classifier, or the probe: logistic regression on cached embeddings), evaluates the base model, trains (resuming from the newest loadable checkpoint when
asked), evaluates the tuned model, saves the adapter and writes `eval.json`. Progress goes to
`events.jsonl` as it happens; lineage goes to the workspace's `runs` table (step 'train').
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from pipelines.config import load_config
from pipelines.errors import StudioError, TrainError
from pipelines.export import export_path, load_manifest, read_split
from pipelines.store import start_run
from pipelines.store.exports import update_run_metrics
from trainer.config import SFT_DEFAULTS, TrainConfig
from trainer.device import plan_device
from trainer.evaluate import (classification_metrics, format_eval_table, majority_baseline,
                              never_predicted, perplexity)
from trainer.runs import EventWriter, events_callback, latest_checkpoint, pick_run, resume_config

__all__ = ["train", "resolve_base_model"]

_FORMATS = {"sft": ("chat", "alpaca"), "classifier": ("classification",),
            "probe": ("classification",), "dpo": ("preference",)}


def resolve_base_model(ws, cfg: TrainConfig, *, say: Callable[[str], None] = lambda m: None) -> str:
    """The base model's folder or hub id: a packaged name (`smollm2-135m`, trainer.pretrained)
    becomes its converted folder; unset -> the classifier's packaged encoder or the workspace's
    tiny random Llama (fast, for tests); the probe's is an embedding model name, kept as it is."""
    if cfg.head == "probe":
        return cfg.base_model or "default"   # the dedup step's embedding cache is reused
    if cfg.base_model:
        from trainer.pretrained import resolve_model_name

        return resolve_model_name(cfg.base_model, say=say)
    if cfg.head == "classifier":
        from trainer.classifier import default_encoder

        return default_encoder()
    from trainer.tiny import ensure_workspace_model

    return str(ensure_workspace_model(ws))


def _write_json_atomic(path, obj) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def train(ws, export: str, cfg: TrainConfig | None = None, *, run_id: str | None = None,
          resume: bool = False, progress: bool = True,
          echo: Callable[[str], None] = print, callbacks: list | None = None) -> dict[str, Any]:
    """Train one adapter on export `export`; returns the summary (run_id, status, steps, eval).

    Args:
        cfg: the run's options; on `resume` the run's saved config is used and `cfg.max_steps`
            (when set) may extend it.
        run_id: a folder name under W/runs (`start_detached` creates it first, with the
            config.yaml this process was started from).
        callbacks: extra transformers `TrainerCallback`s (tests use one to stop a run early).
    """
    cfg = cfg or TrainConfig()
    path = export_path(ws, export)
    manifest = load_manifest(ws, export)
    version = manifest["version"]
    rd = pick_run(ws, version, cfg, run_id, resume) if resume else None
    if rd is not None:
        cfg = resume_config(rd, cfg)
    fmt = manifest["format"]
    if fmt not in _FORMATS[cfg.head]:
        other = next((h for h, fmts in _FORMATS.items() if fmt in fmts), "sft")
        raise TrainError(f"export {version} is in {fmt} format; the {cfg.head} head needs "
                         f"{' or '.join(_FORMATS[cfg.head])} (re-export in another format, or "
                         f"pick head={other})")
    if cfg.head == "sft":
        cfg = cfg.with_defaults(**SFT_DEFAULTS)
    elif cfg.head == "dpo":   # the rest from the pairs, once tokenised (trainer.dpo)
        cfg = cfg.with_defaults(eval_max_examples=SFT_DEFAULTS["eval_max_examples"])
    train_rows = read_split(ws, version, "train")
    if not train_rows:
        raise TrainError(f"export {version} has an empty train split ({path / 'train.jsonl'})")
    all_eval = read_split(ws, version, "eval")
    # Classification scores every eval row unless a cap is set; the count is stated either way.
    eval_rows = all_eval[: cfg.eval_max_examples] if cfg.eval_max_examples else all_eval
    on = "eval" if len(eval_rows) == len(all_eval) else \
        f"eval: the first {len(eval_rows)} of {len(all_eval)} rows (eval_max_examples)"
    if not eval_rows:
        eval_rows, on = train_rows[:16], "train (the export has no eval split)"
    if rd is None:   # only now, so that a refused run leaves no folder behind
        rd = pick_run(ws, version, cfg, run_id, resume)
    base = resolve_base_model(ws, cfg, say=echo)
    cfg = cfg.replace(base_model=base)
    cfg.save_yaml(rd.config_yaml)
    plan = plan_device(cfg)
    if plan.device == "cpu" and cfg.cpu_threads:
        import torch

        torch.set_num_threads(cfg.cpu_threads)
    for n in plan.notices:
        echo(f"notice: {n}")

    events = EventWriter(rd.events)
    (rd.path / "pid").write_text(str(os.getpid()))
    with ws.transaction() as conn:
        lineage_id = start_run(conn, "train", {"run_id": rd.id, "export": version, "head": cfg.head,
                                               "method": plan.method, "base_model": base,
                                               "resume": resume}, scheme=manifest.get("scheme"))
    events.write("start", run_id=rd.id, export=version, head=cfg.head, method=plan.method,
                 device=plan.device, base_model=base, resume=resume, notices=plan.notices,
                 max_steps=cfg.max_steps, n_train=len(train_rows), n_eval=len(eval_rows))
    t0 = time.time()
    status, error = "failed", None
    try:
        cbs = [events_callback(events), *(callbacks or [])]
        notices: list[str] = []
        ckpt = latest_checkpoint(rd, notices) if resume else None
        if resume and ckpt is None:
            notices.append("no loadable checkpoint: starting from step 0")
        for n in notices:
            echo(f"notice: {n}")
        if cfg.head == "sft":
            ev, steps = _run_sft(cfg, base, plan, train_rows, eval_rows, fmt, rd, cbs, ckpt,
                                 progress, echo, events)
        elif cfg.head == "dpo":
            origins = _eval_origins(manifest, len(eval_rows)) if on.startswith("eval") else None
            ev, steps = _run_dpo(cfg, base, plan, train_rows, eval_rows, rd, cbs, ckpt, progress,
                                 ws, echo, events, origins)
        else:
            ev, steps = _run_classifier(ws, cfg, base, plan, train_rows, eval_rows, manifest, rd,
                                        cbs, ckpt, progress, echo, events)
        if plan.device == "cuda":
            import torch

            ev["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        ev.update({"on": on, "n_eval": len(eval_rows), "n_eval_total": len(all_eval) or None,
                   "export": version, "run_id": rd.id,
                   "head": cfg.head, "method": plan.method, "device": plan.device,
                   "notices": plan.notices + notices, "train_seconds": round(time.time() - t0, 1)})
        _write_json_atomic(rd.eval_json, ev)
        events.write("eval", base=ev["base"], tuned=ev["tuned"])
        status = "done"
        echo(format_eval_table(ev))
        saved = rd.path / "probe" if cfg.head == "probe" else rd.adapter
        return {"run_id": rd.id, "status": status, "steps": steps, "path": str(rd.path),
                "adapter": str(saved), "eval": {"base": ev["base"], "tuned": ev["tuned"]},
                "notices": ev["notices"]}
    except KeyboardInterrupt:
        status, error = "interrupted", "interrupted (resume it to continue)"
        raise
    except StudioError as exc:
        error = str(exc)
        raise
    except Exception as exc:
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            error = (f"out of memory on {plan.device}: lower batch_size (now {cfg.batch_size}) or "
                     f"max_seq_length (now {cfg.max_seq_length}), raise grad_accum, or use "
                     f"method=qlora")
            raise TrainError(error) from None
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        events.write("end", status=status, error=error, seconds=round(time.time() - t0, 1))
        metrics: dict[str, Any] = {"run_dir": str(rd.path), "error": error}
        if status == "done":
            ev = json.loads(rd.eval_json.read_text(encoding="utf-8"))
            metrics.update(base=ev["base"], tuned=ev["tuned"])
            if "autotune" in ev:
                metrics["autotune"] = {k: v for k, v in ev["autotune"].items() if k != "trials"}
        with ws.transaction() as conn:
            update_run_metrics(conn, lineage_id, metrics, status)


def _eval_loss(trainer, cfg) -> float:
    """The eval split's loss; a clear error when there are no completion tokens to score."""
    loss = trainer.evaluate().get("eval_loss")
    if loss is None or loss != loss:  # missing or NaN
        raise TrainError(
            f"no eval loss: with max_seq_length={trainer.args.max_length} every eval example's "
            f"completion is cut off (the loss is on completions only); raise max_seq_length")
    return float(loss)


def _run_sft(cfg, base, plan, train_rows, eval_rows, fmt, rd, cbs, ckpt, progress, echo,
             events=None):
    from trainer.sft import (autotune_sft, build_sft_trainer, cut_warning, generate,
                             to_prompt_completion)

    trainer, tok, notices = build_sft_trainer(cfg, base, plan, train_rows, eval_rows, fmt,
                                              rd.checkpoints, callbacks=cbs, progress=progress)
    # Lengths are measured with the base model's tokenizer and reported before training starts.
    lengths = trainer.length_report
    echo(f"length: {lengths.line()}")
    warning = cut_warning(lengths)
    if lengths.untrainable:
        notices.append(f"{lengths.untrainable} train row(s) hold no user -> assistant exchange "
                       f"and are left out (re-export: export repairs these)")
    if events is not None:
        events.write("lengths", **lengths.to_dict(), warning=warning)
    if warning:
        echo(f"warning: {warning}")
    tuned = None
    if plan.budget_bytes is not None:
        choice = autotune_sft(trainer, cfg, plan, log=echo if progress else None)
        tuned = choice.to_dict()
        notices.append(f"autotune within {cfg.memory_budget}: {choice.why}")
        if events is not None:
            events.write("autotune", **tuned)
        if plan.device == "cuda":
            import torch

            # The trials (one may have run out of memory at the cap) are in `autotune`; the run's
            # own peak_memory_gib counts from here.
            torch.cuda.reset_peak_memory_stats()
    for n in notices:
        echo(f"notice: {n}")
        plan.notices.append(n)
    prompts = [p for p in (to_prompt_completion(r, fmt) for r in eval_rows)
               if p is not None][: cfg.generations]
    # The LoRA B matrices start at zero, so before training the wrapped model *is* the base.
    base_loss = _eval_loss(trainer, cfg)
    base_gen = generate(trainer.model, tok, [p["prompt"] for p in prompts], cfg.max_new_tokens)
    out = trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    tuned_loss = _eval_loss(trainer, cfg)
    tuned_gen = generate(trainer.model, tok, [p["prompt"] for p in prompts], cfg.max_new_tokens)
    trainer.save_model(str(rd.adapter))
    tok.save_pretrained(str(rd.adapter))
    if cfg.merge and plan.method == "lora":
        trainer.model.merge_and_unload().save_pretrained(str(rd.path / "merged"))
        tok.save_pretrained(str(rd.path / "merged"))
    ev = {
        "base": {"eval_loss": round(base_loss, 4), "perplexity": perplexity(base_loss)},
        "tuned": {"eval_loss": round(tuned_loss, 4), "perplexity": perplexity(tuned_loss),
                  "train_loss": round(out.training_loss, 4)},
        "generations": [{"prompt": p["prompt"][-1]["content"], "reference":
                         p["completion"][0]["content"], "base": b, "tuned": t}
                        for p, b, t in zip(prompts, base_gen, tuned_gen)],
    }
    ev["lengths"] = lengths.to_dict()
    if warning:
        ev["lengths"]["warning"] = warning
    if tuned is not None:
        ev["autotune"] = tuned
    return ev, trainer.state.global_step


def resolve_init_adapter(ws, cfg: TrainConfig, base: str) -> Path | None:
    """`cfg.init_adapter` as an adapter folder: a run id of `ws` (its `adapter/`) or a folder
    holding an `adapter_config.json`, trained on the same base as this run."""
    if cfg.init_adapter is None:
        return None
    name = cfg.init_adapter.strip()
    candidate = ws.subdir("runs") / name / "adapter" if "/" not in name else None
    path = candidate if candidate is not None and candidate.is_dir() else Path(name).expanduser()
    conf = path / "adapter_config.json"
    if not conf.is_file():
        raise TrainError(f"train.init_adapter: {name!r} is neither a finished run of "
                         f"{ws.path} with an adapter nor an adapter folder "
                         f"(no {conf})")
    trained_on = json.loads(conf.read_text(encoding="utf-8")).get("base_model_name_or_path")
    if trained_on and Path(str(trained_on)).resolve() != Path(base).resolve() \
            and str(trained_on) != base:
        raise TrainError(f"train.init_adapter: the adapter in {path} was trained on "
                         f"{trained_on}, this run's base is {base}; pass the same --base-model")
    return path


def _eval_origins(manifest, n: int) -> list[str] | None:
    """Where each of the first `n` eval pairs came from (the manifest's per-row label:
    counterfactual | correction | pairwise), or None when the manifest does not say."""
    by_line = {e["line"]: e.get("label") for e in manifest.get("records", [])
               if e.get("split") == "eval"}
    out = [by_line.get(i) for i in range(1, n + 1)]
    return out if all(out) else None


def _run_dpo(cfg, base, plan, train_rows, eval_rows, rd, cbs, ckpt, progress, ws, echo, events,
             origins=None):
    from trainer.dpo import build_dpo_trainer, pair_logps, preference_metrics

    init = resolve_init_adapter(ws, cfg, base)
    trainer, tok, notices, max_len = build_dpo_trainer(cfg, base, plan, train_rows, eval_rows,
                                                       rd.checkpoints, callbacks=cbs,
                                                       progress=progress, init_adapter=init)
    _say_defaults(trainer.dpo_defaults, echo, events)
    for n in notices:
        echo(f"notice: {n}")
    plan.notices.extend(notices)
    # Before training the policy *is* the reference: a fresh adapter's B matrices are zero, and
    # an SFT adapter's frozen copy is the reference.
    ref = pair_logps(trainer.model, tok, eval_rows, max_len)
    out = trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    tuned = pair_logps(trainer.model, tok, eval_rows, max_len)
    trainer.save_model(str(rd.adapter))
    tok.save_pretrained(str(rd.adapter))
    base_m = preference_metrics(ref, ref, cfg.dpo_beta)
    tuned_m = {**preference_metrics(tuned, ref, cfg.dpo_beta),
               "train_loss": round(out.training_loss, 4)}
    by_origin = {}
    for origin in sorted(set(origins or ())):
        idx = [i for i, o in enumerate(origins) if o == origin]
        pick = lambda xs: [xs[i] for i in idx]   # noqa: E731
        by_origin[origin] = {"base": preference_metrics(pick(ref), pick(ref), cfg.dpo_beta),
                             "tuned": preference_metrics(pick(tuned), pick(ref), cfg.dpo_beta)}
    ev = {"base": base_m, "tuned": tuned_m, "beta": cfg.dpo_beta, "by_origin": by_origin,
          "init_adapter": str(init) if init else None, "defaults": trainer.dpo_defaults,
          "max_seq_length": max_len,
          "pairs": [{"chosen": str(r["chosen"])[:200], "rejected": str(r["rejected"])[:200],
                     "base_margin": round(b[0] - b[1], 3), "tuned_margin": round(t[0] - t[1], 3)}
                    for r, b, t in list(zip(eval_rows, ref, tuned))[:5]]}
    return ev, trainer.state.global_step


def _classes(ws, manifest, rows) -> list[str]:
    scheme = manifest.get("scheme")
    cur = load_config(ws.config_path)
    if scheme in cur.schemes:
        return list(cur.schemes[scheme].classes)
    return sorted({r["label"] for r in rows})


def _say_defaults(chosen, echo, events) -> None:
    """Log what was chosen from the data, before the run starts (events + echo)."""
    events.write("defaults", chosen=chosen)
    for name, c in chosen.items():
        echo(f"default: {name} = {c['value']} ({c['why']})")


def _run_classifier(ws, cfg, base, plan, train_rows, eval_rows, manifest, rd, cbs, ckpt, progress,
                    echo, events):
    """The classifier and probe heads: the same scoring, so the studio can compare them."""
    classes = _classes(ws, manifest, train_rows + eval_rows)
    texts = [r["text"] for r in eval_rows]
    truth = [r["label"] for r in eval_rows]
    gold_lines = {e["line"] for e in manifest["records"]
                  if e["split"] == "eval" and e["label_source"] == "gold"}
    gold_idx = [i for i in range(len(eval_rows)) if i + 1 in gold_lines]

    def metrics(pred, detail=False):
        m = classification_metrics(truth, pred, classes)
        g = classification_metrics([truth[i] for i in gold_idx], [pred[i] for i in gold_idx], classes)
        m.update(gold_n=g["n"], gold_accuracy=g["accuracy"], gold_macro_f1=g["macro_f1"])
        return {**m, "never_predicted": never_predicted(pred, classes)} if detail else m

    majority = majority_baseline([r["label"] for r in train_rows])
    maj = classification_metrics(truth, [majority] * len(truth), classes)
    maj_keys = {"majority_label": majority, "majority_accuracy": maj["accuracy"],
                "majority_macro_f1": maj["macro_f1"]}
    if cfg.head == "probe":
        from trainer.probe import run_probe

        got = run_probe(ws, cfg, train_rows, eval_rows, manifest, classes, rd.path / "probe",
                        events, echo, progress)
        _say_defaults(got["chosen"], echo, events)
        # The probe has no untuned model: its "base" is the majority class.
        ev = {"classes": classes, "defaults": got["chosen"], "embeddings": got["embeddings"],
              "base": {**metrics([majority] * len(truth)), **maj_keys, "is": "majority class"},
              "tuned": {**metrics(got["eval_pred"], detail=True), "fit_seconds": got["fit_seconds"]},
              "examples": [{"text": t[:200], "label": y, "tuned": p}
                           for t, y, p in list(zip(texts, truth, got["eval_pred"]))[:5]]}
        return ev, 1

    from trainer.classifier import build_classifier_trainer, predict_labels, small_set_warning

    warning = small_set_warning(len(train_rows))   # said before the run, not after
    if warning:
        events.write("warning", message=warning)
        echo(f"warning: {warning}")
    trainer, tok, max_len, chosen = build_classifier_trainer(cfg, base, plan, train_rows, classes,
                                                             rd.checkpoints, callbacks=cbs,
                                                             progress=progress)
    _say_defaults(chosen, echo, events)
    base_pred = predict_labels(trainer.model, tok, texts, classes, cfg.eval_batch_size, max_len)
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    tuned_pred = predict_labels(trainer.model, tok, texts, classes, cfg.eval_batch_size, max_len)
    trainer.save_model(str(rd.adapter))
    tok.save_pretrained(str(rd.adapter))
    ev = {"classes": classes, "defaults": chosen, "warning": warning,
          "base": {**metrics(base_pred), **maj_keys},
          "tuned": metrics(tuned_pred, detail=True),
          "examples": [{"text": t[:200], "label": y, "base": b, "tuned": p}
                       for t, y, b, p in list(zip(texts, truth, base_pred, tuned_pred))[:5]]}
    return ev, trainer.state.global_step
