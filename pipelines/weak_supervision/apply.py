"""Applying LFs to records: the label matrix `L` (n records x m LFs, -1 = abstain).

This is the one applier: `curate label` (`run_labeling`), the studio's LF editor (in its
sandbox child process) and the benches all call it.

What an LF may return, everywhere (`vote_index`): a class index `0..k-1` of the scheme, a class
*name* (mapped to its index), or `None` / `-1` to abstain. Anything else (an unknown name, an
index outside the scheme, a bool, a float) is counted as a fault of that LF on that record, as is
an exception the LF raises: its vote there is abstain, and the others go on (as snorkel's
fault-tolerant appliers do). Each fault keeps the record id, the error and the line of the LF's
source file it happened on.

Three engines, one logic (as snorkel's appliers differ by engine, not by logic):

- `fast`: a plain loop over rows. Each row becomes one small `Row` object (attribute and item
  access, like the pandas Series snorkel passes) instead of a Series per row, and LFs that share
  preprocessors get the preprocessed row computed once. `L` is identical to `PandasLFApplier`'s
  (tested), several times faster.
- `pandas`: snorkel's own `PandasLFApplier` (the reference; faults are counted without ids).
- `dask`: the fast loop on partitions of the rows, on a `LocalCluster` or an existing cluster.
  (snorkel's `DaskLFApplier` needs `fault_tolerant=True` with pandas 3, whose string columns make
  Dask's metadata inference hand the LFs `<NA>`; running our own loop per partition avoids that
  and keeps per-record fault ids.)
"""

from __future__ import annotations

import numbers
import signal
import threading
import traceback
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from snorkel.labeling import LabelingFunction

from pipelines.errors import LabelingError

__all__ = ["ABSTAIN", "Row", "FaultExample", "LFFault", "vote_index", "apply_lfs", "apply_rows",
           "LFTimeLimit", "lf_time_limit"]

ABSTAIN = -1


class Row(SimpleNamespace):
    """One record as LFs see it: `x.text` and `x["text"]` both work, as on a pandas Series."""

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def __contains__(self, key: str) -> bool:
        return hasattr(self, key)


@dataclass
class FaultExample:
    """One record an LF faulted on: the error, and the line of the LF's file it points at."""

    record_id: str
    error: str                       # "KeyError: 'boom'", or the bad vote
    line: int | None = None          # deepest line of the traceback in the LF's own file

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.record_id, "line": self.line, "error": self.error}


@dataclass
class LFFault:
    """An LF that raised or voted outside the scheme: how often, on which records (the first
    few, with their errors), and the first error."""

    lf: str
    count: int = 0
    examples: list[str] = field(default_factory=list)           # record ids
    message: str = ""
    details: list[FaultExample] = field(default_factory=list)   # the examples, error and line

    def to_dict(self) -> dict[str, Any]:
        return {"lf": self.lf, "count": self.count, "examples": list(self.examples),
                "message": self.message}

    def merge(self, other: "LFFault", max_examples: int) -> None:
        self.count += other.count
        room = max_examples - len(self.examples)
        if room > 0:
            self.examples.extend(other.examples[:room])
            self.details.extend(other.details[:room])
        self.message = self.message or other.message


class LFTimeLimit(BaseException):
    """Raised into the running LF when applying LFs passes its time limit (`lf_time_limit`).

    A `BaseException`, so neither the applier's fault handling nor an LF's own `except
    Exception` swallows it; `lf` and `record_id` name what was running when it fired.
    """

    def __init__(self, seconds: float):
        super().__init__(f"time limit of {seconds:g} s passed")
        self.seconds = seconds
        self.lf: str | None = None
        self.record_id: str | None = None


