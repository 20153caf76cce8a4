"""The embedding cache: per model, append-only chunk files of (record id, vector).

Layout: ``<workspace>/embeddings/<model key>/chunk-<n>.npz``, each holding ``ids``, ``vectors``
(float32, L2-normalised) and ``sha256`` (of both). A chunk is written to a temp file and renamed,
so an interrupted run keeps every finished chunk and a rerun embeds only the rest. A chunk that
fails to load or whose checksum disagrees is moved aside (``*.corrupt``) and its records are
embedded again: detected and rebuilt, never a crash.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["EmbeddingCache"]

log = logging.getLogger(__name__)


def _digest(ids: np.ndarray, vectors: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update("\n".join(ids.tolist()).encode("utf-8"))
    h.update(memoryview(np.ascontiguousarray(vectors)).cast("B"))   # the bytes, not a copy
    return h.hexdigest()


class EmbeddingCache:
    """The cache folder of one model."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.corrupt_chunks = 0

    def _chunks(self) -> list[Path]:
        return sorted(self.folder.glob("chunk-*.npz")) if self.folder.is_dir() else []

    def load(self) -> tuple[list[str], np.ndarray | None]:
        """Every cached (id, vector), in chunk order; corrupt chunks are set aside."""
        all_ids: list[str] = []
        parts: list[np.ndarray] = []
        dim = None
        for path in self._chunks():
            try:
                with np.load(path, allow_pickle=False) as z:
                    ids, vecs, sha = z["ids"], z["vectors"], str(z["sha256"])
                ok = (vecs.ndim == 2 and vecs.dtype == np.float32 and len(ids) == len(vecs)
                      and (dim is None or vecs.shape[1] == dim) and _digest(ids, vecs) == sha)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
                log.warning("embedding cache chunk %s is unreadable (%s); it will be rebuilt",
                            path, exc)
                ok = False
            if not ok:
                self.corrupt_chunks += 1
                log.warning("embedding cache chunk %s is corrupt; moved aside, its records will "
                            "be embedded again", path)
                os.replace(path, path.with_suffix(".corrupt"))
                continue
            dim = vecs.shape[1]
            all_ids.extend(ids.tolist())
            parts.append(vecs)
        if not parts:
            return [], None
        return all_ids, np.concatenate(parts) if len(parts) > 1 else parts[0]

    def append(self, ids: list[str], vectors: np.ndarray) -> Path:
        """Write one chunk atomically (temp file, then rename)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        existing = self._chunks()
        n = int(existing[-1].stem.split("-")[1]) + 1 if existing else 1
        path = self.folder / f"chunk-{n:06d}.npz"
        id_arr = np.array(ids, dtype=str)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".chunk-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, ids=id_arr, vectors=vectors, sha256=np.array(_digest(id_arr, vectors)))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def compact(self, ids: list[str] | None = None, vecs: np.ndarray | None = None) -> None:
        """Merge every chunk into one (fewer files to open on the next load).

        `ids`, `vecs`: every cached (id, vector) when the caller holds them already (as
        `embed_records` does after a run), so they are not read back: at 1M records the chunks
        read back, concatenated and re-indexed were three more copies of ~1 GB of vectors.
        """
        chunks = self._chunks()
        if len(chunks) < 2:
            return
        if ids is None or vecs is None:
            ids, vecs = self.load()
        if vecs is None:
            return
        # dedupe (a record embedded twice after a crash between write and bookkeeping)
        seen: dict[str, int] = {}
        for i, rid in enumerate(ids):
            seen.setdefault(rid, i)
        if len(seen) == len(ids):
            merged = self.append(list(ids), vecs)
            for c in chunks:
                if c != merged:
                    c.unlink(missing_ok=True)
            return
        keep = np.fromiter(seen.values(), dtype=np.int64)
        merged = self.append([ids[i] for i in keep], vecs[keep])
        for c in chunks:
            if c != merged:
                c.unlink(missing_ok=True)
