"""`curate serve` (the registered adapters on 127.0.0.1, OpenAI protocol) and `curate predict`
(batch inference over a file): both through `curate.serve.ModelService`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from curate.cli._common import JsonOpt, WorkspaceOpt, app, echo, emit, open_workspace


def _serve_config(port, router, base_model, model, max_queue, max_body_bytes, max_tokens):
    from curate.serve import ServeConfig

    return ServeConfig(port=port, router=router, base_model=base_model,
                       models=list(model) or None, max_queue=max_queue,
                       max_body_bytes=max_body_bytes, max_tokens=max_tokens)


_PORT = typer.Option(8000, "--port", help="Port on 127.0.0.1 (0: any free port).")
_ROUTER = typer.Option("router", "--router", help="Registered router for model 'auto'.")
_BASE = typer.Option(None, "--base-model", help="Causal LM for the sft adapters (default: "
                                                "the first sft adapter's base).")
_MODELS = typer.Option([], "--model", "-m", help="Adapter to load (repeat; default: all).")


@app.command("serve")
def serve_cmd(workspace: str = WorkspaceOpt, port: int = _PORT, router: str = _ROUTER,
              base_model: Optional[str] = _BASE, model: List[str] = _MODELS,
              max_queue: int = typer.Option(8, help="Requests that may wait; more get 503."),
              max_body_bytes: int = typer.Option(1_000_000, help="Larger bodies get 413."),
              max_tokens: int = typer.Option(128, help="Default tokens per answer."),
              as_json: bool = typer.Option(False, "--json", help="Print the bound URL, the "
                                           "models and the log path as one JSON line first.")):
    """Serve the registered adapters on 127.0.0.1 (OpenAI chat-completions protocol).

    Example: curate serve --workspace ws --port 8000   # then: model "auto" or an adapter name
    """
    from curate.serve import ModelService, make_server

    cfg = _serve_config(port, router, base_model, model, max_queue, max_body_bytes, max_tokens)
    service = ModelService.from_workspace(open_workspace(workspace), cfg)
    for n in service.notices:
        echo(f"notice: {n}")
    server = make_server(service, cfg)
    host, bound = server.server_address[:2]
    echo(f"serving {', '.join(service.pool.names) or 'no adapters'} on http://{host}:{bound}/v1 "
         f"(log: {service.log.path}); Ctrl-C stops", quiet=as_json)
    emit({"url": f"http://{host}:{bound}/v1", "models": service.pool.names,
          "refused": service.pool.refused, "log": str(service.log.path)}, as_json)
    try:
        server.serve_forever()
    finally:
        server.server_close()


@app.command("predict")
def predict_cmd(file: str = typer.Argument(..., help=".jsonl (messages/prompt/text), .txt or .csv"),
                workspace: str = WorkspaceOpt,
                model: str = typer.Option("auto", "--model", help="auto, base or an adapter."),
                out: Optional[str] = typer.Option(None, "--out", help="Output .jsonl (default: "
                                                  "FILE's name + .predictions.jsonl)."),
                router: str = _ROUTER, base_model: Optional[str] = _BASE,
                max_tokens: int = typer.Option(128, help="Tokens per answer."),
                as_json: bool = JsonOpt):
    """Batch inference over a file with the registered adapters, with a progress bar.

    Example: curate predict --workspace ws prompts.jsonl --out answers.jsonl
    """
    from curate.serve import ModelService
    from curate.serve.predict import predict_file

    cfg = _serve_config(8000, router, base_model, [], 8, 1_000_000, max_tokens)
    service = ModelService.from_workspace(open_workspace(workspace), cfg, log=False)
    for n in service.notices:
        echo(f"notice: {n}", quiet=as_json)
    src = Path(file)
    target = Path(out) if out else src.with_name(src.stem + ".predictions.jsonl")
    result = predict_file(service, src, target, model=model, progress=not as_json)
    echo(f"{result['rows']} rows -> {result['out']} ({result['errors']} refused); by model: "
         + ", ".join(f"{k} {v}" for k, v in sorted(result["models"].items())))
    emit(result, as_json)
