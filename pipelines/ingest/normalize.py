"""Normalisation and the stable record id."""

from __future__ import annotations

import hashlib
import json
import unicodedata

__all__ = ["normalize_text", "record_id", "ROLE_ALIASES", "canonical_role"]


def normalize_text(s: str) -> str:
    """Unicode NFC with every run of whitespace folded to one space, trimmed."""
    return " ".join(unicodedata.normalize("NFC", s).split())


def record_id(kind: str, parts: dict) -> str:
    """A stable id: the hash of the record's kind and normalised content (not its metadata).

    The same content always gets the same id, in any file, on any machine, so re-ingesting adds
    nothing and exact duplicates fold into one record.
    """
    payload = json.dumps({"kind": kind, **parts}, ensure_ascii=False, sort_keys=True,
                         separators=(",", ":"))
    return "r" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


# -- chat turns ------------------------------------------------------------------------------
# The role names chat dumps use, folded to the four the studio knows. ShareGPT writes
# human/gpt, some scrapes chatgpt/bing/bard, Gemini `model`, tool-use sets function/observation.
ROLE_ALIASES = {
    "system": "system",
    "human": "user", "user": "user",
    "gpt": "assistant", "chatgpt": "assistant", "bing": "assistant", "bard": "assistant",
    "assistant": "assistant", "model": "assistant",
    "function": "tool", "tool": "tool", "observation": "tool",
}


def canonical_role(role: object) -> str | None:
    """The studio's role for a role name as written in a file (any case), or None if unknown."""
    if not isinstance(role, str):
        return None
    return ROLE_ALIASES.get(role.strip().lower())
