"""`curate labelstudio start|stop|status|token`, `curate review push|pull|status` and
`curate review pairs push|pull|status`."""

from __future__ import annotations

from typing import Optional

import typer
from tqdm import tqdm

from curate.cli._common import JsonOpt, WorkspaceOpt, app, echo, emit, open_workspace

labelstudio_app = typer.Typer(
    help="Run the workspace's Label Studio server (127.0.0.1, data in W/labelstudio/).\n\n"
         "Example: curate labelstudio start --workspace ws",
    no_args_is_help=True)
review_app = typer.Typer(
    help="Human review in Label Studio: push pre-annotated tasks, pull annotations.\n\n"
         "Example: curate review push --workspace ws --scheme claim_type --budget 50",
    no_args_is_help=True)
app.add_typer(labelstudio_app, name="labelstudio")
app.add_typer(review_app, name="review")

SchemeOpt = typer.Option(..., "--scheme", "-s", help="Label scheme (from curation.yaml).")


class _TaskBar:
    """A push's `progress(done, total)`: a tqdm bar opened on the first report (none when nothing
    is sent)."""

    def __init__(self, desc: str):
        self.desc, self.bar = desc, None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit="task")
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@labelstudio_app.command("start")
def ls_start(
    workspace: str = WorkspaceOpt,
    port: Optional[int] = typer.Option(None, help="Port on 127.0.0.1 (default: the stored one, "
                                                  "else 8089)."),
    install: bool = typer.Option(False, "--install",
                                 help="Install the server venv (.venv-labelstudio) if missing."),
    timeout: float = typer.Option(240.0, help="Seconds to wait for /health."),
    as_json: bool = JsonOpt,
):
    """Start Label Studio for this workspace (reuses one already running). A fresh database
    takes ~80 s to migrate; a restart ~8 s.

    Example: curate labelstudio start --workspace ws --port 8089
    """
    from pipelines.errors import ReviewSyncError
    from pipelines.review.server import WorkspaceServer, find_label_studio, install_label_studio

    ws = open_workspace(workspace)
    try:
        find_label_studio()
    except ReviewSyncError:
        if not install:
            raise
        echo("installing label-studio into .venv-labelstudio (~3 min) ...")
        install_label_studio()
    server = WorkspaceServer.of(ws)
    last = [-10.0]

    def progress(waited: float) -> None:
        if waited - last[0] >= 10:
            last[0] = waited
            echo(f"waiting for Label Studio to answer /health ... {waited:.0f} s "
                 f"(a first start migrates its database: 1-3 min)")

    try:
        info, started = server.start(port=port, timeout=timeout, progress=progress)
    except KeyboardInterrupt as exc:
        from pipelines.store import Terminated

        typer.echo("interrupted: the Label Studio server that was starting was stopped; its "
                   f"data folder {server.data_dir} is kept and a rerun resumes from it",
                   err=True)
        if isinstance(exc, Terminated):
            raise
        raise SystemExit(130) from None   # (click would turn Ctrl-C into Abort: exit 1)
    echo(f"Label Studio {'started' if started else 'already running'} at {info.url} "
         f"(user {info.username}; password and token: `curate labelstudio token`; log "
         f"{server.log_path})")
    emit({"running": True, "started": started, "url": info.url, "pid": info.pid}, as_json)


@labelstudio_app.command("stop")
def ls_stop(workspace: str = WorkspaceOpt, as_json: bool = JsonOpt):
    """Stop the Label Studio server this workspace started (exactly its pid).

    Example: curate labelstudio stop --workspace ws
    """
    from pipelines.review.server import WorkspaceServer

    ws = open_workspace(workspace)
    stopped = WorkspaceServer.of(ws).stop()
    echo("Label Studio stopped" if stopped else "no Label Studio server of this workspace was running")
    emit({"stopped": stopped, "running": False}, as_json)


