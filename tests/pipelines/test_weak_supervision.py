"""Weak supervision: LF discovery, appliers, analysis, aggregation, the labeling run and CLI."""

from __future__ import annotations

import json
import re
import textwrap

import numpy as np
import pandas as pd
import pytest
from snorkel.labeling import LabelingFunction, PandasLFApplier, labeling_function
from snorkel.preprocess import preprocessor

from pipelines.errors import ConfigError, LabelingError
from pipelines.store import NewRecord, Workspace, upsert_record, utcnow
from pipelines.store.labels import get_labels
from pipelines.weak_supervision import (
    LabelConfig, analyze, analyze_matrix, apply_lfs, conflict_matrix, load_lfs, run_labeling,
)
from pipelines.weak_supervision.aggregate import aggregate, decide, ModelScore

CLASSES = ["spam", "ham"]

# -- a literal L with known numbers (snorkel's test style) -------------------------------------
#    lf0 lf1 lf2
L_SMALL = np.array([
    [0, 0, -1],    # r0: lf0 and lf1 agree
    [0, 1, -1],    # r1: lf0 and lf1 disagree
    [-1, 1, 1],    # r2: lf1 and lf2 agree
    [-1, -1, 0],   # r3: lf2 alone
    [-1, -1, -1],  # r4: nobody votes
    [1, -1, 0],    # r5: lf0 and lf2 disagree
])
GOLD_SMALL = np.array([0, 0, 1, 1, -1, 1])   # r4 has no gold


def test_analysis_of_a_literal_matrix():
    ids = [f"r{i}" for i in range(6)]
    rep = analyze_matrix(L_SMALL, ["lf0", "lf1", "lf2"], CLASSES, record_ids=ids,
                         gold=GOLD_SMALL, scheme="s")
    lf0, lf1, lf2 = rep.lfs
    assert [lf0.coverage, lf1.coverage, lf2.coverage] == pytest.approx([3 / 6, 3 / 6, 3 / 6])
    assert lf0.overlaps == pytest.approx(3 / 6)       # r0, r1, r5
    assert lf1.overlaps == pytest.approx(3 / 6)       # r0, r1, r2
    assert lf2.overlaps == pytest.approx(2 / 6)       # r2, r5
    assert lf0.conflicts == pytest.approx(2 / 6)      # r1, r5
    assert lf1.conflicts == pytest.approx(1 / 6)      # r1
    assert lf2.conflicts == pytest.approx(1 / 6)      # r5
    # gold: lf0 votes on r0 (0 ok), r1 (0 ok), r5 (1 ok) -> 3/3
    assert (lf0.emp_accuracy, lf0.n_gold_votes) == (1.0, 3)
    # lf1: r0 ok, r1 wrong (1 vs 0), r2 ok -> 2/3
    assert lf1.emp_accuracy == pytest.approx(2 / 3)
    assert lf1.wrong_examples == [{"record_id": "r1", "voted": "ham", "gold": "spam"}]
    # lf2: r2 ok, r3 wrong (0 vs 1), r5 wrong (0 vs 1) -> 1/3
    assert lf2.emp_accuracy == pytest.approx(1 / 3)
    assert [w["record_id"] for w in lf2.wrong_examples] == ["r3", "r5"]
    assert lf2.polarity == ["spam", "ham"]
    assert rep.coverage == pytest.approx(5 / 6)
    assert rep.n_gold == 5
    cm = np.array(rep.conflict_matrix)
    assert cm[0, 1] == cm[1, 0] == pytest.approx(1 / 6)
    assert cm[0, 2] == cm[2, 0] == pytest.approx(1 / 6)
    assert cm[1, 2] == 0 and np.all(np.diag(cm) == 0)
    assert json.dumps(rep.to_dict())  # serialisable for the studio


def test_conflict_matrix_sums_match_snorkel_conflicts():
    from snorkel.labeling import LFAnalysis

    rng = np.random.default_rng(0)
    L = rng.integers(-1, 3, size=(200, 5))
    cm = conflict_matrix(L)
    assert np.allclose(cm, cm.T)
    # a row conflicts for LF a iff it disagrees with at least one other LF there
    any_conflict = np.zeros(5)
    for a in range(5):
        rows = (L[:, a] != -1)[:, None] & (L != -1) & (L != L[:, a:a + 1])
        any_conflict[a] = rows.any(axis=1).mean()
    assert np.allclose(any_conflict, LFAnalysis(L).lf_conflicts())
    assert (cm.max(axis=1) <= any_conflict + 1e-12).all()


