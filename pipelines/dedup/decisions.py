"""From cluster membership, a person's overrides and filter flags to per-record decisions.

Pure functions (no SQL, no model): `decide` is called after a dedup run, a filter run and each
keep/drop, and its output replaces the `dedup` table.

Rules, in order:
1. a person's `drop` excludes the record, a person's `keep` keeps it (nothing overrides them);
2. in a cluster, the representative is the centre (rank 0) unless a person dropped it: then the
   best-ranked member not dropped takes its place, so a merge never loses the example unless a
   person drops every copy;
3. other members are excluded as duplicates of the representative, except a same-prompt member
   whose response is distinct (rule `review`): it stays, clustered so a reviewer can choose;
4. a record below the similarity filter's bar is excluded (as well).
"""

from __future__ import annotations

from itertools import groupby

from pipelines.store.dedup import DecisionRow, MemberRow

__all__ = ["decide", "member_reason"]


def member_reason(m: MemberRow, rep: str) -> str:
    if m.method == "exact":
        return f"same text as {rep} ignoring case, spacing and punctuation"
    if m.method == "same_prompt":
        return (f"same prompt as {rep}, and the responses agree (similarity {m.similarity:.3f}, "
                f"merged on {m.rule})")
    bits = [f"similarity {m.similarity:.3f}"] if m.similarity is not None else []
    if m.lexical is not None:
        bits.append(f"lexical {m.lexical:.2f}")
    if m.facts:
        bits.append(f"facts {m.facts} ({m.shared_facts or 0} shared)")
    return f"semantic duplicate of {rep}: {', '.join(bits)}; merged on {m.rule}"


def decide(members: list[MemberRow], overrides: dict[str, str],
           flags: dict[str, tuple[float, bool]], run_id: int | None = None) -> list[DecisionRow]:
    out: list[DecisionRow] = []
    seen: set[str] = set()
    ordered = sorted(members, key=lambda m: (m.cluster_id, m.rank))
    for cluster_id, group in groupby(ordered, key=lambda m: m.cluster_id):
        group = list(group)
        centre = group[0]
        rep = next((m for m in group if overrides.get(m.record_id) != "drop"), centre)
        for m in group:
            rid = m.record_id
            seen.add(rid)
            decision = overrides.get(rid)
            flagged = flags.get(rid, (None, False))[1]
            if m is rep:
                excluded = flagged
                reason = f"representative of {len(group)} records"
                if rep is not centre:
                    reason += f" (in place of {centre.record_id}, dropped by a person)"
                sim = 1.0
                method = centre.method if m is centre else m.method
            elif m.method == "same_prompt" and m.rule == "review":
                excluded = flagged
                reason = (f"same prompt as {rep.record_id} with a distinct response: kept; a "
                          f"reviewer should choose")
                sim = m.similarity
                method = m.method
            else:
                excluded = True
                reason = member_reason(m, rep.record_id)
                sim = m.similarity
                method = m.method
            if method == "centre":
                method = "semantic" if any(x.method == "semantic" for x in group) else "exact"
            if method == "same_prompt" and m.rule != "review":
                method = "exact"   # a duplicate like any exact one; `review` ones keep the name
            if flagged and not decision:
                reason += f"; off-topic: best similarity {flags[rid][0]:.3f} to the exemplars"
            if decision == "drop":
                excluded, reason = True, f"dropped by a person ({reason})"
            elif decision == "keep":
                excluded, reason = False, f"kept by a person ({reason})"
            out.append(DecisionRow(rid, cluster_id, rep.record_id, sim, method, excluded, reason,
                                   run_id))
    for rid in sorted((set(overrides) | {r for r, (_, f) in flags.items() if f}) - seen):
        decision = overrides.get(rid)
        sim, flagged = flags.get(rid, (None, False))
        if decision == "drop":
            row = DecisionRow(rid, None, None, sim, "manual", True, "dropped by a person", run_id)
        elif decision == "keep":
            row = DecisionRow(rid, None, None, sim, "manual", False, "kept by a person", run_id)
        else:
            row = DecisionRow(rid, None, None, sim, "filter", True,
                              f"off-topic: best similarity {sim:.3f} to the exemplars", run_id)
        out.append(row)
    return out
