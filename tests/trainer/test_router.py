"""The learned router: picks the right adapter on held-out prompts, falls back below the
threshold, is registered with its evaluation (per task accuracy, confusion)."""

import numpy as np
import pytest

from pipelines.errors import ConfigError, ModelError
from trainer.registry import get_model
from trainer.router import RouterConfig, load_router, prompt_text, train_router


def test_prompt_text_is_the_user_side():
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
            {"role": "assistant", "content": "A"}]
    assert prompt_text(msgs) == "S\nU"


def test_config_is_checked():
    with pytest.raises(ConfigError, match="router.threshold"):
        RouterConfig(threshold=1.5)
    with pytest.raises(ConfigError, match="router.fallback"):
        RouterConfig(fallback="guess")


@pytest.mark.slow
def test_router_picks_the_right_adapter_on_held_out_prompts(micro_ws):
    names = ["summary-sft-v0001", "extract-sft-v0002"]
    router, entry = train_router(micro_ws, RouterConfig(name="r2", models=names, threshold=0.6))
    ev = entry.evaluation
    assert ev["n"] >= 4 and ev["accuracy"] == 1.0, ev
    assert set(ev["per_task"]) == set(names) and all(t["n"] > 0 for t in ev["per_task"].values())
    assert np.trace(np.array(ev["confusion"])) == ev["n"]
    assert get_model(micro_ws, "r2").kind == "router"
    again = load_router(entry.path)
    route = again.route(["Return JSON with amount and state. Claim text: a lost dog, amount 3 "
                         "dollars, state CA."])[0]
    assert route.model == "extract-sft-v0002" and route.confidence >= 0.6
    # an impossible bar: every route falls back, and says which model it would have picked
    again.threshold = 0.9999999
    low = again.route(["hello there"])[0]
    assert low.model is None and low.fallback == "base" and low.best in names


@pytest.mark.slow
def test_router_needs_two_adapters(micro_ws):
    with pytest.raises(ModelError, match="no model 'missing'"):
        train_router(micro_ws, RouterConfig(models=["summary-sft-v0001", "missing"]))
