"""Fixtures for trainer tests: a tiny Llama built once per session and small exported workspaces."""

from __future__ import annotations

import sys
import types

import pytest

from pipelines.store import NewRecord, Workspace, upsert_record, utcnow
from pipelines.store.exports import put_label

CURATION = """
schema: instruction
schemes:
  quality: {classes: [ACCEPT, REJECT]}
  topic: {classes: [water, fire]}
export:
  system_prompt: "Summarise the claim."
"""

WATER = ["a pipe burst and water flooded the kitchen floor", "the roof leaked rain into the bedroom",
         "the washing machine hose split and soaked the carpet", "storm water came under the door",
         "a frozen pipe cracked and the basement flooded", "the dishwasher leaked under the cabinets"]
FIRE = ["a kitchen fire spread smoke through the house", "lightning set the garage on fire",
        "an electrical fire burned the living room wall", "the barbecue flames scorched the deck",
        "a candle fire blackened the curtains with soot", "the chimney fire damaged the roof beams"]


def toy_rows(n: int = 24):
    rows = []
    for i in range(n):
        topic = "water" if i % 2 == 0 else "fire"
        base = (WATER if topic == "water" else FIRE)[(i // 2) % 6]
        rows.append((f"r{i:03d}", topic, f"claim {i}: {base}", f"{topic} damage claim number {i}"))
    return rows


def make_toy_ws(root, n: int = 24) -> Workspace:
    ws = Workspace.create(root)
    ws.config_path.write_text(CURATION, encoding="utf-8")
    with ws.transaction() as conn:
        for rid, topic, note, summary in toy_rows(n):
            upsert_record(conn, NewRecord(id=rid, kind="instruction", text=f"{note}\n{summary}",
                                          prompt=note, response=summary, file="toy", row=int(rid[1:])),
                          utcnow())
            put_label(conn, rid, "quality", "ACCEPT", 0.99)
            put_label(conn, rid, "topic", topic, 0.99)
    return ws


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    from trainer.tiny import build_tiny_llama

    texts = [t for _, _, note, summary in toy_rows(48) for t in (note, summary)] * 3
    return str(build_tiny_llama(tmp_path_factory.mktemp("tiny") / "llama", texts, vocab_size=400))


@pytest.fixture
def toy_ws(tmp_path):
    return make_toy_ws(tmp_path / "ws")


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    """One intra-op thread: on a shared 2-core runner, 2 threads measured ~9x slower per step
    (4.6 s vs 0.54 s for a MiniLM batch) once other processes compete for the cores."""
    import os

    import torch

    torch.set_num_threads(int(os.environ.get("CURATE_TEST_TORCH_THREADS", "1")))


@pytest.fixture
def fake_liger(monkeypatch):
    """`fake_liger(apply)` installs a stand-in `liger_kernel.transformers.monkey_patch` whose
    `apply_liger_kernel_to_llama` is `apply` (liger-kernel needs triton and CUDA)."""
    def install(apply):
        fake = types.ModuleType("liger_kernel.transformers.monkey_patch")
        fake.apply_liger_kernel_to_llama = apply
        monkeypatch.setitem(sys.modules, "liger_kernel", types.ModuleType("liger_kernel"))
        monkeypatch.setitem(sys.modules, "liger_kernel.transformers",
                            types.ModuleType("liger_kernel.transformers"))
        monkeypatch.setitem(sys.modules, "liger_kernel.transformers.monkey_patch", fake)
        sys.modules["liger_kernel.transformers"].monkey_patch = fake

    return install

