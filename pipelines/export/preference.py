"""Preference pairs (`prompt`, `chosen`, `rejected`) for DPO: what the `preference` format exports.

Four sources of pairs, all from the workspace:

- **counterfactuals** (`pipelines.synth`): chosen = the accepted source response, rejected = the
  edited one the scheme's LFs caught. Left out when the source is no longer accepted or is
  excluded, when no LF caught the edit, or when a reviewer accepted the counterfactual itself.
- **reviewer corrections**: a reviewed record whose response was edited in Label Studio:
  chosen = the correction, rejected = the original response.
- **pairwise review** (`pipelines.review.pairs`): two responses to one prompt judged side by
  side in Label Studio. Each annotator's latest judgment is one vote; the record picked by a
  strict majority is chosen, the other rejected. A tie (1-1, 2-2 ...) makes no pair (counted as
  `pairwise: judges tied`), nor does a pair one of whose records a quality rule excluded. A
  judged pair replaces the automatic counterfactual pair of the same two records: the people
  win over the LFs, as human labels win over the label model.
- **imported** (`curate ingest` of a preference data set, `pipelines.ingest.preference`): the
  file's chosen and rejected answers, as stored in `imported_pairs`. Left out when a quality
  rule excluded a side (dedup does not count, as above), when the same two records were judged
  in pairwise review (that judgment is exported instead) or reviewers labelled the rejected
  side accepted and the chosen one not (people win over the file), and when the file ranks the
  two both ways.

A pair is split by its *source* record's id hash (gold sources go to eval), so a source and its
counterfactuals never straddle train and eval; an imported pair by its prompt's hash, so every
pair of one prompt is on one side. Rows come in TRL's conversational form by default
(`prompt` = messages, `chosen`/`rejected` = one assistant message each), which `DPOTrainer`
renders with the model's chat template, or as plain strings (`preference_style: standard`).
"""

from __future__ import annotations

from dataclasses import dataclass
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

from pipelines.config import SchemeConfig
from pipelines.export.config import ExportConfig
from pipelines.export.render import record_messages
from pipelines.export.select import (Selection, cap_synthetic, final_label,
                                     resolve_accept_labels, split_of)
from pipelines.pii import metadata_names
from pipelines.records import Candidate
from pipelines.store.pairs import ImportedPair, PairJudgment, StoredPair

__all__ = ["PreferenceRow", "select_pairs", "render_pair", "pick_of"]


@dataclass
class PreferenceRow:
    """One pair; `label` names where it came from (counterfactual | correction | pairwise |
    imported)."""

    id: str                       # "<source id>><rejected id>" or the corrected record's id
    split: str
    label: str                    # counterfactual | correction | pairwise | imported
    label_source: str             # the edit kind, "review", the pairwise pair's origin, or the
    #                               file an imported pair came from
    prompt: list[dict[str, str]]  # messages up to the answer
    chosen: str
    rejected: str
    source_id: str
    synthetic: bool
    names: tuple[str, ...] = ()   # person names in the source record's metadata (PII step)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "split": self.split, "origin": self.label,
                "source_id": self.source_id, "chosen": self.chosen, "rejected": self.rejected}


def _answer(cand: Candidate) -> str | None:
    st = cand.state
    if st.review_status == "reviewed" and st.edited_response:
        return st.edited_response
    rec = cand.record
    if rec.kind == "chat" and rec.turns:
        last = [t for t in rec.turns if t.role == "assistant"]
        return last[-1].content if last else None
    return rec.response


def _meta_names(*cands: Candidate) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n for c in cands for n in metadata_names(c.record.meta)))


def _prompt(cand: Candidate, system_prompt: str | None) -> list[dict[str, str]]:
    msgs = record_messages(cand.record, system_prompt)
    while msgs and msgs[-1]["role"] == "assistant":
        msgs.pop()
    return msgs


