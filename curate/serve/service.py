"""What the server does with a request, without HTTP: validate the body, pick the model (named,
`base`, or `auto` through the router), run it, and log which adapter answered.

    svc = ModelService.from_workspace(ws, ServeConfig())
    svc.chat({"model": "auto", "messages": [{"role": "user", "content": "..."}]})
    svc.classify({"model": "topic-classifier-v0003", "input": "a pipe burst"})

A request the service cannot answer raises `RequestError(status, message)`: the HTTP layer turns
it into an OpenAI-style `{"error": {...}}` body with that status. Bodies and replies follow the
OpenAI chat-completions protocol; replies add a `routing` object (model, confidence, scores,
fallback) that clients may ignore.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

from curate.serve.config import ServeConfig
from pipelines.errors import ModelError
from trainer.router import Route, prompt_text
from trainer.serving import AdapterPool, PromptTooLong

__all__ = ["ModelService", "RequestError", "RequestLog"]

ROLES = ("system", "user", "assistant")


class RequestError(Exception):
    """A request the service refuses: HTTP `status`, a one-line reason, an OpenAI error type."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error",
                 param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.param = status, message, kind, param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param,
                          "code": self.status}}


class RequestLog:
    """`W/serve/requests.jsonl`: one line per request (which adapter answered, how, how long)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, **fields: Any) -> None:
        line = json.dumps({"time": round(time.time(), 3), **fields}, default=str)
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(x) for x in self.path.read_text(encoding="utf-8").splitlines()
                if x.strip()]


def _messages(body: dict[str, Any]) -> list[dict[str, str]]:
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise RequestError(400, "'messages' must be a non-empty list of {role, content}",
                           param="messages")
    out = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise RequestError(400, f"messages[{i}].role must be one of {', '.join(ROLES)}",
                               param=f"messages[{i}].role")
        content = m.get("content")
        if isinstance(content, list):   # OpenAI content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise RequestError(400, f"messages[{i}].content must be text",
                               param=f"messages[{i}].content")
        out.append({"role": m["role"], "content": content})
    if out[-1]["role"] == "assistant":
        raise RequestError(400, "the last message must be the user's (or system's), not the "
                                "assistant's", param="messages")
    return out


def _number(body, name, default, lo, hi, kind=float):
    v = body.get(name, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and v != int(v)) \
            or not lo <= v <= hi:
        raise RequestError(400, f"'{name}' must be a number in [{lo}, {hi}], got {v!r}", param=name)
    return kind(v)


class ModelService:
    """The loaded models (an `AdapterPool`), the router, and the request log."""

    def __init__(self, pool: AdapterPool, router=None, *, cfg: ServeConfig | None = None,
                 log: RequestLog | None = None, router_name: str | None = None,
                 notices: list[str] | None = None):
        self.pool, self.router, self.cfg = pool, router, cfg or ServeConfig()
        self.log, self.router_name = log, router_name
        self.notices = notices or []

    @classmethod
    def from_workspace(cls, ws, cfg: ServeConfig | None = None, *, log: bool = True) -> "ModelService":
        """Load every registered adapter (refusals become notices) and the router, if any."""
        from trainer.registry import list_models
        from trainer.router import load_router

        cfg = cfg or ServeConfig()
        pool = AdapterPool.from_registry(ws, cfg.models, device=cfg.device, lm_base=cfg.base_model)
        notices = [f"refused {n}: {why}" for n, why in pool.refused.items()]
        router = None
        routers = {e.name: e for e in list_models(ws, kind="router")}
        if cfg.router in routers:
            router = load_router(routers[cfg.router].path)
            missing = [m for m in router.labels if m not in pool.names]
            if missing:
                notices.append(f"router {cfg.router} routes to {', '.join(missing)}, which "
                               f"are not loaded: those routes fall back")
        else:
            notices.append(f"no router {cfg.router!r} registered: model 'auto' is refused "
                           f"(curate models router train)")
        request_log = RequestLog(ws.subdir("serve") / "requests.jsonl") if log else None
        return cls(pool, router, cfg=cfg, log=request_log, router_name=cfg.router if router else None,
                   notices=notices)

    # -- choosing the model --------------------------------------------------------------------
    def route(self, requested: str, text: str) -> tuple[str | None, Route | None]:
        """(model name or None for the base/ask fallback, the router's decision when 'auto')."""
        if requested == "auto":
            if self.router is None:
                raise RequestError(404, "model 'auto' needs a registered router (curate models "
                                        "router train); or name an adapter: "
                                        + ", ".join(self.pool.names), param="model")
            r = self.router.route([text])[0]
            if r.model is not None and r.model not in self.pool.names:
                r = Route(None, r.confidence, r.scores, self.router.fallback, r.best)
            return r.model, r
        if requested == "base":
            return None, None
        if requested not in self.pool.names:
            why = self.pool.refused.get(requested)
            raise RequestError(404, f"model {requested!r} is not loaded: {why}" if why else
                               f"unknown model {requested!r}; known: auto, base, "
                               + ", ".join(self.pool.names), kind="not_found_error", param="model")
        return requested, None

    def models(self) -> dict[str, Any]:
        data = []
        if self.router is not None:
            data.append({"id": "auto", "object": "model", "owned_by": "curate", "head": "router",
                         "routes": self.router.labels})
        if self.pool.lm is not None:
            data.append({"id": "base", "object": "model", "owned_by": "curate", "head": "base",
                         "base_model": self.pool.lm.base})
        for n in self.pool.names:
            e = self.pool.entry(n)
            data.append({"id": n, "object": "model", "owned_by": "curate", "head": e.head,
                         "task": e.task, "base_model": e.base_model, "export": e.export})
        return {"object": "list", "data": data}

    # -- endpoints -----------------------------------------------------------------------------
    def chat(self, body: dict[str, Any]) -> dict[str, Any] | Iterator[dict[str, Any]]:
        """A chat completion, or (with `stream: true`) an iterator of chunk objects."""
        t0 = time.time()
        requested = body.get("model", "auto")
        if not isinstance(requested, str):
            raise RequestError(400, "'model' must be a name (or 'auto')", param="model")
        msgs = _messages(body)
        max_tokens = _number(body, "max_tokens", self.cfg.max_tokens, 1, 8192, int)
        max_tokens = _number(body, "max_completion_tokens", max_tokens, 1, 8192, int)
        temperature = _number(body, "temperature", 0.0, 0.0, 2.0)
        seed = body.get("seed") if isinstance(body.get("seed"), int) else None
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise RequestError(400, "'stream' must be true or false", param="stream")
        name, route = self.route(requested, prompt_text(msgs))
        routing = {"requested": requested, "model": name or (route.fallback if route else "base"),
                   **({"confidence": route.confidence, "scores": route.scores,
                       "fallback": route.fallback} if route else {})}
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        served = name or "base"
        base = {"id": cid, "created": int(t0), "model": served}

        def logged(status: str, completion_tokens: int | None = None, **more) -> None:
            if self.log is not None:
                self.log.write(endpoint="chat", requested=requested, model=routing["model"],
                               confidence=routing.get("confidence"), stream=stream,
                               status=status, completion_pieces=completion_tokens,
                               latency_ms=round((time.time() - t0) * 1000, 1), **more)

        if route is not None and route.fallback == "ask":
            text = ("Which task do you mean? Name one of: " + ", ".join(self.router.labels)
                    + f" (the router is {route.confidence:.0%} sure of {route.best}).")
            pieces: Iterator[str] = iter([text])
            served = base["model"] = "router"
        else:
            try:
                if name is not None and self.pool.head(name) == "classifier":
                    out = self.pool.classify(name, prompt_text(msgs))
                    routing["classification"] = out
                    pieces = iter([out["label"]])
                else:
                    pieces = self.pool.generate(name, msgs, max_tokens=max_tokens,
                                                temperature=temperature, seed=seed)
            except PromptTooLong as exc:
                logged("prompt too long")
                raise RequestError(400, str(exc), kind="context_length_exceeded",
                                   param="messages") from None
            except ModelError as exc:
                logged("refused")
                raise RequestError(404, str(exc), param="model") from None
        if stream:
            return self._chunks(base, pieces, routing, logged)
        text, n = "", 0
        for piece in pieces:
            text += piece
            n += 1
        logged("ok", n)
        return {**base, "object": "chat.completion", "routing": routing,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": {"completion_tokens": n}}

    def _chunks(self, base, pieces, routing, logged) -> Iterator[dict[str, Any]]:
        def chunk(delta, finish=None, **more):
            return {**base, "object": "chat.completion.chunk", **more,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        n, status = 0, "client disconnected"
        try:
            yield chunk({"role": "assistant", "content": ""}, routing=routing)
            for piece in pieces:
                n += 1
                yield chunk({"content": piece})
            yield chunk({}, "stop")
            status = "ok"
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()   # stops the generation and frees the model lock
            logged(status, n)

    def classify(self, body: dict[str, Any]) -> dict[str, Any]:
        """`{"model", "input": text | [texts]}` -> one `{label, scores}` per input."""
        t0 = time.time()
        requested = body.get("model", "auto")
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise RequestError(400, "'input' must be a text or a non-empty list of texts",
                               param="input")
        if not isinstance(requested, str):
            raise RequestError(400, "'model' must be a name (or 'auto')", param="model")
        results = []
        for text in texts:
            name, route = self.route(requested, text)
            if name is None or self.pool.head(name) != "classifier":
                raise RequestError(400, f"{'the router sent' if route else 'model'} "
                                        f"{name or (route.best if route else 'base')!r} is not a "
                                        f"classifier; use /v1/chat/completions", param="model")
            try:
                out = self.pool.classify(name, text)
            except PromptTooLong as exc:
                raise RequestError(400, str(exc), kind="context_length_exceeded",
                                   param="input") from None
            results.append({"model": name, **out,
                            **({"confidence": route.confidence} if route else {})})
        if self.log is not None:
            self.log.write(endpoint="classify", requested=requested,
                           model=sorted({r["model"] for r in results}), status="ok",
                           n=len(results), latency_ms=round((time.time() - t0) * 1000, 1))
        return {"object": "list", "data": results}
