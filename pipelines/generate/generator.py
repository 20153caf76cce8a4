"""The one boundary to a model that writes text: a local transformers model or an endpoint.

    gen = Generator(GenerateConfig(model="W/models/tiny-llama"), cache_dir=ws.subdir("cache"))
    outs = gen.generate([[{"role": "user", "content": "Rewrite: ..."}]])
    outs[0].text, outs[0].completion_tokens, gen.stats

- **local** (`endpoint` unset): `AutoModelForCausalLM` from a folder (or the offline HF cache),
  prompts rendered with the tokenizer's chat template, batched with left padding.
- **endpoint**: an OpenAI-compatible `POST {endpoint}/chat/completions` (vLLM, TGI, Ollama and
  llama.cpp servers speak it) over stdlib `urllib`, one request per prompt, at most
  `requests_per_s`. A 5xx answer, a timeout or a refused connection is retried `max_retries`
  times with doubling waits; a 4xx or a body that is not the protocol's JSON is an error at once
  (retrying would get the same answer).
- **cache**: `W/cache/generate.sqlite`, keyed by sha256 of the messages and `settings()`
  (model, endpoint, max_new_tokens, temperature, seed). An answer is cached only once it is
  whole, so a failure leaves no partial entry; a rerun after a failure asks only for what is
  missing.
- **cost**: prompt and completion tokens per answer (the endpoint's `usage`, or counted by the
  local tokenizer), summed in `stats`.
"""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pipelines.errors import SynthError
from pipelines.generate.config import GenerateConfig

__all__ = ["Generation", "GenerateStats", "Generator", "cache_key"]

Messages = list[dict[str, str]]
# For tokenizers without one (the same plain template the trainer falls back to).
_PLAIN_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


@dataclass
class Generation:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False


@dataclass
class GenerateStats:
    prompts: int = 0
    cache_hits: int = 0
    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = dict(vars(self))
        d["seconds"] = round(self.seconds, 3)
        d["cache_hit_rate"] = round(self.cache_hits / self.prompts, 4) if self.prompts else None
        return d


def cache_key(messages: Messages, settings: dict[str, Any]) -> str:
    payload = json.dumps({"messages": messages, "settings": settings}, sort_keys=True,
                         ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class _Cache:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(path), timeout=30)
        self.conn.execute("CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, "
                          "text TEXT NOT NULL, prompt_tokens INTEGER, completion_tokens INTEGER, "
                          "created_at REAL NOT NULL)")
        self.conn.commit()

    def get(self, key: str) -> Generation | None:
        row = self.conn.execute("SELECT text, prompt_tokens, completion_tokens FROM generations "
                                "WHERE key = ?", (key,)).fetchone()
        return Generation(row[0], row[1] or 0, row[2] or 0, cached=True) if row else None

    def put_many(self, items: list[tuple[str, Generation]]) -> None:
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO generations VALUES (?,?,?,?,?)",
                [(k, g.text, g.prompt_tokens, g.completion_tokens, time.time()) for k, g in items])

    def close(self) -> None:
        self.conn.close()


