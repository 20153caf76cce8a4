"""The generator: a local tiny model, and a real HTTP server speaking chat-completions that the
test starts on 127.0.0.1 (backed by the same tiny model), with failures on demand."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipelines.errors import ConfigError, SynthError
from pipelines.generate import GenerateConfig, Generator, cache_key
from pipelines.store import NewRecord, Workspace, upsert_record, utcnow
from pipelines.store.exports import put_label

TEXTS = ["a pipe burst and water flooded the kitchen", "fire damaged the garage roof",
         "rewrite the following text in different words", "claim summary for the adjuster"] * 5
PROMPT = [{"role": "user", "content": "a pipe burst and water flooded the kitchen"}]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from trainer.tiny import build_tiny_llama

    return str(build_tiny_llama(tmp_path_factory.mktemp("gen") / "llama", TEXTS, vocab_size=300))


class Server:
    """A chat-completions endpoint: answers with the tiny model unless told to fail."""

    def __init__(self, model: str):
        self.local = Generator(GenerateConfig(model=model, max_new_tokens=4, cache=False))
        self.fail_next = 0          # answer 503 this many times
        self.mode = "ok"            # ok | malformed | slow | 400
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                server.hits += 1
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                assert self.path == "/v1/chat/completions"
                if server.fail_next:
                    server.fail_next -= 1
                    return self._send(503, b'{"error": "overloaded"}')
                if server.mode == "malformed":
                    return self._send(200, b'{"choices": [')
                if server.mode == "400":
                    return self._send(400, b'{"error": "unknown model"}')
                if server.mode == "slow":
                    time.sleep(1.0)
                g = server.local.generate([body["messages"]])[0]
                out = {"object": "chat.completion", "model": body["model"],
                       "choices": [{"index": 0, "finish_reason": "length",
                                    "message": {"role": "assistant", "content": g.text}}],
                       "usage": {"prompt_tokens": g.prompt_tokens,
                                 "completion_tokens": g.completion_tokens}}
                self._send(200, json.dumps(out).encode())

            def _send(self, code, payload):
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server(tiny):
    s = Server(tiny)
    yield s
    s.close()


def endpoint_cfg(server, **kw) -> GenerateConfig:
    return GenerateConfig(**{**dict(model="tiny", endpoint=server.url, max_new_tokens=4,
                                    timeout_s=0.5, backoff_s=0.01, max_retries=2), **kw})


def test_local_model_batches_counts_tokens_and_caches(tiny, tmp_path):
    gen = Generator(GenerateConfig(model=tiny, max_new_tokens=5, batch_size=2), cache_dir=tmp_path)
    prompts = [PROMPT, [{"role": "user", "content": "fire damaged the garage roof"}], PROMPT]
    outs = gen.generate(prompts)
    assert len(outs) == 3 and all(o.completion_tokens > 0 and o.prompt_tokens > 0 for o in outs)
    assert outs[0].text == outs[2].text and outs[2].cached   # answered in batch 1, cached
    assert gen.stats.requests == 1 and gen.stats.cache_hits == 1
    assert gen.stats.completion_tokens == outs[0].completion_tokens + outs[1].completion_tokens
    again = Generator(GenerateConfig(model=tiny, max_new_tokens=5, batch_size=2),
                      cache_dir=tmp_path)
    outs2 = again.generate(prompts)
    assert [o.text for o in outs2] == [o.text for o in outs] and all(o.cached for o in outs2)
    assert again.stats.requests == 0 and again.stats.to_dict()["cache_hit_rate"] == 1.0
    other = GenerateConfig(model=tiny, max_new_tokens=6).settings()
    assert cache_key(PROMPT, other) != cache_key(PROMPT, gen.cfg.settings())


def test_endpoint_answers_with_usage_and_retries_a_5xx(server, tmp_path):
    server.mode, server.fail_next = "ok", 2
    waits = []
    gen = Generator(endpoint_cfg(server), cache_dir=tmp_path, sleep=waits.append)
    (out,) = gen.generate([PROMPT])
    assert out.text and out.completion_tokens > 0
    assert gen.stats.retries == 2 and gen.stats.requests == 3
    assert waits == [0.01, 0.02]                               # doubling backoff
    assert gen.generate([PROMPT])[0].cached and gen.stats.requests == 3


def test_endpoint_down_slow_or_malformed_is_a_clear_error_and_nothing_is_cached(server, tmp_path):
    cache = tmp_path / "c"
    server.mode, server.fail_next = "ok", 5
    with pytest.raises(SynthError, match=r"HTTP 503 .* after 2 retries"):
        Generator(endpoint_cfg(server), cache_dir=cache, sleep=lambda s: None).generate([PROMPT])
    server.fail_next = 0
    server.mode = "malformed"
    gen = Generator(endpoint_cfg(server), cache_dir=cache, sleep=lambda s: None)
    with pytest.raises(SynthError, match="not chat-completions JSON"):
        gen.generate([PROMPT])
    assert gen.stats.requests == 1                             # not retried
    server.mode = "400"
    with pytest.raises(SynthError, match="HTTP 400 .*not retried"):
        Generator(endpoint_cfg(server), cache_dir=cache).generate([PROMPT])
    server.mode = "slow"
    gen = Generator(endpoint_cfg(server, timeout_s=0.2, max_retries=1), cache_dir=cache,
                    sleep=lambda s: None)
    with pytest.raises(SynthError, match=r"no answer within 0.2s after 1 retry"):
        gen.generate([PROMPT])
    assert gen.stats.requests == 2
    server.mode = "ok"
    import sqlite3

    assert sqlite3.connect(cache / "generate.sqlite").execute(
        "SELECT COUNT(*) FROM generations").fetchone()[0] == 0
    down = GenerateConfig(model="x", endpoint="http://127.0.0.1:9/v1", max_retries=1,
                          backoff_s=0.0, timeout_s=0.5)
    with pytest.raises(SynthError, match="unreachable"):
        Generator(down).generate([PROMPT])


def test_rate_limit_spaces_requests(server, tmp_path):
    server.mode = "ok"
    waits = []
    gen = Generator(endpoint_cfg(server, requests_per_s=2.0, cache=False), sleep=waits.append)
    gen.generate([PROMPT, PROMPT, PROMPT])
    assert len(waits) == 2 and all(0 < w <= 0.5 for w in waits)


def test_generated_records_enter_the_workspace_flagged_synthetic(server, tmp_path):
    from pipelines.store import get_record
    from pipelines.synth import generate_records

    ws = Workspace.create(tmp_path / "ws")
    ws.config_path.write_text("schema: instruction\nschemes:\n  q: {classes: [ACCEPT, REJECT]}\n",
                              encoding="utf-8")
    with ws.transaction() as conn:
        for i in range(3):
            upsert_record(conn, NewRecord(id=f"r{i}", kind="instruction", text="t",
                                          prompt=f"claim {i}: water in the kitchen",
                                          response=f"water claim {i}", file="x", row=i + 1),
                          utcnow())
            put_label(conn, f"r{i}", "q", "ACCEPT", 0.99)
    server.mode, server.fail_next = "ok", 0
    preview = generate_records(ws, endpoint_cfg(server), task="second_response", n=2,
                               commit=False)
    assert preview.sources == 2 and preview.run_id is None
    res = generate_records(ws, endpoint_cfg(server), task="second_response", n=2)
    assert res.stats["cache_hit_rate"] == 1.0              # the preview's answers were cached
    assert res.stored == len(res.created) and res.stored + sum(res.skipped.values()) >= 2
    assert res.created
    with ws.connect() as conn:
        rec = get_record(conn, res.created[0]["record_id"])
    syn = rec.synthetic
    assert syn["method"] == "generate" and syn["task"] == "second_response"
    assert syn["source_id"] == res.created[0]["source_id"] and "completion_tokens" in syn
    server.mode = "malformed"                               # a failing generator stores nothing
    with ws.connect() as conn:
        before = conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    with pytest.raises(SynthError):
        generate_records(ws, endpoint_cfg(server, seed=7), task="paraphrase", n=3)
    with ws.connect() as conn:
        assert conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] == before
    server.mode = "ok"


def test_config_is_validated():
    with pytest.raises(ConfigError, match="generate.model"):
        GenerateConfig(model="")
    with pytest.raises(ConfigError, match="generate.endpoint"):
        GenerateConfig(model="m", endpoint="ftp://x")
    with pytest.raises(ConfigError, match="generate.requests_per_s"):
        GenerateConfig(model="m", requests_per_s=0)
    assert GenerateConfig(model="m", api_key="s3cret").to_dict()["api_key"] == "***"