@contextmanager
def lf_time_limit(seconds: float | None) -> Iterator[None]:
    """Raise `LFTimeLimit` in this thread if the block runs longer than `seconds` (a SIGALRM
    watchdog; 0/None: no limit). Only the main thread receives signals: elsewhere, no limit.

    It interrupts Python code (an endless loop, a `time.sleep`), not one long call into C
    (a single catastrophic regex match): the studio runs LFs in a child process it can kill.
    """
    if not seconds or threading.current_thread() is not threading.main_thread() \
            or not hasattr(signal, "setitimer"):
        yield
        return

    def fire(signum, frame):
        raise LFTimeLimit(seconds)

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _as_fault(exc: BaseException) -> BaseException:
    """What an LF raised, as a fault: `sys.exit()` inside an LF is a bug of that LF, not a
    request to end the labeling run."""
    if isinstance(exc, SystemExit):
        return RuntimeError(f"SystemExit: the LF called sys.exit({exc.code!r})")
    return exc


def vote_index(vote: Any, classes: Mapping[str, int]) -> int:
    """The class index an LF's return value stands for (-1: abstain).

    Args:
        vote: what the LF returned: a class index, a class name, None or -1.
        classes: the scheme's class names -> index.
    Raises:
        ValueError: anything else; the applier counts it as a fault of the LF.
    """
    k = len(classes)
    if vote is None:
        return ABSTAIN
    if isinstance(vote, str):
        if vote in classes:
            return classes[vote]
        raise ValueError(f"returned {vote!r}, not a class of the scheme ({', '.join(classes)})")
    if isinstance(vote, numbers.Integral) and not isinstance(vote, (bool, np.bool_)):
        if ABSTAIN <= vote < k:
            return int(vote)
        raise ValueError(f"returned {vote!r}; expected a class index 0..{k - 1}, a class name "
                         f"or -1/None (abstain)")
    raise ValueError(f"returned {vote!r} ({type(vote).__name__}); expected a class index "
                     f"0..{k - 1}, a class name or -1/None (abstain)")


def _class_index(classes: Sequence[str]) -> dict[str, int]:
    classes = [str(c) for c in classes]
    if not classes or len(set(classes)) != len(classes):
        raise LabelingError(f"LFs need a scheme's classes, distinct and at least one; "
                            f"got {classes}")
    return {c: i for i, c in enumerate(classes)}


def _fault_line(f: Any, exc: BaseException) -> int | None:
    """The deepest traceback line in the file that defines `f`, else the `def` line of `f`
    (a bad vote, or an error inside a preprocessor or library the LF called)."""
    code = getattr(f, "__code__", None)
    if code is None:
        return None
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == code.co_filename:
            line = lineno
    return line if line is not None else code.co_firstlineno


def _as_dicts(data: pd.DataFrame | Iterable[Any]) -> list[dict[str, Any]]:
    if isinstance(data, pd.DataFrame):
        return data.to_dict("records")
    out = []
    for item in data:
        if isinstance(item, dict):
            out.append(item)
        elif isinstance(item, SimpleNamespace):
            out.append(vars(item))
        elif isinstance(item, pd.Series):
            out.append(item.to_dict())
        else:
            raise LabelingError(f"cannot apply LFs to a {type(item).__name__}; pass a DataFrame "
                                f"or records as dicts")
    return out


