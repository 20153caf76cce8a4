"""Applying LFs to records: the label matrix `L` (n records x m LFs, -1 = abstain).

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

An LF that raises on a row votes abstain there; the fault is counted per LF with example ids.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from snorkel.labeling import LabelingFunction

from pipelines.errors import LabelingError

__all__ = ["Row", "LFFault", "apply_lfs", "apply_rows"]


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
class LFFault:
    """An LF that raised: how often, on which records (the first few), and the first error."""

    lf: str
    count: int = 0
    examples: list[str] = field(default_factory=list)
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"lf": self.lf, "count": self.count, "examples": list(self.examples),
                "message": self.message}

    def merge(self, other: "LFFault", max_examples: int) -> None:
        self.count += other.count
        room = max_examples - len(self.examples)
        if room > 0:
            self.examples.extend(other.examples[:room])
        self.message = self.message or other.message


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


def apply_rows(rows: Sequence[dict[str, Any]], lfs: Sequence[LabelingFunction], *,
               id_field: str = "id", max_examples: int = 5, start: int = 0,
               progress: Any = None) -> tuple[np.ndarray, dict[str, LFFault]]:
    """The fast loop: `L` for `rows` (dicts), and the faults per LF name.

    Args:
        start: index of rows[0] in the whole data set (only for fault ids when rows lack ids).
        progress: a callable taking a number of rows done (e.g. tqdm's `update`), or None.
    """
    n, m = len(rows), len(lfs)
    L = np.full((n, m), -1, dtype=int)
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

    def fault(name: str, i: int, exc: BaseException) -> None:
        f = faults.setdefault(name, LFFault(name))
        f.count += 1
        if len(f.examples) < max_examples:
            rid = rows[i].get(id_field)
            f.examples.append(str(rid) if rid is not None else f"#{start + i}")
        if not f.message:
            f.message = f"{type(exc).__name__}: {exc}"

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
            except Exception as exc:  # an LF's bug: counted, the others go on
                fault(name, i, exc)
                continue
            # `type(y) is int` first: the ABC isinstance check alone cost ~40% of the loop.
            if type(y) is not int and not isinstance(y, numbers.Integral):
                raise LabelingError(
                    f"labeling function {name!r} returned {y!r} ({type(y).__name__}) for record "
                    f"{rec.get(id_field, f'#{start + i}')}; LFs return a class index (int) or "
                    f"ABSTAIN (-1)")
            if y >= 0:
                L[i, j] = y
        if progress is not None and (i + 1) % step == 0:
            progress(step)
    if progress is not None and n % step:
        progress(n % step)
    return L, faults


def _apply_pandas(rows: list[dict], lfs: Sequence[LabelingFunction],
                  progress: bool) -> tuple[np.ndarray, dict[str, LFFault]]:
    from snorkel.labeling import PandasLFApplier

    df = pd.DataFrame(rows)
    L, meta = PandasLFApplier(list(lfs)).apply(df, progress_bar=progress, fault_tolerant=True,
                                               return_meta=True)
    faults = {name: LFFault(name, count=c, message="(engine pandas keeps no example ids)")
              for name, c in meta.faults.items() if c}
    return np.asarray(L, dtype=int), faults


def _apply_dask(rows: list[dict], lfs: Sequence[LabelingFunction], *, address: str | None,
                workers: int, processes: bool, id_field: str, max_examples: int,
                progress: bool) -> tuple[np.ndarray, dict[str, LFFault]]:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    try:
        if address:
            try:
                client = Client(address, timeout="5s")
            except (OSError, TimeoutError) as exc:
                raise LabelingError(f"no Dask scheduler answers at {address!r}: {exc}") from exc
        else:
            import logging

            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                                   dashboard_address=":0", silence_logs=logging.CRITICAL)
            client = Client(cluster)
        try:
            n_parts = max(1, min(len(rows), 4 * max(1, len(client.scheduler_info()["workers"]))))
            bounds = np.linspace(0, len(rows), n_parts + 1).astype(int)
            parts = [(int(a), rows[a:b]) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
            lfs_future = client.scatter(list(lfs), broadcast=True)
            futures = {
                client.submit(_dask_part, part, lfs_future, id_field, max_examples, a,
                              pure=False): a
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
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()
    L = (np.concatenate([results[a][0] for a in sorted(results)])
         if results else np.full((0, len(lfs)), -1, dtype=int))
    faults: dict[str, LFFault] = {}
    for a in sorted(results):
        for name, f in results[a][1].items():
            faults.setdefault(name, LFFault(name)).merge(f, max_examples)
    return L, faults


def _dask_part(rows, lfs, id_field, max_examples, start):
    return apply_rows(rows, lfs, id_field=id_field, max_examples=max_examples, start=start)


def apply_lfs(data: pd.DataFrame | Iterable[Any], lfs: Sequence[LabelingFunction], *,
              engine: str = "fast", dask_address: str | None = None, dask_workers: int = 2,
              dask_processes: bool = True, id_field: str = "id", max_examples: int = 5,
              progress: bool = False) -> tuple[np.ndarray, dict[str, LFFault]]:
    """Apply `lfs` to every row of `data` and return `(L, faults)`.

    Args:
        data: a DataFrame, or records as dicts (e.g. `Record.to_dict()` of `iter_records`).
        engine: fast | pandas | dask (see the module docstring).
        dask_address: an existing scheduler (`tcp://host:8786`); None starts a LocalCluster.
        dask_processes: LocalCluster with worker processes (False: threads, for tests).
        id_field: the field whose value names a record in fault examples.

    Returns:
        L: int array (n x m), -1 where an LF abstained or raised.
        faults: {LF name: LFFault} for the LFs that raised at least once.
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
            return apply_rows(rows, lfs, id_field=id_field, max_examples=max_examples,
                              progress=bar.update if progress else None)
    if engine == "pandas":
        return _apply_pandas(rows, lfs, progress)
    if engine == "dask":
        return _apply_dask(rows, lfs, address=dask_address, workers=dask_workers,
                           processes=dask_processes, id_field=id_field,
                           max_examples=max_examples, progress=progress)
    raise LabelingError(f"unknown engine {engine!r}; use fast, pandas or dask")
