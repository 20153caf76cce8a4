"""Configuration of the embedding step."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.errors import ConfigError

__all__ = ["EmbedConfig"]


@dataclass
class EmbedConfig:
    """How records are embedded. The same dataclass fills the CLI options and `curation.yaml`."""

    model: str = field(default="default", metadata={
        "help": "sentence-transformers model: 'default' (the packaged all-MiniLM-L6-v2), a local "
                "model folder, or a model id already in the local Hugging Face cache"})
    batch_size: int = field(default=64, metadata={"help": "texts per encode() call"})
    chunk_size: int = field(default=2048, metadata={
        "help": "embeddings written to the cache per file; an interrupted run keeps every "
                "finished chunk and resumes from there"})
    device: str | None = field(default=None, metadata={
        "help": "torch device (cpu, cuda); default: what sentence-transformers picks"})
    scheduler: str | None = field(default=None, metadata={
        "help": "address of a Dask scheduler (tcp://host:8786) whose workers encode the texts; "
                "default: encode here"})

    def __post_init__(self):
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError(f"embed.model must be a model name or path, got {self.model!r}")
        for name in ("batch_size", "chunk_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"embed.{name} must be a positive integer, got {value!r}")
        if self.scheduler is not None and (not isinstance(self.scheduler, str)
                                           or not self.scheduler.strip()):
            raise ConfigError(f"embed.scheduler must be a Dask scheduler address, got "
                              f"{self.scheduler!r}")
