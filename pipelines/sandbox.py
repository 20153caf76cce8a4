"""Run an analyst's labeling-function source on a sample, in a separate process with a time limit.

The studio's LF editor sends whatever the analyst typed here. The code runs in a child Python
process (`python -m pipelines.sandbox`) that is killed when it passes `timeout_s`, so an endless
loop, a crash or a `sys.exit()` in user code cannot hang or take down the studio. Errors come back
with the line of the source they happened on: a syntax error fails the whole run, an exception
inside one LF on one record is counted as a fault of that LF (as snorkel's fault-tolerant
appliers do) and the others go on.

Inside the child, the LFs are found and applied by the same functions a labeling run uses
(`weak_supervision.lfs_from_module` and `apply_lfs`), so the editor and `curate label` agree on
what an LF is (a `@labeling_function()` or a plain `lf_*` function) and what it may return (a
class index, a class name, or None/-1 to abstain; anything else is a fault of that LF).
The sample's records are passed as `Row`s (`x.text`, `x["prompt"]`, `x.response`,
`x.raw_label`, ...); gold labels are never passed.

The child caps its own address space (`SandboxConfig.memory_limit_mb`, 4 GiB by default, as
RLIMIT_AS): an LF that builds a huge list gets a `MemoryError`, counted as its fault, instead of
swapping the machine. The child runs in its own process group, and the time limit's kill ends the
whole group, so a process the LF code starts does not outlive it.

This is isolation against mistakes, not a security boundary: the analyst already runs code on
this machine.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from pipelines.errors import ConfigError, LabelingError
from pipelines.launch import REPO_ROOT, ChildSpec, start

__all__ = ["SandboxConfig", "LFResult", "SandboxResult", "run_lf_source", "EDITOR_FILENAME",
           "lf_template", "lf_files", "save_lf_source", "label_in_child"]

EDITOR_FILENAME = "<lf editor>"
MEMORY_ENV = "CURATE_SANDBOX_MEMORY_MB"   # the child limits its own address space to this
ABSTAIN = -1
# Fields of a record an LF may read; gold labels are deliberately absent.
RECORD_FIELDS = ("id", "kind", "text", "prompt", "response", "system", "messages", "raw_label",
                 "meta")


@dataclass
class SandboxConfig:
    """Limits for one sandboxed run of LF source."""

    # 60 s, not less: the child's imports (snorkel, sklearn, torch) alone took over 10 s on a
    # loaded 2-core machine, and a run cut by the limit shows the analyst an error, not votes.
    timeout_s: float = field(default=60.0, metadata={
        "help": "seconds the child process may run (imports included) before it is killed"})
    max_faults_shown: int = field(default=3, metadata={
        "help": "example errors kept per LF"})
    memory_limit_mb: int = field(default=4096, metadata={
        "help": "address space the child may map (RLIMIT_AS), in MiB; an LF that allocates "
                "past it gets MemoryError (a fault); 0: no limit"})

    def __post_init__(self):
        if not isinstance(self.timeout_s, (int, float)) or not self.timeout_s > 0:
            raise ConfigError(f"sandbox.timeout_s must be a positive number, got {self.timeout_s!r}")
        if not isinstance(self.max_faults_shown, int) or self.max_faults_shown < 0:
            raise ConfigError(f"sandbox.max_faults_shown must be >= 0, got {self.max_faults_shown!r}")
        if not isinstance(self.memory_limit_mb, int) or isinstance(self.memory_limit_mb, bool) \
                or self.memory_limit_mb < 0:
            raise ConfigError(f"sandbox.memory_limit_mb must be an integer >= 0 (0: no limit), "
                              f"got {self.memory_limit_mb!r}")


@dataclass
class LFResult:
    """One LF on the sample: its votes (one per record, -1 abstain) and what went wrong."""

    name: str
    source: str                      # "editor" or the module it came from
    votes: list[int]
    faults: int = 0
    fault_examples: list[dict[str, Any]] = field(default_factory=list)  # {id, line, error}

    @property
    def coverage(self) -> float:
        return sum(v != ABSTAIN for v in self.votes) / len(self.votes) if self.votes else 0.0

    def vote_counts(self, classes: Sequence[str]) -> dict[str, int]:
        out = {c: 0 for c in classes}
        for v in self.votes:
            if v != ABSTAIN:
                out[classes[v]] += 1
        return out


@dataclass
class SandboxResult:
    """The editor's LFs (and the context LFs they are compared with) on the sample."""

    n_records: int
    record_ids: list[str]
    lfs: list[LFResult] = field(default_factory=list)          # from the editor
    context: list[LFResult] = field(default_factory=list)      # the scheme's existing LFs
    error: str | None = None          # the run failed as a whole (syntax error, timeout, ...)
    error_line: int | None = None     # line of the editor source the error points at
    stderr: str = ""
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def _others(self, lf: LFResult) -> list[LFResult]:
        # A context LF that the editor redefines (same name) is replaced, not compared with.
        mine = {o.name for o in self.lfs}
        return [o for o in self.lfs if o is not lf] + [o for o in self.context
                                                       if o.name not in mine]

    def conflicts(self, lf: LFResult) -> float:
        """Share of records where `lf` votes and some other LF votes a different class."""
        others = self._others(lf)
        if not self.n_records:
            return 0.0
        n = 0
        for i, v in enumerate(lf.votes):
            if v != ABSTAIN and any(o.votes[i] not in (ABSTAIN, v) for o in others):
                n += 1
        return n / self.n_records

    def overlaps(self, lf: LFResult) -> float:
        """Share of records where `lf` and at least one other LF both vote."""
        others = self._others(lf)
        if not self.n_records:
            return 0.0
        return sum(1 for i, v in enumerate(lf.votes)
                   if v != ABSTAIN and any(o.votes[i] != ABSTAIN for o in others)) / self.n_records

    def summary(self, classes: Sequence[str]) -> list[dict[str, Any]]:
        """One row per editor LF: coverage, overlaps, conflicts, faults and votes per class."""
        return [{"lf": lf.name, "coverage": round(lf.coverage, 4),
                 "overlaps": round(self.overlaps(lf), 4), "conflicts": round(self.conflicts(lf), 4),
                 "faults": lf.faults, **lf.vote_counts(classes)} for lf in self.lfs]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_lf_source(source: str, records: Iterable[dict[str, Any]], classes: Sequence[str], *,
                  context_modules: Sequence[str] = (), context_files: Sequence[str | Path] = (),
                  scheme: str | None = None, config: SandboxConfig | None = None,
                  ) -> SandboxResult:
    """Run the LFs defined in `source` on `records` in a child process with a time limit.

    Args:
        source: Python source defining `@labeling_function()`s or plain `lf_*` functions.
        records: the sample; only `RECORD_FIELDS` are passed to the child.
        classes: the scheme's classes, in index order.
        context_modules: dotted modules whose LFs are applied too, for overlaps and conflicts.
        context_files: workspace LF files (`W/lfs/*.py`) applied too; a file whose `SCHEME`
            names other schemes than `scheme` is skipped.
    Raises:
        LabelingError: the child could not be started or returned nothing readable.
    """
    config = config or SandboxConfig()
    rows = [{k: r.get(k) for k in RECORD_FIELDS} for r in records]
    payload = {"source": source, "records": rows, "classes": list(classes),
               "context_modules": list(context_modules),
               "context_files": [str(p) for p in context_files], "scheme": scheme,
               "max_faults_shown": config.max_faults_shown}
    ids = [str(r["id"]) for r in rows]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="curate-sandbox-") as tmp:
        inp, out = Path(tmp) / "in.json", Path(tmp) / "out.json"
        inp.write_text(json.dumps(payload, default=str), encoding="utf-8")
        # No bytecode: the child imports the workspace's LF files, and W/lfs/ stays source only.
        # One BLAS/OpenMP thread: LFs on a sample gain nothing from more, and each thread's
        # buffers count against the address-space limit.
        spec = ChildSpec.python("pipelines.sandbox", "lf", inp, out, cwd=REPO_ROOT,
                                env={"PYTHONDONTWRITEBYTECODE": "1",
                                     "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                                     "MKL_NUM_THREADS": "1",
                                     MEMORY_ENV: str(config.memory_limit_mb)})
        try:
            proc = start(spec).wait(timeout=config.timeout_s)
        except OSError as exc:
            raise LabelingError(f"cannot start the LF sandbox ({sys.executable}): {exc}") from exc
        if proc.timed_out:
            return SandboxResult(
                n_records=len(rows), record_ids=ids, elapsed_s=time.perf_counter() - started,
                stderr=_tail(proc.stderr),
                error=f"stopped after {config.timeout_s:g} s (time limit): an endless loop, or "
                      f"too slow for {len(rows)} records?")
        elapsed = time.perf_counter() - started
        if not out.is_file():
            return SandboxResult(
                n_records=len(rows), record_ids=ids, elapsed_s=elapsed, stderr=_tail(proc.stderr),
                error=f"the LF process ended (exit status {proc.returncode}) before reporting: "
                      f"{_last_line(proc.stderr) or 'no message'}")
        try:
            data = json.loads(out.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise LabelingError(f"the LF sandbox wrote an unreadable report: {exc}") from exc
    return SandboxResult(
        n_records=len(rows), record_ids=ids, elapsed_s=elapsed, stderr=_tail(proc.stderr),
        error=data.get("error"), error_line=data.get("error_line"),
        lfs=[LFResult(**d) for d in data.get("lfs", [])],
        context=[LFResult(**d) for d in data.get("context", [])])


def _tail(text: str | bytes | None, n: int = 4000) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return (text or "")[-n:]


def _last_line(text: str | None) -> str:
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


# -- the child process ---------------------------------------------------------------------------
def _limit_memory() -> None:
    """Cap this process's address space (RLIMIT_AS) at `$CURATE_SANDBOX_MEMORY_MB` MiB.

    Set by the child itself, first thing, rather than by a `preexec_fn` in the parent (unsafe
    with threads, and the launcher starts every child the same way). The limit is inherited by
    anything the LF code starts; the time limit's kill of the process group ends those too.
    """
    mb = int(os.environ.get(MEMORY_ENV) or 0)
    if mb <= 0:
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = mb << 20
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _editor_line(tb) -> int | None:
    """The deepest traceback line that lies in the editor's source."""
    line = None
    for frame, lineno in traceback.walk_tb(tb):
        if frame.f_code.co_filename == EDITOR_FILENAME:
            line = lineno
    return line


def _lf_results(rows: list[dict[str, Any]], lfs: list[Any], classes: list[str], origin: str,
                max_faults_shown: int) -> list[dict[str, Any]]:
    """`LFResult`s (as dicts) of `lfs` on `rows`, through the applier `curate label` uses."""
    from pipelines.weak_supervision.apply import apply_lfs

    L, faults = apply_lfs(rows, lfs, classes, max_examples=max_faults_shown)
    out = []
    for j, lf in enumerate(lfs):
        fault = faults.get(lf.name)
        out.append({"name": lf.name, "source": origin, "votes": L[:, j].tolist(),
                    "faults": fault.count if fault else 0,
                    "fault_examples": [d.to_dict() for d in fault.details] if fault else []})
    return out


def _child(inp: Path, out: Path) -> None:
    import importlib
    import types

    from pipelines.errors import LabelingError
    from pipelines.weak_supervision.discovery import lfs_from_module, load_lf_file, schemes_of

    payload = json.loads(inp.read_text(encoding="utf-8"))
    classes, limit, rows = payload["classes"], payload["max_faults_shown"], payload["records"]
    report: dict[str, Any] = {"lfs": [], "context": []}
    module_name = "curate_lf_editor"
    module = types.ModuleType(module_name)
    module.__file__ = EDITOR_FILENAME
    sys.modules[module_name] = module
    try:
        code = compile(payload["source"], EDITOR_FILENAME, "exec")
        exec(code, module.__dict__)
    except SyntaxError as exc:
        report.update(error=f"SyntaxError: {exc.msg}", error_line=exc.lineno)
    except BaseException as exc:  # noqa: BLE001 - whatever the module body raised, report it
        report.update(error=f"{type(exc).__name__}: {exc}", error_line=_editor_line(exc.__traceback__))
    if "error" not in report:
        # The same discoverer and applier as `curate label`: what the editor shows is what a
        # labeling run will vote once the file is saved into W/lfs.
        lfs = lfs_from_module(module)
        if not lfs:
            report.update(error="no labeling function found: decorate a function with "
                                "@labeling_function() (from snorkel.labeling), or name it lf_...")
        else:
            # User code may print: keep our stdout clean by sending its output to stderr.
            sys.stdout = sys.stderr
            try:
                report["lfs"] = _lf_results(rows, lfs, classes, "editor", limit)
            except LabelingError as exc:  # two LFs share a name
                report.update(error=str(exc))
    if "error" not in report:
        context = [(name, importlib.import_module(name)) for name in payload["context_modules"]]
        for path in payload["context_files"]:
            mod, err = load_lf_file(Path(path))
            declared = schemes_of(mod) if mod is not None else None
            # A broken context file is not the editor's error (the page lists load errors).
            if mod is not None and (declared is None or payload["scheme"] is None
                                    or payload["scheme"] in declared):
                context.append((path, mod))
        for origin, mod in context:
            try:
                report["context"] += _lf_results(rows, lfs_from_module(mod), classes, origin, 0)
            except LabelingError:  # a context module with two LFs of one name: leave it out
                continue
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report), encoding="utf-8")
    os.replace(tmp, out)


