"""`curate filter` (quality rules, or `--like` for the on-topic similarity filter) with
`keep`/`drop`/`reset`, and `curate pii`."""

from __future__ import annotations

from typing import List, Optional

import typer

from curate.cli._common import JsonOpt, WorkspaceOpt, app, echo, emit, open_workspace
from pipelines.config import load_config
from pipelines.dedup import clear_filter, run_filter
from pipelines.filters import FilterConfig, run_quality_filters, set_filter_override

filter_app = typer.Typer(
    help="Quality filters: compute signals per record, exclude (reversibly) what a rule matches.\n\n"
         "Signals: length_chars, length_words, length_tokens, turns, response_words, "
         "dup_line_frac, top2_frac, top3_frac, top4_frac, refusal, boilerplate, markup, mojibake, "
         "lang, lang_score, lang_mixed, empty_turn, assistant_first, ends_on_user "
         "(docs/filters.md).\n\n"
         "Example: curate filter --workspace ws --rule 'length_words < 3' --rule refusal --preview",
    no_args_is_help=False, rich_markup_mode=None)
app.add_typer(filter_app, name="filter")


@filter_app.callback(invoke_without_command=True)
def filter_cmd(
    ctx: typer.Context,
    workspace: str = WorkspaceOpt,
    rule: Optional[List[str]] = typer.Option(
        None, "--rule", help="A rule over the signals (repeatable; replaces curation.yaml's "
                             "filter.rules), e.g. 'length_words < 3', 'lang != en', 'refusal'."),
    like: Optional[str] = typer.Option(
        None, "--like", help="On-topic similarity filter instead: exemplars as a file (one record "
                             "id or text per line, or JSONL with id/text) or comma-separated ids."),
    min_sim: float = typer.Option(0.5, "--min-sim",
                                  help="(--like) exclude records whose best cosine is lower."),
    model: str = typer.Option("default", help="(--like) embedding model."),
    clear: bool = typer.Option(False, "--clear",
                               help="Remove every on-topic (--like) flag instead."),
    preview: bool = typer.Option(False, "--preview", help="Compute and count; store nothing."),
    as_json: bool = JsonOpt,
):
    """Compute quality signals and exclude records a rule matches (a person's keep/drop wins).

    Signals: length_chars, length_words, length_tokens, turns, response_words, dup_line_frac,
    top2_frac..top4_frac, refusal, boilerplate, markup, mojibake, lang, lang_score, lang_mixed,
    empty_turn, assistant_first, ends_on_user.

    Example: curate filter --workspace ws --rule 'lang != en' --rule refusal --json

    Example: curate filter --workspace ws --like exemplars.txt --min-sim 0.5
    """
    if ctx.invoked_subcommand is not None:
        return
    ws = open_workspace(workspace)
    if clear:
        n = clear_filter(ws)
        echo(f"cleared {n} filter flags")
        emit({"cleared": n}, as_json)
        return
    if like:
        result = run_filter(ws, like, min_sim, model=model, commit=not preview, progress=True)
        echo(f"{result.flagged} of {result.records} records below {result.min_sim} similarity to "
             f"{result.exemplars} exemplars" + (" (preview, nothing stored)" if preview else
                                                f" flagged (run {result.run_id})"))
        emit(result.to_dict(), as_json)
        return
    section = load_config(ws.config_path).section("filter")
    config = FilterConfig.from_section(section, rules=list(rule) if rule else None)
    result = run_quality_filters(ws, config, commit=not preview, progress=True)
    for text, n in result.fired.items():
        ex = ", ".join(result.examples.get(text, [])[:3])
        echo(f"  {n:>6}  {text}" + (f"   e.g. {ex}" if ex else ""))
    echo(f"{result.excluded} of {result.records} records excluded by {len(result.rules)} rules; "
         f"{result.overrides} overrides respected; " +
         ("preview only, nothing stored" if preview else f"run {result.run_id}") +
         f" in {result.seconds:.1f}s")
    emit(result.to_dict(), as_json)


def _override(record_id: str, workspace: str, decision: Optional[str], as_json: bool) -> None:
    row = set_filter_override(open_workspace(workspace), record_id, decision)
    echo(f"{record_id}: {'excluded' if row['excluded'] else 'kept'}"
         + (f" ({row['reason']})" if row["reason"] else ""))
    emit(row, as_json)


@filter_app.command("keep")
def keep_cmd(record_id: str = typer.Argument(..., help="Record id."),
             workspace: str = WorkspaceOpt, as_json: bool = JsonOpt):
    """Keep a record whatever the quality rules say (later runs respect it).

    Example: curate filter keep r0123456789abcdef --workspace ws
    """
    _override(record_id, workspace, "keep", as_json)


@filter_app.command("drop")
def drop_cmd(record_id: str = typer.Argument(..., help="Record id."),
             workspace: str = WorkspaceOpt, as_json: bool = JsonOpt):
    """Exclude a record whatever the quality rules say (later runs respect it).

    Example: curate filter drop r0123456789abcdef --workspace ws
    """
    _override(record_id, workspace, "drop", as_json)


@filter_app.command("reset")
def reset_cmd(record_id: str = typer.Argument(..., help="Record id."),
              workspace: str = WorkspaceOpt, as_json: bool = JsonOpt):
    """Remove a person's keep/drop: the rules decide again.

    Example: curate filter reset r0123456789abcdef --workspace ws
    """
    _override(record_id, workspace, None, as_json)


@app.command("pii")
def pii_cmd(
    workspace: str = WorkspaceOpt,
    types: Optional[str] = typer.Option(
        None, "--types", help="Comma-separated PII types (default: all): EMAIL, PHONE, "
                              "CREDIT_CARD, IBAN, SSN, IP_ADDRESS, URL_CREDENTIALS, PERSON."),
    min_confidence: Optional[float] = typer.Option(None, "--min-confidence",
                                                   help="Keep detections at least this sure."),
    preview: bool = typer.Option(False, "--preview", help="Detect and count; store nothing."),
    as_json: bool = JsonOpt,
):
    """Detect PII in every record and store the spans (type, offsets, confidence).

    Export redacts PII whether or not this ran (see `curate export --pii`).

    Example: curate pii --workspace ws --preview --json
    """
    from pipelines.pii import PiiConfig, run_pii

    ws = open_workspace(workspace)
    config = PiiConfig.from_section(load_config(ws.config_path).section("pii"), types=types,
                                    min_confidence=min_confidence)
    result = run_pii(ws, config, commit=not preview, progress=True)
    for kind, n in sorted(result.spans.items()):
        echo(f"  {n:>6}  {kind:<16} e.g. {', '.join(result.examples.get(kind, [])[:3])}")
    echo(f"{result.with_pii} of {result.records} records contain PII; " +
         ("preview only, nothing stored" if preview else f"run {result.run_id}") +
         f" in {result.seconds:.1f}s")
    emit(result.to_dict(), as_json)
