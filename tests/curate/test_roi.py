"""Curation ROI: arm construction, leakage checks, the runs table, and a quick run.

The scores themselves (accuracy, macro-F1, the interval over seeds) are `pipelines.metrics`,
tested in tests/pipelines/test_metrics.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from curate.roi import (
    Arm, LeakageError, Pool, PoolRecord, RoiConfig, build_arms, cap_arm, check_leakage,
    compare_runs, near_gold_ids, review_order,
)
from curate.roi.prepare import arms_from_pool, load_truth
from pipelines.errors import ConfigError
from pipelines.metrics import accuracy

CLASSES = ["fire", "water", "theft"]


def rec(i, **kw) -> PoolRecord:
    base = dict(id=f"r{i}", text=f"claim note number {i}", raw_label="fire", majority="fire",
                majority_conf=0.6, label_model="fire", label_model_conf=0.5 + i / 100,
                truth="water")
    base.update(kw)
    return PoolRecord(**base)


@pytest.fixture
def pool() -> Pool:
    records = [
        rec(0, gold="fire", truth="fire"),                     # gold: evaluation only
        rec(1, gold="water", truth="water"),                   # gold
        rec(2, n_sources=3),                                   # raw keeps 3 copies
        rec(3, excluded=True),                                 # dedup drops it (curated only)
        rec(4, label_model=None, label_model_conf=0.0, majority=None),   # every LF abstained
        rec(5, raw_label=None),                                # no raw label
        rec(6, label_model_conf=0.30),                         # least confident labelled
        rec(7, truth=None, label_model_conf=0.10),             # reviewer cannot answer
        rec(8),                                                # near-duplicate of gold (below)
        rec(9, raw_label="theft", majority="water", label_model="water"),
    ]
    return Pool(scheme="kind", classes=CLASSES, records=records, near_gold={"r8"})


# -- arms ------------------------------------------------------------------------------------
def test_arms_never_train_on_gold_or_near_gold(pool):
    arms = build_arms(pool, (0, 2))
    assert [a.name for a in arms] == ["raw", "majority", "label_model", "curated_0", "curated_2"]
    for a in arms:
        assert not {"r0", "r1", "r8"} & set(a.ids), a.name
        assert len(a.ids) == len(a.labels)


def test_raw_keeps_duplicates_and_raw_labels(pool):
    raw = build_arms(pool, (0,))[0]
    assert raw.ids.count("r2") == 3
    assert "r5" not in raw.ids                      # no raw label
    assert "r3" in raw.ids                          # dedup does not touch raw
    assert raw.labels[raw.ids.index("r9")] == "theft"
    assert raw.n_train == 3 + 5                     # r2 x3, r3, r4, r6, r7, r9


def test_weak_arms_drop_abstained(pool):
    _, mv, lm, *_ = build_arms(pool, (0,))
    assert "r4" not in mv.ids and "r4" not in lm.ids
    assert lm.labels[lm.ids.index("r9")] == "water"
    assert any("abstained" in n for n in lm.notes)


def test_curated_drops_dedup_excluded_and_reviews_least_confident(pool):
    arms = {a.name: a for a in build_arms(pool, (0, 2, 50))}
    c0, c2, c50 = arms["curated_0"], arms["curated_2"], arms["curated_50"]
    assert "r3" not in c0.ids and "r3" in arms["label_model"].ids
    assert c0.reviewed == 0 and "r4" not in c0.ids            # abstained, unreviewed: left out
    # Review order: abstained r4 (conf 0), then r7 (0.10, no truth: skipped), then r6 (0.30).
    assert c2.reviewed == 2
    assert c2.labels[c2.ids.index("r4")] == "water"           # revealed truth
    assert c2.labels[c2.ids.index("r6")] == "water"
    assert c2.labels[c2.ids.index("r9")] == "water"           # not reviewed: label model
    assert c2.labels[c2.ids.index("r2")] == "fire"
    assert c50.reviewed == 5 and any("only 5 of 50" in n for n in c50.notes)


def test_review_order_is_least_confident_first():
    rs = [rec(1, label_model_conf=0.9), rec(2, label_model=None, label_model_conf=0.7),
          rec(3, label_model_conf=0.2)]
    assert [r.id for r in review_order(rs)] == ["r2", "r3", "r1"]


def test_cap_arm_is_seeded_and_bounded():
    arm = Arm("raw", [f"r{i}" for i in range(100)], ["fire"] * 100)
    a, b = cap_arm(arm, 10, seed=1), cap_arm(arm, 10, seed=1)
    assert a.ids == b.ids and a.n_train == 10 and cap_arm(arm, 200) is arm


def test_arms_from_pool_checks_leakage_and_reports_truth_agreement(pool):
    armset = arms_from_pool(pool, RoiConfig(review_budgets=(0, 2)))
    assert armset.eval_ids == ["r0", "r1"] and armset.eval_labels == ["fire", "water"]
    assert armset.leakage["ok"] and all(
        v == {"gold_ids": 0, "near_gold_ids": 0, "gold_texts": 0}
        for v in armset.leakage["arms"].values())
    assert armset.pool_stats["trainable"] == 7
    assert armset.pool_stats["raw_label_accuracy_vs_truth"] == pytest.approx(0 / 6)
    again = type(armset).from_dict(json.loads(json.dumps(armset.to_dict())))
    assert again.arm("curated_2").labels == armset.arm("curated_2").labels


# -- leakage ---------------------------------------------------------------------------------
def test_near_gold_by_cluster_text_and_cosine():
    v = lambda *xs: np.array(xs, dtype=np.float32) / np.linalg.norm(xs)  # noqa: E731
    vectors = {"g": v(1, 0, 0), "close": v(1, 0.1, 0), "far": v(0, 1, 0), "mid": v(1, 1, 0)}
    texts = {"g": "Fire  in the Garage.", "copy": "fire in the garage.", "close": "a",
             "far": "b", "mid": "c", "mate": "d"}
    why = near_gold_ids(["close", "far", "mid", "copy", "mate"], ["g"], vectors=vectors,
                        threshold=0.95, clusters={"g": "c1", "mate": "c1", "far": "c2"},
                        texts=texts)
    assert set(why) == {"close", "copy", "mate"}
    assert why["mate"].startswith("dedup cluster") and why["copy"].startswith("same text")
    assert why["close"].startswith("cosine")
    # A lower threshold reaches the 45-degree neighbour too.
    assert "mid" in near_gold_ids(["mid"], ["g"], vectors=vectors, threshold=0.7)


@pytest.mark.parametrize("arm_ids, kind", [
    (["a", "g1"], "gold ids"), (["a", "n1"], "near gold ids"), (["a", "twin"], "gold texts")])
def test_check_leakage_raises_on_each_kind(arm_ids, kind):
    texts = {"a": "x", "g1": "gold text", "n1": "y", "twin": "GOLD  text"}
    with pytest.raises(LeakageError, match=kind):
        check_leakage([Arm("raw", arm_ids, ["fire"] * len(arm_ids))], ["g1"], ["n1"], texts)


def test_check_leakage_passes_clean_arms():
    report = check_leakage([Arm("raw", ["a"], ["fire"])], ["g1"], ["n1"],
                           {"a": "x", "g1": "gold"})
    assert report["ok"] and report["arms"]["raw"]["gold_ids"] == 0


def test_config_validation():
    with pytest.raises(ConfigError, match="roi.seeds"):
        RoiConfig(seeds=0)
    with pytest.raises(ConfigError, match="review_budgets"):
        RoiConfig(review_budgets=(0, 0))
    with pytest.raises(ConfigError, match="near_dup_threshold"):
        RoiConfig(near_dup_threshold=1.5)
    assert RoiConfig().arm_names() == ["raw", "majority", "label_model", "curated_0",
                                       "curated_50", "curated_200", "curated_500"]


def test_load_truth(tmp_path):
    p = tmp_path / "truth.jsonl"
    p.write_text('{"file": "a/claims.csv", "row": 3, "true_kind": "fire"}\n\n')
    assert load_truth(p, "kind") == {("claims.csv", 3): "fire"}
    p.write_text('{"file": "claims.csv"}\n')
    with pytest.raises(Exception, match="line 1"):
        load_truth(p, "kind")


# -- the studio's "Did curation pay?" table --------------------------------------------------
def _fake_run(ws_path, run_id, export, acc, f1, head="classifier", n_train=100, finished=True):
    """The files `trainer.train` leaves: config.yaml, events.jsonl's start event, eval.json."""
    d = ws_path / "runs" / run_id
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(f"head: {head}\n")
    start = {"event": "start", "time": 1.0, "head": head, "export": export}
    if n_train is not None:
        start["n_train"] = n_train
    (d / "events.jsonl").write_text(json.dumps(start) + "\n")
    if finished:
        (d / "eval.json").write_text(json.dumps({
            "run_id": run_id, "export": export, "head": head, "n_eval": 40,
            "tuned": {"accuracy": acc, "macro_f1": f1, "gold_n": 10, "gold_accuracy": acc,
                      "gold_macro_f1": f1}, "train_seconds": 12.0}))