def pick_of(judgments: Sequence[PairJudgment]) -> str | None:
    """The record id a strict majority of annotators picked; None on a tie or no choice.

    Judgments come oldest first; an annotator's latest counts (one vote each; a judgment with
    no known annotator is its own voter).
    """
    latest: dict[Any, str] = {}
    for j in judgments:
        if j.picked_id is not None and not j.skipped:
            latest[j.annotator if j.annotator else ("#", j.annotation_id)] = j.picked_id
    top = Counter(latest.values()).most_common(2)
    if not top or (len(top) == 2 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


def select_pairs(candidates: Iterable[Candidate], cfg: ExportConfig, scheme: SchemeConfig,
                 judged: Sequence[tuple[StoredPair, Sequence[PairJudgment]]] = (),
                 imported: Sequence[ImportedPair] = ()) -> Selection:
    """Every preference pair the workspace holds under `scheme`, with reasons for those left out.

    `judged` are the pairwise-review pairs with their judgments (`store.pairs.judged_pairs`),
    `imported` the pairs ingested from preference data sets (`store.pairs.imported_pairs`).
    """
    cands = list(candidates)
    by_id = {c.id: c for c in cands}
    accept = set(resolve_accept_labels(cfg, scheme, "preference"))
    rows: list[PreferenceRow] = []
    skipped: dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    def split(source: Candidate) -> str:
        return "eval" if source.record.gold else split_of(source.id, cfg.eval_fraction)

    judged_ids: set[frozenset[str]] = set()
    for pair, judgments in judged:
        judged_ids.add(frozenset((pair.source_id, pair.other_id)))
        source, other = by_id.get(pair.source_id), by_id.get(pair.other_id)
        if source is None or other is None:
            skip("pairwise: record gone")
            continue
        synthetic = source.record.synthetic is not None or other.record.synthetic is not None
        if synthetic and cfg.synthetic == "exclude":
            skip("synthetic")
            continue
        if any(c.state.excluded and c.state.excluded_by != "dedup" for c in (source, other)):
            # dedup exclusion does not count: near-duplicate answers are what a pair compares
            skip("pairwise: a side excluded")
            continue
        pick = pick_of(judgments)
        if pick is None:
            skip("pairwise: judges tied")
            continue
        chosen, rejected = (source, other) if pick == source.id else (other, source)
        if not (chosen.record.response and rejected.record.response):
            skip("pairwise: empty response")
            continue
        rows.append(PreferenceRow(pair.pair_id, split(source), "pairwise", pair.origin,
                                  _prompt(source, cfg.system_prompt), chosen.record.response,
                                  rejected.record.response, source.id, synthetic,
                                  _meta_names(source, other)))

    rows.extend(_imported_rows(imported, by_id, judged_ids, cfg, accept, skip))

    for cand in cands:
        syn = cand.record.synthetic
        if syn is not None and syn.get("method") == "counterfactual":
            if cfg.synthetic == "exclude":
                skip("synthetic")
                continue
            source = by_id.get(str(syn.get("source_id")))
            if cand.state.excluded:
                skip("pair: counterfactual excluded")
            elif source is None:
                skip("pair: source record gone")
            elif source.state.excluded:
                skip("pair: source excluded")
            elif final_label(source, scheme.name)[0] not in accept:
                skip("pair: source not accepted")
            elif not syn.get("caught_by"):
                skip("pair: edit not caught by the LFs")
            elif frozenset((source.id, cand.id)) in judged_ids:
                skip("pair: judged in pairwise review")
            elif (cand.state.review_status == "reviewed"
                  and cand.state.human_label in accept):
                skip("pair: a reviewer accepted the counterfactual")
            else:
                chosen = _answer(source)
                if chosen and cand.record.response and chosen != cand.record.response:
                    rows.append(PreferenceRow(
                        f"{source.id}>{cand.id}", split(source), "counterfactual",
                        str(syn.get("edit") or "edit"), _prompt(source, cfg.system_prompt),
                        chosen, cand.record.response, source.id, True, _meta_names(source)))
            continue
        st = cand.state
        if (st.review_status == "reviewed" and st.edited_response and not st.excluded
                and cand.record.kind != "text"):
            original = (cand.record.response if cand.record.kind != "chat"
                        else _answer(Candidate(cand.record)))
            if original and original.strip() != st.edited_response.strip():
                rows.append(PreferenceRow(cand.id, split(cand), "correction", "review",
                                          _prompt(cand, cfg.system_prompt), st.edited_response,
                                          original, cand.id, syn is not None,
                                          _meta_names(cand)))
    if cfg.synthetic == "cap":
        rows = cap_synthetic(rows, cfg.synthetic_cap, skip, key=lambda r: "pairs")
    return Selection(rows=rows, skipped=skipped)


def _imported_rows(imported: Sequence[ImportedPair], by_id: dict[str, Candidate],
                   judged_ids: set[frozenset[str]], cfg: ExportConfig, accept: set[str],
                   skip) -> list[PreferenceRow]:
    """The rows of the imported pairs (rules in the module docstring)."""
    directions = {(p.chosen_id, p.rejected_id) for p in imported}

    def human(c: Candidate) -> str | None:
        return c.state.human_label if c.state.review_status == "reviewed" else None

    rows = []
    for p in imported:
        chosen, rejected = by_id.get(p.chosen_id), by_id.get(p.rejected_id)
        if chosen is None or rejected is None:
            skip("imported: record gone")
            continue
        synthetic = chosen.record.synthetic is not None or rejected.record.synthetic is not None
        if frozenset((p.chosen_id, p.rejected_id)) in judged_ids:
            skip("imported: judged in pairwise review")
        elif (p.rejected_id, p.chosen_id) in directions:
            skip("imported: ranked both ways")
        elif any(c.state.excluded and c.state.excluded_by != "dedup" for c in (chosen, rejected)):
            skip("imported: a side excluded")
        elif human(rejected) in accept and human(chosen) not in accept | {None}:
            skip("imported: reviewers preferred the rejected side")
        elif synthetic and cfg.synthetic == "exclude":
            skip("synthetic")
        elif not (chosen.record.response and rejected.record.response):
            skip("imported: empty response")
        else:
            split = ("eval" if chosen.record.gold or rejected.record.gold
                     else split_of(p.prompt_id, cfg.eval_fraction))
            rows.append(PreferenceRow(p.pair_id, split, "imported", Path(p.file).name,
                                      _prompt(chosen, cfg.system_prompt), chosen.record.response,
                                      rejected.record.response, chosen.id, synthetic,
                                      _meta_names(chosen, rejected)))
    return rows


def render_pair(row: PreferenceRow, style: str = "conversational") -> dict[str, Any]:
    """A pair as TRL reads it: conversational (messages) or standard (strings)."""
    if style == "standard":
        prompt = "\n\n".join(m["content"] for m in row.prompt if m["role"] != "system")
        return {"prompt": prompt, "chosen": row.chosen, "rejected": row.rejected}
    return {"prompt": row.prompt,
            "chosen": [{"role": "assistant", "content": row.chosen}],
            "rejected": [{"role": "assistant", "content": row.rejected}]}
