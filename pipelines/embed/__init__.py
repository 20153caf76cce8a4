"""Sentence embeddings of workspace records, cached per (model, record id).

    from pipelines.embed import EmbedConfig, embed_records
    emb = embed_records(ws, EmbedConfig(model="default"))   # only new records are encoded
    emb.vectors   # (n x d) float32, L2-normalised; row i is emb.ids[i]
"""

from pipelines.embed.config import EmbedConfig
from pipelines.embed.embed import Embeddings, cached_embeddings, embed_records
from pipelines.embed.model import DEFAULT_MODEL, ModelRef, encode_texts, load_model, resolve_model

__all__ = ["EmbedConfig", "Embeddings", "embed_records", "cached_embeddings", "encode_texts",
           "load_model", "resolve_model", "ModelRef", "DEFAULT_MODEL"]
