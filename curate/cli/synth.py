"""`curate synth counterfactuals|generate|private`: synthetic records with lineage (pipelines.synth)."""

from __future__ import annotations

from typing import Optional

import typer
from tqdm import tqdm

from curate.cli._common import JsonOpt, WorkspaceOpt, app, echo, emit, open_workspace

synth_app = typer.Typer(
    help="Synthetic data: fact-aware counterfactuals and model-written records, flagged "
         "`synthetic` with their source.\n\n"
         "Example: curate synth counterfactuals --workspace ws --scheme summary_quality --n 50",
    no_args_is_help=True)
app.add_typer(synth_app, name="synth")


@synth_app.command("counterfactuals")
def counterfactuals_cmd(
    workspace: str = WorkspaceOpt,
    scheme: Optional[str] = typer.Option(None, "--scheme", "-s",
                                         help="Label scheme (default: the first)."),
    n: int = typer.Option(100, "--n", min=1, help="Counterfactuals to make at most."),
    edits: Optional[str] = typer.Option(
        None, help="Comma-separated edit kinds (amount,date,name,place,ident,drop,add; "
                   "default: all)."),
    seed: int = typer.Option(0, help="Seed of the edit choices."),
    include_gold: bool = typer.Option(False, "--include-gold",
                                      help="Also edit gold (held-out) records."),
    preview: bool = typer.Option(False, "--preview", help="Show what would be made; store "
                                                          "nothing."),
    as_json: bool = JsonOpt,
):
    """Make rejected responses from accepted ones by editing one fact; keep those the scheme's
    LFs catch (the others are reported, never stored or paired).

    Example: curate synth counterfactuals --workspace ws --scheme summary_quality --n 50 --preview
    """
    from pipelines.synth import CounterfactualConfig, make_counterfactuals

    ws = open_workspace(workspace)
    kw = {"edits": edits} if edits else {}
    cfg = CounterfactualConfig(scheme=scheme, n=n, seed=seed, include_gold=include_gold, **kw)
    res = make_counterfactuals(ws, cfg, commit=not preview)
    verb = "would store" if preview else f"stored {res.stored} new of"
    echo(f"{res.sources} source(s); {verb} {len(res.created)} caught counterfactual(s); "
         f"{len(res.missed)} not caught by any LF (not stored)")
    for kind, c in sorted(res.by_edit().items()):
        echo(f"  {kind:<7} caught {c['caught']:>4}  missed {c['missed']:>4}")
    for c in res.created[:3]:
        echo(f"  {c.source_id}: {c.edit.describe()}  <- {', '.join(c.caught_by)}")
    for c in res.missed[:3]:
        echo(f"  missed {c.source_id}: {c.edit.describe()}")
    if res.skipped:
        echo("left out: " + ", ".join(f"{k}: {v}" for k, v in sorted(res.skipped.items())))
    emit({"preview": preview, **res.to_dict()}, as_json)


