"""Inter-annotator agreement for one scheme: percent agreement, Cohen's and Fleiss' kappa.

Open-source Label Studio does not compute agreement; we do it from the pulled annotations.
Input is a list of (item, annotator, label); only items with two or more labels count.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterable

__all__ = ["agreement"]


def agreement(ratings: Iterable[tuple[str, str, str]]) -> dict:
    """Agreement figures over the items labelled by at least two annotators.

    Returns:
        items: how many items had two or more labels.
        percent_agreement: mean over those items of the share of agreeing annotator pairs.
        fleiss_kappa: Fleiss' kappa (the variable-raters form: each item's own count).
        cohen_kappa: Cohen's kappa when exactly two annotators labelled the shared items
            (None otherwise).
        agreed: items whose labels were all the same.
        majority_share: mean over those items of the share of labels equal to the item's
            most common label (1.0 = unanimous; 0.5 = a 1-1 split of two).
    """
    by_item: dict[str, dict[str, str]] = defaultdict(dict)
    for item, rater, label in ratings:
        by_item[item][rater] = label  # one vote per annotator per item: their latest
    multi = {k: v for k, v in by_item.items() if len(v) >= 2}
    out = {"items": len(multi), "agreed": 0, "percent_agreement": None, "fleiss_kappa": None,
           "cohen_kappa": None, "majority_share": None}
    if not multi:
        return out
    shares, p_items, totals, majority = [], [], Counter(), []
    n_ratings = 0
    for votes in multi.values():
        counts = Counter(votes.values())
        n = len(votes)
        agree_pairs = sum(c * (c - 1) for c in counts.values())
        shares.append(agree_pairs / (n * (n - 1)))
        p_items.append(agree_pairs / (n * (n - 1)))
        totals.update(counts)
        majority.append(max(counts.values()) / n)
        n_ratings += n
        out["agreed"] += int(len(counts) == 1)
    p_bar = sum(p_items) / len(p_items)
    p_e = sum((c / n_ratings) ** 2 for c in totals.values())
    out["percent_agreement"] = round(sum(shares) / len(shares), 4)
    out["majority_share"] = round(sum(majority) / len(majority), 4)
    out["fleiss_kappa"] = round((p_bar - p_e) / (1 - p_e), 4) if p_e < 1 else 1.0
    raters = {r for v in multi.values() for r in v}
    if len(raters) == 2:
        a, b = sorted(raters)
        pairs = [(v[a], v[b]) for v in multi.values() if a in v and b in v]
        po = sum(x == y for x, y in pairs) / len(pairs)
        ca, cb = Counter(x for x, _ in pairs), Counter(y for _, y in pairs)
        pe = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / len(pairs) ** 2
        out["cohen_kappa"] = round((po - pe) / (1 - pe), 4) if pe < 1 else 1.0
    return out