def test_compare_runs(fresh_ws):
    _fake_run(fresh_ws.path, "20261128-100000-classifier-v0001", "v0001", 0.70, 0.60, n_train=300)
    _fake_run(fresh_ws.path, "20261128-110000-classifier-v0002", "v0002", 0.85, 0.80, n_train=250)
    _fake_run(fresh_ws.path, "20261128-113000-sft-v0002", "v0002", None, None, head="sft")
    _fake_run(fresh_ws.path, "20261128-120000-classifier-v0003", "v0003", 0, 0, finished=False)
    rows = compare_runs(fresh_ws, head="classifier")
    assert [r["export"] for r in rows] == ["v0001", "v0002"]
    assert rows[0]["baseline"] and not rows[1]["baseline"]
    assert rows[1]["n_train"] == 250 and rows[0]["delta_accuracy"] == 0.0
    assert rows[1]["delta_accuracy"] == pytest.approx(0.15)
    assert rows[1]["delta_macro_f1"] == pytest.approx(0.20)
    assert len(compare_runs(fresh_ws, head="sft")) == 1


def test_compare_runs_empty(fresh_ws):
    assert compare_runs(fresh_ws) == []


def test_compare_runs_takes_n_train_from_the_manifest_of_an_old_run(fresh_ws):
    from pipelines.export import export_path

    d = fresh_ws.path / "exports" / "v0001"
    d.mkdir(parents=True)
    (d / "manifest.json").write_text(json.dumps({"version": "v0001", "created_at": "2026-11-28T10:00:00Z", "scheme": "kind",
                    "format": "classification", "counts": {"train": 77, "eval": 9}}))
    assert export_path(fresh_ws, "v0001") == d
    _fake_run(fresh_ws.path, "20261128-100000-classifier-v0001", "v0001", 0.7, 0.6, n_train=None)
    _fake_run(fresh_ws.path, "20261128-110000-classifier-v0009", "v0009", 0.8, 0.7, n_train=None)
    rows = compare_runs(fresh_ws)
    assert [r["n_train"] for r in rows] == [77, None]   # v0009 is not an export


