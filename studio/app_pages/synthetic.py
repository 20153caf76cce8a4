"""Synthetic: make counterfactuals and privacy-safe copies, browse synthetic records beside their
source with the change marked, and see what the export's synthetic cap keeps."""

import streamlit as st

from pipelines.synth import EDIT_KINDS
from studio import _data

st.title("Synthetic")
st.caption("Records the workspace did not ingest, each flagged `synthetic` with its source: "
           "fact-aware counterfactuals (a wrong fact the LFs must catch) and private copies "
           "(PII and identifying facts replaced by consistent fakes). `curate synth` does the same.")

cfg = _data.config_with_schemes("add one to label sources for counterfactuals.")


def show_pairs(pairs: list[tuple[str, str, str]]) -> None:
    """(caption, source text, synthetic text) side by side, the words that differ marked."""
    for caption, before, after in pairs:
        left, right = _data.diff_marked(before, after)
        st.markdown(f"**{caption}**")
        c1, c2 = st.columns(2)
        c1.caption("source")
        c1.markdown(left, unsafe_allow_html=True)
        c2.caption("synthetic")
        c2.markdown(right, unsafe_allow_html=True)


# -- make -------------------------------------------------------------------------------------
st.subheader("Make")
t_cf, t_priv = st.tabs(["Counterfactuals", "Private copies"])
with t_cf:
    c1, c2, c3 = st.columns([1, 1, 2])
    scheme = c1.selectbox("Scheme", list(cfg.schemes), key="syn_cf_scheme",
                          help="Its accepted records are the sources; its LFs must catch each edit.")
    n = c2.number_input("At most", 1, 100_000, 20, 10, key="syn_cf_n")
    edits = c3.multiselect("Edits", list(EDIT_KINDS), default=list(EDIT_KINDS), key="syn_cf_edits")
    b1, b2 = st.columns(2)
    for button, commit in ((b1.button("Preview", key="syn_cf_preview"), False),
                           (b2.button("Make and store", key="syn_cf_make", type="primary"), True)):
        if not button:
            continue
        with _data.show_errors(), st.spinner("Editing and judging with the LFs..."):
            res = _data.make_counterfactuals(commit=commit, scheme=scheme, n=int(n),
                                             edits=edits or list(EDIT_KINDS))
            verb = f"Stored {res['stored']:,} new of" if commit else "Would store"
            st.success(f"{verb} {res['created']:,} caught counterfactuals from "
                       f"{res['sources']:,} sources; {res['missed']:,} not caught by any LF "
                       f"(never stored).")
            show_pairs([(f"{e['source_id']}: {e['describe']} (caught by "
                         f"{', '.join(e['caught_by'])})", e["chosen"], e["rejected"])
                        for e in res["examples"]])
with t_priv:
    c1, c2, c3 = st.columns(3)
    pn = c1.number_input("At most (0: every source)", 0, 1_000_000, 20, 10, key="syn_pr_n")
    scope = c2.segmented_control("Same value, same fake", ["set", "record"], default="set",
                                 key="syn_pr_scope",
                                 help="set: across the whole set (one claimant stays one fake "
                                      "person); record: per record (copies cannot be linked)") \
        or "set"
    seed = c3.number_input("Seed (keep private)", 0, 2**31 - 1, 0, key="syn_pr_seed",
                           help="Salt of the fakes: with it, a guessed real value's fake can be "
                                "recomputed.")
    amounts = st.checkbox("Perturb amounts", value=True, key="syn_pr_amounts")
    b1, b2 = st.columns(2)
    for button, commit in ((b1.button("Preview", key="syn_pr_preview"), False),
                           (b2.button("Make and store", key="syn_pr_make", type="primary"), True)):
        if not button:
            continue
        with _data.show_errors(), st.spinner("Replacing identifying values..."):
            res = _data.make_private_copies(commit=commit, n=int(pn) or None, scope=scope,
                                            seed=int(seed), amounts=amounts)
            verb = f"Stored {res['stored']:,} new of" if commit else "Would store"
            st.success(f"{verb} {res['copies']:,} private copies from {res['sources']:,} "
                       f"sources; {res['unchanged']:,} had nothing to replace.")
            st.caption("Replaced: " + (", ".join(f"{k} {v:,}" for k, v in res["replaced"].items())
                                       or "nothing"))
            for scheme_name, k in res["labels_changed"].items():
                st.warning(f"{scheme_name}: LF votes changed on {k:,} copies (no gold kept there).")
            pairs = []
            for e in res["examples"]:
                rec = _data.record(e["source_id"])
                before = rec.text if rec else ""
                after = "\n\n".join(v for v in e["copy"].values())
                pairs.append((e["source_id"], before, after))
            show_pairs(pairs)

