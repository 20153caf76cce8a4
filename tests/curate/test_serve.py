"""`curate serve`: the OpenAI client library talks to it (chat, streaming, auto routing), the
classify endpoint, the request log, and bad requests get a clear HTTP error while the server
keeps serving. `curate models ...` and `curate predict` on the same workspace."""

from __future__ import annotations

import http.client
import json
import shutil
import time

import pytest

from curate.cli import main
from curate.serve import ModelService, ServeConfig, serve_in_thread

pytestmark = pytest.mark.slow   # a tiny Llama, MiniLM and three adapters

SUMMARY = "Summarise this claim in one sentence: the customer reports a lost ring at home and asks for $90."
EXTRACT = "Return JSON with amount and state. Claim text: a lost ring, amount 90 dollars, state CA."


@pytest.fixture(scope="module")
def ws(micro_ws, tmp_path_factory):
    from pipelines.store import Workspace
    from trainer.router import RouterConfig, train_router

    root = tmp_path_factory.mktemp("serve") / "ws"
    shutil.copytree(micro_ws.path, root)
    ws = Workspace.open(root)
    train_router(ws, RouterConfig(models=["summary-sft-v0001", "extract-sft-v0002"], threshold=0.6))
    return ws


@pytest.fixture(scope="module")
def server(ws):
    cfg = ServeConfig(port=0, max_body_bytes=20_000, max_queue=2, max_tokens=8)
    service = ModelService.from_workspace(ws, cfg)
    srv, url = serve_in_thread(service, cfg)
    yield srv, url, service
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def client(server):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=server[1] + "/v1", api_key="local", max_retries=0)


def _post(url, path, body: bytes | dict, headers=None):
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request("POST", path, body=data, headers={"Content-Type": "application/json",
                                                   **(headers or {})})
    resp = conn.getresponse()
    out = resp.status, json.loads(resp.read() or b"{}")
    conn.close()
    return out


def test_openai_client_chat_named_and_auto(client, server):
    names = {m.id for m in client.models.list().data}
    assert {"auto", "base", "summary-sft-v0001", "extract-sft-v0002",
            "topic-classifier-v0003"} <= names
    forced = {n: client.chat.completions.create(model=n, max_tokens=6, messages=[
        {"role": "user", "content": SUMMARY}]) for n in ("summary-sft-v0001", "extract-sft-v0002")}
    assert forced["summary-sft-v0001"].model == "summary-sft-v0001"
    auto = client.chat.completions.create(model="auto", max_tokens=6,
                                          messages=[{"role": "user", "content": EXTRACT}])
    assert auto.model == "extract-sft-v0002"
    assert auto.routing["confidence"] >= 0.6   # the extra field rides along
    again = client.chat.completions.create(model="extract-sft-v0002", max_tokens=6,
                                           messages=[{"role": "user", "content": EXTRACT}])
    assert auto.choices[0].message.content == again.choices[0].message.content
    log = server[2].log.read()
    assert {"requested": "auto", "model": "extract-sft-v0002"}.items() <= log[-2].items()


def test_openai_client_streaming(client):
    stream = client.chat.completions.create(model="base", max_tokens=6, stream=True,
                                            messages=[{"role": "user", "content": SUMMARY}])
    pieces = [c.choices[0].delta.content or "" for c in stream]
    whole = client.chat.completions.create(model="base", max_tokens=6,
                                           messages=[{"role": "user", "content": SUMMARY}])
    assert "".join(pieces) == whole.choices[0].message.content and len(pieces) >= 3


def test_classify_endpoint(server):
    status, body = _post(server[1], "/v1/classify", {"model": "topic-classifier-v0003",
                                                     "input": ["a kitchen fire", "a burst pipe"]})
    assert status == 200 and [r["label"] in ("water", "fire") for r in body["data"]] == [True, True]
    status, body = _post(server[1], "/v1/classify", {"model": "summary-sft-v0001", "input": "x"})
    assert status == 400 and "not a classifier" in body["error"]["message"]


