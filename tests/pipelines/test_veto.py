"""Vetoes: hard rules that win over the label model, and the count of labels each changed."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.errors import ConfigError
from pipelines.filters import FilterConfig, run_quality_filters
from pipelines.store import NewRecord, Workspace, upsert_record, utcnow
from pipelines.store.labels import get_labels
from pipelines.weak_supervision import LabelConfig, run_labeling
from pipelines.weak_supervision.veto import Veto, apply_vetoes, collect_vetoes, veto

ACCEPT, REJECT = 0, 1

# 6 records x 3 LFs (-1 abstain); column 2 is the refusal detector.
L = np.array([
    [0, 0, -1],
    [0, 0, 1],     # two ACCEPT votes outvote the refusal
    [0, -1, 1],
    [-1, -1, -1],
    [1, 1, 1],
    [0, 0, -1],
])


def test_lf_veto_overrides_the_aggregate_and_counts_changes():
    labels = np.array([0, 0, 0, -1, 1, 0])
    conf = np.array([0.9, 0.8, 0.6, 0.0, 0.95, 0.9])
    out = apply_vetoes(labels, conf, L, [Veto("lf_refusal", lf_index=2)])
    assert out.labels.tolist() == [0, 1, 1, -1, 1, 0]
    assert out.confidence.tolist() == [0.9, 1.0, 1.0, 0.0, 1.0, 0.9]
    assert out.stats == {"lf_refusal": {"fired": 3, "changed": 2}}
    assert labels.tolist() == [0, 0, 0, -1, 1, 0]            # inputs untouched


def test_rule_veto_reads_signals_and_first_veto_wins():
    labels = np.array([0, 0, 0, 0, 0, 0])
    signals = [{"refusal": True}, {"refusal": True}, {"refusal": False}, {"refusal": True}, None, {}]
    vetoes = collect_vetoes([], [], ["ACCEPT", "REJECT"], {"refusal": "REJECT"})
    out = apply_vetoes(labels, np.ones(6), L, vetoes, signals)
    assert out.labels.tolist() == [1, 1, 0, 1, 0, 0]
    assert out.stats == {"rule: refusal": {"fired": 3, "changed": 3}}
    both = [Veto("lf_refusal", lf_index=2)] + vetoes
    out = apply_vetoes(labels, np.ones(6), L, both, signals)
    # record 1 is the LF veto's already: the rule changes records 0 and 3 only
    assert out.stats["rule: refusal"] == {"fired": 3, "changed": 2}


def test_bad_veto_config_is_one_line():
    with pytest.raises(ConfigError, match="'NOPE' is not a class"):
        collect_vetoes([], [], ["ACCEPT", "REJECT"], {"refusal": "NOPE"})
    with pytest.raises(ConfigError, match="unknown signal 'refusl'"):
        LabelConfig(vetoes={"refusl": "REJECT"})


LF_FILE = '''\
from snorkel.labeling import labeling_function
from pipelines.weak_supervision.veto import veto

SCHEME = "quality"


@labeling_function()
def lf_polite(x):
    return 0 if "please" in x.text or "happy" in x.text else -1


@labeling_function()
def lf_long(x):
    return 0 if len(x.text) > 20 else -1


@veto
@labeling_function()
def lf_refusal(x):
    return 1 if "cannot" in x.text else -1
'''


def test_veto_lf_wins_in_a_labeling_run(tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    ws.config_path.write_text("schema: text\nschemes:\n  quality:\n    classes: [ACCEPT, REJECT]\n"
                              "    lf_modules: []\n")
    (ws.path / "lfs" / "quality.py").write_text(LF_FILE)
    texts = ["happy to help, please ask", "please note I cannot do that for you",
             "short", "happy to explain the policy terms"]
    with ws.transaction() as conn:
        for i, t in enumerate(texts):
            upsert_record(conn, NewRecord(id=f"q{i}", kind="text", text=t, file="x", row=i + 1),
                          utcnow())
    res = run_labeling(ws, LabelConfig(scheme="quality", model="majority"))
    with ws.connect() as conn:
        labels = get_labels(conn, "quality")
    assert labels["q1"].label == "REJECT" and labels["q1"].confidence == 1.0
    assert labels["q0"].label == "ACCEPT"
    assert "veto lf_refusal: fired on 1 records, changed 1 labels" in res.notes

    run_quality_filters(ws, FilterConfig(rules=["length_words < 2"]))
    res = run_labeling(ws, LabelConfig(scheme="quality", model="majority",
                                       vetoes={"length_words < 2": "REJECT"}))
    with ws.connect() as conn:
        assert get_labels(conn, "quality")["q2"].label == "REJECT"
    assert "veto rule: length_words < 2: fired on 1 records, changed 1 labels" in res.notes