class Generator:
    """Answers chat prompts with the configured model; see the module docstring."""

    def __init__(self, cfg: GenerateConfig, cache_dir: str | Path | None = None, *,
                 sleep: Callable[[float], None] = time.sleep):
        self.cfg = cfg
        self.stats = GenerateStats()
        self._cache = _Cache(Path(cache_dir) / "generate.sqlite") if cache_dir and cfg.cache else None
        self._sleep = sleep
        self._last_request = 0.0
        self._model = None
        self._tok = None

    # -- public ----------------------------------------------------------------------------
    def generate(self, prompts: list[Messages], progress: Callable[[int], None] | None = None
                 ) -> list[Generation]:
        """One answer per prompt, in order. Raises `SynthError` when a prompt cannot be answered
        (what was answered before it stays cached)."""
        t0 = time.time()
        settings = self.cfg.settings()
        out: list[Generation | None] = [None] * len(prompts)
        try:
            for start in range(0, len(prompts), self.cfg.batch_size):
                batch = list(range(start, min(start + self.cfg.batch_size, len(prompts))))
                keys = {i: cache_key(prompts[i], settings) for i in batch}
                todo = []
                for i in batch:
                    hit = self._cache.get(keys[i]) if self._cache else None
                    if hit is not None:
                        out[i] = hit
                        self.stats.cache_hits += 1
                    else:
                        todo.append(i)
                if todo:
                    answers = (self._local([prompts[i] for i in todo]) if not self.cfg.endpoint
                               else [self._request(prompts[i]) for i in todo])
                    for i, g in zip(todo, answers):
                        out[i] = g
                        self.stats.prompt_tokens += g.prompt_tokens
                        self.stats.completion_tokens += g.completion_tokens
                    if self._cache:
                        self._cache.put_many([(keys[i], out[i]) for i in todo])
                self.stats.prompts += len(batch)
                if progress:
                    progress(len(batch))
        finally:
            self.stats.seconds += time.time() - t0
        return [g for g in out if g is not None]

    def close(self) -> None:
        if self._cache:
            self._cache.close()

    # -- endpoint --------------------------------------------------------------------------
    def _throttle(self) -> None:
        if self.cfg.requests_per_s:
            wait = self._last_request + 1.0 / self.cfg.requests_per_s - time.monotonic()
            if wait > 0:
                self._sleep(wait)
        self._last_request = time.monotonic()

    def _request(self, messages: Messages) -> Generation:
        url = self.cfg.endpoint.rstrip("/") + "/chat/completions"
        body = json.dumps({"model": self.cfg.model, "messages": messages,
                           "max_tokens": self.cfg.max_new_tokens,
                           "temperature": self.cfg.temperature, "seed": self.cfg.seed}).encode()
        headers = {"Content-Type": "application/json"}
        if self.cfg.api_key:
            headers["Authorization"] = f"Bearer {self.cfg.api_key}"
        last = ""
        for attempt in range(self.cfg.max_retries + 1):
            if attempt:
                self.stats.retries += 1
                self._sleep(self.cfg.backoff_s * 2 ** (attempt - 1))
            self._throttle()
            self.stats.requests += 1
            try:
                req = urllib.request.Request(url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.cfg.timeout_s) as resp:
                    raw = resp.read()
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:200].decode("utf-8", "replace")
                if exc.code < 500:
                    raise SynthError(f"endpoint {url}: HTTP {exc.code} {detail!r} (not retried: "
                                     f"check the model name, key and request)") from None
                last = f"HTTP {exc.code} {detail!r}"
                continue
            except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                last = (f"no answer within {self.cfg.timeout_s}s" if isinstance(
                    reason, (socket.timeout, TimeoutError)) else f"unreachable ({reason})")
                continue
            return self._parse(url, raw)
        raise SynthError(f"endpoint {url}: {last} after {self.cfg.max_retries} retr"
                         f"{'y' if self.cfg.max_retries == 1 else 'ies'}; nothing of this "
                         f"prompt was stored")

    @staticmethod
    def _parse(url: str, raw: bytes) -> Generation:
        try:
            data = json.loads(raw)
            text = data["choices"][0]["message"]["content"]
            if not isinstance(text, str):
                raise TypeError("content is not text")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise SynthError(f"endpoint {url}: the answer is not chat-completions JSON "
                             f"({type(exc).__name__}: {exc}; body starts {raw[:80]!r})") from None
        usage = data.get("usage") or {}
        return Generation(text.strip(), int(usage.get("prompt_tokens") or 0),
                          int(usage.get("completion_tokens") or 0))

    # -- local -----------------------------------------------------------------------------
    def _load(self):
        if self._model is not None:
            return
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(self.cfg.model).expanduser()
        name = str(path) if path.exists() else self.cfg.model
        try:
            self._tok = AutoTokenizer.from_pretrained(name)
            self._model = AutoModelForCausalLM.from_pretrained(name)
        except (OSError, ValueError) as exc:
            raise SynthError(f"generator model {self.cfg.model!r} cannot be loaded: "
                             f"{str(exc).splitlines()[0]} (offline: local folders and the HF "
                             f"cache only)") from None
        if self._tok.chat_template is None:
            self._tok.chat_template = _PLAIN_TEMPLATE
        if self._tok.pad_token is None:
            self._tok.pad_token = self._tok.eos_token
        self._tok.padding_side = "left"
        self._model.eval()

    def _local(self, prompts: list[Messages]) -> list[Generation]:
        import torch

        self._load()
        tok, model = self._tok, self._model
        texts = [tok.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
                 for p in prompts]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(self.cfg.seed)
        sample = self.cfg.temperature > 0
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=self.cfg.max_new_tokens, do_sample=sample,
                                 temperature=self.cfg.temperature if sample else None,
                                 pad_token_id=tok.pad_token_id)
        self.stats.requests += 1
        width = enc["input_ids"].shape[1]
        gens = []
        for row, mask in zip(out, enc["attention_mask"]):
            new = row[width:]
            new = new[new != tok.pad_token_id]
            gens.append(Generation(tok.decode(new, skip_special_tokens=True).strip(),
                                   int(mask.sum()), int(len(new))))
        return gens
