"""`GenerateConfig`: which model writes, with what settings, how fast and how patiently."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from pipelines.errors import ConfigError

__all__ = ["GenerateConfig", "TASKS"]

TASKS = ("paraphrase", "second_response")


@dataclass
class GenerateConfig:
    """Options of the generator (`curate synth generate`, `pipelines.generate.Generator`)."""

    model: str = field(default="", metadata={
        "help": "a local transformers model folder, or the model name the endpoint serves"})
    endpoint: str | None = field(default=None, metadata={
        "help": "an OpenAI-compatible base URL (http://127.0.0.1:8000/v1: vLLM, TGI, Ollama, "
                "llama.cpp); None: run `model` locally with transformers"})
    api_key: str | None = field(default=None, metadata={
        "help": "bearer token for the endpoint (default: none)"})
    max_new_tokens: int = field(default=64, metadata={"help": "tokens generated per prompt"})
    temperature: float = field(default=0.0, metadata={"help": "0: greedy"})
    seed: int = field(default=0, metadata={"help": "sampling seed (part of the cache key)"})
    batch_size: int = field(default=8, metadata={"help": "prompts per local batch / per commit"})
    requests_per_s: float | None = field(default=None, metadata={
        "help": "at most this many endpoint requests per second (None: no limit)"})
    timeout_s: float = field(default=60.0, metadata={"help": "seconds one request may take"})
    max_retries: int = field(default=3, metadata={
        "help": "retries of a request that failed with 5xx, a timeout or a refused connection"})
    backoff_s: float = field(default=0.5, metadata={
        "help": "first retry's wait; doubled for each further retry"})
    cache: bool = field(default=True, metadata={
        "help": "reuse answers cached under W/cache/generate.sqlite (key: prompt + settings)"})

    def __post_init__(self):
        def bad(name: str, why: str):
            raise ConfigError(f"generate.{name}: {why}, got {getattr(self, name)!r}")

        if not isinstance(self.model, str) or not self.model.strip():
            bad("model", "needs a local model folder or the endpoint's model name")
        if self.endpoint is not None and not str(self.endpoint).startswith(("http://", "https://")):
            bad("endpoint", "must be an http(s):// URL")
        for name in ("max_new_tokens", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                bad(name, "must be a positive integer")
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            bad("max_retries", "must be an integer >= 0")
        if not isinstance(self.temperature, (int, float)) or not 0 <= self.temperature <= 2:
            bad("temperature", "must be in [0, 2]")
        if self.requests_per_s is not None and (not isinstance(self.requests_per_s, (int, float))
                                                or self.requests_per_s <= 0):
            bad("requests_per_s", "must be > 0 or null")
        for name in ("timeout_s", "backoff_s"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v < 0 or (name == "timeout_s" and v == 0):
                bad(name, "must be a positive number of seconds")

    def settings(self) -> dict[str, Any]:
        """What changes an answer: the cache key's part besides the prompt."""
        return {"model": self.model, "endpoint": self.endpoint, "max_new_tokens": self.max_new_tokens,
                "temperature": self.temperature, "seed": self.seed}

    def to_dict(self, *, secrets: bool = False) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        if not secrets and d.get("api_key"):
            d["api_key"] = "***"
        return d
