"""Filters: quality signals per record, a rule editor with a live count, and each rule's hits
side by side with keep/drop."""

import altair as alt
import streamlit as st

from studio import _data

st.title("Filters")
st.caption("Signals, not deletions: rules set a reversible flag; a person's keep/drop wins.")

defaults = None
with _data.show_errors():
    defaults = _data.filter_defaults()
if defaults is None:  # curation.yaml's filter: section is invalid; the error says how
    st.stop()

# -- the rule editor ----------------------------------------------------------------------------
st.subheader("1. Rules")
text = st.text_area("One rule per line: SIGNAL, not SIGNAL, or SIGNAL OP VALUE",
                    "\n".join(defaults.rules), key="filter_rules", height=110,
                    help="e.g. length_words < 3, lang != en, refusal, top2_frac > 0.2, markup > 0")
rules = [r.strip() for r in text.splitlines() if r.strip()]
signals = _data.filter_signals()

preview = None
if signals:
    with _data.show_errors():
        preview = _data.filter_preview(rules)
if preview is not None:
    m = st.columns(len(rules) + 1 if rules else 1)
    m[0].metric("Would exclude", f"{preview['excluded']:,}",
                help=f"of {preview['records']:,} records with stored signals, overrides applied")
    for col, rule in zip(m[1:], rules):
        col.metric(rule, f"{len(preview['hits'][rule]):,}")

if st.button("Compute signals and apply these rules", type="primary", key="filter_commit",
             help="Stores every record's signals and the exclusions (reversible)."):
    with _data.show_errors(), st.spinner("Computing signals..."):
        done = _data.filter_commit(rules)
        st.success(f"{done['excluded']:,} of {done['records']:,} records excluded; "
                   f"{done['overrides']:,} overrides respected.")
        signals = _data.filter_signals()
        preview = _data.filter_preview(rules)

if not signals:
    st.caption("No signals stored yet: compute them with the button above (or `curate filter`).")
    st.stop()

# -- a histogram per signal --------------------------------------------------------------------
st.subheader("2. Signals")
numeric = sorted({k for row in signals.values() for k, v in row["signals"].items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool)})
flags = sorted({k for row in signals.values() for k, v in row["signals"].items()
                if isinstance(v, bool)})
left, right = st.columns([2, 1])
with left:
    name = st.selectbox("Signal", numeric, key="filter_signal") if numeric else None
    if name:
        values = [{"value": row["signals"][name]} for row in signals.values()
                  if row["signals"].get(name) is not None]
        st.altair_chart(alt.Chart(alt.Data(values=values)).mark_bar().encode(
            x=alt.X("value:Q", bin=alt.Bin(maxbins=40), title=name),
            y=alt.Y("count():Q", title="records")), height=220)
with right:
    langs: dict[str, int] = {}
    for row in signals.values():
        code = row["signals"].get("lang")
        if code:
            langs[code] = langs.get(code, 0) + 1
    st.dataframe([{"flag": f, "records": sum(bool(r["signals"].get(f)) for r in signals.values())}
                  for f in flags], hide_index=True, width="stretch")
    if langs:
        st.caption("Languages: " + ", ".join(f"{k} {v}" for k, v in
                                            sorted(langs.items(), key=lambda kv: -kv[1])[:8]))

# -- hits of one rule, side by side --------------------------------------------------------------
st.subheader("3. What a rule catches")
if not rules or preview is None:
    st.caption("Write a rule above to see its hits.")
    st.stop()
rule = st.selectbox("Rule", rules, key="filter_rule_hits")
hits = preview["hits"].get(rule, [])[:9]
if not hits:
    st.caption("No record matches this rule.")
    st.stop()
DECISIONS = {"auto": None, "keep": "keep", "drop": "drop"}
rows = {r["id"]: r for r in _data.records_by_ids(hits)}
for start in range(0, len(hits), 3):
    for col, rid in zip(st.columns(3), hits[start:start + 3]):
        row, sig = rows.get(rid, {}), signals[rid]
        with col.container(border=True):
            badge = ":red[excluded]" if sig["excluded"] else ":green[kept]"
            st.markdown(f"`{rid}` {badge}")
            st.write((row.get("text") or "")[:600])
            evidence = {k: v for k, v in sig["details"].items() if k != "lang_turns"}
            st.caption("fired: " + ("; ".join(sig["fired"]) or "none")
                       + (f" - {evidence}" if evidence else ""))
            current = sig.get("override") or "auto"
            choice = st.segmented_control("Decision", list(DECISIONS), default=current,
                                          key=f"fovr_{rid}", label_visibility="collapsed")
            if choice is not None and choice != current:
                with _data.show_errors():
                    _data.set_filter_override(rid, DECISIONS[choice])
                    st.rerun()
