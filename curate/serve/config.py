"""`ServeConfig`: the options of `curate serve` (and of `curate predict`, which shares the models)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.errors import ConfigError

__all__ = ["ServeConfig", "HOST"]

HOST = "127.0.0.1"   # local only, on purpose: there is no authentication


@dataclass
class ServeConfig:
    """Options of the local model server."""

    port: int = field(default=8000, metadata={"help": "TCP port on 127.0.0.1 (0: any free port)"})
    router: str = field(default="router", metadata={
        "help": "registered router that answers model 'auto' (none registered: 'auto' is refused)"})
    base_model: str | None = field(default=None, metadata={
        "help": "causal LM to load the sft adapters on (default: the first sft adapter's base); "
                "adapters trained on another base are refused"})
    models: list[str] | None = field(default=None, metadata={
        "help": "registered adapters to load (default: all)"})
    max_body_bytes: int = field(default=1_000_000, metadata={
        "help": "largest request body accepted; larger ones get 413"})
    max_queue: int = field(default=8, metadata={
        "help": "requests waiting for the model beyond the one running; more get 503"})
    max_tokens: int = field(default=128, metadata={
        "help": "tokens generated when a request does not say (max_tokens)"})
    device: str = field(default="cpu", metadata={"help": "torch device of the models"})

    def __post_init__(self):
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigError(f"serve.port must be in 0..65535, got {self.port!r}")
        for name in ("max_body_bytes", "max_tokens"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"serve.{name} must be a positive integer, got {v!r}")
        if not isinstance(self.max_queue, int) or self.max_queue < 0:
            raise ConfigError(f"serve.max_queue must be an integer >= 0, got {self.max_queue!r}")
