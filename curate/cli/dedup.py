"""`curate dedup` (+ `clusters`, `keep`, `drop`, `reset`), `curate search`."""

from __future__ import annotations

from typing import Optional

import typer

from curate.cli._common import JsonOpt, WorkspaceOpt, app, echo, emit, open_workspace
from pipelines.config import load_config
from pipelines.dedup import (
    DedupConfig, list_clusters, run_dedup, search, set_override,
)

dedup_app = typer.Typer(
    help="Find exact and semantic duplicates; flag (never delete) all but one of each cluster.\n\n"
         "Example: curate dedup --workspace ws --threshold 0.92 --json",
    no_args_is_help=False, rich_markup_mode=None)
app.add_typer(dedup_app, name="dedup")

_PREVIEW = 90


def _short(text: str | None, n: int = _PREVIEW) -> str:
    text = " ".join((text or "").split())
    return text[:n] + ("..." if len(text) > n else "")


@dedup_app.callback(invoke_without_command=True)
def dedup_cmd(
    ctx: typer.Context,
    workspace: str = WorkspaceOpt,
    threshold: Optional[float] = typer.Option(
        None, help="Cosine at which records are duplicates on meaning alone (default 0.92; "
                   "facts must still agree)."),
    candidate_threshold: Optional[float] = typer.Option(
        None, help="Cosine floor of the candidate search (default 0.70); below --threshold a "
                   "pair merges only on agreeing facts or high lexical overlap."),
    model: Optional[str] = typer.Option(
        None, help="Embedding model: auto (static on CPU, MiniLM on a GPU), static, default "
                   "(packaged all-MiniLM-L6-v2), a folder, or a cached id."),
    index: Optional[str] = typer.Option(None, help="auto | flat | hnsw | ivf"),
    lexical_threshold: Optional[float] = typer.Option(
        None, help="Character 5-gram Jaccard at which a pair is a copy (default 0.80)."),
    paraphrase_threshold: Optional[float] = typer.Option(
        None, help="Cosine at which a pair sharing an identifier and --min-shared-facts facts "
                   "is a paraphrase (default 0.80)."),
    min_shared_facts: Optional[int] = typer.Option(
        None, help="Facts a paraphrase below --threshold must share (default 2)."),
    embedding_max_chars: Optional[int] = typer.Option(
        None, help="Longest text (characters) on which a cosine merges; longer texts merge on "
                   "lexical evidence only (default 2000)."),
    exact: Optional[bool] = typer.Option(None, "--exact/--no-exact",
                                         help="Stage 1: exact (normalised text) folding."),
    fuzzy: Optional[bool] = typer.Option(None, "--fuzzy/--no-fuzzy",
                                         help="Stage 2: MinHash-LSH lexical near copies."),
    semantic: Optional[bool] = typer.Option(None, "--semantic/--no-semantic",
                                            help="Stage 3: embeddings + FAISS paraphrases."),
    same_conversation: Optional[bool] = typer.Option(
        None, "--same-conversation/--no-same-conversation",
        help="Compare segments of one source conversation (default: never duplicates)."),
    no_verify: bool = typer.Option(False, "--no-verify",
                                   help="Cosine threshold alone (no fact/lexical checks)."),
    fuzzy_threshold: Optional[float] = typer.Option(
        None, help="MinHash-LSH Jaccard at which the fuzzy stage proposes a pair (default 0.70)."),
    near_copy_threshold: Optional[float] = typer.Option(
        None, help="Lexical Jaccard at which a pair with cosine >= --paraphrase-threshold and "
                   "agreeing facts is a copy (default 0.60)."),
    same_prompt: Optional[bool] = typer.Option(
        None, "--same-prompt/--no-same-prompt",
        help="Instruction data: one prompt with several responses is a cluster (default on)."),
    neighbours: Optional[int] = typer.Option(
        None, help="Nearest neighbours fetched per record as candidates (default 16)."),
    fact_blocking: Optional[bool] = typer.Option(
        None, "--fact-blocking/--no-fact-blocking",
        help="Also compare records sharing an identifier or an amount on a date (default on)."),
    block_max: Optional[int] = typer.Option(
        None, help="Skip a shared fact held by more records than this (default 50)."),
    flat_max: Optional[int] = typer.Option(
        None, help="Largest collection searched with the exact flat index when --index auto "
                   "(default 55000)."),
    batch_size: Optional[int] = typer.Option(None, help="Texts per encode() call (default 64)."),
    scheduler: Optional[str] = typer.Option(
        None, help="Dask scheduler address (tcp://host:8786): its workers compute the "
                   "embeddings and MinHash signatures (default: here, no Dask)."),
    preview: bool = typer.Option(False, "--preview", help="Compute and print; store nothing."),
    as_json: bool = JsonOpt,
):
    """Deduplicate the workspace: exact, same-prompt and semantic clusters, reversible flags.

    Example: curate dedup --workspace ws --threshold 0.92 --json
    """
    if ctx.invoked_subcommand is not None:
        return
    ws = open_workspace(workspace)
    section = load_config(ws.config_path).section("dedup")
    config = DedupConfig.from_section(
        section, threshold=threshold, candidate_threshold=candidate_threshold, model=model,
        index=index, lexical_threshold=lexical_threshold,
        paraphrase_threshold=paraphrase_threshold, min_shared_facts=min_shared_facts,
        embedding_max_chars=embedding_max_chars, exact=exact, fuzzy=fuzzy, semantic=semantic, same_conversation=same_conversation,
        verify=False if no_verify else None, fuzzy_threshold=fuzzy_threshold,
        near_copy_threshold=near_copy_threshold, same_prompt=same_prompt, neighbours=neighbours,
        fact_blocking=fact_blocking, block_max=block_max, flat_max=flat_max,
        batch_size=batch_size, scheduler=scheduler)
    if config.semantic:   # on stderr: a --json line on stdout stays clean
        from pipelines.embed.languages import workspace_language_note

        note = workspace_language_note(ws, config.model)
        if note:
            typer.echo(f"note: {note}", err=True)
    try:
        result = run_dedup(ws, config, progress=True, commit=not preview)
    except KeyboardInterrupt:
        # every finished embedding chunk is on disk; a rerun encodes only the rest
        typer.echo(f"interrupted: nothing stored for this run; the embedding cache in "
                   f"{ws.path / 'embeddings'} keeps every finished chunk, a rerun resumes "
                   f"from it", err=True)
        raise SystemExit(130) from None   # (click would turn Ctrl-C into Abort: exit 1)
    for name, st in result.stages.items():
        if not st.get("on"):
            echo(f"  {name}: off")
        elif name == "exact":
            echo(f"  exact: {st['records']} records -> {st['units']} units ({st['seconds']:.2f}s)")
        else:
            extra = f", embed {st['embed_seconds']:.1f}s" if name == "semantic" else ""
            echo(f"  {name}: {st['candidates']} candidate pairs, {st['merged_pairs']} merged "
                 f"({st['seconds']:.2f}s{extra})")
    echo(f"{result.records} records ({result.embedded} embedded, {result.cache_hits} from cache), "
         f"{result.candidates} candidate pairs on a {result.index} index, "
         f"{result.conflicts} refused for conflicting facts")
    echo(f"{result.clusters} clusters; excluded {result.excluded}: {result.exact} exact "
         f"({result.same_prompt} same prompt), {result.semantic} semantic, {result.filtered} "
         f"off-topic; {result.review} same-prompt records kept for review; "
         f"{result.overrides} overrides respected")
    echo("caches: " + ", ".join(f"{name} {'hit' if hit else 'miss'}" for name, hit in (
        ("exact units", result.units_cache),
        ("embeddings", result.embedded == 0 and result.cache_hits > 0),
        ("candidates", result.pair_cache), ("verification", result.verify_cache)))
        + ("; stored rows unchanged (run id stamped)" if result.unchanged else ""))
    echo(("preview only, nothing stored" if preview else f"run {result.run_id}") +
         f" in {result.seconds:.1f}s")
    emit(result.to_dict(), as_json)


