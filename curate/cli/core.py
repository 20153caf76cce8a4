"""`curate init`, `curate ingest`, `curate records`, `curate status`."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path
from typing import Optional

import typer
from tqdm import tqdm

from curate.cli._common import (
    JsonOpt, WorkspaceOpt, app, echo, emit, on_interrupt, open_workspace,
)
from pipelines.config import load_config
from pipelines.errors import ConfigError
from pipelines.config import CurationConfig
from pipelines.ingest import IngestConfig, IngestResult, Preview, ingest, preview
from pipelines.samples import load_sample
from pipelines.store import list_records, stage_counts


def _print_ingest(result: IngestResult) -> None:
    for f in result.files:
        layout = f" [{f.layout}]" if f.layout else ""
        pairs = (f"{f.pairs} new preference pairs, their records: "
                 if (f.layout or "").startswith("preference") else "")
        echo(f"{Path(f.file).name}{layout}: {f.rows} rows -> {pairs}{f.added} added, "
             f"{f.duplicates} exact duplicates folded, {f.unchanged} unchanged, {f.rejected} "
             f"rejected")
    echo(f"total: {result.added} added, {result.duplicates} duplicates, {result.unchanged} "
         f"unchanged, {result.rejected} rejected"
         + (f", {result.pairs} new preference pairs" if result.pairs else ""))
    if result.cleaned:
        echo("control characters stripped (rows per field): "
             + ", ".join(f"{k}={v}" for k, v in sorted(result.cleaned.items())))
    if result.conditions:
        echo("conditions: " + ", ".join(f"{k}={v}" for k, v in sorted(result.conditions.items()))
             + " (stored and flagged in meta.conditions; empty turns dropped)")
    for c in result.conflicts:
        echo(f"  conflict: {c['record_id']} ({Path(c['file']).name} row {c['row']}) has "
             f"{c['field']} values {', '.join(c['values'])}"
             + ("; no gold kept for it" if c["field"] != "label" else "; first raw label kept"))
    shown = len(result.conflicts)
    total = result.conditions.get("gold_conflict", 0) + result.conditions.get("label_conflict", 0)
    if total > shown:
        echo(f"  ... and {total - shown} more conflicts")
    if result.reject_report:
        echo(f"reject report: {result.reject_report}")


def _prompt_lines(rec) -> list[str]:
    """The prompt of a preference side as `role: content` lines (instruction: the prompt)."""
    if rec.messages:
        return [f"{m['role']}: {m['content']}" for m in rec.messages[:-1]]
    return (rec.prompt or "").splitlines()


def _print_preview(p: Preview) -> None:
    rec = p.record
    echo(f"file: {p.file}")
    echo(f"format: {p.source}")
    pair = p.pair
    echo(f"layout: {p.layout.name} -> {'pairs of ' if pair else ''}{rec.kind} records")
    echo(f"fields: {p.layout.describe()}"
         + ("" if pair is None or "prompt" in p.layout.fields else
            ", prompt <- the turns both share"))
    for s in p.skipped:
        echo(f"skipped before it: {s}")
    where = f"row {rec.row}{f' of {Path(rec.file).name}' if rec.file != p.file else ''}"
    sides = ((("chosen", pair.chosen), ("rejected", pair.rejected)) if pair else
             (("record", rec),))
    if pair:
        echo(f"first pair ({where}): prompt")
        for line in _prompt_lines(pair.chosen):
            echo(f"  | {line}")
    for name, one in sides:
        echo(f"{name} ({where}, id {one.id}):" if pair else f"first record ({where}, id {one.id}):")
        for line in ([one.response or ""] if pair else one.text.splitlines()) or [""]:
            for part in line.splitlines() or [""]:
                echo(f"  | {part}")
    extra = {k: v for k, v in (("label", rec.raw_label), ("gold", rec.gold or None),
                               ("conditions", rec.meta.get("conditions")),
                               ("meta keys", [k for k in rec.meta if k != "conditions"] or None))
             if v is not None}
    for k, v in extra.items():
        echo(f"  {k}: {v}")
    echo("dry run: nothing stored")


def _record_json(rec) -> dict:
    return {"id": rec.id, "text": rec.text, "prompt": rec.prompt, "response": rec.response,
            "messages": rec.messages}


@app.command("init")
def init_cmd(
    workspace: str = WorkspaceOpt,
    sample: bool = typer.Option(False, "--sample", help="Load sample_data/ and its curation.yaml."),
    as_json: bool = JsonOpt,
):
    """Create a workspace; with --sample, load the insurance-claims sample into it.

    Example: curate init --workspace ws --sample
    """
    ws = open_workspace(workspace, create=True)
    summary: dict = {"workspace": str(ws.path), "sample": sample}
    if sample:
        # The sample has deliberately broken rows (empty notes): kept out and reported.
        result = load_sample(ws)
        _print_ingest(result)
        summary.update({k: v for k, v in result.to_dict().items() if k != "files"})
    echo(f"workspace ready: {ws.path}")
    emit(summary, as_json)


@app.command("ingest")
def ingest_cmd(
    files: list[Path] = typer.Argument(..., help="Files (.csv .tsv .jsonl .json .parquet .arrow "
                                       ".txt, optionally .gz/.zst) or dataset folders."),
    workspace: str = WorkspaceOpt,
    schema: Optional[str] = typer.Option(None, help="text | instruction | chat (default: detect)."),
    text_field: Optional[str] = typer.Option(None, help="Column holding the text."),
    prompt_field: Optional[str] = typer.Option(None, help="Column holding the prompt."),
    response_field: Optional[str] = typer.Option(None, help="Column holding the response."),
    system_field: Optional[str] = typer.Option(None, help="Column holding a system prompt."),
    messages_field: Optional[str] = typer.Option(None, help="Column holding chat messages."),
    label_field: Optional[str] = typer.Option(None, help="Column holding a raw label."),
    chosen_field: Optional[str] = typer.Option(
        None, help="Column holding a preference pair's preferred answer (chosen)."),
    rejected_field: Optional[str] = typer.Option(
        None, help="Column holding a preference pair's other answer (rejected)."),
    gold_prefix: Optional[str] = typer.Option(None, help="Prefix of gold-label columns (gold_)."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid",
                                      help="Ingest valid rows; write a reject report for the rest."),
    max_reject_share: Optional[float] = typer.Option(
        None, help="With --skip-invalid: store nothing and exit 2 if more than this share of the "
                   "rows is rejected (default 0.5)."),
    max_record_chars: Optional[int] = typer.Option(
        None, help="Reject a row holding more characters than this, in any format; also the "
                   "CSV field limit (default 1,000,000)."),
    encoding: Optional[str] = typer.Option(
        None, help="Text encoding of .csv/.tsv/.jsonl/.txt files, e.g. cp1252 for a CSV saved by "
                   "Excel on Windows (default utf-8; a UTF-16 byte-order mark is followed)."),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Print the detected format, the field mapping and the first "
                                      "record; store nothing."),
    as_json: bool = JsonOpt,
):
    """Ingest files into the workspace (creating it if needed). Re-ingesting adds nothing.

    Without --skip-invalid a bad row rejects the whole call and nothing is stored. The row
    layout (text, prompt/response, Alpaca, OpenAI messages, ShareGPT conversations,
    prompt/chosen/rejected preference pairs) is detected from the first row's keys unless
    --schema is given; --dry-run shows what was detected.

    Example: curate ingest sharegpt.json.gz --workspace ws --dry-run
    """
    ws_path = Path(workspace).expanduser()
    if dry_run:   # reads the workspace's config if there is one; creates nothing
        cfg_path = ws_path / "curation.yaml"
        cfg = load_config(cfg_path) if cfg_path.is_file() else CurationConfig()
    else:
        ws = open_workspace(workspace, create=True)
        cfg = load_config(ws.config_path)
    overrides = {"text": text_field, "prompt": prompt_field, "response": response_field,
                 "system": system_field, "messages": messages_field, "label": label_field,
                 "chosen": chosen_field, "rejected": rejected_field}
    from dataclasses import replace

    fmap = replace(cfg.fields, **{k: v for k, v in overrides.items() if v})
    config = IngestConfig.from_curation(cfg, schema=schema, gold_prefix=gold_prefix,
                                        skip_invalid=skip_invalid,
                                        max_reject_share=max_reject_share,
                                        max_record_chars=max_record_chars,
                                        encoding=encoding)
    config.fields = fmap
    if dry_run:
        previews = [preview(f, config) for f in files]
        for p in previews:
            _print_preview(p)
        emit({"dry_run": True, "files": [
            {"file": p.file, "format": p.source, "layout": p.layout.name, "kind": p.record.kind,
             "fields": p.layout.fields, "first_record": _record_json(p.record),
             **({"first_pair": {"chosen": _record_json(p.pair.chosen),
                                "rejected": _record_json(p.pair.rejected)}} if p.pair else {})}
            for p in previews]}, as_json)
        return
    with on_interrupt("nothing was ingested (one transaction, rolled back); the workspace is as "
                      "it was"), \
            tqdm(desc="ingest", unit=" rows", disable=not sys.stderr.isatty()) as bar:
        result = ingest(ws, files, config, progress=bar.update)
    _print_ingest(result)
    emit({k: v for k, v in result.to_dict().items()}, as_json)


_PREVIEW = 70
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _shown(value: object) -> str:
    """`value` safe for a terminal: control characters (ANSI escapes) written as `\\x1b`."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


