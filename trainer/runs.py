"""Training runs on disk: `W/runs/<id>/` with config.yaml, events.jsonl, checkpoints/, adapter/,
eval.json, helpers to follow them from another process (the studio), and `start_detached`, which
writes a run's config.yaml and starts `python -m trainer` on it (through `pipelines.launch`).

`events.jsonl` has one JSON object per line: `{"event": "start", ...}`, then one
`{"event": "log", "step", "max_steps", "epoch", "loss", "lr", "tokens", "tokens_per_s", "eta_s"}` per
logging step, `{"event": "eval", ...}` and a final `{"event": "end", "status": ...}`.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipelines.errors import TrainError
from pipelines.launch import ChildSpec, pid_alive, start
from trainer.config import TrainConfig

__all__ = ["RunDir", "new_run_id", "run_dir", "read_events", "list_train_runs", "run_summary",
           "EventWriter", "events_callback", "start_detached", "latest_checkpoint", "checkpoints",
           "pick_run", "resume_config"]

_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


def new_run_id(head: str, export_version: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{head}-{export_version}"


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def events(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def adapter(self) -> Path:
        return self.path / "adapter"

    @property
    def eval_json(self) -> Path:
        return self.path / "eval.json"

    @property
    def config_yaml(self) -> Path:
        return self.path / "config.yaml"

    @property
    def log(self) -> Path:
        return self.path / "train.log"


def run_dir(ws, run_id: str, *, must_exist: bool = True) -> RunDir:
    if not _RUN_ID.match(run_id):
        raise TrainError(f"invalid run id {run_id!r}")
    path = ws.subdir("runs") / run_id
    if must_exist and not path.is_dir():
        known = [r["run_id"] for r in list_train_runs(ws)][-5:]
        raise TrainError(f"no training run {run_id!r} in {path.parent}; recent: "
                         f"{', '.join(known) if known else 'none'}")
    return RunDir(path)


class EventWriter:
    """Appends one JSON line per event and flushes, so a reader sees progress as it happens."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, event: str, **data: Any) -> None:
        line = json.dumps({"event": event, "time": time.time(), **data}, default=str)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()


def events_callback(writer: EventWriter):
    """A `TrainerCallback` that turns the Trainer's logs into `log` events with tokens/s and ETA."""
    from transformers import TrainerCallback

    class _Events(TrainerCallback):
        def __init__(self):
            self.t0 = None
            self.step0 = 0
            self.tokens0 = 0

        def on_train_begin(self, args, state, control, **kw):
            self.t0, self.step0 = time.time(), state.global_step
            self.tokens0 = state.num_input_tokens_seen or 0

        def on_log(self, args, state, control, logs=None, **kw):
            logs = logs or {}
            if "loss" not in logs or self.t0 is None:
                return
            elapsed = max(time.time() - self.t0, 1e-9)
            done = state.global_step - self.step0
            tokens = (state.num_input_tokens_seen or 0) - self.tokens0
            left = max(state.max_steps - state.global_step, 0)
            writer.write("log", step=state.global_step, max_steps=state.max_steps,
                         epoch=round(state.epoch or 0.0, 4), loss=float(logs["loss"]),
                         lr=float(logs.get("learning_rate", 0.0)),
                         grad_norm=float(logs["grad_norm"]) if "grad_norm" in logs else None,
                         tokens=int(tokens), tokens_per_s=round(tokens / elapsed, 1),
                         eta_s=round(left * elapsed / done, 1) if done else None)

    return _Events()


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """Every complete event line (a half-written last line of a live run is skipped)."""
    path = Path(path)
    if path.is_dir():
        path = path / "events.jsonl"
    if not path.exists():
        return []
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def recent_tokens_per_s(logs: list[dict[str, Any]], window: int = 5) -> float | None:
    """Tokens/s over the last `window` logging steps of the current attempt (the log events'
    own `tokens_per_s` averages from the attempt's start, warm-up included); falls back to that
    average where the events carry no `tokens` or too few steps."""
    if not logs:
        return None
    recent = logs[-(window + 1):]
    first, last = recent[0], recent[-1]
    if (len(recent) > 1 and "tokens" in first and "tokens" in last
            and last["tokens"] >= first["tokens"] and last["time"] > first["time"]):
        return (last["tokens"] - first["tokens"]) / (last["time"] - first["time"])
    return last.get("tokens_per_s")


def run_summary(rd: RunDir) -> dict[str, Any]:
    """Status of a run from its files: running/done/failed/interrupted, last step and loss, eval."""
    events = read_events(rd.events)
    starts = [e for e in events if e["event"] == "start"]
    start = starts[-1] if starts else {}   # a resumed run has one start per session
    logs = [e for e in events if e["event"] == "log"]
    attempt = [e for e in logs if e.get("time", 0) >= start.get("time", 0)]
    end = [e for e in events if e["event"] == "end"]
    status = end[-1]["status"] if end and end[-1]["time"] >= start.get("time", 0) else "running"
    pid_file = rd.path / "pid"
    if status == "running" and pid_file.exists():   # without a pid file we cannot tell
        text = pid_file.read_text().strip()
        alive = pid_alive(int(text)) if text.isdigit() else False
        if not alive:
            status = "interrupted" if start else "failed to start"
        elif not start:
            status = "starting"   # a detached process still loading its libraries
    evaluation = None
    if rd.eval_json.exists():
        evaluation = json.loads(rd.eval_json.read_text(encoding="utf-8"))
    return {"run_id": rd.id, "path": str(rd.path), "status": status,
            "head": start.get("head"), "export": start.get("export"),
            "n_train": start.get("n_train"), "steps": logs[-1]["step"] if logs else 0,
            "max_steps": logs[-1]["max_steps"] if logs else start.get("max_steps"),
            "loss": logs[-1]["loss"] if logs else None,
            "tokens_per_s": recent_tokens_per_s(attempt),
            "error": end[-1].get("error") if end else None, "eval": evaluation}