@dedup_app.command("clusters")
def clusters_cmd(
    workspace: str = WorkspaceOpt,
    top: int = typer.Option(20, "--top", help="How many of the largest clusters."),
    as_json: bool = JsonOpt,
):
    """Show the largest clusters side by side: representative first, then each member's scores.

    Example: curate dedup clusters --workspace ws --top 5
    """
    ws = open_workspace(workspace)
    clusters = list_clusters(ws, top)
    for c in clusters:
        echo(f"== {c.cluster_id} ({c.size} records, representative {c.representative_id})")
        for m in c.members:
            mark = "drop" if m["excluded"] else "keep"
            if m.get("override"):
                mark += "*"
            score = f"{m['similarity']:.3f}" if m["similarity"] is not None else "     "
            echo(f"  {mark:<5} {m['record_id']} {m['method']:<11} {score}  {_short(m['text'])}")
            if m["record_id"] != c.representative_id:
                echo(f"        {m['reason']}")
                if m.get("rule") and m.get("facts"):
                    echo(f"        evidence: {m['rule']} (facts {m['facts']})")
    if not clusters:
        echo("no clusters (run `curate dedup` first)")
    emit({"clusters": [{"cluster_id": c.cluster_id, "representative_id": c.representative_id,
                        "members": [{k: m[k] for k in ("record_id", "method", "similarity",
                                                        "lexical", "facts", "rule", "excluded")}
                                    for m in c.members]} for c in clusters]}, as_json)