# -- appliers ------------------------------------------------------------------------------
@preprocessor(memoize=True)
def add_length(x):
    x.n_chars = len(x.text) if isinstance(x.text, str) else -1
    return x


@labeling_function()
def lf_has_digit(x):
    return 1 if isinstance(x.text, str) and any(c.isdigit() for c in x.text) else -1


@labeling_function(pre=[add_length])
def lf_long(x):
    return 0 if x.n_chars > 20 else -1


@labeling_function(pre=[add_length])
def lf_short(x):
    return 1 if 0 <= x.n_chars < 8 else -1


@labeling_function(resources={"words": {"free", "win"}})
def lf_spammy(x, words):
    return 0 if isinstance(x.text, str) and words & set(x.text.lower().split()) else -1


@labeling_function()
def lf_number_field(x):
    return 2 if x.n > 7 else (0 if x["n"] < 2 else -1)


ALL_LFS = [lf_has_digit, lf_long, lf_short, lf_spammy, lf_number_field]
THREE = ["a", "b", "c"]   # lf_number_field votes up to 2


def _random_frame(n=300, seed=1):
    rng = np.random.default_rng(seed)
    vocab = ["free", "win", "hello", "meeting", "x1", "call", "now", "42", "ok"]
    texts = [" ".join(rng.choice(vocab, size=rng.integers(0, 9))) for _ in range(n)]
    texts = [t if rng.random() > 0.05 else None for t in texts]
    return pd.DataFrame({"id": [f"r{i}" for i in range(n)], "text": texts,
                         "n": rng.integers(0, 10, size=n)})


def test_fast_applier_matches_pandas_lf_applier():
    df = _random_frame()
    expected = PandasLFApplier(ALL_LFS).apply(df, progress_bar=False)
    L, faults = apply_lfs(df, ALL_LFS, THREE, engine="fast")
    assert L.shape == (len(df), len(ALL_LFS))
    assert (L != -1).any() and (L == -1).any()
    np.testing.assert_array_equal(L, expected)
    assert faults == {}
    # the same from plain dicts (what iter_records yields) and through the pandas engine
    L_dicts, _ = apply_lfs(df.to_dict("records"), ALL_LFS, THREE)
    np.testing.assert_array_equal(L_dicts, expected)
    L_pandas, _ = apply_lfs(df, ALL_LFS, THREE, engine="pandas")
    np.testing.assert_array_equal(L_pandas, expected)


def test_faults_are_counted_with_ids_and_others_continue():
    @labeling_function()
    def lf_breaks_on_none(x):
        return 1 if x.text.startswith("free") else -1

    df = _random_frame(n=100, seed=3)
    n_none = int(df.text.isna().sum())
    assert n_none > 0
    L, faults = apply_lfs(df, [lf_has_digit, lf_breaks_on_none], THREE, max_examples=3)
    assert set(faults) == {"lf_breaks_on_none"}
    f = faults["lf_breaks_on_none"]
    assert f.count == n_none
    assert f.examples == df.id[df.text.isna()].tolist()[:3]
    assert "AttributeError" in f.message
    # each example keeps its error and the LF's line it happened on: the `return` line, two
    # below the decorator where the function's code starts
    assert f.details[0].record_id == f.examples[0] and "AttributeError" in f.details[0].error
    assert f.details[0].line == lf_breaks_on_none._f.__code__.co_firstlineno + 2
    assert (L[df.text.isna().to_numpy(), 1] == -1).all()
    np.testing.assert_array_equal(L[:, 0], apply_lfs(df, [lf_has_digit], THREE)[0][:, 0])


VOTES_MODULE = """\
from snorkel.labeling import labeling_function


@labeling_function()
def lf_index(x):                      # decorated, votes an index
    return 1 if x.n > 5 else -1


def lf_name(x):                       # plain, votes a class name or None
    return "spam" if x.n < 3 else None


def lf_bad(x):                        # an unknown name, an index past the classes, a bool, a float
    return {0: "eggs", 1: 7, 2: True, 3: 1.0}.get(x.n, -1)


def helper(x):                        # neither decorated nor lf_*: not an LF
    return 0
"""