@labelstudio_app.command("status")
def ls_status(workspace: str = WorkspaceOpt, as_json: bool = JsonOpt):
    """Whether the workspace's Label Studio answers, and where.

    Example: curate labelstudio status --workspace ws --json
    """
    from pipelines.review.server import WorkspaceServer

    ws = open_workspace(workspace)
    st = WorkspaceServer.of(ws).status()
    echo(f"Label Studio {'running' if st['running'] else 'not running'}"
         + (f" at {st['url']}" if st["url"] else "") + (f" (pid {st['pid']})" if st["pid"] else ""))
    emit(st, as_json)


@labelstudio_app.command("token")
def ls_token(workspace: str = WorkspaceOpt, as_json: bool = JsonOpt):
    """Print the login (user, password) and, alone on the last line, the API token.

    With --json the last line is instead {"url", "username", "password", "token"}.

    Example: curate labelstudio token --workspace ws | tail -1
    """
    from pipelines.review.server import WorkspaceServer

    ws = open_workspace(workspace)
    info = WorkspaceServer.of(ws).credentials(create=False)
    echo(f"url: {info.url}\nuser: {info.username}\npassword: {info.password}")
    if as_json:
        emit({"url": info.url, "username": info.username, "password": info.password,
              "token": info.token}, True)
    else:
        echo(info.token)


@review_app.command("push")
def review_push(
    scheme: str = SchemeOpt,
    workspace: str = WorkspaceOpt,
    budget: Optional[int] = typer.Option(None, help="At most this many new tasks."),
    max_confidence: Optional[float] = typer.Option(
        None, help="Only records whose weak-label confidence is at most this."),
    recreate: bool = typer.Option(False, "--recreate",
                                  help="Make a new project if the old one was deleted in the UI."),
    as_json: bool = JsonOpt,
):
    """Send records not yet reviewed, least confident first, each pre-annotated with its weak
    label. A second push creates nothing; a push that died halfway is completed.

    Example: curate review push --workspace ws --scheme claim_type --budget 50 --max-confidence 0.9
    """
    from pipelines.review import push

    ws = open_workspace(workspace)
    progress = _TaskBar("push")

    res = push(ws, scheme, budget=budget, max_confidence=max_confidence, recreate=recreate,
               progress=progress)
    progress.close()
    echo(f"{res.created} tasks created, {res.skipped} already pushed"
         + (f", {res.recovered} recovered from an interrupted push" if res.recovered else "")
         + f" ({res.seconds:.2f} s); project: {res.url}")
    emit(res.to_dict(), as_json)


@review_app.command("pull")
def review_pull(scheme: str = SchemeOpt, workspace: str = WorkspaceOpt, as_json: bool = JsonOpt):
    """Fetch annotations created or updated since the last pull; human labels win over the
    label model. Re-pulling changes nothing.

    Example: curate review pull --workspace ws --scheme claim_type --json
    """
    from pipelines.review import pull

    ws = open_workspace(workspace)
    res = pull(ws, scheme)
    echo(f"{res.new} new, {res.updated} updated, {res.removed} removed annotations; "
         f"{res.deleted_tasks} deleted tasks noticed ({res.seconds:.2f} s)")
    for p in res.problems:
        echo(f"  not stored as a label: {p}")
    a = res.agreement
    if a.get("items"):
        echo(f"agreement on {a['items']} multiply-annotated items: {a['percent_agreement']:.1%}, "
             f"Fleiss kappa {a['fleiss_kappa']}"
             + (f", Cohen kappa {a['cohen_kappa']}" if a.get("cohen_kappa") is not None else ""))
    emit(res.to_dict(), as_json)


@review_app.command("status")
def review_status_cmd(scheme: str = SchemeOpt, workspace: str = WorkspaceOpt,
                      as_json: bool = JsonOpt):
    """Counts (pushed, annotated, agreed, pending) and the project URL (no server needed).

    Example: curate review status --workspace ws --scheme claim_type
    """
    from pipelines.review import review_status

    ws = open_workspace(workspace)
    st = review_status(ws, scheme)
    echo(f"{scheme}: {st['pushed']} pushed, {st['annotated']} annotated, {st['skipped']} skipped,"
         f" {st['pending']} pending, {st['agreed']} agreed (of {st['agreement']['items']} with "
         f"several annotators); {st['problems']} annotations with problems")
    echo(f"project: {st['url'] or '(none yet: run curate review push)'}")
    emit(st, as_json)


