"""Model-written text behind one boundary: a local transformers model or an OpenAI-compatible
endpoint, with batching, a rate limit, retries, a cache and token counts (`Generator`)."""

from pipelines.generate.config import TASKS, GenerateConfig
from pipelines.generate.generator import GenerateStats, Generation, Generator, cache_key

__all__ = ["GenerateConfig", "TASKS", "Generator", "Generation", "GenerateStats", "cache_key"]