@synth_app.command("generate")
def generate_cmd(
    workspace: str = WorkspaceOpt,
    model: str = typer.Option(..., help="Local model folder, or the endpoint's model name."),
    endpoint: Optional[str] = typer.Option(
        None, help="OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1); default: run "
                   "--model locally."),
    task: str = typer.Option("paraphrase", help="paraphrase | second_response."),
    scheme: Optional[str] = typer.Option(None, "--scheme", "-s",
                                         help="Label scheme whose accepted records are sources."),
    n: int = typer.Option(20, "--n", min=1, help="Records to generate at most."),
    max_new_tokens: int = typer.Option(64, help="Tokens per answer."),
    temperature: float = typer.Option(0.0, help="0: greedy."),
    requests_per_s: Optional[float] = typer.Option(None, help="Endpoint rate limit."),
    max_retries: int = typer.Option(3, help="Retries on 5xx / timeouts."),
    timeout: float = typer.Option(60.0, help="Seconds per request."),
    api_key: Optional[str] = typer.Option(None, envvar="CURATE_GENERATE_API_KEY",
                                          help="Bearer token (or $CURATE_GENERATE_API_KEY)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Ignore W/cache/generate.sqlite."),
    preview: bool = typer.Option(False, "--preview", help="Generate (and cache) but store no "
                                                          "record."),
    as_json: bool = JsonOpt,
):
    """Write paraphrases of accepted responses, or a second candidate response per prompt, with a
    local model or an endpoint; the records are flagged synthetic with their source.

    Example: curate synth generate --workspace ws --model ws/models/tiny-llama --task paraphrase --n 10
    """
    from pipelines.generate import GenerateConfig
    from pipelines.synth import generate_records

    ws = open_workspace(workspace)
    cfg = GenerateConfig(model=model, endpoint=endpoint, max_new_tokens=max_new_tokens,
                         temperature=temperature, requests_per_s=requests_per_s,
                         max_retries=max_retries, timeout_s=timeout, api_key=api_key,
                         cache=not no_cache)
    with tqdm(total=n, desc="generate", unit=" prompts", disable=as_json) as bar:
        res = generate_records(ws, cfg, task=task, scheme=scheme, n=n, commit=not preview,
                               progress=bar.update)
    s = res.stats
    echo(f"{res.sources} source(s); {len(res.created)} answer(s)"
         + ("" if preview else f", {res.stored} new record(s) stored")
         + f"; tokens {s.get('prompt_tokens', 0)} in / {s.get('completion_tokens', 0)} out; "
           f"cache hits {s.get('cache_hits', 0)}, requests {s.get('requests', 0)}, "
           f"retries {s.get('retries', 0)}")
    for c in res.created[:3]:
        echo(f"  {c['source_id']}: {c['response'][:100]!r}")
    emit({"preview": preview, **res.to_dict()}, as_json)


@synth_app.command("private")
def private_cmd(
    workspace: str = WorkspaceOpt,
    n: Optional[int] = typer.Option(None, "--n", min=1, help="Copies to make at most (default: "
                                                             "every source)."),
    ids: Optional[str] = typer.Option(None, help="Comma-separated record ids to copy."),
    scope: str = typer.Option("set", help="set: one fake per real value across the set; "
                                          "record: fakes drawn per record."),
    seed: int = typer.Option(0, help="Salt of the fakes: keep it private when copies leave the "
                                     "building."),
    no_amounts: bool = typer.Option(False, "--no-amounts", help="Leave dollar amounts as they "
                                                                "are."),
    date_shift_days: int = typer.Option(30, min=1, help="Dates move by up to this many days."),
    include_gold: bool = typer.Option(False, "--include-gold",
                                      help="Also copy gold (held-out) records, gold label kept "
                                           "where the LFs vote alike."),
    include_excluded: bool = typer.Option(False, "--include-excluded",
                                          help="Also copy records dedup or the filter excluded."),
    preview: bool = typer.Option(False, "--preview", help="Show what would be made; store "
                                                          "nothing."),
    as_json: bool = JsonOpt,
):
    """Copy real records with their PII and identifying facts (names, places, identifiers,
    e-mails, phones, dates, amounts) replaced by consistent fakes; the copies are flagged
    synthetic with their source and what was replaced, counted by kind.

    Example: curate synth private --workspace ws --seed 84121 --n 100 --preview
    """
    from pipelines.synth import PrivateCopyConfig, make_private_copies

    ws = open_workspace(workspace)
    cfg = PrivateCopyConfig(n=n, ids=ids, scope=scope, seed=seed, amounts=not no_amounts,
                            date_shift_days=date_shift_days, include_gold=include_gold,
                            include_excluded=include_excluded)
    res = make_private_copies(ws, cfg, commit=not preview)
    verb = "would store" if preview else f"stored {res.stored} new of"
    echo(f"{res.sources} source(s); {verb} {len(res.copies)} private cop(ies); "
         f"{res.unchanged} had nothing to replace (copied as they are)")
    echo("replaced: " + (", ".join(f"{k} {v}" for k, v in res.replaced().items()) or "nothing"))
    for scheme, k in res.labels_changed().items():
        echo(f"  {scheme}: LF votes changed on {k} cop(ies) (their {scheme} gold label is not "
             f"kept)")
    if preview:
        for c in res.copies[:2]:
            echo(f"  {c.source.id}: " + "; ".join(f"{r.before!r} -> {r.after!r}"
                                                  for r in c.replacements[:6]))
    if res.skipped:
        echo("left out: " + ", ".join(f"{k}: {v}" for k, v in sorted(res.skipped.items())))
    emit({"preview": preview, **(res.to_dict() if preview else res.summary())}, as_json)
