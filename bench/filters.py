"""Quality filters, PII detection and language identification: throughput and accuracy.

Usage:
    python bench/filters.py                     # 100,000 records, PII and language sets
    python bench/filters.py --n 10000 --json OUT.json
    options: --pii-per-type 300, --lang-per-language 200, --skip-throughput

1. Throughput: every filter together (`signals_for` with the default config: length,
   repetition, phrases, markup, mojibake, language, chat conditions) over N in-memory records
   made from the sample data (text, instruction and chat kinds, with refusals, markup, mojibake
   and repeated lines mixed in); the baseline in the same process is a bare `len(text.split())`
   pass. Then each filter alone on a tenth of the records, and PII `detect` over all N.
   Peak RSS is this process's (ru_maxrss).
2. PII: per type, precision and recall on generated sentences where each value is embedded in
   realistic text next to look-alikes that are not PII (order numbers, 16-digit references,
   dates, times, version strings, policy ids, money, street names). A detection is right when
   its type and text equal the embedded value's. Person names come from two sources: Faker's
   locales (the gazetteer's own lists: optimistic) and the sample generator's name lists
   (held out: not read by the detector).
3. Language ID: accuracy of `py3langid` on short texts (3-12 words of each locale's Faker word
   list: real words, not natural sentences) in 11 languages, by length.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.filters import FILTERS, FilterConfig, signals_for  # noqa: E402
from pipelines.pii import PII_TYPES, detect  # noqa: E402
from pipelines.records import Record, Turn  # noqa: E402


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _generator():
    spec = importlib.util.spec_from_file_location("sample_generate", ROOT / "sample_data" / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# -- 1. throughput ---------------------------------------------------------------------------
def make_records(n: int, seed: int = 7) -> list[Record]:
    import csv

    rng = random.Random(seed)
    with open(ROOT / "sample_data" / "claims.csv", encoding="utf-8") as fh:
        base = [(r["note"], r["summary"]) for r in csv.DictReader(fh)]
    noise = ["I'm sorry, but I cannot help with that.", "<p>See&nbsp;attached</p>",
             "The caf\u00c3\u00a9 was closed", "Click here to subscribe to our newsletter."]
    out = []
    for i in range(n):
        note, summary = base[i % len(base)]
        if rng.random() < 0.1:
            summary = rng.choice(noise) + " " + summary
        if rng.random() < 0.05:
            note = "\n".join([note.split(".")[0]] * 4)
        k = i % 3
        rid = f"b{i:07d}"
        if k == 0:
            out.append(Record(id=rid, kind="text", text=f"{note}\n\n{summary}"))
        elif k == 1:
            out.append(Record(id=rid, kind="instruction", text=f"{note}\n\n{summary}",
                              prompt=note, response=summary))
        else:
            turns = (Turn("user", note), Turn("assistant", summary))
            out.append(Record(id=rid, kind="chat", text="", turns=turns,
                              meta={"conditions": {"ends_on_user": True}} if i % 50 == 0 else {}))
    return out


def throughput(n: int) -> dict:
    recs = make_records(n)
    t0 = time.perf_counter()
    _ = sum(len((r.text or "").split()) for r in recs)
    base = time.perf_counter() - t0
    cfg = FilterConfig()
    signals_for(recs[:10], cfg, ROOT)                      # load the language model
    t0 = time.perf_counter()
    rows = signals_for(recs, cfg, ROOT)
    all_s = time.perf_counter() - t0
    fired = defaultdict(int)
    for r in rows:
        for rule in r.fired:
            fired[rule] += 1
    per_filter = {}
    sub = recs[: max(1000, n // 10)]
    for name in FILTERS:
        only = FilterConfig(rules=[], disabled=[f for f in FILTERS if f != name])
        t0 = time.perf_counter()
        signals_for(sub, only, ROOT)
        per_filter[name] = round(len(sub) / (time.perf_counter() - t0))
    t0 = time.perf_counter()
    n_spans = sum(len(detect(r.text or "\n".join(t.content for t in r.turns))) for r in recs)
    pii_s = time.perf_counter() - t0
    return {"records": n, "all_filters_rows_s": round(n / all_s), "all_filters_s": round(all_s, 1),
            "baseline_split_rows_s": round(n / base), "ratio_vs_baseline": round(all_s / base, 1),
            "per_filter_rows_s": per_filter, "fired": dict(fired),
            "pii_rows_s": round(n / pii_s), "pii_spans": n_spans, "peak_rss_mb": round(_rss_mb())}


# -- 2. PII ----------------------------------------------------------------------------------
TEMPLATES = [
    "Order {order} was shipped on {date}; if anything is wrong, {pii} is how to reach the customer.",
    "Per the note from {date} (ticket {ref}), the value on file is {pii}, see version {ver}.",
    "Customer Service logged {pii} at {time} against policy {ref}; amount {money}.",
    "Please update the record: {pii}. Reference {long}, build {ver}, {street}.",
]


def _lookalikes(rng: random.Random, fake) -> dict[str, str]:
    return {
        "order": f"ORD-{rng.randint(2020, 2026)}-{rng.randint(10000, 99999)}",
        "date": rng.choice([fake.date(), fake.date(pattern="%m/%d/%Y"), fake.date(pattern="%d.%m.%Y")]),
        "ref": f"POL-{rng.choice(['IL', 'OH', 'CO'])}-{rng.randint(10000, 99999)}",
        "ver": rng.choice([f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}",
                           f"v{rng.randint(1, 12)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}",
                           f"version {rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(1, 99)}"]),
        "time": f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
        "money": f"${rng.randint(100, 99999):,}.00",
        "long": " ".join(f"{rng.randint(0, 9999):04d}" for _ in range(4)),
        "street": f"{rng.randint(1, 999)} {rng.choice(['Grant', 'Jackson', 'Lincoln', 'Elm'])} Street",
    }


def pii_set(per_type: int, seed: int = 11) -> list[tuple[str, str, str]]:
    """(sentence, type, value) triples; the value's type is the only PII in the sentence."""
    from faker import Faker

    gen = _generator()
    held_first = [f for f, _ in gen.FIRST_NAMES]
    held_last = list(gen.LAST_NAMES)
    rng = random.Random(seed)
    fakers = {loc: Faker(loc) for loc in ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT")}
    for i, f in enumerate(fakers.values()):
        f.seed_instance(seed + i)
    us = fakers["en_US"]

    def value(kind: str) -> str:
        if kind == "EMAIL":
            return us.email()
        if kind == "PHONE":
            return rng.choice([us.numerify("(%##) ###-####"), us.numerify("%##-###-####"),
                               us.numerify("%##.###.####"), us.numerify("+1 %##-###-####"),
                               us.numerify("+44 20 #### ####"), us.numerify("+49 30 #### ####"),
                               us.numerify("+33 1 ## ## ## ##")])
        if kind == "CREDIT_CARD":
            num = us.credit_card_number(rng.choice(["visa16", "mastercard", "amex", "discover"]))
            return " ".join(num[i:i + 4] for i in range(0, len(num), 4)) if rng.random() < 0.5 else num
        if kind == "IBAN":
            iban = rng.choice([fakers["en_GB"], fakers["de_DE"], fakers["fr_FR"], fakers["es_ES"]]).iban()
            return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4)) if rng.random() < 0.5 else iban
        if kind == "SSN":
            return us.ssn()
        if kind == "IP_ADDRESS":
            return us.ipv4() if rng.random() < 0.7 else us.ipv6()
        if kind == "URL_CREDENTIALS":
            return f"https://{us.user_name()}:{us.password(special_chars=False)}@{us.domain_name()}/{us.uri_path()}"
        if kind == "PERSON_faker":
            f = rng.choice(list(fakers.values()))
            return f"{f.first_name()} {f.last_name()}"
        if kind == "PERSON_heldout":
            return f"{rng.choice(held_first)} {rng.choice(held_last)}"
        raise ValueError(kind)

    kinds = [t for t in PII_TYPES if t != "PERSON"] + ["PERSON_faker", "PERSON_heldout"]
    out = []
    for kind in kinds:
        for _ in range(per_type):
            v = value(kind)
            s = rng.choice(TEMPLATES).format(pii=v, **_lookalikes(rng, us))
            out.append((s, kind, v))
    for _ in range(per_type):      # sentences with look-alikes only
        out.append((rng.choice(TEMPLATES).format(pii="the usual contact", **_lookalikes(rng, us)),
                    "NONE", ""))
    return out