# -- a quick end-to-end run on a slice of the sample (mechanics, not the result) -------------
@pytest.fixture
def tiny_sample_ws(tmp_path):
    """The first 160 rows of the sample's claims.csv (with its gold rows and ground truth)."""
    import csv
    import io

    import yaml

    from pipelines.config import load_config
    from pipelines.ingest import IngestConfig, ingest
    from pipelines.samples import sample_dir
    from pipelines.store import Workspace

    src = sample_dir()
    data = tmp_path / "data"
    data.mkdir()
    with (src / "claims.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows[:161])
    (data / "claims.csv").write_text(buf.getvalue(), encoding="utf-8")
    truth = [t for t in map(json.loads, (src / "truth.jsonl").read_text().splitlines())
             if t["file"] == "claims.csv" and t["row"] <= 160]
    (data / "truth.jsonl").write_text("".join(json.dumps(t) + "\n" for t in truth))
    raw = yaml.safe_load((src / "curation.yaml").read_text(encoding="utf-8"))
    raw["files"] = ["claims.csv"]
    ws = Workspace.create(tmp_path / "ws")
    ws.config_path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    cfg = load_config(ws.config_path)
    ingest(ws, [data / "claims.csv"], IngestConfig.from_curation(cfg, skip_invalid=True))
    return ws


@pytest.mark.slow
def test_quick_roi_trains_and_scores_every_arm_without_leakage(tiny_sample_ws):
    from curate.cli import main
    from curate.roi.prepare import prepare_arms

    ws = tiny_sample_ws
    config = RoiConfig.quick(scheme="claim_type")
    arms = prepare_arms(ws, config)
    gold = set(arms.eval_ids)
    assert gold and all(a.n_train > 0 for a in arms.arms)
    for a in arms.arms:
        assert not gold & set(a.ids), a.name
    assert arms.arm("curated_10").reviewed == 10

    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["roi", "--workspace", str(ws.path), "--scheme", "claim_type", "--quick",
                   "--json", "--device", "cpu"])
    assert rc == 0, out.getvalue()[-2000:]
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert [a["name"] for a in summary["arms"]] == config.arm_names()
    for a in summary["arms"]:
        for key in ("accuracy", "macro_f1"):
            assert 0.0 <= a[key] <= 1.0
        assert 0.0 <= a["ci"][0] <= a["accuracy"] <= a["ci"][1] <= 1.0
        assert 0 < a["n_train"] <= config.max_train
        assert len(a["per_seed"]) == config.seeds and a["steps"] == config.max_steps
    assert summary["leakage"]["ok"] and "SIMULATED" in summary["simulated_review"]
    assert summary["n_eval"] == min(len(gold), config.max_eval)
    assert [r["status"] for r in list_runs_of(ws, "roi")] == ["done"]
    assert json.loads(open(summary["report_path"]).read())["arms"][0]["name"] == "raw"


