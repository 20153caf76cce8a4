"""From a verified pair graph to clusters: stars (no chaining), then one member row per record.

Pure functions: `find_stars` picks centres, `member_rows` lays out what `dedup_members` stores.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Callable

from pipelines.dedup.pairs import PairCheck, PairGraph, Unit
from pipelines.store.dedup import MemberRow

__all__ = ["Star", "find_stars", "member_rows"]


@dataclass
class Star:
    """A semantic cluster: a centre unit and the units verified against that centre itself."""

    centre: int                                  # unit index
    members: list[tuple[int, PairCheck]]   # (unit index, check against the centre), best first


def find_stars(units: list[Unit], graph: PairGraph, fact_size: Callable[[int], int]) -> list[Star]:
    """Greedy stars over the merged semantic pairs, so A~B and B~C never glue A to C.

    Centres by degree (verified duplicate of the most others), then most sources, most facts
    (`fact_size(unit index)`), earliest ingested; members by cosine to the centre, then earliest.
    A unit already in a star joins no other.
    """
    unit_of = {u.id: i for i, u in enumerate(units)}
    adj: dict[int, dict[int, PairCheck]] = defaultdict(dict)
    for p in graph.semantic():
        if p.merged:
            i, j = unit_of[p.a], unit_of[p.b]
            adj[i][j] = adj[j][i] = p.check
    head = [u.head for u in units]
    order = sorted(adj, key=lambda u: (-len(adj[u]), -head[u]["n_sources"], -fact_size(u),
                                       head[u]["pos"]))
    assigned: set[int] = set()
    stars: list[Star] = []
    for u in order:
        if u in assigned:
            continue
        members = sorted((v for v in adj[u] if v not in assigned),
                         key=lambda v: (-_score(adj[u][v]), head[v]["pos"]))
        if not members:
            continue
        assigned.add(u)
        assigned.update(members)
        stars.append(Star(u, [(v, adj[u][v]) for v in members]))
    return stars


def _score(check: PairCheck) -> float:
    """A member's similarity to its centre: the cosine, or the lexical Jaccard without vectors."""
    if check.cosine is not None:
        return check.cosine
    return check.lexical or 0.0


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _centre_rows(unit: Unit, cluster_id: str, rank: int,
                 prompt_checks: dict[str, PairCheck]) -> list[MemberRow]:
    """The centre's unit: its head, its exact copies, its same-prompt copies (with their checks;
    a distinct response is `review`: kept for a person to choose)."""
    rows = [MemberRow(unit.id, cluster_id, rank, "centre", 1.0)]
    for rec, level in unit.copies:
        rank += 1
        if level == "same_prompt":
            c = prompt_checks[rec["id"]]
            rows.append(MemberRow(rec["id"], cluster_id, rank, level, _round(_score(c)),
                                  _round(c.lexical), c.facts, c.shared,
                                  c.rule if c.merged else "review"))
        else:
            rows.append(MemberRow(rec["id"], cluster_id, rank, level, 1.0, None, None, None, level))
    return rows


def _member_rows(unit: Unit, cluster_id: str, rank: int, check: PairCheck) -> list[MemberRow]:
    """A semantic member's unit: its head with the scores against the centre; its copies go where
    their head goes, with the same scores."""
    head = MemberRow(unit.id, cluster_id, rank, "semantic", _round(_score(check)),
                     _round(check.lexical), check.facts, check.shared, check.rule)
    return [head] + [replace(head, record_id=rec["id"], rank=rank + k,
                             rule=f"{level} copy of {unit.id}")
                     for k, (rec, level) in enumerate(unit.copies, 1)]


def member_rows(units: list[Unit], stars: list[Star], graph: PairGraph) -> list[MemberRow]:
    """Rows for `dedup_members`: each star (centre's unit first, ranks running on), then every
    unit of two or more records that no star took."""
    prompt_checks = graph.prompt_checks()
    rows: list[MemberRow] = []
    starred: set[int] = set()
    for star in stars:
        cid = "c" + units[star.centre].id[1:]
        cluster = _centre_rows(units[star.centre], cid, 0, prompt_checks)
        for v, check in star.members:
            cluster += _member_rows(units[v], cid, len(cluster), check)
        rows += cluster
        starred.update([star.centre] + [v for v, _ in star.members])
    for idx, unit in enumerate(units):
        if idx not in starred and unit.copies:
            rows += _centre_rows(unit, "c" + unit.id[1:], 0, prompt_checks)
    return rows