def _inline_module(source: str, name: str = "inline_lfs"):
    import types

    module = types.ModuleType(name)
    exec(compile(source, f"{name}.py", "exec"), module.__dict__)
    return module


def test_votes_by_index_name_or_abstain_and_bad_votes_are_faults():
    from pipelines.weak_supervision import lfs_from_module

    lfs = lfs_from_module(_inline_module(VOTES_MODULE))
    assert [lf.name for lf in lfs] == ["lf_index", "lf_name", "lf_bad"]
    rows = [{"id": f"r{n}", "n": n} for n in range(8)]
    L, faults = apply_lfs(rows, lfs, CLASSES, max_examples=2)
    assert L[:, 0].tolist() == [-1, -1, -1, -1, -1, -1, 1, 1]
    assert L[:, 1].tolist() == [0, 0, 0, -1, -1, -1, -1, -1]     # "spam" -> 0, None abstains
    assert L[:, 2].tolist() == [-1] * 8                           # bad votes abstain
    assert set(faults) == {"lf_bad"}                              # -1 and None are not faults
    bad = faults["lf_bad"]
    assert bad.count == 4 and bad.examples == ["r0", "r1"]
    assert bad.message == "ValueError: returned 'eggs', not a class of the scheme (spam, ham)"
    assert "returned 7; expected a class index 0..1" in bad.details[1].error
    def_line = next(i for i, line in enumerate(VOTES_MODULE.splitlines(), 1)
                    if line.startswith("def lf_bad"))
    assert {d.line for d in bad.details} == {def_line}             # a bad vote: the def line
    # snorkel's applier, through the same vote normalisation, agrees
    L_pandas, f_pandas = apply_lfs(rows, lfs, CLASSES, engine="pandas")
    np.testing.assert_array_equal(L_pandas, L)
    assert f_pandas["lf_bad"].count == 4


def test_vote_index_is_the_one_contract():
    from pipelines.weak_supervision import vote_index

    index = {"spam": 0, "ham": 1}
    assert [vote_index(v, index) for v in (0, 1, -1, None, "ham", np.int64(1))] == [0, 1, -1, -1,
                                                                                     1, 1]
    for bad in (2, -2, "Ham", True, 1.0, [0]):
        with pytest.raises(ValueError, match="returned"):
            vote_index(bad, index)


def test_duplicate_names_and_missing_classes_are_errors():
    with pytest.raises(LabelingError, match="unique.*lf_has_digit"):
        apply_lfs(_random_frame(n=3), [lf_has_digit, lf_has_digit], THREE)
    with pytest.raises(LabelingError, match="classes"):
        apply_lfs(_random_frame(n=3), [lf_has_digit], [])


def test_unknown_engine_and_config_errors():
    with pytest.raises(LabelingError, match="unknown engine 'spark'"):
        apply_lfs(_random_frame(n=2), [lf_has_digit], THREE, engine="spark")
    with pytest.raises(ConfigError, match="label.model"):
        LabelConfig(model="snorkel")
    with pytest.raises(ConfigError, match="label.engine"):
        LabelConfig(engine="spark")
    with pytest.raises(ConfigError, match="dask_address"):
        LabelConfig(engine="fast", dask_address="tcp://x:1")
    with pytest.raises(ConfigError, match="unknown key.*colour"):
        LabelConfig.from_section({"colour": "red"})
    assert LabelConfig.from_section({"epochs": 50}, epochs=None, model="majority").epochs == 50


@pytest.mark.slow
def test_dask_local_cluster_matches_fast_and_keeps_fault_ids():
    @labeling_function()
    def lf_breaks_on_none(x):
        return 1 if x.text.startswith("free") else -1

    df = _random_frame(n=120, seed=5)
    lfs = ALL_LFS + [lf_breaks_on_none]
    L_fast, f_fast = apply_lfs(df, lfs, THREE)
    L_dask, f_dask = apply_lfs(df, lfs, THREE, engine="dask", dask_workers=2,
                               dask_processes=False)
    np.testing.assert_array_equal(L_dask, L_fast)
    assert f_dask["lf_breaks_on_none"].count == f_fast["lf_breaks_on_none"].count
    assert f_dask["lf_breaks_on_none"].examples == f_fast["lf_breaks_on_none"].examples


