"""The HTTP layer of `curate serve`: the standard library's `ThreadingHTTPServer` on 127.0.0.1.

Endpoints: `POST /v1/chat/completions` (OpenAI protocol; `stream: true` sends server-sent events,
`data: {chunk}` lines ending with `data: [DONE]`), `GET /v1/models`, `POST /v1/classify`, and
`GET /health`. Each connection has its own thread, so listing models or being refused never
waits behind a generation; requests that need a model take a slot first: one runs (the model
lock), `max_queue` wait, and a request beyond that gets 503 at once rather than an unbounded wait.
A body over `max_body_bytes` gets 413 without being read; a client that goes away mid-stream
stops its generation and nothing else.

No new dependency: the standard library is enough for a local, single-user endpoint.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from curate.serve.config import HOST, ServeConfig
from curate.serve.service import ModelService, RequestError

__all__ = ["make_server", "serve_in_thread"]


class _Handler(BaseHTTPRequestHandler):
    server_version = "curate-serve/1"
    protocol_version = "HTTP/1.1"
    service: ModelService
    slots: threading.BoundedSemaphore
    cfg: ServeConfig

    def log_message(self, fmt: str, *args: Any) -> None:   # the request log is the jsonl file
        pass

    # -- replies -------------------------------------------------------------------------------
    def _send_json(self, status: int, obj: dict[str, Any], *, close: bool = False) -> None:
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        if status == 503:
            self.send_header("Retry-After", "1")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, exc: RequestError, *, close: bool = False) -> None:
        self._send_json(exc.status, exc.body(), close=close)

    def _body(self) -> dict[str, Any]:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise RequestError(411 if length is None else 400, "a JSON body with Content-Length "
                               "is required")
        if int(length) > self.cfg.max_body_bytes:
            raise RequestError(413, f"request body is {length} bytes; the limit is "
                                    f"{self.cfg.max_body_bytes}")
        raw = self.rfile.read(int(length))
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RequestError(400, f"malformed JSON body: {exc}") from None
        if not isinstance(body, dict):
            raise RequestError(400, "the JSON body must be an object")
        return body

    # -- routes --------------------------------------------------------------------------------
    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send_json(200, self.service.models())
        elif self.path.rstrip("/") == "/health":
            self._send_json(200, {"status": "ok", "models": self.service.pool.names})
        else:
            self._error(RequestError(404, f"no endpoint GET {self.path}", "not_found_error"))

    def do_POST(self) -> None:
        path = self.path.rstrip("/")
        if path not in ("/v1/chat/completions", "/v1/classify"):
            self._error(RequestError(404, f"no endpoint POST {self.path}", "not_found_error"),
                        close=True)
            return
        try:
            body = self._body()
        except RequestError as exc:
            # an unread (too large) body cannot be skipped on a kept-alive connection
            self._error(exc, close=exc.status in (411, 413))
            return
        if not self.slots.acquire(blocking=False):
            self._error(RequestError(503, f"server busy: {self.cfg.max_queue} requests already "
                                          f"wait for the model; retry shortly", "server_busy"))
            return
        try:
            if path == "/v1/classify":
                self._send_json(200, self.service.classify(body))
                return
            result = self.service.chat(body)
            if isinstance(result, dict):
                self._send_json(200, result)
            else:
                self._stream(result)
        except RequestError as exc:
            self._error(exc)
        finally:
            self.slots.release()

    def _stream(self, chunks) -> None:
        """Server-sent events; a client that disconnects ends its own generation only."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        try:
            for chunk in chunks:
                self.wfile.write(b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n")
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            chunks.close()


def make_server(service: ModelService, cfg: ServeConfig | None = None) -> ThreadingHTTPServer:
    """A server bound to 127.0.0.1:`cfg.port` (0: a free port; read `server.server_address`)."""
    cfg = cfg or service.cfg
    handler = type("Handler", (_Handler,), {
        "service": service, "cfg": cfg,
        "slots": threading.BoundedSemaphore(cfg.max_queue + 1)})
    server = ThreadingHTTPServer((HOST, cfg.port), handler)
    server.daemon_threads = True
    return server


def serve_in_thread(service: ModelService, cfg: ServeConfig | None = None):
    """Start a server in a daemon thread; returns `(server, base_url)` (tests, the bench)."""
    server = make_server(service, cfg)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host}:{port}"