@app.command("records")
def records_cmd(
    workspace: str = WorkspaceOpt,
    fmt: str = typer.Option("table", "--format", help="table | csv | jsonl"),
    scheme: Optional[str] = typer.Option(None, help="Label scheme for the label columns "
                                                    "(default: the first in curation.yaml)."),
    limit: Optional[int] = typer.Option(None, help="At most this many records."),
    search: Optional[str] = typer.Option(None, help="Only records whose text contains this."),
    as_json: bool = JsonOpt,
):
    """List records with their source and, as later steps add them, dedup/label/review columns
    and the quality rules that fired on each (`filters`).

    Example: curate records --workspace ws --format jsonl --limit 5
    """
    if fmt not in ("table", "csv", "jsonl"):
        raise ConfigError(f"--format must be table, csv or jsonl, got {fmt!r}")
    ws = open_workspace(workspace)
    cfg = load_config(ws.config_path)
    if scheme is None and cfg.schemes:
        scheme = next(iter(cfg.schemes))
    elif scheme is not None:
        cfg.scheme(scheme)
    with ws.connect() as conn:
        rows = list_records(conn, scheme=scheme, limit=limit, search=search)
    cols = ["id", "source", "text", "cluster_id", "excluded", "label", "confidence",
            "review_status", "filters"]
    for r in rows:   # the quality rules that fired (`curate filter`), shown with the record
        r["filters"] = "; ".join(r["filter_fired"])
    if fmt == "jsonl":
        for r in rows:
            out = {k: r[k] for k in cols}
            out.update(prompt=r["prompt"], response=r["response"], n_sources=r["n_sources"],
                       raw_label=r["raw_label"], scheme=scheme)
            sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(cols)
        tty = sys.stdout.isatty()   # a file gets the stored text; a terminal no escapes
        for r in rows:
            w.writerow([_shown(r[k]) if tty and isinstance(r[k], str) else r[k] for k in cols])
    else:
        echo(f"{'id':<18} {'source':<28} {'cluster':<18} {'excl':<4} {'label':<16} {'conf':>5}"
             f"  text")
        for r in rows:
            src = Path(r["source"].rsplit(":", 1)[0]).name + ":" + r["source"].rsplit(":", 1)[1]
            if r["n_sources"] > 1:
                src += f" (+{r['n_sources'] - 1})"
            text = _shown(" ".join(r["text"].split()))
            text = text[:_PREVIEW] + ("..." if len(text) > _PREVIEW else "")
            src = _shown(src)
            if r["filters"]:
                text = f"[{r['filters']}] {text}"
            conf = f"{r['confidence']:.2f}" if r["confidence"] is not None else ""
            echo(f"{r['id']:<18} {src:<28} {(r['cluster_id'] or ''):<18} "
                 f"{'yes' if r['excluded'] else '':<4} "
                 f"{_shown(r['label'] or ''):<16} {conf:>5}  {text}")
    if as_json:
        emit({"records": len(rows), "scheme": scheme}, True)


@app.command("status")
def status_cmd(workspace: str = WorkspaceOpt, as_json: bool = JsonOpt):
    """Counts per stage: records, duplicates folded, excluded, labelled, reviewed, exported, trained.

    Example: curate status --workspace ws --json
    """
    ws = open_workspace(workspace)
    with ws.connect() as conn:
        counts = stage_counts(conn)
    echo(f"workspace: {ws.path}")
    for key, value in counts.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "0"
        echo(f"  {key:<18} {value}")
    emit({"workspace": str(ws.path), **counts}, as_json)
