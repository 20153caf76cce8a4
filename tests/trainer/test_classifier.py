"""Classification heads: the probe (logistic regression on cached embeddings), the LoRA
classifier on the packaged MiniLM, the defaults chosen from the data, and every-row evaluation."""

from __future__ import annotations

import json

import pytest

from pipelines.errors import TrainError
from pipelines.export import export_dataset
from pipelines.store import NewRecord, Workspace, upsert_record, utcnow
from pipelines.store.exports import put_label
from trainer import TrainConfig, list_train_runs, train
from trainer.classifier import choose_defaults, class_weights
from trainer.evaluate import format_eval_table, never_predicted
from trainer.lengths import default_max_seq_length

from tests.trainer.conftest import make_toy_ws

THREE = """
schema: text
schemes:
  peril: {classes: [water, fire, wind]}
"""
TEXTS = {
    "water": ["a pipe burst and water flooded the kitchen", "the roof leaked rain into the bedroom",
              "the washing machine hose split and soaked the carpet", "storm water came under the door",
              "a frozen pipe cracked and the basement flooded", "the dishwasher leaked under the sink",
              "the bathtub overflowed through the ceiling", "the water heater tank burst in the garage"],
    "fire": ["a kitchen fire spread smoke through the house", "lightning set the garage on fire",
             "an electrical fire burned the living room wall", "barbecue flames scorched the deck",
             "a candle fire blackened the curtains", "the chimney fire damaged the roof beams",
             "the toaster caught fire and burned the counter", "sparks from the fireplace burned the rug"],
    "wind": ["a gale tore shingles off the roof", "strong wind blew the fence down",
             "a storm gust knocked a tree onto the car", "the hurricane wind shattered the windows",
             "a tornado ripped the shed apart", "wind blew the satellite dish off the chimney",
             "gusts lifted the trampoline over the fence", "the windstorm snapped the carport posts"],
}


def three_class_ws(root) -> Workspace:
    ws = Workspace.create(root)
    ws.config_path.write_text(THREE, encoding="utf-8")
    with ws.transaction() as conn:
        for label, texts in TEXTS.items():
            for i, text in enumerate(texts):
                rid = f"{label}{i}"
                upsert_record(conn, NewRecord(id=rid, kind="text", text=f"claim {rid}: {text}",
                                              file="inline", row=len(rid)), utcnow())
                put_label(conn, rid, "peril", label, 0.99)
    return ws


@pytest.fixture
def three_ws(tmp_path):
    ws = three_class_ws(tmp_path / "ws")
    exp = export_dataset(ws, scheme="peril", format="classification", eval_fraction=0.4)
    return ws, exp


def test_probe_head_trains_predicts_every_class_and_reports_every_eval_row(three_ws):
    ws, exp = three_ws
    lines: list[str] = []
    res = train(ws, exp.version, TrainConfig(head="probe"), progress=False, echo=lines.append)
    assert res["status"] == "done" and res["steps"] == 1
    ev = json.loads((ws.path / "runs" / res["run_id"] / "eval.json").read_text())
    tuned = ev["tuned"]
    assert ev["classes"] == ["water", "fire", "wind"] and ev["head"] == "probe"
    assert ev["n_eval"] == ev["n_eval_total"] == exp.eval and ev["on"] == "eval"
    assert tuned["n"] == exp.eval and tuned["accuracy"] >= 0.8          # chance is 1/3
    assert tuned["never_predicted"] == []
    assert set(tuned["per_class"]) == {"water", "fire", "wind"}
    assert sum(m["support"] for m in tuned["per_class"].values()) == exp.eval
    assert len(tuned["confusion"]) == 3 and sum(map(sum, tuned["confusion"])) == exp.eval
    assert ev["base"]["accuracy"] == ev["base"]["majority_accuracy"]    # the probe's base
    assert ev["defaults"]["probe_c"]["value"] > 0
    assert any("confusion" in line for line in lines)                   # printed after the run
    from trainer.probe import load_probe

    probe = load_probe(res["adapter"])
    assert probe.predict_texts(["the basement flooded after a pipe burst"]) == ["water"]
    assert [r["head"] for r in list_train_runs(ws)] == ["probe"]
    # A second run reads every vector from the workspace's embedding cache.
    again = train(ws, exp.version, TrainConfig(head="probe", probe_c=2.0), progress=False,
                  echo=lambda m: None)
    ev2 = json.loads((ws.path / "runs" / again["run_id"] / "eval.json").read_text())
    assert ev2["embeddings"]["embedded"] == 0 and ev2["embeddings"]["cached"] == 24
    assert ev2["defaults"]["probe_c"] == {"value": 2.0, "why": "explicit"}
    assert ev["defaults"]["probe_features"]["value"] in ("embedding+words", "raw embedding",
                                                         "embedding")
    alone = train(ws, exp.version, TrainConfig(head="probe", probe_words=False), progress=False,
                  echo=lambda m: None)
    ev3 = json.loads((ws.path / "runs" / alone["run_id"] / "eval.json").read_text())
    assert ev3["defaults"]["probe_features"] == {"value": "embedding",
                                                 "why": "probe_words=false"}
    assert load_probe(alone["adapter"]).coef_words is None


