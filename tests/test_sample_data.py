"""Checks on the committed sample data (sample_data/) against its generator and ground truth.

stdlib + pytest only. The generator is imported from its file path (sample_data is not a package).
"""
from __future__ import annotations

import csv
import importlib.util
import json
import re
import sys
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "sample_data"


def _load_generator():
    spec = importlib.util.spec_from_file_location("sample_data_generate", DATA / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


gen = _load_generator()

PHONE_RE = re.compile(r"\(?\b\d{3}\)?[ .-]\d{3}[.-]\d{4}\b")
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
STATE_IN_SUMMARY_RE = re.compile(r", ([A-Z]{2})\b")


def norm(s):
    return " ".join(unicodedata.normalize("NFC", s or "").split())


def word_in(word, text):
    return re.search(r"(?<![^\W\d_])" + re.escape(word) + r"(?![^\W\d_])", text, re.IGNORECASE) is not None


@pytest.fixture(scope="module")
def data():
    with open(DATA / gen.CSV_FILE, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        csv_rows = [dict(zip(header, r)) for r in reader]
    with open(DATA / gen.JSONL_FILE, encoding="utf-8") as fh:
        jsonl_rows = [json.loads(line) for line in fh]
    with open(DATA / gen.TRUTH_FILE, encoding="utf-8") as fh:
        truth = [json.loads(line) for line in fh]
    rows = [dict(r, _file=gen.CSV_FILE, _row=i + 1) for i, r in enumerate(csv_rows)]
    rows += [dict(r, _file=gen.JSONL_FILE, _row=i + 1) for i, r in enumerate(jsonl_rows)]
    by_loc = {(r["_file"], r["_row"]): r for r in rows}
    return {"header": header, "csv": csv_rows, "jsonl": jsonl_rows, "rows": rows,
            "truth": truth, "by_loc": by_loc}


def _pairs(data, flaw=None):
    for r, t in zip(data["rows"], data["truth"]):
        if flaw is None or flaw in t["flaws"]:
            yield r, t


def _ref(data, loc):
    return data["by_loc"][(loc["file"], loc["row"])]


# ---------------------------------------------------------------- determinism & files ----

def test_regenerates_byte_identical(tmp_path):
    gen.write(str(tmp_path), seed=gen.SEED, n=gen.N_ROWS)
    for name in gen.OUTPUT_FILES:
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), \
            f"{name} differs from a fresh run of generate.py; rerun it and commit the output"


def test_other_seed_differs():
    a = gen.render_files(gen.generate(seed=1, n=300))
    b = gen.render_files(gen.generate(seed=2, n=300))
    assert a[gen.CSV_FILE] != b[gen.CSV_FILE]


def test_total_size_under_3mb():
    total = sum((DATA / n).stat().st_size for n in gen.OUTPUT_FILES)
    assert total < 3 * 1024 * 1024


def test_schema(data):
    assert tuple(data["header"]) == gen.COLUMNS
    for obj in data["jsonl"]:
        assert tuple(obj) == gen.COLUMNS
        assert all(v is None or isinstance(v, str) for v in obj.values())
    n = len(data["rows"])
    assert n == gen.N_ROWS
    assert abs(len(data["csv"]) / n - gen.CSV_FRACTION) < 0.01
    for r in data["rows"]:
        assert re.fullmatch(r"CLM-2026-\d{6}", r["claim_id"])
        assert re.fullmatch(r"POL-[A-Z]{2}-\d{5}", r["policy_id"])
        assert r["policy_id"][4:6] == r["state"] and r["state"] in gen.STATES
        assert re.fullmatch(r"2026-\d\d-\d\d", r["claim_date"])
        assert re.fullmatch(r"\d{1,3}(,\d{3})*\.\d\d", r["amount"])
        assert r["claim_type"] in gen.CLAIM_TYPES


def test_curation_yaml():
    text = (DATA / gen.CONFIG_FILE).read_text(encoding="utf-8")
    for needle in ("schema: instruction", "prompt: note", "response: summary", "label: claim_type",
                   "gold_prefix: gold_", "- claims.csv", "- claims_batch2.jsonl",
                   "classes: [auto_collision, property_water, property_fire, theft, medical_injury]",
                   "lf_modules: [labeling_functions.claim_type]", "classes: [ACCEPT, REJECT]",
                   "lf_modules: [labeling_functions.summary_quality]", "system_prompt:"):
        assert needle in text, needle


def test_readme_stats_match_generator():
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- stats:begin -->\s*```json\n(.*?)```\s*<!-- stats:end -->", readme, re.S)
    assert m, "README.md must embed the output of generate.py --stats"
    assert json.loads(m.group(1)) == gen.stats(gen.SEED, gen.N_ROWS)


# ---------------------------------------------------------------- truth ↔ data ----------

def test_truth_matches_rows_one_to_one(data):
    truth, rows = data["truth"], data["rows"]
    assert len(truth) == len(rows)
    for r, t in zip(rows, truth):
        assert (t["file"], t["row"]) == (r["_file"], r["_row"])
        assert t["claim_id"] == r["claim_id"]
        assert t["true_claim_type"] in gen.CLAIM_TYPES
        assert t["true_summary_quality"] in gen.QUALITY_CLASSES
        assert t["raw_label_correct"] == (r["claim_type"] == t["true_claim_type"])
        assert set(t["flaws"]) <= set(gen.FLAWS)
        reject = any(f in gen.REJECT_FLAWS for f in t["flaws"])
        assert t["true_summary_quality"] == ("REJECT" if reject else "ACCEPT")
        assert (t["duplicate_of"] is not None) == bool(
            {"exact_duplicate", "near_duplicate"} & set(t["flaws"]))
        assert (t["resembles"] is not None) == ("hard_negative" in t["flaws"])


def test_claim_ids_unique_per_distinct_claim(data):
    seen = {}
    for r, t in _pairs(data):
        if t["duplicate_of"] is None:
            assert r["claim_id"] not in seen, r["claim_id"]
            seen[r["claim_id"]] = True
        else:
            assert _ref(data, t["duplicate_of"])["claim_id"] == r["claim_id"]


def test_gold_rows(data):
    n = len(data["rows"])
    gold = [t for t in data["truth"] if t["is_gold"]]
    assert abs(len(gold) / n - gen.GOLD_FRACTION) <= 0.02
    for r, t in _pairs(data):
        blank = "" if r["_file"] == gen.CSV_FILE else None
        if t["is_gold"]:
            assert r["gold_claim_type"] == t["true_claim_type"]
            assert r["gold_summary_quality"] == t["true_summary_quality"]
        else:
            assert r["gold_claim_type"] == blank and r["gold_summary_quality"] == blank


def test_five_claim_types_present(data):
    assert {t["true_claim_type"] for t in data["truth"]} == set(gen.CLAIM_TYPES)
    assert {r["claim_type"] for r in data["rows"]} == set(gen.CLAIM_TYPES)
    assert {r["gold_claim_type"] for r in data["rows"] if r["gold_claim_type"]} == set(gen.CLAIM_TYPES)


# ---------------------------------------------------------------- rates -----------------

def test_flaw_rates_within_tolerance(data):
    n = len(data["truth"])
    for flaw, rate in gen.RATES.items():
        got = sum(1 for t in data["truth"] if flaw in t["flaws"]) / n
        assert abs(got - rate) <= max(0.005, 0.2 * rate), (flaw, got, rate)
    halluc = sum(1 for t in data["truth"]
                 if {"hallucinated_amount", "hallucinated_name"} & set(t["flaws"])) / n
    assert abs(halluc - gen.HALLUCINATED_RATE) <= 0.02


def test_label_noise_rate(data):
    truth = data["truth"]
    wrong = [t for t in truth if not t["raw_label_correct"]]
    assert abs(len(wrong) / len(truth) - gen.LABEL_NOISE_TARGET) <= 0.03
    # both systematic and random noise are present and each wrong row says which it is
    assert all(t["label_noise"] in ("systematic", "random") for t in wrong)
    assert all(t["label_noise"] is None for t in truth if t["raw_label_correct"])
    kinds = {t["label_noise"] for t in wrong}
    assert kinds == {"systematic", "random"}
    # systematic noise follows SYSTEMATIC_CONFUSIONS
    for r, t in _pairs(data):
        if t["label_noise"] == "systematic":
            assert gen.SYSTEMATIC_CONFUSIONS[t["scenario"]][0] == r["claim_type"]
    # theft from vehicles is often labelled auto_collision
    breakins = [(r, t) for r, t in _pairs(data) if t["scenario"] == "theft/vehicle_breakin"]
    share = sum(1 for r, _ in breakins if r["claim_type"] == "auto_collision") / len(breakins)
    assert share > 0.4


# ---------------------------------------------------------------- flaws -----------------

def test_hallucinated_summaries_have_absent_amount_or_name(data):
    count = 0
    for r, t in _pairs(data):
        if "hallucinated_amount" in t["flaws"]:
            count += 1
            note_amounts = set(gen.parse_amounts(r["note"]))
            sum_amounts = gen.parse_amounts(r["summary"])
            assert sum_amounts and any(a not in note_amounts for a in sum_amounts), r
            assert t["details"]["hallucinated"] in r["summary"]
        if "hallucinated_name" in t["flaws"]:
            count += 1
            fake = t["details"]["hallucinated"]
            assert fake in r["summary"]
            first, last = fake.split(" ", 1)
            assert not word_in(first, r["note"]) and not word_in(last, r["note"]), r
    assert count > 0


def test_exact_duplicates_normalise_to_original(data):
    cross = variants = 0
    for r, t in _pairs(data, "exact_duplicate"):
        orig = _ref(data, t["duplicate_of"])
        assert norm(r["note"]) == norm(orig["note"]) and norm(r["summary"]) == norm(orig["summary"])
        for c in ("claim_id", "policy_id", "state", "claim_date", "amount", "adjuster", "claim_type"):
            assert r[c] == orig[c]
        cross += t["duplicate_of"]["file"] != t["file"]
        variants += (r["note"], r["summary"]) != (orig["note"], orig["summary"])
    assert cross > 0, "some exact duplicates must cross files"
    assert variants > 0, "some exact duplicates must differ only in whitespace / unicode form"


def test_originals_are_earlier_clean_rows(data):
    order = {(t["file"], t["row"]): i for i, t in enumerate(data["truth"])}
    for r, t in _pairs(data):
        for key in ("duplicate_of", "resembles"):
            if t[key]:
                src = (t[key]["file"], t[key]["row"])
                assert order[src] < order[(t["file"], t["row"])]
                assert data["truth"][order[src]]["flaws"] == []


def test_near_duplicates_differ_but_share_facts(data):
    n = 0
    for r, t in _pairs(data, "near_duplicate"):
        n += 1
        orig = _ref(data, t["duplicate_of"])
        assert (norm(r["note"]), norm(r["summary"])) != (norm(orig["note"]), norm(orig["summary"]))
        for c in ("claim_id", "policy_id", "state", "claim_date", "amount", "adjuster"):
            assert r[c] == orig[c]
        cents = int(r["amount"].replace(",", "").replace(".", ""))
        assert cents in gen.parse_amounts(r["note"])
        assert cents in gen.parse_amounts(r["summary"])
    assert n > 0


def test_hard_negatives_differ_in_facts(data):
    for r, t in _pairs(data, "hard_negative"):
        src = _ref(data, t["resembles"])
        assert r["claim_id"] != src["claim_id"]
        assert r["amount"] != src["amount"] and r["claim_date"] != src["claim_date"]
        assert norm(r["note"]) != norm(src["note"])
        src_truth = next(x for x in data["truth"]
                         if (x["file"], x["row"]) == (t["resembles"]["file"], t["resembles"]["row"]))
        assert src_truth["true_claim_type"] == t["true_claim_type"]
        assert src_truth["scenario"] == t["scenario"]


def test_pii(data):
    for r, t in _pairs(data):
        if "pii_in_note" in t["flaws"]:
            assert t["details"]["pii"] and all(p in r["note"] for p in t["details"]["pii"])
        else:
            assert not PHONE_RE.search(r["note"]) and not EMAIL_RE.search(r["note"]), r["note"]
        if "pii_in_summary" in t["flaws"]:
            assert "pii_in_note" in t["flaws"]
            leaked = t["details"]["pii_summary"]
            assert leaked and all(p in r["summary"] and p in r["note"] for p in leaked)
        elif "copies_note" not in t["flaws"]:
            assert not PHONE_RE.search(r["summary"]) and not EMAIL_RE.search(r["summary"])


def test_wrong_state(data):
    for r, t in _pairs(data):
        codes = [c for c in STATE_IN_SUMMARY_RE.findall(r["summary"]) if c in gen.STATES]
        if "wrong_state" in t["flaws"]:
            assert codes and all(c != r["state"] for c in codes)
            assert t["details"]["summary_state"] in codes
        elif t["true_summary_quality"] == "ACCEPT":
            assert codes == [r["state"]], r["summary"]


def test_empty_short_and_copies(data):
    for r, t in _pairs(data):
        if "empty" in t["flaws"]:
            assert r["note"] == "" or r["summary"] == ""
        elif "too_short" in t["flaws"]:
            assert min(len(r["note"].split()), len(r["summary"].split())) < 4
        else:
            assert len(r["note"].split()) >= 10 and len(r["summary"].split()) >= 6
        if "copies_note" in t["flaws"]:
            assert r["summary"] == r["note"]


_SENT_SPLIT = re.compile(r"(?<!\bMr\.)(?<!\bMs\.)(?<!\b[A-Z]\.)(?<=[.!?])\s+(?=[A-Z$])")


def test_clean_rows_are_realistic(data):
    for r, t in _pairs(data):
        if t["flaws"] and t["flaws"] != ["pii_in_note"]:
            continue
        sents = _SENT_SPLIT.split(r["note"])
        assert 2 <= len(sents) <= 5, r["note"]
        assert r["policy_id"] in r["note"]
        assert int(r["amount"].replace(",", "").replace(".", "")) in gen.parse_amounts(r["note"])
        assert int(r["amount"].replace(",", "").replace(".", "")) in gen.parse_amounts(r["summary"])
        assert norm(r["summary"]) != norm(r["note"])