def test_bad_requests_get_a_reason_and_the_server_keeps_serving(client, server):
    import openai

    with pytest.raises(openai.NotFoundError, match="unknown model 'nope'"):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="window is 1024"):
        client.chat.completions.create(model="summary-sft-v0001",
                                       messages=[{"role": "user", "content": "pipe " * 1500}])
    url = server[1]
    assert _post(url, "/v1/chat/completions", b"{not json")[0] == 400
    status, body = _post(url, "/v1/chat/completions", {"model": "base", "messages": "hi"})
    assert status == 400 and body["error"]["param"] == "messages"
    status, body = _post(url, "/v1/chat/completions", b"x" * 30_000)
    assert status == 413 and "limit is 20000" in body["error"]["message"]
    slots = server[0].RequestHandlerClass.slots
    held = [slots.acquire(blocking=False) for _ in range(3)]   # one running + max_queue 2
    try:
        status, body = _post(url, "/v1/chat/completions",
                             {"model": "base", "messages": [{"role": "user", "content": "hi"}]})
        assert status == 503 and "busy" in body["error"]["message"]
    finally:
        for ok in held:
            if ok:
                slots.release()
    assert client.chat.completions.create(model="base", max_tokens=2, messages=[
        {"role": "user", "content": "hi"}]).choices


def test_a_client_that_disconnects_mid_stream(server, client):
    import socket

    host, port = server[1].removeprefix("http://").split(":")
    body = json.dumps({"model": "base", "stream": True, "max_tokens": 900,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    sock = socket.create_connection((host, int(port)), timeout=60)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                 b"application/json\r\nContent-Length: " + str(len(body)).encode()
                 + b"\r\n\r\n" + body)
    first = sock.recv(4096)
    assert first.startswith(b"HTTP/1.1 200") and b"text/event-stream" in first
    sock.close()   # gone mid-stream
    log = server[2].log
    for _ in range(120):
        if any(e.get("status") == "client disconnected" for e in log.read()):
            break
        time.sleep(0.5)
    assert any(e.get("status") == "client disconnected" for e in log.read())
    assert client.chat.completions.create(model="base", max_tokens=2, messages=[
        {"role": "user", "content": "still there?"}]).choices


def _cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_cli_and_predict(ws, capsys, tmp_path):
    w = str(ws.path)
    code, out, _ = _cli(capsys, "models", "list", "-w", w, "--json")
    names = [m["name"] for m in json.loads(out.strip().splitlines()[-1])["models"]]
    assert code == 0 and {"summary-sft-v0001", "router"} <= set(names)
    code, out, _ = _cli(capsys, "models", "show", "router", "-w", w)
    assert code == 0 and "kind        router" in out and "\"accuracy\": 1.0" in out
    code, _, err = _cli(capsys, "models", "remove", "summary-sft-v0001", "-w", w)
    assert code == 2 and "add --yes" in err
    code, _, err = _cli(capsys, "models", "show", "nope", "-w", w)
    assert code == 2 and "no model 'nope'" in err
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"prompt": EXTRACT}) + "\n"
                       + json.dumps({"prompt": "a kitchen fire", "model": "topic-classifier-v0003"})
                       + "\n" + json.dumps({"prompt": "hi", "model": "nope"}) + "\n")
    code, out, _ = _cli(capsys, "predict", str(prompts), "-w", w, "--max-tokens", "4", "--json")
    summary = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and summary["rows"] == 3 and summary["errors"] == 1
    rows = [json.loads(x) for x in open(summary["out"])]
    assert rows[0]["model"] == "extract-sft-v0002" and "answer" in rows[0]
    assert rows[1]["label"] in ("water", "fire") and "unknown model" in rows[2]["error"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{oops\n')
    code, _, err = _cli(capsys, "predict", str(bad), "-w", w)
    assert code == 2 and "bad.jsonl, row 2" in err