def test_dask_at_a_scheduler_address_matches_fast():
    from dask.distributed import LocalCluster

    df = _random_frame(n=60, seed=7)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster:
        L_dask, _ = apply_lfs(df, ALL_LFS, THREE, engine="dask",
                              dask_address=cluster.scheduler_address)
    np.testing.assert_array_equal(L_dask, apply_lfs(df, ALL_LFS, THREE)[0])


@pytest.mark.slow
def test_dask_address_that_does_not_answer():
    with pytest.raises(LabelingError, match="no Dask scheduler answers at 'tcp://127.0.0.1:9'"):
        apply_lfs(_random_frame(n=2), [lf_has_digit], THREE, engine="dask",
                  dask_address="tcp://127.0.0.1:9")


# -- aggregation -----------------------------------------------------------------------------
def test_majority_fallback_below_three_lfs_and_abstain_rows():
    L = np.array([[0, 0], [1, -1], [-1, -1], [1, 0]])
    agg = aggregate(L, 2, np.array([0, 1, -1, -1]), model="label_model")
    assert agg.chosen == "majority"
    assert "at least 3" in agg.notes[0]
    assert agg.labels.tolist() == [0, 1, -1, 0]      # tie on the last row: lowest class
    assert agg.confidence.tolist() == [1.0, 1.0, 0.0, 0.5]
    assert agg.scores["majority"].accuracy == 1.0
    assert "label_model" not in agg.scores


def test_scores_count_abstentions_per_class_and_confusion():
    # majority labels [0, 1, -1, 0, 1]; gold [0, 1, 1, 1, -1]: 4 gold, 3 covered, 2 correct
    L = np.array([[0, 0], [1, -1], [-1, -1], [0, -1], [1, 1]])
    sc = aggregate(L, 2, np.array([0, 1, 1, 1, -1]), model="majority").scores["majority"]
    assert (sc.n_gold, sc.n_gold_total, sc.correct) == (3, 4, 2)
    assert sc.accuracy == pytest.approx(2 / 3) and sc.accuracy_all == 0.5
    assert sc.per_class == [{"n": 1, "covered": 1, "correct": 1, "accuracy": 1.0},
                            {"n": 3, "covered": 2, "correct": 1, "accuracy": pytest.approx(1 / 3)}]
    assert sc.confusion == [[1, 0, 0], [1, 1, 1]]    # columns: class 0, class 1, abstained


def test_decide_prefers_majority_unless_label_model_is_better():
    good, bad = ModelScore(0.9, 10, 9), ModelScore(0.8, 10, 8)
    assert decide("auto", 5, {"label_model": good, "majority": bad})[0] == "label_model"
    chosen, notes = decide("auto", 5, {"label_model": bad, "majority": good})
    assert chosen == "majority" and "no better than majority" in notes[0]
    tie = decide("auto", 5, {"label_model": good, "majority": good})[0]
    assert tie == "majority"
    assert decide("label_model", 5, {"label_model": bad, "majority": good})[0] == "label_model"
    none = ModelScore(None, 0, 0)
    assert decide("auto", 5, {"label_model": none, "majority": none})[0] == "label_model"


def test_label_model_learns_to_discount_a_bad_lf():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, size=600)

    def noisy(acc, cov):
        votes = np.where(rng.random(600) < acc, y, 1 - y)
        return np.where(rng.random(600) < cov, votes, -1)

    L = np.stack([noisy(0.9, 0.8), noisy(0.85, 0.7), noisy(0.8, 0.7), noisy(0.55, 0.9)], axis=1)
    agg = aggregate(L, 2, y, model="auto", epochs=100, seed=1)
    # majority vote lets the near-random LF swing ties; the label model weighs it down
    assert agg.scores["label_model"].accuracy > agg.scores["majority"].accuracy
    assert agg.chosen == "label_model" and "beats majority" in agg.notes[0]


# -- a tiny workspace ------------------------------------------------------------------------
YAML = """\
schema: text
schemes:
  spam:
    classes: [spam, ham]
    lf_modules: []
  tone:
    classes: [POS, NEG]
    lf_modules: []
"""

LF_FILE = '''\
from snorkel.labeling import labeling_function

SCHEME = "spam"
SPAM, HAM, ABSTAIN = 0, 1, -1


@labeling_function()
def lf_free(x):
    return SPAM if "free" in x.text else ABSTAIN


@labeling_function()
def lf_meeting(x):
    return HAM if "meeting" in x.text else ABSTAIN


@labeling_function()
def lf_exclaim(x):
    return SPAM if "!" in x.text else ABSTAIN


@labeling_function()
def lf_sees_no_gold(x):
    assert not hasattr(x, "gold"), "gold leaked to an LF"
    return ABSTAIN
'''