def test_eval_cap_is_stated(three_ws):
    ws, exp = three_ws
    res = train(ws, exp.version, TrainConfig(head="probe", eval_max_examples=3), progress=False,
                echo=lambda m: None)
    ev = json.loads((ws.path / "runs" / res["run_id"] / "eval.json").read_text())
    assert ev["n_eval"] == 3 and ev["n_eval_total"] == exp.eval
    assert ev["on"] == f"eval: the first 3 of {exp.eval} rows (eval_max_examples)"
    assert f"3 of {exp.eval} examples" in format_eval_table(ev)


def test_defaults_from_data_by_size():
    cfg = TrainConfig(head="classifier")
    small, chosen = choose_defaults(cfg, ["a", "b"] * 12, ["a", "b"], [10] * 24, 512)
    assert (small.learning_rate, small.batch_size, small.max_steps) == (2e-3, 16, 60)
    assert chosen["max_steps"]["value"] == 60 and chosen["class_weights"]["value"] is None
    mid, _ = choose_defaults(cfg, ["a", "b"] * 500, ["a", "b"], [10] * 1000, 512)
    assert (mid.learning_rate, mid.max_steps) == (1e-3, 125)      # 2 epochs of 1000 at 16
    big, _ = choose_defaults(cfg, ["a", "b"] * 3200, ["a", "b"], [10] * 6400, 512)
    assert (big.learning_rate, big.max_steps) == (1e-3, 400)      # capped
    assert TrainConfig.from_dict(big.to_dict()) == big             # a valid, saveable config


def test_explicit_values_win():
    cfg = TrainConfig(head="classifier", learning_rate=5e-4, batch_size=4, epochs=3.0,
                      max_seq_length=32, class_weight="none")
    out, chosen = choose_defaults(cfg, ["a"] * 90 + ["b"] * 10, ["a", "b"], [100] * 100, 512)
    assert (out.learning_rate, out.batch_size, out.epochs, out.max_steps, out.max_seq_length) == \
        (5e-4, 4, 3.0, -1, 32)
    assert set(chosen) == {"class_weights"} and chosen["class_weights"]["value"] is None
    steps, chosen = choose_defaults(TrainConfig(head="classifier", max_steps=10), ["a"] * 5,
                                    ["a"], [5] * 5, 512)
    assert steps.max_steps == 10 and "max_steps" not in chosen


def test_small_set_warning_only_below_the_measured_size():
    from trainer.classifier import SMALL_SET, small_set_warning

    assert "491 rows" in small_set_warning(SMALL_SET - 1)
    assert small_set_warning(SMALL_SET) is None


def test_class_weights_for_imbalance():
    labels = ["a"] * 30 + ["b"] * 10
    assert class_weights(labels, ["a", "b"], "auto") == [round(40 / 60, 4), 2.0]
    assert class_weights(["a", "b"] * 10, ["a", "b"], "auto") is None    # balanced: plain loss
    assert class_weights(["a", "b"] * 10, ["a", "b"], "balanced") == [1.0, 1.0]
    assert class_weights(labels, ["a", "b"], "none") is None
    assert class_weights(labels, ["a", "b", "c"], "balanced")[2] == 1.0  # absent class


def test_max_length_from_token_lengths_is_the_sft_rule():
    # p95 of 1..200 is 190 -> 192 (a multiple of 64), as trainer.lengths does for the sft head
    lengths = list(range(1, 201))
    cfg, chosen = choose_defaults(TrainConfig(head="classifier"), ["a"] * 200, ["a"], lengths, 512)
    assert cfg.max_seq_length == default_max_seq_length(lengths, 512) == 192
    assert "8 of 200 rows truncated" in chosen["max_seq_length"]["why"]
    capped, chosen = choose_defaults(TrainConfig(head="classifier"), ["a"] * 200, ["a"], lengths, 128)
    assert capped.max_seq_length == 128 and "capped at 128" in chosen["max_seq_length"]["why"]
    short, _ = choose_defaults(TrainConfig(head="classifier"), ["a"] * 3, ["a"], [3, 4, 5], 512)
    assert short.max_seq_length == 64                                    # never below 64


