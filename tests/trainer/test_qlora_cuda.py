"""QLoRA on CUDA (NF4, double quant, bf16 compute): skipped cleanly without a GPU."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_qlora_cuda_run(toy_ws, tiny_model):
    from pipelines.export import export_dataset
    from trainer import TrainConfig, train

    exp = export_dataset(toy_ws, scheme="quality", format="chat", eval_fraction=0.25)
    res = train(toy_ws, exp.version, TrainConfig(method="qlora", base_model=tiny_model, max_steps=4,
                                                 batch_size=4, max_seq_length=128, generations=1),
                progress=False, echo=lambda m: None)
    ev = json.loads((toy_ws.path / "runs" / res["run_id"] / "eval.json").read_text())
    assert res["status"] == "done" and ev["method"] == "qlora" and ev["device"] == "cuda"
    assert ev["peak_memory_gib"] > 0
