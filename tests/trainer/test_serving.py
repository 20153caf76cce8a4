"""Several adapters on one base: each base loads once, the adapters answer differently, a wrong
base is refused at load, a prompt over the window is refused before generating."""

import pytest

from pipelines.errors import ModelError
from trainer.registry import get_model
from trainer.serving import AdapterPool, PromptTooLong

pytestmark = pytest.mark.slow

ASK = [{"role": "user", "content": "Summarise this claim in one sentence: a burst pipe"}]


@pytest.fixture(scope="module")
def pool(micro_ws):
    return AdapterPool.from_registry(micro_ws)


def test_two_adapters_on_one_base_answer_differently(pool):
    assert set(pool.names) == {"summary-sft-v0001", "extract-sft-v0002", "topic-classifier-v0003"}
    assert not pool.refused
    assert pool.lm is not None and len(pool.encoders) == 1   # one LM, one encoder
    answers = {n: "".join(pool.generate(n, ASK, max_tokens=8))
               for n in ("summary-sft-v0001", "extract-sft-v0002", None)}
    assert len(set(answers.values())) == 3, answers
    # switching back gives the same answer again (the adapter really is per request)
    assert "".join(pool.generate("summary-sft-v0001", ASK, max_tokens=8)) == answers["summary-sft-v0001"]


def test_classifier_beside_the_generators(pool):
    out = pool.classify("topic-classifier-v0003", "a kitchen fire")
    assert out["label"] in ("water", "fire") and abs(sum(out["scores"].values()) - 1) < 1e-3
    with pytest.raises(ModelError, match="is a generator"):
        pool.classify("summary-sft-v0001", "x")
    with pytest.raises(ModelError, match="is a classifier"):
        pool.generate("topic-classifier-v0003", ASK)


def test_a_prompt_over_the_window_is_refused_before_generating(pool):
    long = [{"role": "user", "content": "pipe " * 3000}]
    with pytest.raises(PromptTooLong, match="window is 1024"):
        pool.generate("summary-sft-v0001", long)


def test_an_adapter_on_another_base_is_refused_at_load(pool, micro_ws, tmp_path):
    import dataclasses

    entry = dataclasses.replace(get_model(micro_ws, "extract-sft-v0002"), name="other",
                                base_model=str(tmp_path / "another-llama"))
    with pytest.raises(ModelError, match="trained on .*another-llama.*refused"):
        pool.load(entry)
    with pytest.raises(ModelError, match="no model 'nope'"):
        pool.generate("nope", ASK)