def list_runs_of(ws, step):
    from pipelines.store import list_runs

    with ws.connect() as conn:
        return list_runs(conn, step)


def test_probe_head_learns_separable_vectors_and_is_seeded():
    from curate.roi.train import fit_probe

    rng = np.random.default_rng(0)
    centers = np.eye(3, 8, dtype=np.float32)
    y = [CLASSES[i % 3] for i in range(60)]
    X = np.stack([centers[i % 3] + 0.05 * rng.standard_normal(8) for i in range(60)])
    a = fit_probe(X, y, X, CLASSES, seed=1, steps=50)
    b = fit_probe(X, y, X, CLASSES, seed=1, steps=50)
    c = fit_probe(X, y, X, CLASSES, seed=2, steps=50)
    assert accuracy(y, a.predictions) == 1.0 and a.predictions == b.predictions
    assert a.steps == 50 and a.final_loss == b.final_loss != c.final_loss


def test_every_config_field_has_help():
    from dataclasses import fields

    assert all(f.metadata.get("help") for f in fields(RoiConfig))
    with pytest.raises(ConfigError, match="roi.head"):
        RoiConfig(head="svm")


# -- the SFT secondary comparison --------------------------------------------------------------
def test_sft_leakage_check_raises_on_held_out_in_training():
    from pipelines.errors import TrainError
    from curate.roi.sft import SftSets, check_sft_leakage

    row = {"messages": [{"role": "user", "content": "n"}, {"role": "assistant", "content": "s"}]}
    clean = SftSets(arms={"raw": [row], "curated": [row]}, arm_ids={"raw": ["a"], "curated": ["a"]},
                    eval_rows=[row], eval_ids=["g"])
    check_sft_leakage(clean)
    clean.arm_ids["curated"] = ["a", "g"]
    with pytest.raises(TrainError, match="curated"):
        check_sft_leakage(clean)