# -- the editor's files in the workspace ---------------------------------------------------------
_FILE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def lf_template(scheme: str, classes: Sequence[str]) -> str:
    """A starting point for a new workspace LF file of `scheme` (constants for every class)."""
    consts = "\n".join(f"{_constant(c)} = {i}" for i, c in enumerate(classes))
    first = _constant(classes[0])
    return f'''"""Labeling functions for {scheme!r}, written in the studio's editor."""

from snorkel.labeling import labeling_function

SCHEME = {scheme!r}
ABSTAIN = -1
{consts}


@labeling_function()
def lf_my_rule(x):
    """Say what it detects. x.text, x.prompt, x.response and x.raw_label are there to read.

    Return a class (a constant above, or its name as a string) or ABSTAIN (None works too).
    """
    text = (x.prompt or x.text or "").lower()
    return {first} if "some phrase" in text else ABSTAIN
'''


def _constant(name: str) -> str:
    const = re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_").upper() or "CLASS"
    return f"C_{const}" if const[0].isdigit() else const


def lf_files(ws) -> list[Path]:
    """The workspace's LF files (`W/lfs/*.py`), by name."""
    folder = ws.subdir("lfs")
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith(("_", ".")))


def save_lf_source(ws, name: str, source: str) -> Path:
    """Write `W/lfs/<name>.py` atomically (temp file, then rename); the source must compile.

    Raises:
        ConfigError: the name is not a lowercase Python module name.
        LabelingError: the source has a syntax error (named with its line).
    """
    stem = name[:-3] if name.endswith(".py") else name
    if not _FILE_NAME.match(stem):
        raise ConfigError(f"LF file name must be a lowercase module name (letters, digits, _; "
                          f"starting with a letter), got {name!r}")
    try:
        compile(source, f"{stem}.py", "exec")
    except SyntaxError as exc:
        raise LabelingError(f"{stem}.py line {exc.lineno}: SyntaxError: {exc.msg}; not saved") from exc
    folder = ws.subdir("lfs")
    path = folder / f"{stem}.py"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".edit-", suffix=".py.tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(source if source.endswith("\n") else source + "\n")
    os.replace(tmp, path)
    return path