def pii_scores(per_type: int) -> dict:
    data = pii_set(per_type)
    tp, fn = defaultdict(int), defaultdict(int)
    fp: dict[str, int] = defaultdict(int)
    fp_examples: dict[str, list[str]] = defaultdict(list)
    fn_examples: dict[str, list[str]] = defaultdict(list)
    for sentence, kind, value in data:
        gold_type = kind.split("_")[0] if kind.startswith("PERSON") else kind
        found = detect(sentence)
        hit = False
        for s in found:
            if kind != "NONE" and s.type == gold_type and s.value == value:
                hit = True
                tp[kind] += 1
            else:
                fp[s.type] += 1
                if len(fp_examples[s.type]) < 3:
                    fp_examples[s.type].append(s.value)
        if kind != "NONE" and not hit:
            fn[kind] += 1
            if len(fn_examples[kind]) < 3:
                fn_examples[kind].append(value)
    table = {}
    for kind in sorted({k for _, k, _ in data} - {"NONE"}):
        gold_type = "PERSON" if kind.startswith("PERSON") else kind
        recall = tp[kind] / (tp[kind] + fn[kind])
        table[kind] = {"recall": round(recall, 3), "n": tp[kind] + fn[kind],
                       "missed": fn_examples.get(kind, [])}
    for t in PII_TYPES:
        t_tp = sum(v for k, v in tp.items() if (k.split("_")[0] if k.startswith("PERSON") else k) == t)
        prec = t_tp / (t_tp + fp[t]) if t_tp + fp[t] else None
        for kind in table:
            if (kind.split("_")[0] if kind.startswith("PERSON") else kind) == t:
                table[kind]["precision"] = round(prec, 3) if prec is not None else None
                table[kind]["false_positives"] = fp[t]
                table[kind]["fp_examples"] = fp_examples.get(t, [])
    return {"sentences": len(data), "per_type": table}