TEXTS = [
    ("free money!", "spam"), ("meeting at 3", "ham"), ("free meeting", "ham"),
    ("win free stuff!", "spam"), ("lunch?", None), ("meeting notes", None), ("free!!", None),
    ("the meeting moved!", "ham"),
]


def _tiny_ws(tmp_path, lf_source=LF_FILE, texts=TEXTS) -> Workspace:
    ws = Workspace.create(tmp_path / "ws")
    ws.config_path.write_text(YAML)
    (ws.path / "lfs" / "spam_rules.py").write_text(lf_source)
    now = utcnow()
    with ws.transaction() as conn:
        for i, (text, gold) in enumerate(texts):
            upsert_record(conn, NewRecord(id=f"t{i}", kind="text", text=text,
                                          gold={"spam": gold} if gold else {},
                                          file="inline", row=i + 1), now)
    return ws


def test_workspace_lfs_are_discovered_by_scheme(tmp_path):
    ws = _tiny_ws(tmp_path)
    (ws.path / "lfs" / "tone.py").write_text(textwrap.dedent('''\
        from snorkel.labeling import labeling_function
        SCHEME = "tone"

        @labeling_function()
        def lf_happy(x):
            return 0 if ":)" in x.text else -1
    '''))
    lfs = load_lfs(ws, "spam")
    assert lfs.names == ["lf_free", "lf_meeting", "lf_exclaim", "lf_sees_no_gold"]
    assert lfs.origins["lf_free"].endswith("spam_rules.py")
    assert len(lfs.hashes["lf_free"]) == 64 and lfs.errors == []
    assert load_lfs(ws, "tone").names == ["lf_happy"]
    # an edit is picked up (module names carry the content hash)
    (ws.path / "lfs" / "tone.py").write_text(
        (ws.path / "lfs" / "tone.py").read_text().replace("lf_happy", "lf_smiley"))
    assert load_lfs(ws, "tone").names == ["lf_smiley"]


def test_broken_modules_are_reported_and_the_rest_load(tmp_path):
    ws = _tiny_ws(tmp_path)
    (ws.path / "lfs" / "a_syntax.py").write_text('SCHEME = "spam"\n\ndef lf_x(x)\n    return 1\n')
    (ws.path / "lfs" / "b_import.py").write_text(
        'SCHEME = "spam"\nimport os\nimport no_such_module_xyz\n')
    (ws.path / "lfs" / "c_noscheme.py").write_text("X = 1\n")
    lfs = load_lfs(ws, "spam")
    assert lfs.names[:2] == ["lf_free", "lf_meeting"]
    errors = "\n".join(lfs.errors)
    assert "a_syntax.py:3: syntax error" in errors
    assert "b_import.py:3: ModuleNotFoundError" in errors and "no_such_module_xyz" in errors
    assert "c_noscheme.py: declares no SCHEME" in errors
    with pytest.raises(LabelingError, match="a_syntax.py:3"):
        load_lfs(ws, "spam", strict=True)


def test_duplicate_lf_names_and_no_lfs_are_errors(tmp_path):
    ws = _tiny_ws(tmp_path)
    (ws.path / "lfs" / "z_copy.py").write_text(LF_FILE)
    with pytest.raises(LabelingError, match="two labeling functions named 'lf_free'.*z_copy.py"):
        load_lfs(ws, "spam")
    with pytest.raises(LabelingError, match="no labeling functions for scheme 'tone'"):
        load_lfs(ws, "tone")


def test_package_module_errors_name_the_module(tmp_path):
    ws = _tiny_ws(tmp_path)
    ws.config_path.write_text(YAML.replace("lf_modules: []", "lf_modules: [no_such.lf_module]", 1))
    lfs = load_lfs(ws, "spam")
    assert any("no_such.lf_module: module not found" in e for e in lfs.errors)
    assert "lf_free" in lfs.names


def test_classes_mismatch_is_an_error(tmp_path):
    ws = _tiny_ws(tmp_path, lf_source=LF_FILE + '\nCLASSES = ("ham", "spam")\n')
    with pytest.raises(LabelingError, match="CLASSES.*do not match scheme 'spam'"):
        load_lfs(ws, "spam")