def test_never_predicted_names_the_missing_classes():
    assert never_predicted(["a", "b", "b", "b"], ["a", "b", "c"]) == ["c"]
    assert never_predicted(["a", "b", "c"], ["a", "b", "c"]) == []


def test_sft_keeps_its_defaults_when_unset():
    from trainer.config import SFT_DEFAULTS

    cfg = TrainConfig().with_defaults(**SFT_DEFAULTS)
    assert (cfg.learning_rate, cfg.epochs, cfg.batch_size, cfg.eval_max_examples) == \
        (2e-4, 1.0, 8, 200)
    assert cfg.max_seq_length is None           # from the data (trainer.sft_data), not fixed
    assert TrainConfig(learning_rate=1e-3).with_defaults(**SFT_DEFAULTS).learning_rate == 1e-3


def test_classification_metrics_keep_the_eval_json_keys_and_add_per_class():
    from trainer.evaluate import classification_metrics

    # fire: tp 1, predicted 1, true 2 -> P 1, R 0.5, F1 2/3; water: tp 1, predicted 2, true 1
    m = classification_metrics(["fire", "fire", "water"], ["fire", "water", "water"],
                               ["water", "fire"])
    assert (m["n"], m["accuracy"], m["macro_f1"]) == (3, 0.6667, 0.6667)
    assert m["per_class"]["fire"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert m["confusion"] == [[1, 0], [1, 1]]   # rows true water, fire; columns predicted
    empty = classification_metrics([], [], ["water", "fire"])
    assert (empty["n"], empty["accuracy"], empty["macro_f1"]) == (0, None, None)


@pytest.mark.slow
def test_classifier_learns_separable_task_and_reports_before_after(tmp_path):
    toy_ws = make_toy_ws(tmp_path / "ws", n=40)
    exp = export_dataset(toy_ws, scheme="topic", format="classification", eval_fraction=0.4)
    assert exp.train >= 16 and exp.eval >= 8
    cfg = TrainConfig(head="classifier", max_steps=24, batch_size=8, lora_r=8, save_steps=100,
                      logging_steps=4, class_weight="balanced")
    said: list[str] = []
    res = train(toy_ws, exp.version, cfg, progress=False, echo=said.append)
    ev = json.loads((toy_ws.path / "runs" / res["run_id"] / "eval.json").read_text())
    # a small set is told, before the run starts, that the probe head did better on such sets
    warned = [i for i, m in enumerate(said) if m.startswith("warning:") and "--head probe" in m]
    started = [i for i, m in enumerate(said) if m.startswith("default: ")]
    assert warned and started and warned[0] < started[0] and ev["warning"]
    assert ev["classes"] == ["water", "fire"]
    assert ev["tuned"]["accuracy"] >= 0.8            # chance is 0.5
    assert ev["tuned"]["accuracy"] >= ev["base"]["accuracy"]
    assert ev["base"]["majority_accuracy"] is not None and ev["tuned"]["n"] == exp.eval
    assert list(ev["tuned"]["per_class"]) == ev["classes"]
    assert sum(map(sum, ev["tuned"]["confusion"])) == exp.eval
    assert ev["defaults"]["learning_rate"]["value"] == 2e-3          # chosen: < 1000 rows
    assert "max_steps" not in ev["defaults"] and ev["defaults"]["max_seq_length"]["value"] == 64
    assert ev["defaults"]["class_weights"]["value"] is not None
    assert res["status"] == "done" and res["steps"] == 24
    assert (toy_ws.path / "runs" / res["run_id"] / "adapter" / "adapter_config.json").exists()


def test_probe_folds_the_standardisation_into_its_weights():
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from trainer.probe import fit_probe

    rng = np.random.default_rng(0)
    # three classes, unit-scale features with tiny spread and an offset (like sentence vectors)
    X = 0.5 + 0.01 * rng.normal(size=(90, 8))
    y = ["a"] * 30 + ["b"] * 30 + ["c"] * 30
    X[:30, 0] += 0.02
    X[30:60, 1] += 0.02
    probe = fit_probe(X, y, ["a", "b", "c"], c=0.05, class_weight="none")
    Z = (X - X.mean(0)) / X.std(0)
    ref = LogisticRegression(C=0.05, max_iter=300).fit(Z, [0] * 30 + [1] * 30 + [2] * 30)
    assert np.allclose(probe.scores(X), ref.decision_function(Z), atol=1e-3)
    assert probe.predict(X) == [["a", "b", "c"][j] for j in ref.predict(Z)]
    chosen = fit_probe(X, y, ["a", "b", "c"], class_weight=None)    # CV: C and the weighting
    assert chosen.c in (0.001, 0.003, 0.01, 0.03) and chosen.class_weight in ("none", "sqrt",
                                                                              "balanced")


def test_probe_cv_picks_by_accuracy_and_macro_f1_and_weights_like_sklearn(tmp_path):
    """Sqrt weights sit between none and balanced; balanced equals sklearn's own; the save
    keeps the weighting, and a probe saved before it (`balanced: false`) still loads."""
    import json as _json

    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from trainer.probe import fit_probe, load_probe

    rng = np.random.default_rng(1)
    # imbalanced: 60 / 20 rows, overlapping, so the weighting changes the decision boundary
    X = np.vstack([rng.normal(0.0, 1.0, (60, 4)), rng.normal(0.8, 1.0, (20, 4))])
    y = ["a"] * 60 + ["b"] * 20
    Z = (X - X.mean(0)) / X.std(0)
    ref = LogisticRegression(C=0.1, class_weight="balanced", max_iter=300).fit(Z, [0] * 60 + [1] * 20)
    bal = fit_probe(X, y, ["a", "b"], c=0.1, class_weight="balanced")
    assert np.allclose(bal.scores(X)[:, 1] - bal.scores(X)[:, 0], ref.decision_function(Z),
                       atol=1e-3)
    share_b = {m: fit_probe(X, y, ["a", "b"], c=0.1, class_weight=m).predict(X).count("b")
               for m in ("none", "sqrt", "balanced")}
    assert share_b["none"] < share_b["sqrt"] < share_b["balanced"]
    cv = fit_probe(X, y, ["a", "b"], class_weight=None)
    assert cv.class_weight in ("none", "sqrt", "balanced")
    cv.save(tmp_path / "p")
    assert load_probe(tmp_path / "p").class_weight == cv.class_weight
    meta = _json.loads((tmp_path / "p" / "probe.json").read_text())
    meta.pop("class_weight")
    meta["balanced"] = False
    (tmp_path / "p" / "probe.json").write_text(_json.dumps(meta))
    assert load_probe(tmp_path / "p").class_weight == "none"
    with pytest.raises(TrainError, match="class_weight"):
        fit_probe(X, y, ["a", "b"], class_weight="inverse")



def _word_only_set(n_per_class: int, seed: int):
    """Vectors that are pure noise (the embedding says nothing) and texts in which one word,
    'zebra' or 'walrus', names the class among shared filler words."""
    import numpy as np

    rng = np.random.default_rng(seed)
    filler = ["the", "report", "came", "in", "late", "again", "from", "office", "today", "note"]
    texts, labels = [], []
    for i in range(2 * n_per_class):
        label = "a" if i % 2 == 0 else "b"
        words = list(rng.choice(filler, size=6)) + ["zebra" if label == "a" else "walrus"]
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    X = rng.normal(size=(len(texts), 16))
    return X / np.linalg.norm(X, axis=1, keepdims=True), texts, labels


def test_probe_words_channel_finds_a_class_word_the_embedding_cannot(tmp_path):
    """Only a word separates the classes: the default probe (embedding + words) gets the held-out
    rows right, the embedding alone is at chance; the saved probe predicts the same after a
    load and asks for the texts."""
    import numpy as np

    from trainer.probe import fit_probe, load_probe

    X, texts, y = _word_only_set(40, seed=0)
    Xt, texts_t, yt = _word_only_set(20, seed=1)
    words = fit_probe(X, y, ["a", "b"], texts=texts, class_weight=None)
    alone = fit_probe(X, y, ["a", "b"], class_weight=None)
    acc = lambda pred: float(np.mean(np.array(pred) == np.array(yt)))   # noqa: E731
    assert words.features == "embedding+words" and words.words_share > 0
    assert "zebra" in words.words and "walrus" in words.words
    assert acc(words.predict(Xt, texts_t)) >= 0.95
    assert acc(alone.predict(Xt)) <= 0.7                   # noise vectors: about 0.5
    words.save(tmp_path / "p")
    back = load_probe(tmp_path / "p")
    assert (back.words, back.features, back.c_words) == (words.words, words.features,
                                                         words.c_words)
    assert np.allclose(back.scores(Xt, texts_t), words.scores(Xt, texts_t), atol=1e-5)
    with pytest.raises(TrainError, match="texts"):
        back.predict(Xt)


def test_probe_words_channel_reads_chinese_without_word_spaces():
    """The same word-only set written in Chinese, no spaces anywhere: the class word (火灾 fire
    vs 被盗 theft) is found because each Han character is a token of its own."""
    import numpy as np

    from trainer.probe import fit_probe

    rng = np.random.default_rng(4)
    filler = list("报告今天又从办公室来了晚")

    def make(n):
        texts, labels = [], []
        for i in range(2 * n):
            label = "a" if i % 2 == 0 else "b"
            chars = list(rng.choice(filler, size=8))
            at = int(rng.integers(0, 8))
            texts.append("".join(chars[:at]) + ("火灾" if label == "a" else "被盗")
                         + "".join(chars[at:]) + "。")
            labels.append(label)
        X = rng.normal(size=(len(texts), 16))
        return X / np.linalg.norm(X, axis=1, keepdims=True), texts, labels

    (X, texts, y), (Xt, texts_t, yt) = make(40), make(20)
    model = fit_probe(X, y, ["a", "b"], texts=texts, class_weight=None)
    assert model.words_share > 0 and {"火", "灾", "被", "盗"} <= set(model.words)
    assert float(np.mean(np.array(model.predict(Xt, texts_t)) == np.array(yt))) >= 0.95


def test_probe_falls_back_to_the_embedding_when_the_words_are_noise():
    """The embedding separates the classes and the words are random: the CV keeps the
    embedding (the peer's raw configuration or the standardised one, no words block)."""
    import numpy as np

    from trainer.probe import fit_probe

    rng = np.random.default_rng(2)
    vocab = [f"w{i}" for i in range(30)]
    y = ["a", "b"] * 45
    X = rng.normal(size=(90, 8))
    X[:, 0] += np.where(np.array(y) == "a", 3.0, -3.0)
    texts = [" ".join(rng.choice(vocab, size=8)) for _ in y]
    model = fit_probe(X, y, ["a", "b"], texts=texts, class_weight=None)
    assert model.features in ("raw embedding", "embedding") and model.coef_words is None
    assert model.predict(X) == y


def test_probe_cv_score_matches_the_shared_metrics():
    import numpy as np

    from pipelines.metrics import accuracy, macro_f1
    from trainer.probe import _cv_score

    rng = np.random.default_rng(3)
    truth, pred = rng.integers(0, 4, 200), rng.integers(0, 3, 200)   # class 3 never predicted
    want = (accuracy(truth.tolist(), pred.tolist())
            + macro_f1(truth.tolist(), pred.tolist(), [0, 1, 2, 3])) / 2
    assert abs(_cv_score(truth, pred, 4) - want) < 1e-12


@pytest.mark.slow
def test_an_all_gold_set_exports_and_trains(tmp_path):
    """Every record gold, no label model: a gold holdout goes to eval, the rest trains."""
    from pipelines.store import NewRecord, Workspace, upsert_record, utcnow
    from tests.trainer.conftest import CURATION, toy_rows

    ws = Workspace.create(tmp_path / "ws")
    ws.config_path.write_text(CURATION, encoding="utf-8")
    with ws.transaction() as conn:
        for rid, topic, note, summary in toy_rows(30):
            upsert_record(conn, NewRecord(id=rid, kind="instruction", text=f"{note}\n{summary}",
                                          prompt=note, response=summary, gold={"topic": topic},
                                          file="gold", row=int(rid[1:])), utcnow())
    exp = export_dataset(ws, scheme="topic", format="classification")
    assert exp.gold["trains"] and exp.train == exp.gold["train"] > 0 and exp.eval == exp.gold["eval"] > 0
    cfg = TrainConfig(head="classifier", max_steps=4, batch_size=8, learning_rate=2e-3,
                      lora_r=8, max_seq_length=64, save_steps=100, logging_steps=2)
    res = train(ws, exp.version, cfg, progress=False, echo=lambda m: None)
    ev = json.loads((ws.path / "runs" / res["run_id"] / "eval.json").read_text())
    assert res["status"] == "done" and ev["tuned"]["n"] == exp.eval