# -- 3. language ID --------------------------------------------------------------------------
LANG_LOCALES = {"en": "en_US", "de": "de_DE", "fr": "fr_FR", "es": "es_ES", "it": "it_IT",
                "nl": "nl_NL", "pl": "pl_PL", "ru": "ru_RU", "cs": "cs_CZ", "ja": "ja_JP",
                "zh": "zh_CN"}


def lang_scores(per_language: int) -> dict:
    from faker import Faker

    from pipelines.filters.signals import language

    rng = random.Random(5)
    right = defaultdict(int)
    total = defaultdict(int)
    by_len = defaultdict(lambda: [0, 0])
    for code, loc in LANG_LOCALES.items():
        f = Faker(loc)
        f.seed_instance(3)
        for _ in range(per_language):
            n = rng.randint(3, 12)
            text = f.sentence(nb_words=n, variable_nb_words=False)
            ok = language(text)[0] == code
            right[code] += ok
            total[code] += 1
            bucket = "3-5 words" if n <= 5 else ("6-8 words" if n <= 8 else "9-12 words")
            by_len[bucket][0] += ok
            by_len[bucket][1] += 1
    return {"accuracy": round(sum(right.values()) / sum(total.values()), 3),
            "per_language": {c: round(right[c] / total[c], 3) for c in LANG_LOCALES},
            "by_length": {b: round(r / t, 3) for b, (r, t) in sorted(by_len.items())}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--pii-per-type", type=int, default=300)
    ap.add_argument("--lang-per-language", type=int, default=200)
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    out: dict = {}
    if not args.skip_throughput:
        t = out["throughput"] = throughput(args.n)
        print(f"throughput on {t['records']:,} records: all filters {t['all_filters_rows_s']:,} rows/s "
              f"({t['all_filters_s']} s; {t['ratio_vs_baseline']}x a bare split pass at "
              f"{t['baseline_split_rows_s']:,} rows/s); PII detect {t['pii_rows_s']:,} rows/s; "
              f"peak RSS {t['peak_rss_mb']} MB")
        print("  per filter alone (rows/s): " + ", ".join(f"{k} {v:,}" for k, v in t["per_filter_rows_s"].items()))
        print(f"  default rules fired: {t['fired']}")
    p = out["pii"] = pii_scores(args.pii_per_type)
    print(f"\nPII on {p['sentences']} generated sentences")
    print(f"{'type':<18} {'recall':>7} {'precision':>9} {'FP':>4}  missed / false positives (examples)")
    for kind, r in p["per_type"].items():
        print(f"{kind:<18} {r['recall']:>7.3f} {r['precision'] if r['precision'] is not None else '-':>9} "
              f"{r['false_positives']:>4}  {r['missed'][:2]} / {r['fp_examples'][:2]}")
    lang = out["language"] = lang_scores(args.lang_per_language)
    print(f"\nlanguage ID accuracy {lang['accuracy']:.3f}; by length {lang['by_length']}")
    print("  per language: " + ", ".join(f"{k} {v:.2f}" for k, v in lang["per_language"].items()))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
