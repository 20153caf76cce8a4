"""pipelines.metrics: every figure below is worked out by hand in the comments."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pipelines.metrics import (
    ClassificationReport, accuracy, classification_report, confusion_matrix, macro_f1, mean_ci,
    t_975,
)

CLASSES = ["A", "B", "C"]
#         0    1    2    3    4    5
TRUE = ["A", "A", "A", "B", "B", "C"]
PRED = ["A", "A", "B", "B", "C", "C"]
# A: tp 2, predicted 2, true 3 -> P 1,   R 2/3, F1 2*2/(2+3) = 0.8
# B: tp 1, predicted 2, true 2 -> P 1/2, R 1/2, F1 2*1/(2+2) = 0.5
# C: tp 1, predicted 2, true 1 -> P 1/2, R 1,   F1 2*1/(2+1) = 2/3
# accuracy: rows 0, 1, 3, 5 right = 4/6; macro-F1 (0.8 + 0.5 + 2/3) / 3 = 0.65556


def test_report_by_hand():
    r = classification_report(TRUE, PRED, CLASSES)
    assert r.n == 6
    assert r.accuracy == pytest.approx(4 / 6)
    assert r.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert r.classes == CLASSES
    a, b, c = (r.per_class[k] for k in CLASSES)
    assert (a.precision, a.recall, a.f1, a.support) == pytest.approx((1.0, 2 / 3, 0.8, 3))
    assert (b.precision, b.recall, b.f1, b.support) == pytest.approx((0.5, 0.5, 0.5, 2))
    assert (c.precision, c.recall, c.f1, c.support) == pytest.approx((0.5, 1.0, 2 / 3, 1))
    # rows: true A, B, C; columns: predicted A, B, C
    assert r.confusion == [[2, 1, 0],
                           [0, 1, 1],
                           [0, 0, 1]]
    assert confusion_matrix(TRUE, PRED, CLASSES).tolist() == r.confusion
    assert accuracy(TRUE, PRED) == pytest.approx(4 / 6)
    assert macro_f1(TRUE, PRED, CLASSES) == pytest.approx(0.655556, abs=1e-6)


def test_a_class_never_seen_scores_zero_in_the_macro_average():
    # D is neither true nor predicted: F1 0, so the mean is over 4 classes
    assert macro_f1(TRUE, PRED, [*CLASSES, "D"]) == pytest.approx((0.8 + 0.5 + 2 / 3) / 4)
    r = classification_report(TRUE, PRED, [*CLASSES, "D"])
    assert r.per_class["D"].support == 0 and r.per_class["D"].precision == 0.0
    assert r.confusion[3] == [0, 0, 0, 0]


def test_matches_sklearn():
    from sklearn.metrics import (accuracy_score, f1_score, precision_recall_fscore_support)

    rng = np.random.default_rng(0)
    for _ in range(5):
        t = rng.choice(CLASSES, 40).tolist()
        p = rng.choice(CLASSES, 40).tolist()
        labels = [*CLASSES, "D"]
        r = classification_report(t, p, labels)
        assert r.accuracy == pytest.approx(accuracy_score(t, p))
        assert r.macro_f1 == pytest.approx(
            f1_score(t, p, labels=labels, average="macro", zero_division=0))
        prec, rec, f1, sup = precision_recall_fscore_support(t, p, labels=labels,
                                                             zero_division=0)
        for i, k in enumerate(labels):
            s = r.per_class[k]
            assert (s.precision, s.recall, s.f1, s.support) == pytest.approx(
                (prec[i], rec[i], f1[i], sup[i]))


def test_a_label_outside_the_classes_still_counts():
    # row 1: true X (not a class), predicted A -> wrong, and a false positive for A
    r = classification_report(["A", "X"], ["A", "A"], ["A"])
    assert r.accuracy == 0.5
    assert r.per_class["A"].precision == 0.5 and r.per_class["A"].f1 == pytest.approx(2 / 3)
    assert r.confusion == [[1]]   # only pairs inside the classes


def test_class_indices_and_default_classes():
    # label-matrix style: class indices; default classes are the sorted labels seen
    r = classification_report(np.array([0, 1, 1]), np.array([0, 1, 0]))
    assert r.classes == [0, 1] and r.accuracy == pytest.approx(2 / 3)
    assert r.confusion == [[1, 0], [1, 1]]
    d = r.to_dict()
    assert list(d["per_class"]) == ["0", "1"]
    json.dumps(d)   # JSON-ready: no numpy scalars


def test_empty_and_bad_input():
    r = classification_report([], [], CLASSES)
    assert (r.n, r.accuracy, r.macro_f1) == (0, None, None)
    assert r.confusion == [[0] * 3] * 3
    assert accuracy([], []) is None
    with pytest.raises(ValueError, match="2 labels vs 1 predictions"):
        accuracy(["A", "B"], ["A"])
    with pytest.raises(ValueError, match="repeat"):
        classification_report(["A"], ["A"], ["A", "A"])


def test_to_dict_rounds_and_keeps_order():
    d = classification_report(TRUE, PRED, CLASSES).to_dict()
    assert d == {
        "n": 6, "accuracy": 0.6667, "macro_f1": 0.6556,
        "per_class": {"A": {"precision": 1.0, "recall": 0.6667, "f1": 0.8, "support": 3},
                      "B": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
                      "C": {"precision": 0.5, "recall": 1.0, "f1": 0.6667, "support": 1}},
        "confusion": [[2, 1, 0], [0, 1, 1], [0, 0, 1]]}
    assert ClassificationReport(0, None, None).to_dict()["accuracy"] is None


def test_mean_ci_over_seeds():
    # mean 0.82, sd 0.02, t(2) = 4.303: half-width 4.303 * 0.02 / sqrt(3) = 0.04969
    mean, ci = mean_ci([0.8, 0.82, 0.84])
    half = 4.303 * 0.02 / math.sqrt(3)
    assert mean == pytest.approx(0.82)
    assert ci == pytest.approx([0.82 - half, 0.82 + half])
    assert mean_ci([0.5]) == (0.5, [0.5, 0.5])
    # near 1 the interval is clamped to [0, 1]; a loss is not
    mean, ci = mean_ci([0.98, 1.0, 1.0])
    assert ci[1] == 1.0 and ci[0] == pytest.approx(mean - 4.303 * math.sqrt(4e-4 / 3) / math.sqrt(3))
    _, ci = mean_ci([2.0, 2.2], bounds=None)   # sd 0.1414, t(1) = 12.706: half 1.2706
    assert ci == pytest.approx([2.1 - 1.2706, 2.1 + 1.2706])
    with pytest.raises(ValueError):
        mean_ci([])


def test_t_quantiles():
    assert t_975(2) == 4.303 and t_975(30) == 2.042
    assert t_975(12) == 2.228   # between tabulated values: the wider one below
    assert t_975(31) == 1.96
    with pytest.raises(ValueError):
        t_975(0)
