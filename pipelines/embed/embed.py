"""Embed workspace records, computing only what the per-model cache lacks."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from pipelines.embed.cache import EmbeddingCache
from pipelines.embed.config import EmbedConfig
from pipelines.embed.model import DEFAULT_MODEL, encode_texts, resolve_model
from pipelines.embed.static import resolve_alias
from pipelines.errors import DedupError
from pipelines.distributed import dask_client, map_ordered, split, workers
from pipelines.store import Workspace, record_ids as all_record_ids
from pipelines.store.dedup import record_texts

__all__ = ["Embeddings", "embed_records", "cached_embeddings", "COMPACT_AFTER_CHUNKS"]

COMPACT_AFTER_CHUNKS = 32


@dataclass
class Embeddings:
    """Vectors for `ids` (row i of `vectors` is `ids[i]`), L2-normalised float32."""

    ids: list[str]
    vectors: np.ndarray
    model: str
    key: str = ""
    cache_hits: int = 0     # vectors read from the cache
    embedded: int = 0       # vectors computed by this call
    corrupt_chunks: int = 0
    _index: dict[str, int] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0

    def get(self, record_id: str) -> np.ndarray | None:
        if self._index is None:
            self._index = {rid: i for i, rid in enumerate(self.ids)}
        i = self._index.get(record_id)
        return None if i is None else self.vectors[i]


def _cache_for(ws: Workspace, key: str) -> EmbeddingCache:
    return EmbeddingCache(ws.subdir("embeddings") / key)


def cached_embeddings(ws: Workspace, model: str = DEFAULT_MODEL) -> Embeddings | None:
    """What the cache holds for `model` (no model load, no writes); None if nothing."""
    ref = resolve_model(resolve_alias(ws.path, model))
    cache = _cache_for(ws, ref.key)
    ids, vecs = cache.load()
    if vecs is None:
        return None
    return Embeddings(ids, vecs, model, ref.key, cache_hits=len(ids),
                      corrupt_chunks=cache.corrupt_chunks)


def embed_records(ws: Workspace, config: EmbedConfig | None = None, *,
                  record_ids: list[str] | None = None, progress: bool = False,
                  on_progress: Callable[[int, int], None] | None = None) -> Embeddings:
    """Vectors for `record_ids` (default: every record, in ingestion order).

    Only records missing from the cache are encoded, `chunk_size` at a time, each chunk stored
    before the next starts: memory stays bounded and an interrupted run resumes from the cache.
    With `config.scheduler` each chunk is cut into one part per Dask worker, encoded there and
    gathered in order. `on_progress(done, total)` follows the records to encode.
    """
    config = config or EmbedConfig()
    model = resolve_alias(ws.path, config.model)
    if model != config.model:
        config = replace(config, model=model)
    ref = resolve_model(config.model)
    cache = _cache_for(ws, ref.key)
    if record_ids is None:
        with ws.connect() as conn:
            record_ids = all_record_ids(conn)
    cached_ids, cached_vecs = cache.load()
    position = {rid: i for i, rid in enumerate(cached_ids)}
    missing = [rid for rid in dict.fromkeys(record_ids) if rid not in position]
    embedded = 0
    if missing:
        new_ids: list[str] = []
        new_parts: list[np.ndarray] = []
        bar = tqdm(total=len(missing), desc=f"embed ({Path(config.model).name})", unit=" rec",
                   disable=not (progress and sys.stderr.isatty()))
        stack = contextlib.ExitStack()
        try:
            client = None if config.scheduler is None else stack.enter_context(
                dask_client(config.scheduler, DedupError))
            if on_progress:
                on_progress(0, len(missing))
            for start in range(0, len(missing), config.chunk_size):
                chunk = missing[start:start + config.chunk_size]
                with ws.connect() as conn:
                    texts = record_texts(conn, chunk)
                absent = [rid for rid in chunk if rid not in texts]
                if absent:
                    raise DedupError(f"record {absent[0]} is not in the workspace "
                                     f"({len(absent)} unknown id(s))")
                vecs = _encode_chunk([texts[rid] for rid in chunk], config, client)
                cache.append(chunk, vecs)
                new_ids.extend(chunk)
                new_parts.append(vecs)
                embedded += len(chunk)
                bar.update(len(chunk))
                if on_progress:
                    on_progress(embedded, len(missing))
        finally:
            bar.close()
            stack.close()
        for rid in new_ids:
            position[rid] = len(cached_ids)
            cached_ids.append(rid)
        parts = ([cached_vecs] if cached_vecs is not None else []) + new_parts
        new_parts.clear()
        cached_vecs = np.concatenate(parts)
        del parts   # the chunks' vectors, now copied: one copy held, not two
        if len(cache._chunks()) > COMPACT_AFTER_CHUNKS:
            cache.compact(cached_ids, cached_vecs)
    if cached_vecs is None:  # nothing asked for and nothing cached
        return Embeddings([], np.zeros((0, 0), dtype=np.float32), config.model, ref.key)
    rows = np.fromiter((position[rid] for rid in record_ids), dtype=np.int64, count=len(record_ids))
    vectors = cached_vecs[rows] if len(rows) != len(cached_ids) or not np.array_equal(
        rows, np.arange(len(rows))) else cached_vecs
    return Embeddings(list(record_ids), vectors, config.model, ref.key,
                      cache_hits=len(record_ids) - embedded, embedded=embedded,
                      corrupt_chunks=cache.corrupt_chunks)


def _encode_chunk(texts: list[str], config: EmbedConfig, client: Any | None) -> np.ndarray:
    """One chunk's vectors: encoded here, or one part per Dask worker, gathered in order."""
    if client is None:
        return encode_texts(texts, config.model, batch_size=config.batch_size,
                            device=config.device)
    parts = split(texts, workers(client))
    return np.concatenate(list(map_ordered(client, _encode_part, parts, model=config.model,
                                           batch_size=config.batch_size, device=config.device)))


def _encode_part(texts: list[str], model: str, batch_size: int, device: str | None) -> np.ndarray:
    """A Dask task: encode one part on a worker (the model loads once per worker process)."""
    return encode_texts(list(texts), model, batch_size=batch_size, device=device)
