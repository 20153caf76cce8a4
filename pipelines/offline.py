"""Nothing downloads at run time: loading a model never contacts the Hugging Face hub unless the
user opts in (`curate train --allow-download`, or CURATE_ALLOW_DOWNLOAD=1).

Two switches are needed, and `hub_offline()` sets both. `local_files_only` on each
`from_pretrained` keeps the files local; but huggingface_hub also calls the hub for itself
(e.g. `GET /api/agent-harnesses` when it builds request headers) unless HF_HUB_OFFLINE is on,
and it reads that variable once, when it is first imported, which may be before the caller
could set it. So the variable is set for the process and, when the library is already loaded,
its constant too. Children started through `pipelines.launch` get HF_HUB_OFFLINE=1 anyway.
"""

from __future__ import annotations

import os
import sys

__all__ = ["ALLOW_DOWNLOAD_ENV", "downloads_allowed", "hub_offline"]

ALLOW_DOWNLOAD_ENV = "CURATE_ALLOW_DOWNLOAD"


def downloads_allowed() -> bool:
    """Whether the user opted in to downloads from the hub."""
    return os.environ.get(ALLOW_DOWNLOAD_ENV, "").strip().lower() in ("1", "true", "yes")


def hub_offline() -> bool:
    """Turn the hub off for this process unless downloads are allowed; returns whether it is
    off (pass it on as `local_files_only=`)."""
    if downloads_allowed():
        return False
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    return True