# -- counts (after the buttons above, so a write shows at once) --------------------------------
st.subheader("Synthetic records")
overview = {"real": 0, "by_method": {}, "by_kind": {}, "rows": []}
with _data.show_errors():
    overview = _data.synthetic()
    m = st.columns(4)
    m[0].metric("Real records", f"{overview['real']:,}")
    for col, method in zip(m[1:], ("counterfactual", "private", "generate")):
        col.metric(method.capitalize(), f"{overview['by_method'].get(method, 0):,}")
    kinds = [{"method": method, "kind": kind, "count": n}
             for method, per in sorted(overview["by_kind"].items())
             for kind, n in sorted(per.items())]
    if kinds:
        with st.expander("Counts by kind (edit kinds; replaced values of private copies)"):
            st.dataframe(kinds, hide_index=True, width="stretch")


# -- browse -----------------------------------------------------------------------------------
rows = overview["rows"]
if not rows:
    st.info("No synthetic record yet: make some above (or `curate synth ...`).")
else:
    methods = sorted({r["method"] for r in rows})
    method = st.segmented_control("Method", ["all", *methods], default="all",
                                  key="syn_method") or "all"
    shown = [r for r in rows if method in ("all", r["method"])]
    st.dataframe(shown, hide_index=True, width="stretch",
                 column_order=["id", "method", "source_id", "change", "run_id"])
    chosen = st.selectbox("Side by side", [r["id"] for r in shown], key="syn_pick",
                          format_func=lambda rid: next(f"{r['id']} ({r['method']}: {r['change']})"
                                                       for r in shown if r["id"] == rid))
    pick = next(r for r in shown if r["id"] == chosen)
    src, syn = _data.record(pick["source_id"]), _data.record(pick["id"])
    if src is None:
        st.warning(f"The source {pick['source_id']} is no longer in the workspace.")
    elif syn is not None:
        show_pairs([(f"{pick['source_id']} -> {pick['id']}", src.text, syn.text)])

# -- the export's cap -------------------------------------------------------------------------
st.subheader("In exports")
section = cfg.section("export")
with st.container(border=True):
    c1, c2, c3 = st.columns(3)
    ex_scheme = c1.selectbox("Scheme", list(cfg.schemes), key="syn_ex_scheme")
    modes = ["include", "exclude", "cap"]
    mode = c2.segmented_control("Synthetic records", modes, key="syn_ex_mode",
                                default=section.get("synthetic", "include")
                                if section.get("synthetic") in modes else "include") or "include"
    cap = c3.slider("Cap (share of each label's rows)", 0.0, 0.95,
                    float(section.get("synthetic_cap", 0.3)), 0.05, key="syn_ex_cap",
                    disabled=mode != "cap")
    with _data.show_errors():
        pv = _data.export_preview(scheme=ex_scheme, synthetic=mode, synthetic_cap=cap)
        syn_counts = pv.get("synthetic") or {}
        st.markdown(f"An export now would write **{pv.get('train', 0):,}** train rows "
                    f"(**{syn_counts.get('train', 0):,}** synthetic) and {pv.get('eval', 0):,} "
                    f"eval rows (always real).")
        left = {k: v for k, v in (pv.get("skipped") or {}).items() if "synthetic" in k}
        if left:
            st.caption("Left out: " + ", ".join(f"{k} {v:,}" for k, v in left.items()))
    st.caption("Set it for every export in curation.yaml (`export: {synthetic: cap, "
               "synthetic_cap: 0.3}`) or per export on the Export & Train page.")
