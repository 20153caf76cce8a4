"""`curate serve`: the registered adapters behind an OpenAI-compatible HTTP endpoint on 127.0.0.1,
with a learned router for `model: "auto"` (see docs/serving.md)."""

from curate.serve.config import HOST, ServeConfig
from curate.serve.server import make_server, serve_in_thread
from curate.serve.service import ModelService, RequestError, RequestLog

__all__ = ["ServeConfig", "HOST", "ModelService", "RequestError", "RequestLog", "make_server",
           "serve_in_thread"]
