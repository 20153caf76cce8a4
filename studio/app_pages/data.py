"""Data: browse, filter and search records, a page at a time (filtered and paginated in SQL)."""

from pathlib import Path

import streamlit as st

from studio import _data

st.title("Data")

cfg = _data.config()
schemes = list(cfg.schemes)
PAGE_SIZES = (25, 50, 100, 200)

with st.container(border=True):
    c1, c2, c3, c4 = st.columns([3, 1.3, 1.3, 1.3])
    mode = c1.radio("Search", ["Text", "Semantic"], horizontal=True, key="data_mode",
                    help="Text: records containing the words (SQL). Semantic: nearest records by "
                         "embedding (needs a dedup run, which builds the index).")
    query = c1.text_input("Query", key="data_query", placeholder="e.g. water heater",
                          label_visibility="collapsed")
    scheme = c2.selectbox("Scheme", schemes or ["(none)"], key="data_scheme")
    scheme = scheme if schemes else None
    status = c3.selectbox("Dedup", ["all", "kept", "excluded"], key="data_excluded")
    classes = cfg.schemes[scheme].classes if scheme else []
    label = c4.selectbox("Label", ["any", *classes], key="data_label")
    page_size = c4.selectbox("Rows per page", PAGE_SIZES, index=1, key="data_page_size")

excluded = {"all": None, "kept": False, "excluded": True}[status]
label_filter = None if label == "any" else label

rows: list[dict] = []
page = 1
if mode == "Semantic" and query:
    k = c3.number_input("Nearest k", 1, 200, 20, key="data_k")
    with _data.show_errors(), st.spinner("Searching..."):
        hits = _data.semantic_search(query, int(k))
        by_id = {r["id"]: r for r in _data.records_by_ids([h["id"] for h in hits], scheme)}
        rows = [{"score": round(h["score"], 3), **by_id[h["id"]]} for h in hits
                if h["id"] in by_id]
        if excluded is not None:
            rows = [r for r in rows if r["excluded"] == excluded]
        if label_filter is not None:
            rows = [r for r in rows if r["label"] == label_filter]
else:
    page = st.columns([1, 4])[0].number_input("Page", min_value=1, value=1, step=1,
                                              key="data_page")
    # One row more than the page tells whether a next page exists without counting the table.
    rows = _data.records_page(scheme=scheme, search=query or None, excluded=excluded,
                              label=label_filter, limit=page_size + 1,
                              offset=(page - 1) * page_size)
    has_next = len(rows) > page_size
    rows = rows[:page_size]
    first = (page - 1) * page_size + 1
    st.caption(f"Rows {first:,}-{first + len(rows) - 1:,}" + (" (more on the next page)"
               if has_next else " (last page)") if rows else "No records match.")

COLUMNS = ["score", "id", "source", "text", "raw_label", "excluded", "cluster_id", "similarity",
           "label", "confidence", "review_status", "human_label"]


def short_source(source: str | None) -> str:
    """'/abs/path/claims.csv:12' -> 'claims.csv:12' (the full path is in the record view)."""
    return Path(source).name if source else ""


if rows:
    st.dataframe(
        [{k: short_source(r[k]) if k == "source" else r.get(k) for k in COLUMNS if k in r}
         for r in rows],
        hide_index=True, width="stretch", height=min(38 + 35 * len(rows), 600),
        column_config={
            "text": st.column_config.TextColumn("text", width="large"),
            "confidence": st.column_config.ProgressColumn("confidence", min_value=0.0,
                                                          max_value=1.0, format="%.2f"),
        })

    st.subheader("Record")
    choice = st.selectbox("Open a record", [r["id"] for r in rows], key="data_record",
                          format_func=lambda rid: f"{rid}  {next(r['text'] for r in rows if r['id'] == rid)[:90]}")
    rec = _data.record(choice) if choice else None
    if rec:
        conditions = _data.condition_notes(rec)
        if conditions:
            st.caption("Conditions: " + "; ".join(conditions))
        if rec.turns:   # a conversation: every turn, in order
            for role, avatar, content in _data.chat_turns(rec):
                with st.chat_message(role, avatar=avatar):
                    if role not in ("user", "assistant"):
                        st.caption(role)
                    st.markdown(content)
        elif rec.prompt is not None:
            left, right = st.columns(2)
            left.markdown("**Prompt**")
            left.write(rec.prompt)
            right.markdown("**Response**")
            right.write(rec.response)
        else:
            st.markdown("**Text**")
            st.write(rec.text)
        checks = _data.record_checks(rec.id)
        if checks["signals"]:
            notes = _data.signal_notes(checks["signals"])
            st.caption("Filters: " + ("; ".join(notes) if notes else "no rule fired"))
            with st.expander("Quality signals"):
                st.json(checks["signals"]["signals"], expanded=True)
        if checks["pii"]:
            kinds = sorted({s["type"] for s in checks["pii"]})
            st.markdown(f"**PII detected** ({len(checks['pii'])} span(s): {', '.join(kinds)}; "
                        "from the last PII scan)")
            st.markdown(_data.pii_marked(rec.text, checks["pii"]), unsafe_allow_html=True)
        with st.expander("Sources and metadata"):
            st.json({"id": rec.id, "kind": rec.kind, "raw_label": rec.raw_label,
                     "sources": [s.to_dict() for s in rec.sources], "meta": dict(rec.meta)},
                    expanded=False)
