"""`curate generate`: base vs tuned generations of a finished SFT run for a file of prompts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from curate.cli._common import JsonOpt, WorkspaceOpt, app, echo, emit, open_workspace
from pipelines.config import load_config
from pipelines.errors import InputError


def read_prompts(path: Path, system_prompt: str | None = None) -> list[list[dict]]:
    """Chat prompts from a file: `.jsonl` rows with `messages` (a trailing assistant turn is
    dropped), `prompt`, or `instruction` [+ `input`]; any other file: one prompt per line.

    Raises:
        InputError: the file is missing or empty, or a row has none of those fields.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such prompts file")
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    out: list[list[dict]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if path.suffix != ".jsonl":
            out.append(system + [{"role": "user", "content": line.strip()}])
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{n}: not JSON ({exc.msg})") from None
        if isinstance(row, dict) and isinstance(row.get("messages"), list) and row["messages"]:
            msgs = row["messages"]
            out.append(msgs[:-1] if msgs[-1].get("role") == "assistant" else msgs)
        elif isinstance(row, dict) and isinstance(row.get("prompt"), str):
            out.append(system + [{"role": "user", "content": row["prompt"]}])
        elif isinstance(row, dict) and isinstance(row.get("instruction"), str):
            text = row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")
            out.append(system + [{"role": "user", "content": text}])
        else:
            raise InputError(f"{path}:{n}: expected a field messages, prompt or instruction")
    if not out:
        raise InputError(f"{path}: no prompts in the file")
    return out


@app.command("generate")
def generate_cmd(
    file: str = typer.Argument(..., help="Prompts: .jsonl (messages / prompt / instruction) "
                               "or a text file with one prompt per line."),
    workspace: str = WorkspaceOpt,
    run: str = typer.Option(..., "--run", help="A finished SFT run id (see `curate train list`)."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens",
                                                 help="Tokens per generation (default: the run's)."),
    out: Optional[str] = typer.Option(None, "--out", help="Write {prompt, base, tuned} JSONL here."),
    batch_size: int = typer.Option(4, "--batch-size", help="Prompts per generate call."),
    as_json: bool = JsonOpt,
):
    """Generate with the run's base model and with its adapter, side by side.

    Example: curate generate --workspace ws --run 20261128-120000-sft-v0001 prompts.txt
    """
    from tqdm import tqdm

    from trainer.runs import run_dir
    from trainer.sft import compare_generations

    ws = open_workspace(workspace)
    system = (load_config(ws.config_path).sections.get("export") or {}).get("system_prompt")
    prompts = read_prompts(Path(file), system)
    rd = run_dir(ws, run)
    with tqdm(total=2 * len(prompts), desc="base, then tuned", unit="prompt",
              disable=as_json) as bar:
        rows = compare_generations(rd, prompts, max_new_tokens=max_new_tokens,
                                   batch_size=batch_size, on_done=bar.update)
    for r in rows:
        echo(f"- prompt: {r['prompt'][:100]!r}")
        echo(f"  base:   {r['base']!r}")
        echo(f"  tuned:  {r['tuned']!r}")
    if out:
        Path(out).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                             encoding="utf-8")
        echo(f"{len(rows)} generations -> {out}")
    emit({"run_id": rd.id, "n": len(rows), "out": out, "generations": rows}, as_json)