def apply_rows(rows: Sequence[dict[str, Any]], lfs: Sequence[LabelingFunction],
               classes: Sequence[str], *, id_field: str = "id", max_examples: int = 5,
               start: int = 0, progress: Any = None) -> tuple[np.ndarray, dict[str, LFFault]]:
    """The fast loop: `L` for `rows` (dicts), and the faults per LF name.

    Args:
        classes: the scheme's class names, in index order (votes by name map to these).
        start: index of rows[0] in the whole data set (only for fault ids when rows lack ids).
        progress: a callable taking a number of rows done (e.g. tqdm's `update`), or None.
    """
    index = _class_index(classes)
    k = len(index)
    n, m = len(rows), len(lfs)
    L = np.full((n, m), ABSTAIN, dtype=int)
    faults: dict[str, LFFault] = {}
    # Group LFs by their preprocessor chain: each distinct chain runs once per row.
    chains: dict[tuple[int, ...], list] = {}
    calls = []
    for j, lf in enumerate(lfs):
        pre = list(getattr(lf, "_pre", []) or [])
        key = tuple(id(p) for p in pre)
        chains.setdefault(key, pre)
        calls.append((j, lf.name, lf._f, getattr(lf, "_resources", {}) or {}, key))
    step = max(1, n // 100)

    def fault(name: str, f: Any, i: int, exc: BaseException) -> None:
        rec = faults.setdefault(name, LFFault(name))
        rec.count += 1
        shown = _as_fault(exc)
        error = str(shown) if shown is not exc else f"{type(exc).__name__}: {exc}"
        if len(rec.examples) < max_examples:
            rid = rows[i].get(id_field)
            rid = str(rid) if rid is not None else f"#{start + i}"
            rec.examples.append(rid)
            rec.details.append(FaultExample(rid, error, _fault_line(f, exc)))
        if not rec.message:
            rec.message = error

    for i, rec in enumerate(rows):
        x = Row(**rec)
        cache: dict[tuple[int, ...], Any] = {(): x}
        for j, name, f, resources, key in calls:
            try:
                xp = x if not key else cache.get(key)
                if xp is None:
                    xp = x
                    for p in chains[key]:
                        xp = p(xp)
                        if xp is None:
                            raise ValueError("Preprocessor should not return None")
                    cache[key] = xp
                y = f(xp, **resources)
                # `type(y) is int` first: the general check (names, None, numpy ints) is slow.
                if type(y) is not int or not ABSTAIN <= y < k:
                    y = vote_index(y, index)
            except KeyboardInterrupt:
                raise
            except LFTimeLimit as exc:   # the run's time limit: name the LF that was running
                if exc.lf is None:
                    exc.lf = name
                    rid = rec.get(id_field)
                    exc.record_id = str(rid) if rid is not None else f"#{start + i}"
                raise
            except BaseException as exc:  # noqa: BLE001 - an LF's bug, bad vote or sys.exit():
                fault(name, f, i, exc)    # counted, the others go on
                continue
            if y >= 0:
                L[i, j] = y
        if progress is not None and (i + 1) % step == 0:
            progress(step)
    if progress is not None and n % step:
        progress(n % step)
    return L, faults


def _normalising(lf: LabelingFunction, index: dict[str, int]) -> LabelingFunction:
    """`lf` with its votes passed through `vote_index`, for snorkel's own applier."""
    f = lf._f

    def voted(x, **resources):
        try:
            return vote_index(f(x, **resources), index)
        except (KeyboardInterrupt, LFTimeLimit):
            raise
        except BaseException as exc:  # noqa: BLE001 - snorkel counts Exceptions only
            shown = _as_fault(exc)
            if shown is exc and not isinstance(exc, Exception):
                shown = RuntimeError(f"{type(exc).__name__}: {exc}")
            raise shown from None

    return LabelingFunction(lf.name, voted, resources=getattr(lf, "_resources", None),
                            pre=getattr(lf, "_pre", None))


def _apply_pandas(rows: list[dict], lfs: Sequence[LabelingFunction], classes: Sequence[str],
                  progress: bool) -> tuple[np.ndarray, dict[str, LFFault]]:
    from snorkel.labeling import PandasLFApplier

    df = pd.DataFrame(rows)
    index = _class_index(classes)
    L, meta = PandasLFApplier([_normalising(lf, index) for lf in lfs]).apply(df, progress_bar=progress, fault_tolerant=True,
                                               return_meta=True)
    faults = {name: LFFault(name, count=c, message="(engine pandas keeps no example ids)")
              for name, c in meta.faults.items() if c}
    return np.asarray(L, dtype=int), faults


def _apply_dask(rows: list[dict], lfs: Sequence[LabelingFunction], classes: Sequence[str], *,
                address: str | None,
                workers: int, processes: bool, id_field: str, max_examples: int,
                progress: bool) -> tuple[np.ndarray, dict[str, LFFault]]:
    from dask.distributed import Client, LocalCluster, as_completed

    from pipelines.distributed import dask_client

    with ExitStack() as stack:   # closes the client, then a local cluster
        if address:
            client = stack.enter_context(dask_client(address, LabelingError,
                                                      as_default=True))
        else:
            import logging

            cluster = stack.enter_context(LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=processes,
                dashboard_address=":0", silence_logs=logging.CRITICAL))
            client = stack.enter_context(Client(cluster))
        n_parts = max(1, min(len(rows), 4 * max(1, len(client.scheduler_info()["workers"]))))
        bounds = np.linspace(0, len(rows), n_parts + 1).astype(int)
        parts = [(int(a), rows[a:b]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        lfs_future = client.scatter(list(lfs), broadcast=True)
        futures = {
            client.submit(_dask_part, part, lfs_future, list(classes), id_field,
                          max_examples, a, pure=False): a
            for a, part in parts
        }
        results: dict[int, tuple[np.ndarray, dict[str, LFFault]]] = {}
        from tqdm import tqdm

        with tqdm(total=len(rows), desc="LFs (dask)", unit=" rows",
                  disable=not progress) as bar:
            for fut in as_completed(futures):
                L_part, f_part = fut.result()
                results[futures[fut]] = (L_part, f_part)
                bar.update(len(L_part))
    L = (np.concatenate([results[a][0] for a in sorted(results)])
         if results else np.full((0, len(lfs)), -1, dtype=int))
    faults: dict[str, LFFault] = {}
    for a in sorted(results):
        for name, f in results[a][1].items():
            faults.setdefault(name, LFFault(name)).merge(f, max_examples)
    return L, faults


def _dask_part(rows, lfs, classes, id_field, max_examples, start):
    return apply_rows(rows, lfs, classes, id_field=id_field, max_examples=max_examples,
                      start=start)


def apply_lfs(data: pd.DataFrame | Iterable[Any], lfs: Sequence[LabelingFunction],
              classes: Sequence[str], *, engine: str = "fast", dask_address: str | None = None,
              dask_workers: int = 2, dask_processes: bool = True, id_field: str = "id",
              max_examples: int = 5, progress: bool = False) -> tuple[np.ndarray, dict[str, LFFault]]:
    """Apply `lfs` to every row of `data` and return `(L, faults)`.

    Args:
        data: a DataFrame, or records as dicts (e.g. `Record.to_dict()` of `iter_records(with_gold=False)`).
        lfs: snorkel `LabelingFunction`s (what `load_lfs` and `lfs_from_module` give, plain
            `lf_*` functions wrapped).
        classes: the scheme's class names in index order: what votes by name map to, and the
            range of a valid index.
        engine: fast | pandas | dask (see the module docstring).
        dask_address: an existing scheduler (`tcp://host:8786`); None starts a LocalCluster.
        dask_processes: LocalCluster with worker processes (False: threads, for tests).
        id_field: the field whose value names a record in fault examples.

    Returns:
        L: int array (n x m), -1 where an LF abstained, raised or voted outside the scheme.
        faults: {LF name: LFFault} for the LFs that faulted at least once.
    """
    lfs = list(lfs)
    names = [lf.name for lf in lfs]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise LabelingError(f"labeling function names must be unique; repeated: {', '.join(dup)}")
    rows = _as_dicts(data)
    if engine == "fast":
        from tqdm import tqdm

        with tqdm(total=len(rows), desc="LFs", unit=" rows", disable=not progress) as bar:
            return apply_rows(rows, lfs, classes, id_field=id_field, max_examples=max_examples,
                              progress=bar.update if progress else None)
    if engine == "pandas":
        return _apply_pandas(rows, lfs, classes, progress)
    if engine == "dask":
        return _apply_dask(rows, lfs, classes, address=dask_address, workers=dask_workers,
                           processes=dask_processes, id_field=id_field,
                           max_examples=max_examples, progress=progress)
    raise LabelingError(f"unknown engine {engine!r}; use fast, pandas or dask")