@pytest.mark.slow
def test_quick_sft_trains_both_arms_on_disjoint_sets(tiny_sample_ws):
    from curate.roi.sft import SftBudget, format_sft_table, run_sft_comparison, sft_sets

    ws = tiny_sample_ws
    sets = sft_sets(ws)
    held = set(sets.eval_ids)
    assert held and sets.arms["raw"] and sets.arms["curated"]
    for name, ids in sets.arm_ids.items():
        assert not held & set(ids), name
        assert len(ids) == len(sets.arms[name])
    # curated is a subset of raw (dedup and the quality label only remove records)
    assert set(sets.arm_ids["curated"]) <= set(sets.arm_ids["raw"])
    assert len(sets.arm_ids["curated"]) < len(sets.arm_ids["raw"])
    with ws.connect() as conn:
        from pipelines.store import iter_records

        gold = {r.id: dict(r.gold) for r in iter_records(conn, with_gold=True) if r.gold}
    assert all(gold[i]["summary_quality"] == "ACCEPT" for i in held)

    budget = SftBudget(max_steps=2, batch_size=4, max_seq_length=256, eval_max_examples=8)
    report = run_sft_comparison(ws, seeds=1, budget=budget)
    assert [a["name"] for a in report["arms"]] == ["raw", "curated"]
    for a in report["arms"]:
        assert math.isfinite(a["eval_loss"]) and math.isfinite(a["base_eval_loss"])
        assert a["per_seed"][0]["steps"] == 2 and a["n_train"] > 0
    assert not set(report["eval_ids"]) & set(sets.arm_ids["raw"])
    assert report["n_eval"] == min(8, len(held))
    assert "curated" in format_sft_table(report)


@pytest.mark.parametrize("head", ["probe", "lora"])
def test_an_arm_without_training_records_is_skipped_and_named(pool, head, monkeypatch):
    """No raw labels ingested: the raw arm is skipped with its reason, for both heads; the other
    arms still fit (the fit itself is stubbed: this checks the routing, not the model)."""
    from types import SimpleNamespace

    import curate.roi.train as train_mod
    from curate.roi import run as run_mod
    from curate.roi.arms import ArmSet

    for r in pool.records:
        r.raw_label = None
    arms = build_arms(pool, (0,))
    assert arms[0].name == "raw" and arms[0].ids == [] and "--label-field" in arms[0].notes[0]

    def fake_fit(*a, **kw):
        n = len(a[2])   # eval texts (lora) or eval vectors (probe)
        return SimpleNamespace(predictions=["fire"] * n, device="cpu", train_seconds=0.0, steps=1,
                               final_loss=0.0)

    monkeypatch.setattr(train_mod, "fit_probe", fake_fit)
    monkeypatch.setattr(train_mod, "fit_and_predict", fake_fit)
    texts = {r.id: r.text for r in pool.records}
    aset = ArmSet(scheme="kind", classes=CLASSES, texts=texts, eval_ids=["r0", "r1"],
                  eval_labels=["fire", "water"], arms=arms)
    vectors = {i: np.ones(4, dtype=np.float32) for i in texts}
    said = []
    report = run_mod.evaluate_arms(aset, RoiConfig(head=head, seeds=1), say=said.append,
                                   vectors=vectors)
    assert "raw" in report["skipped_arms"] and "--label-field" in report["skipped_arms"]["raw"]
    assert [r["name"] for r in report["arms"]] == ["majority", "label_model", "curated_0"]
    assert any(m.startswith("raw") and "skipped: no training records" in m for m in said)
    assert "no raw arm" in report["verdict"]["note"]
    assert "raw          skipped" in run_mod.format_table(report)
    for a in arms:
        a.ids, a.labels = [], []
    with pytest.raises(ConfigError, match="no arm has training records: raw: .*majority: every LF"):
        run_mod.evaluate_arms(aset, RoiConfig(head=head, seeds=1), vectors=vectors)


