"""The learned router: picks the right adapter on held-out prompts, falls back below the
threshold, is registered with its evaluation (per task accuracy, confusion)."""

import numpy as np
import pytest

from pipelines.errors import ConfigError, ModelError
from trainer.registry import get_model
from trainer.router import (RouterConfig, fit_router, load_router, ngram_features, prompt_text,
                            train_router)


def test_prompt_text_is_the_user_side():
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
            {"role": "assistant", "content": "A"}]
    assert prompt_text(msgs) == "S\nU"


def test_config_is_checked():
    with pytest.raises(ConfigError, match="router.threshold"):
        RouterConfig(threshold=1.5)
    with pytest.raises(ConfigError, match="router.fallback"):
        RouterConfig(fallback="guess")
    with pytest.raises(ConfigError, match="router.features"):
        RouterConfig(features="tfidf")


def _content_only_encoder(texts):
    """A stand-in embedding that sees only the content after the instruction line: prompts of two
    tasks over the same note embed identically, as a whole-prompt embedding nearly does."""
    out = []
    for t in texts:
        content = t.split("\n", 1)[-1]
        seed = sum(content.encode()) * 7919 + len(content)
        out.append(np.random.default_rng(seed).normal(size=8))
    return np.array(out, dtype=np.float32)


def _shared_content_prompts():
    notes = [f"claim {i}: a {('dog', 'cat', 'car', 'roof')[i % 4]} was damaged in "
             f"{('CA', 'TX', 'NY')[i % 3]}, amount {100 + 37 * i} dollars" for i in range(40)]
    tasks = {"summary": "Summarise the claim note in one sentence.",
             "claim-type": "Which claim type is this note?"}
    return {name: ([f"{instr}\n{n}" for n in notes[:30]], [f"{instr}\n{n}" for n in notes[30:]])
            for name, instr in tasks.items()}


def test_tasks_sharing_content_are_told_apart_by_their_instruction(tmp_path):
    prompts = _shared_content_prompts()
    _, blind = fit_router(prompts, RouterConfig(features="embedding"),
                          encode=_content_only_encoder)
    assert blind["accuracy"] == 0.5, blind   # the same vector for both tasks: one guess for both
    router, ev = fit_router(prompts, RouterConfig(features="embedding+ngrams", ngram_dims=256),
                            encode=_content_only_encoder)
    assert ev["accuracy"] == 1.0 and ev["n"] == 20, ev
    assert {t: v["n"] for t, v in ev["per_task"].items()} == {"summary": 10, "claim-type": 10}
    # saved and loaded, it keeps its features and routes a new note by the instruction
    router.save(tmp_path / "r", ev)
    again = load_router(tmp_path / "r", encode=_content_only_encoder)
    assert (again.features, again.ngram_dims) == ("embedding+ngrams", 256)
    note = "claim 99: a boat was damaged in WA, amount 5 dollars"
    routes = again.route([f"Which claim type is this note?\n{note}",
                          f"Summarise the claim note in one sentence.\n{note}"])
    assert [r.best for r in routes] == ["claim-type", "summary"], routes


def test_ngram_features_keep_the_instruction_line_apart():
    d = 4096
    x = ngram_features(["Summarise it.\nthe note", "the note\nSummarise it."], d)
    assert x.shape == (2, 2 * d)
    whole, first = x[:, :d], x[:, d:]
    assert np.allclose(np.linalg.norm(whole, axis=1), 1.0)
    assert whole[0] @ whole[1] > 0.8    # nearly the same words in the whole prompt (bigrams differ)
    assert first[0] @ first[1] == 0     # but no first-line word in common


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


