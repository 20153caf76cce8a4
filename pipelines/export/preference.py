"""Preference pairs (`prompt`, `chosen`, `rejected`) for DPO: what the `preference` format exports.

Two sources of pairs, both from the workspace:

- **counterfactuals** (`pipelines.synth`): chosen = the accepted source response, rejected = the
  edited one the scheme's LFs caught. Left out when the source is no longer accepted or is
  excluded, when no LF caught the edit, or when a reviewer accepted the counterfactual itself.
- **reviewer corrections**: a reviewed record whose response was edited in Label Studio:
  chosen = the correction, rejected = the original response.

A pair is split by its *source* record's id hash (gold sources go to eval), so a source and its
counterfactuals never straddle train and eval. Rows come in TRL's conversational form by default
(`prompt` = messages, `chosen`/`rejected` = one assistant message each), which `DPOTrainer`
renders with the model's chat template, or as plain strings (`preference_style: standard`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from pipelines.config import SchemeConfig
from pipelines.export.config import ExportConfig
from pipelines.export.render import record_messages
from pipelines.export.select import (Selection, cap_synthetic, final_label,
                                     resolve_accept_labels, split_of)
from pipelines.records import Candidate

__all__ = ["PreferenceRow", "select_pairs", "render_pair"]


@dataclass
class PreferenceRow:
    """One pair; `label` names where it came from (counterfactual | correction)."""

    id: str                       # "<source id>><rejected id>" or the corrected record's id
    split: str
    label: str                    # counterfactual | correction
    label_source: str             # the edit kind, or "review"
    prompt: list[dict[str, str]]  # messages up to the answer
    chosen: str
    rejected: str
    source_id: str
    synthetic: bool

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


def _prompt(cand: Candidate, system_prompt: str | None) -> list[dict[str, str]]:
    msgs = record_messages(cand.record, system_prompt)
    while msgs and msgs[-1]["role"] == "assistant":
        msgs.pop()
    return msgs


def select_pairs(candidates: Iterable[Candidate], cfg: ExportConfig, scheme: SchemeConfig
                 ) -> Selection:
    """Every preference pair the workspace holds under `scheme`, with reasons for those left out."""
    cands = list(candidates)
    by_id = {c.id: c for c in cands}
    accept = set(resolve_accept_labels(cfg, scheme, "preference"))
    rows: list[PreferenceRow] = []
    skipped: dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    def split(source: Candidate) -> str:
        return "eval" if source.record.gold else split_of(source.id, cfg.eval_fraction)

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
            elif (cand.state.review_status == "reviewed"
                  and cand.state.human_label in accept):
                skip("pair: a reviewer accepted the counterfactual")
            else:
                chosen = _answer(source)
                if chosen and cand.record.response and chosen != cand.record.response:
                    rows.append(PreferenceRow(
                        f"{source.id}>{cand.id}", split(source), "counterfactual",
                        str(syn.get("edit") or "edit"), _prompt(source, cfg.system_prompt),
                        chosen, cand.record.response, source.id, True))
            continue
        st = cand.state
        if (st.review_status == "reviewed" and st.edited_response and not st.excluded
                and cand.record.kind != "text"):
            original = (cand.record.response if cand.record.kind != "chat"
                        else _answer(Candidate(cand.record)))
            if original and original.strip() != st.edited_response.strip():
                rows.append(PreferenceRow(cand.id, split(cand), "correction", "review",
                                          _prompt(cand, cfg.system_prompt), st.edited_response,
                                          original, cand.id, syn is not None))
    if cfg.synthetic == "cap":
        rows = cap_synthetic(rows, cfg.synthetic_cap, skip, key=lambda r: "pairs")
    return Selection(rows=rows, skipped=skipped)


def render_pair(row: PreferenceRow, style: str = "conversational") -> dict[str, Any]:
    """A pair as TRL reads it: conversational (messages) or standard (strings)."""
    if style == "standard":
        prompt = "\n\n".join(m["content"] for m in row.prompt if m["role"] != "system")
        return {"prompt": prompt, "chosen": row.chosen, "rejected": row.rejected}
    return {"prompt": row.prompt,
            "chosen": [{"role": "assistant", "content": row.chosen}],
            "rejected": [{"role": "assistant", "content": row.rejected}]}