# -- the generation benchmark's intervals: over held-out notes, paired for the delta ----------
def test_generation_intervals_are_bootstrapped_over_notes():
    from curate.roi.sft import _arm_row, bootstrap_ci

    def seed(acc):   # one fit's per-note verdicts
        return {"accuracy": sum(acc) / len(acc), "rouge_l": 0.5, "per_note": [
            {"accurate": a, "rouge_l": 0.5} for a in acc],
            **{f"{f}_stated": 1.0 for f in ("claim_type", "amount", "date", "claimant")},
            "invented": 0.0, "train_seconds": 1.0, "tokens_per_s": 10.0}

    raw = [seed([True] * 10 + [False] * 30), seed([True] * 12 + [False] * 28)]
    cur = [seed([True] * 30 + [False] * 10), seed([True] * 28 + [False] * 12)]
    r, c = _arm_row("raw", 5, 5, raw), _arm_row("curated", 4, 4, cur)
    assert r["accuracy"] == pytest.approx(0.275) and c["accuracy"] == pytest.approx(0.725)
    assert r["ci"][0] < 0.275 < r["ci"][1] and c["ci"][0] > r["ci"][1]   # apart at 40 notes
    assert r["ci_seeds"] != r["ci"]                                       # seeds: Student-t
    assert r["rouge_l_ci"] == [0.5, 0.5]                                  # constant: no spread
    lo, hi = bootstrap_ci([0, 0, 1, 1], [1, 1, 1, 1], paired_delta=True)
    assert 0.0 <= lo < 0.5 < hi <= 1.0
    assert bootstrap_ci([1, 1, 1], [1, 1, 1], paired_delta=True) == [0.0, 0.0]


def test_run_sft_generation_assembles_the_report(monkeypatch):
    """The report's shape around the fits (stubbed): base arms, bootstrap intervals, delta."""
    from curate.roi import sft

    items = [{"id": f"g{i}", "prompt": [{"role": "system", "content": "You are a claims "
              "assistant. Summarise the note."}, {"role": "user", "content": f"note {i}"}],
              "note": f"note {i}", "reference": "ref", "claim_type": "theft"} for i in range(6)]
    sets = sft.SftSets(arms={"raw": [{}] * 3, "curated": [{}] * 2},
                       arm_ids={"raw": ["a", "a", "b"], "curated": ["b", "c"]},
                       eval_rows=[], eval_ids=[it["id"] for it in items])
    monkeypatch.setattr(sft, "sft_sets", lambda ws, **kw: sets)
    monkeypatch.setattr(sft, "_eval_items", lambda ws, s, n: items[:n])
    monkeypatch.setattr("trainer.pretrained.resolve_model_name", lambda name, say=None: name)
    prompts_seen = []

    def fake_fit(base, rows, its, budget, seed, out_dir, *, base_texts=None):
        if base_texts is not None and not base_texts:
            base_texts["base"] = ["nothing"] * len(its)
            prompts_seen.append(sft.user_turn_prompt(its[0]["prompt"]))
            base_texts["base_user"] = ["nothing"] * len(its)
        good = "Theft: note" if len(rows) == 2 else "nothing"
        texts = [good] * len(its)
        return {"seed": seed, **sft._score(its, texts), "train_seconds": 1.0,
                "seconds_per_step": 0.5, "generate_seconds": 1.0,
                "tokens_per_s": 5.0, "samples": texts[:3], "generations": texts}

    monkeypatch.setattr(sft, "_train_and_generate", fake_fit)
    rep = sft.run_sft_generation(None, seeds=2, budget=sft.GenBudget(max_eval=4))
    assert [a["name"] for a in rep["arms"]] == ["base", "base_user", "raw", "curated"]
    assert rep["n_eval"] == 4 and rep["delta_ci"] == [0.0, 0.0]
    assert prompts_seen[0] == [{"role": "user", "content": "Summarise the note.\n\nnote 0"}]
    assert "bootstrap" in rep["ci_method"] and "intervals:" in sft.format_generation_table(rep)
    again = sft.rescore_generation_report(rep)   # the kept generations, scored again
    assert [a["accuracy"] for a in again["arms"]] == [a["accuracy"] for a in rep["arms"]]