def _override(record_id: str, workspace: str, decision: Optional[str], as_json: bool) -> None:
    ws = open_workspace(workspace)
    row = set_override(ws, record_id, decision)
    state = "excluded" if row.get("excluded") else "kept"
    echo(f"{record_id}: {state} ({row.get('reason')})")
    emit({"record_id": record_id, "decision": decision, "excluded": bool(row.get("excluded")),
          "cluster_id": row.get("cluster_id"), "representative_id": row.get("representative_id")},
         as_json)


@dedup_app.command("keep")
def keep_cmd(record_id: str = typer.Argument(..., help="Record id."),
             workspace: str = WorkspaceOpt, as_json: bool = JsonOpt):
    """Keep a record whatever dedup or the filter decide (later runs respect it).

    Example: curate dedup keep r0123456789abcdef --workspace ws
    """
    _override(record_id, workspace, "keep", as_json)


@dedup_app.command("drop")
def drop_cmd(record_id: str = typer.Argument(..., help="Record id."),
             workspace: str = WorkspaceOpt, as_json: bool = JsonOpt):
    """Exclude a record from training (later runs respect it; a dropped representative's place
    goes to the next member of its cluster).

    Example: curate dedup drop r0123456789abcdef --workspace ws
    """
    _override(record_id, workspace, "drop", as_json)


@dedup_app.command("reset")
def reset_cmd(record_id: str = typer.Argument(..., help="Record id."),
              workspace: str = WorkspaceOpt, as_json: bool = JsonOpt):
    """Remove a person's keep/drop: the automatic decision applies again.

    Example: curate dedup reset r0123456789abcdef --workspace ws
    """
    _override(record_id, workspace, None, as_json)


@app.command("search")
def search_cmd(
    query: str = typer.Argument(..., help="Text to look for (by meaning)."),
    workspace: str = WorkspaceOpt,
    k: int = typer.Option(20, "-k", "--k", help="How many results."),
    model: str = typer.Option("auto", help="Embedding model (default: dedup's, so its cached "
                                           "embeddings are reused; `default` is MiniLM)."),
    as_json: bool = JsonOpt,
):
    """Semantic search over the workspace's records (embeddings from the dedup cache).

    Example: curate search "water heater leak in the basement" --workspace ws -k 5
    """
    ws = open_workspace(workspace)
    hits = search(ws, query, k, model=model, progress=True)
    for h in hits:
        flag = " (excluded)" if h.excluded else ""
        echo(f"{h.score:.3f}  {h.record_id}{flag}  {_short(h.text)}")
    emit({"query": query, "hits": [{"record_id": h.record_id, "score": h.score,
                                    "excluded": h.excluded, "cluster_id": h.cluster_id}
                                   for h in hits]}, as_json)