def test_run_labeling_stores_names_confidence_and_lineage(tmp_path):
    ws = _tiny_ws(tmp_path)
    result = run_labeling(ws, LabelConfig(scheme="spam", epochs=50))
    d = result.to_dict()
    for key in ("scheme", "labelled", "abstained", "model", "lf_summary", "n_lfs", "coverage",
                "faults", "label_model_accuracy", "majority_accuracy", "chosen"):
        assert key in d
    assert d["scheme"] == "spam" and d["n_lfs"] == 4 and d["faults"] == 0
    assert d["abstained"] == 1                       # "lunch?" gets no vote
    assert d["n_gold"] == 5
    with ws.connect() as conn:
        labels = get_labels(conn, "spam")
        run = conn.execute("SELECT * FROM runs WHERE id = ?", (result.run_id,)).fetchone()
    assert labels["t4"].label is None and labels["t4"].confidence == 0.0
    assert labels["t0"].label == "spam" and 0.5 < labels["t0"].confidence <= 1.0
    assert labels["t1"].label == "ham"
    assert {lab.model for lab in labels.values()} == {result.model}
    params = json.loads(run["params"])
    assert run["step"] == "label" and run["status"] == "done" and run["scheme"] == "spam"
    assert set(params["lfs"]) == {"lf_free", "lf_meeting", "lf_exclaim", "lf_sees_no_gold"}
    # the analysis of the latest run comes back from the saved matrix
    rep = analyze(ws, "spam")
    assert rep.run_id == result.run_id and rep.lf_names == params["lf_names"]
    free = rep.lf("lf_free")
    # lf_free votes spam on t0, t2, t3, t6; gold on t0 (spam), t2 (ham), t3 (spam)
    assert (free.n_gold_votes, free.correct) == (3, 2)
    assert free.wrong_examples == [{"record_id": "t2", "voted": "spam", "gold": "ham"}]
    assert rep.models["majority"]["n_gold"] == 5 and rep.chosen == result.model
    # a second run replaces the labels, not adds to them
    run_labeling(ws, LabelConfig(scheme="spam", model="majority"))
    with ws.connect() as conn:
        assert conn.execute("SELECT COUNT(*) FROM labels WHERE scheme='spam'").fetchone()[0] == 8
        assert {r[0] for r in conn.execute("SELECT model FROM labels")} == {"majority"}


def test_faults_reach_the_run_and_the_analysis(tmp_path):
    src = LF_FILE + textwrap.dedent('''

        @labeling_function()
        def lf_crashes_on_questions(x):
            if "?" in x.text:
                raise ValueError("no questions")
            return ABSTAIN
    ''')
    ws = _tiny_ws(tmp_path, lf_source=src)
    result = run_labeling(ws, LabelConfig(scheme="spam", model="majority"))
    assert result.faults == 1
    row = next(s for s in result.lf_summary if s["lf"] == "lf_crashes_on_questions")
    assert row["faults"] == 1 and row["fault_examples"] == ["t4"]
    stat = analyze(ws, "spam").lf("lf_crashes_on_questions")
    assert stat.fault_examples == ["t4"] and "ValueError: no questions" in stat.fault_message


def test_vote_outside_the_scheme_is_a_fault_of_its_lf_not_of_the_run(tmp_path):
    ws = _tiny_ws(tmp_path)
    before = run_labeling(ws, LabelConfig(scheme="spam", model="majority"))
    (ws.path / "lfs" / "z_bad.py").write_text(textwrap.dedent('''\
        from snorkel.labeling import labeling_function
        SCHEME = "spam"

        @labeling_function()
        def lf_third_class(x):
            return 2 if "meeting" in x.text else -1
    '''))
    result = run_labeling(ws, LabelConfig(scheme="spam", model="majority"))
    meeting = [f"t{i}" for i, (t, _) in enumerate(TEXTS) if "meeting" in t]
    assert result.faults == len(meeting) == 4
    row = next(s for s in result.lf_summary if s["lf"] == "lf_third_class")
    assert row["faults"] == 4 and row["fault_examples"] == meeting and row["coverage"] == 0
    assert "returned 2; expected a class index 0..1" in row["fault_message"]
    assert result.label_counts == before.label_counts       # the other LFs' labels stand
    stat = analyze(ws, "spam").lf("lf_third_class")
    assert stat.faults == 4 and "returned 2" in stat.fault_message


