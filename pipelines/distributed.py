"""Dask, the scale-out engine of the core steps: a client for a scheduler address, an ordered map.

The LF applier (`pipelines.weak_supervision.apply`, engine `dask`) and dedup's embedding and
MinHash stages (`DedupConfig.scheduler`) run their partitions on the workers of an existing
scheduler (`tcp://host:8786`, or the address of a `distributed.LocalCluster`) and gather the
results here, in order. The workers receive the data with each task; they need only the
project's packages and, for embedding, read access to the model folder at the same path.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Iterator, Sequence

from pipelines.errors import ConfigError, StudioError

__all__ = ["dask_client", "map_ordered", "split", "workers"]


@contextlib.contextmanager
def dask_client(address: str, error: type[StudioError] = ConfigError, *,
                as_default: bool = False) -> Iterator[Any]:
    """A `distributed.Client` on the scheduler at `address`, closed after; one `error` line if
    nothing answers there. `as_default`: also the process's default client while open (what
    `as_completed` and other module-level dask calls use)."""
    from dask.distributed import Client

    try:
        client = Client(address, timeout="5s", set_as_default=as_default)
    except (OSError, TimeoutError, ValueError) as exc:
        raise error(f"no Dask scheduler answers at {address!r}: {exc}") from exc
    try:
        yield client
    finally:
        client.close()


def workers(client: Any) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


def split(items: Sequence, parts: int) -> list[Sequence]:
    """`items` cut into at most `parts` consecutive slices of near-equal size, none empty."""
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for k in range(parts):
        end = start + size + (k < extra)
        out.append(items[start:end])
        start = end
    return [p for p in out if len(p)]


def map_ordered(client: Any, fn: Callable, parts: Sequence, **kwargs: Any) -> Iterator[Any]:
    """`fn(part, **kwargs)` for each part on the workers, all submitted at once; results yielded
    in the order of `parts` as each arrives (so a caller can store them and show progress)."""
    # bound here: Client.map has keywords of its own (batch_size, key, ...) that would eat ours
    futures = client.map(functools.partial(fn, **kwargs), list(parts), pure=False)
    try:
        for fut in futures:
            yield fut.result()
    finally:
        client.cancel(futures)