def test_router_routes_only_between_servable_adapters(tmp_path, monkeypatch):
    """A dpo adapter is registered but not served: the default router leaves it out (its
    preference export has no prompts to learn from), and naming it is one clear error."""
    import trainer.registry as registry
    import trainer.router as router_mod
    from pipelines.store import Workspace
    from trainer.registry import ModelEntry

    ws = Workspace.create(tmp_path / "ws")
    entries = [ModelEntry(name=n, kind="adapter", head=h, path=str(tmp_path / n), size_bytes=1,
                          created_at="2026-12-02T00:00:00Z", scheme="s")
               for n, h in (("a-sft", "sft"), ("b-classifier", "classifier"), ("c-dpo", "dpo"))]
    monkeypatch.setattr(registry, "list_models", lambda ws, kind=None: entries)
    asked = []

    class Stop(Exception):
        pass

    def fake_prompts(ws, entry, fraction):
        asked.append(entry.name)
        return ["p"], ["q"]

    def stop(*a, **k):
        raise Stop

    monkeypatch.setattr(router_mod, "task_prompts", fake_prompts)
    monkeypatch.setattr(router_mod, "fit_router", stop)
    with pytest.raises(Stop):
        train_router(ws, RouterConfig(name="r"))
    assert asked == ["a-sft", "b-classifier"]
    with pytest.raises(ModelError, match="c-dpo cannot be served"):
        train_router(ws, RouterConfig(name="r", models=["a-sft", "c-dpo"]))


def _claim_prompts():
    """Three tasks over the same claim notes, as the sample's exports render them: a summary
    (instruction first), a claim-type classifier (the note and its summary, no instruction) and
    an amount/state extraction (instruction first)."""
    people = [("Ana Ruiz", "Peoria", "IL", "a rear-end collision", "Auto accident"),
              ("Ben Cho", "Tulsa", "OK", "a burst pipe in the kitchen", "Water loss"),
              ("Cy Dunn", "Reno", "NV", "a garage fire", "Fire damage"),
              ("Di Park", "Salem", "OR", "a stolen bicycle", "Theft"),
              ("Ed Lowe", "Boise", "ID", "a fall on icy steps", "Bodily injury"),
              ("Flo Ames", "Provo", "UT", "hail damage to the car", "Auto accident"),
              ("Gus Hale", "Akron", "OH", "a leaking water heater", "Water loss"),
              ("Hal Ivey", "Tampa", "FL", "a break-in at the shop", "Theft")]
    notes, summaries = [], []
    for i, (name, town, st, what, kind) in enumerate(people):
        amount = f"${1000 + 173 * i:,}"
        notes.append(f"On 3/{i + 2}/2026, {name} of {town}, {st} reported {what}. "
                     f"Claimed amount is {amount}. Recommend payment once documents are received.")
        summaries.append(f"{kind}, {amount}: {name} ({town}, {st}) reports {what}.")
    summary = [f"Summarise the claim note in one sentence.\n{n}" for n in notes]
    classify = [f"{n}\n\n{s}" for n, s in zip(notes, summaries)]
    extract = [f"Extract the claimed amount and the state as JSON.\n\n{n}" for n in notes]
    return notes, {"summary": summary, "claim-type": classify, "extraction": extract}


@pytest.mark.slow
def test_a_reworded_instruction_still_routes_to_its_task():
    """Trained on six notes per task under one fixed instruction each, the router routes notes
    it did not see under instructions it did not see (other words, after the content, lower
    case). The n-gram router, exact on the trained instructions, misroutes them: a reworded
    instruction's words were never features."""
    notes, prompts = _claim_prompts()
    split = {task: (ps[:6], ps[6:]) for task, ps in prompts.items()}
    reworded = [
        ("summary", f"Write a one-sentence summary of this claim note.\n{notes[6]}"),
        ("summary", f"{notes[7]}\n\ntl;dr of this claim in a single sentence, please"),
        ("summary", f"give me a short recap of what happened in this claim.\n{notes[7].lower()}"),
        ("extraction", f"Return the claim amount and the state in JSON format.\n{notes[6]}"),
        ("extraction", f"{notes[7]}\n\nWhat amount is claimed and in which state? Reply as JSON."),
        ("claim-type", prompts["claim-type"][7].lower()),
    ]
    texts, truth = [t for _, t in reworded], [task for task, _ in reworded]
    router, ev = fit_router(split, RouterConfig(features="lines"))
    assert ev["accuracy"] == 1.0, ev                 # the held-out notes, trained instructions
    assert [r.best for r in router.route(texts)] == truth
    ngrams, ev = fit_router(split, RouterConfig(features="embedding+ngrams"))
    assert ev["accuracy"] == 1.0, ev
    assert [r.best for r in ngrams.route(texts)] != truth