pairs_app = typer.Typer(
    help="Pairwise review: two responses to one prompt side by side in Label Studio; the\n"
         "picked one is `chosen` in the preference export.\n\n"
         "Example: curate review pairs push --workspace ws --budget 50",
    no_args_is_help=True)
review_app.add_typer(pairs_app, name="pairs")


@pairs_app.command("push")
def pairs_push(
    workspace: str = WorkspaceOpt,
    budget: Optional[int] = typer.Option(None, help="At most this many new pair tasks."),
    origin: Optional[list[str]] = typer.Option(
        None, "--origin", help="Only pairs of this origin (repeatable): counterfactual, "
                               "second_response, paraphrase, same_prompt. Default: all."),
    recreate: bool = typer.Option(False, "--recreate",
                                  help="Make a new project if the old one was deleted in the UI."),
    as_json: bool = JsonOpt,
):
    """Send each prompt's pairs of candidate responses not pushed yet (a record and its
    counterfactual or generated second response; two stored responses to one prompt), the two
    sides in a shuffled order. A second push creates nothing.

    Example: curate review pairs push --workspace ws --origin second_response --budget 50
    """
    from pipelines.review.pairs import ORIGINS, push_pairs

    ws = open_workspace(workspace)
    progress = _TaskBar("push pairs")

    res = push_pairs(ws, budget=budget, origins=tuple(origin) if origin else ORIGINS,
                     recreate=recreate, progress=progress)
    progress.close()
    made = ", ".join(f"{n} {o}" for o, n in sorted(res.by_origin.items()))
    echo(f"{res.created} pair tasks created{f' ({made})' if made else ''}, {res.skipped} already "
         f"pushed" + (f", {res.recovered} recovered from an interrupted push" if res.recovered
                      else "") + f" ({res.seconds:.2f} s); project: {res.url}")
    emit(res.to_dict(), as_json)


@pairs_app.command("pull")
def pairs_pull(workspace: str = WorkspaceOpt, as_json: bool = JsonOpt):
    """Fetch pairwise judgments created or updated since the last pull: every annotator's
    choice and time is kept; agreement over pairs judged by two or more people.

    Example: curate review pairs pull --workspace ws --json
    """
    from pipelines.review.pairs import pull_pairs

    ws = open_workspace(workspace)
    res = pull_pairs(ws)
    echo(f"{res.new} new, {res.updated} updated, {res.removed} removed judgments; "
         f"{res.no_choice} without a choice (skipped or nothing picked) ({res.seconds:.2f} s)")
    for p in res.problems:
        echo(f"  not stored as a choice: {p}")
    _echo_pair_agreement(res.agreement)
    emit(res.to_dict(), as_json)


@pairs_app.command("status")
def pairs_status(workspace: str = WorkspaceOpt, as_json: bool = JsonOpt):
    """Counts (pushed, judged, decided by a majority, tied) and the project URL (no server).

    Example: curate review pairs status --workspace ws
    """
    from pipelines.review.pairs import pair_status

    ws = open_workspace(workspace)
    st = pair_status(ws)
    echo(f"pairs: {st['pushed']} pushed, {st['judged']} judged ({st['judgments']} judgments, "
         f"{st['no_choice']} without a choice), {st['decided']} decided, {st['tied']} tied")
    _echo_pair_agreement(st["agreement"])
    echo(f"project: {st['url'] or '(none yet: run curate review pairs push)'}")
    emit(st, as_json)


def _echo_pair_agreement(a: dict) -> None:
    if a.get("items"):
        echo(f"agreement on {a['items']} pairs judged by several people: "
             f"{a['majority_share']:.1%} of judgments side with the majority, "
             f"Fleiss kappa {a['fleiss_kappa']}"
             + (f", Cohen kappa {a['cohen_kappa']}" if a.get("cohen_kappa") is not None else ""))