# -- labeling the whole workspace in a child process ---------------------------------------------
def label_in_child(ws, scheme: str, *, timeout_s: float = 900.0) -> dict[str, Any]:
    """`run_labeling` for `scheme` in a child process, so saved analyst code that loops or
    crashes cannot hang the caller (the studio). Returns `LabelingResult.to_dict()`.

    Raises:
        LabelingError: the run failed (its message), crashed, or passed `timeout_s`.
    """
    with tempfile.TemporaryDirectory(prefix="curate-label-") as tmp:
        out = Path(tmp) / "out.json"
        spec = ChildSpec.python("pipelines.sandbox", "label", ws.path, scheme, out, cwd=REPO_ROOT)
        proc = start(spec).wait(timeout=timeout_s)
        if proc.timed_out:
            raise LabelingError(f"labeling {scheme!r} stopped after {timeout_s:g} s (time limit): "
                                f"does an LF loop forever?")
        if not out.is_file():
            raise LabelingError(f"labeling {scheme!r} ended (exit status {proc.returncode}) "
                                f"without a result: {_last_line(proc.stderr) or 'no message'}")
        data = json.loads(out.read_text(encoding="utf-8"))
    if "error" in data:
        raise LabelingError(data["error"])
    return data["result"]


def _label_child(ws_path: str, scheme: str, out: Path) -> None:
    from pipelines.config import load_config
    from pipelines.errors import StudioError
    from pipelines.store import Workspace
    from pipelines.weak_supervision import LabelConfig, run_labeling

    try:
        ws = Workspace.open(ws_path)
        cfg = LabelConfig.from_section(load_config(ws.config_path).section("label"), scheme=scheme)
        report: dict[str, Any] = {"result": run_labeling(ws, cfg).to_dict()}
    except StudioError as exc:
        report = {"error": str(exc)}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, default=str), encoding="utf-8")
    os.replace(tmp, out)

if __name__ == "__main__":
    if sys.argv[1] == "lf":
        _limit_memory()
        _child(Path(sys.argv[2]), Path(sys.argv[3]))
    elif sys.argv[1] == "label":
        _label_child(sys.argv[2], sys.argv[3], Path(sys.argv[4]))
    else:
        sys.exit(f"usage: python -m pipelines.sandbox lf IN OUT | label WS SCHEME OUT")