def test_plain_lf_returning_a_class_name_joins_the_run(tmp_path):
    ws = _tiny_ws(tmp_path)
    (ws.path / "lfs" / "plain.py").write_text(textwrap.dedent('''\
        SCHEME = "spam"

        def lf_question(x):
            return "ham" if "?" in x.text else None
    '''))
    lfs = load_lfs(ws, "spam")
    assert lfs.names[0] == "lf_question" and lfs.origins["lf_question"].endswith("plain.py")
    assert len(lfs.hashes["lf_question"]) == 64
    result = run_labeling(ws, LabelConfig(scheme="spam", model="majority"))
    assert result.faults == 0 and result.abstained == 0        # "lunch?" now gets a vote
    with ws.connect() as conn:
        assert get_labels(conn, "spam")["t4"].label == "ham"


def test_empty_workspace_and_no_run_yet(tmp_path):
    ws = _tiny_ws(tmp_path, texts=[])
    with pytest.raises(LabelingError, match="has no records"):
        run_labeling(ws, LabelConfig(scheme="spam"))
    with pytest.raises(LabelingError, match="no labeling run for scheme 'spam'"):
        analyze(ws, "spam")


def test_cli_label_json(tmp_path, capsys):
    from curate.cli import main

    ws = _tiny_ws(tmp_path)
    rc = main(["label", "--workspace", str(ws.path), "--scheme", "spam", "--model", "majority",
               "--json"])
    out = capsys.readouterr().out
    assert rc == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["scheme"] == "spam" and summary["n_lfs"] == 4 and summary["chosen"] == "majority"
    assert summary["label_model_accuracy"] is not None and summary["faults"] == 0
    assert "lf_meeting" in out and "majority vote" in out
    assert re.search(r"on \d+ gold records: label model [\d.]+% of covered \(\d+ of \d+\), "
                     r"[\d.]+% counting abstentions", out)
    assert "confusion (rows gold, columns majority)" in out and "abstain" in out
    assert summary["scores"]["majority"]["n_gold_total"] == summary["n_gold"]
    rc = main(["label", "--workspace", str(ws.path), "--scheme", "nope"])
    assert rc == 2
    assert "unknown scheme 'nope'" in capsys.readouterr().err


def test_embedding_lf_abstains_without_embeddings_and_votes_with_them(monkeypatch):
    import labeling_functions.claim_type as ct

    row = {"id": "a", "text": "x", "prompt": "x", "response": "", "raw_label": None}
    L, faults = apply_lfs([row, {**row, "embedding": None}], [ct.lf_nearest_exemplar],
                          ct.CLASSES)
    assert L.tolist() == [[-1], [-1]] and not faults
    # exemplar vectors: one-hot per class; a record vector close to class THEFT's
    k = len(ct.CLASSES)
    vecs = np.eye(k, dtype=np.float32).repeat(2, axis=0)
    monkeypatch.setattr(ct, "_EXEMPLAR_CACHE",
                        {"vectors": vecs, "classes": np.arange(k).repeat(2)})
    near_theft = np.array([0.1, 0, 0, 0.99, 0], dtype=np.float32)
    between = np.array([0.7, 0.7, 0, 0, 0], dtype=np.float32)
    L, _ = apply_lfs([{**row, "embedding": near_theft}, {**row, "embedding": between}],
                     [ct.lf_nearest_exemplar], ct.CLASSES)
    assert L.tolist() == [[ct.THEFT], [-1]]


@pytest.mark.slow
def test_sample_workspace_both_schemes(sample_ws):
    """The sample's two schemes label every record, and beat the legacy label on gold."""
    results = {s: run_labeling(sample_ws, LabelConfig(scheme=s, epochs=200))
               for s in ("claim_type", "summary_quality")}
    ct = results["claim_type"]
    assert ct.n_lfs >= 8 and results["summary_quality"].n_lfs >= 8
    assert ct.coverage > 0.95 and ct.n_gold > 100
    legacy = next(s for s in ct.lf_summary if s["lf"] == "lf_legacy_label")["emp_accuracy"]
    best = max(ct.label_model_accuracy, ct.majority_accuracy)
    assert best > legacy + 0.1
    sq = results["summary_quality"]
    assert max(sq.label_model_accuracy, sq.majority_accuracy) > 0.8