def list_train_runs(ws) -> list[dict[str, Any]]:
    root = ws.subdir("runs")
    return [run_summary(RunDir(p)) for p in sorted(root.iterdir())
            if p.is_dir() and ((p / "config.yaml").exists() or (p / "pid").exists())]


def checkpoints(rd: RunDir) -> list[Path]:
    """checkpoint-N folders, newest first."""
    if not rd.checkpoints.is_dir():
        return []
    found = [p for p in rd.checkpoints.iterdir()
             if p.is_dir() and re.fullmatch(r"checkpoint-\d+", p.name)]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]), reverse=True)


def _checkpoint_ok(path: Path) -> str | None:
    """None if the checkpoint looks loadable, else what is wrong with it."""
    state = path / "trainer_state.json"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return f"trainer_state.json unreadable ({exc.__class__.__name__})"
    weights = [p for p in path.glob("*.safetensors")]
    if not weights:
        return "no weights (*.safetensors)"
    from safetensors import safe_open

    for w in weights:
        try:
            with safe_open(str(w), framework="pt") as fh:
                for key in fh.keys():
                    fh.get_tensor(key)
        except Exception as exc:  # safetensors raises its own error types for corrupt files
            return f"{w.name} unreadable ({exc})"
    return None


def latest_checkpoint(rd: RunDir, notices: list[str] | None = None) -> Path | None:
    """The newest checkpoint that loads; corrupted ones are reported in `notices` and skipped."""
    for ckpt in checkpoints(rd):
        problem = _checkpoint_ok(ckpt)
        if problem is None:
            return ckpt
        if notices is not None:
            notices.append(f"checkpoint {ckpt.name} is corrupted ({problem}); using an earlier one")
    return None


def pick_run(ws, export_version: str, cfg: TrainConfig, run_id: str | None,
             resume: bool) -> RunDir:
    """The folder of a run: an existing one to resume (`run_id`, else the export's latest), or
    a new one (`run_id`, else `<time>-<head>-<export>`, with -2, -3 ... if that is taken).

    A folder counts as a run once the run has started (it has `events.jsonl`): a folder that
    only holds the config a launcher wrote (`start_detached`) is the run's own.
    """
    if resume:
        if run_id is None:
            mine = [r for r in list_train_runs(ws) if r["export"] == export_version]
            if not mine:
                raise TrainError(f"resume: no earlier run on export {export_version} to resume")
            run_id = mine[-1]["run_id"]
        return run_dir(ws, run_id)
    if run_id is None:
        # Two runs started in the same second get -2, -3 ... rather than colliding.
        stem = run_id = new_run_id(cfg.head, export_version)
        n = 1
        while (ws.subdir("runs") / run_id).exists():
            n += 1
            run_id = f"{stem}-{n}"
    rd = run_dir(ws, run_id, must_exist=False)
    if rd.events.exists():
        raise TrainError(f"run {rd.id} already exists; resume it to continue")
    rd.path.mkdir(parents=True, exist_ok=True)
    return rd


def resume_config(rd: RunDir, cfg: TrainConfig) -> TrainConfig:
    """A resumed run keeps its saved config; only `cfg.max_steps` (when set) may extend it."""
    if not rd.config_yaml.exists():
        return cfg
    saved = TrainConfig.from_yaml(rd.config_yaml)
    return saved.replace(max_steps=cfg.max_steps if cfg.max_steps != -1 else None)


def start_detached(ws, export_version: str, cfg: TrainConfig, *, run_id: str | None = None,
                   resume: bool = False) -> dict[str, Any]:
    """Start a training run in its own process and return at once: `{"run_id", "pid", "path"}`.

    The run's config is written first (`W/runs/<id>/config.yaml`, by `TrainConfig.save_yaml`),
    then `python -m trainer <run dir> --export <version>` reads it back and calls `train`: the
    child gets a file, not a re-encoded command line. Its output goes to `train.log`; follow it
    with `read_events` or `run_summary`. The CLI's `--detach` and the studio's Train button both
    come here.

    Raises:
        ExportError: no such export version (checked here, before any folder is made).
        TrainError: `run_id` names a run that already started (without `resume`), or nothing
            to resume.
    """
    from pipelines.export import load_manifest

    version = load_manifest(ws, export_version)["version"]   # "v1" -> "v0001"
    rd = pick_run(ws, version, cfg, run_id, resume)
    if resume:
        cfg = resume_config(rd, cfg)
    cfg.save_yaml(rd.config_yaml)
    argv: list[object] = [rd.path, "--export", version] + (["--resume"] if resume else [])
    child = start(ChildSpec.python("trainer", *argv, log=rd.log, detach=True,
                                   pid_file=rd.path / "pid"))
    return {"run_id": rd.id, "pid": child.pid, "path": str(rd.path)}
