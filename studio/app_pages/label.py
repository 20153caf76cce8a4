"""Label: the LF analysis (coverage, overlaps, conflicts, accuracy, faults, charts, wrong
examples, label model vs majority) and a browser editor for the analyst's own LFs."""

import altair as alt
import streamlit as st

from studio import _data

st.title("Label")

cfg = _data.config_with_schemes()
scheme = st.selectbox("Scheme", list(cfg.schemes), key="label_scheme")
classes = cfg.schemes[scheme].classes

analysis_tab, editor_tab = st.tabs(["LF analysis", "LF editor"])
# The editor is filled first: a save there re-labels, and the analysis below must show that run.

# -- editor -----------------------------------------------------------------------------------
with editor_tab:
    from pipelines.sandbox import lf_template

    st.caption("Write labeling functions, run them on a sample in a separate process (with a "
               "time limit), then save them into the workspace's `lfs/` folder and re-label.")
    NEW = "(new file)"
    files = _data.lf_files()
    c1, c2, c3 = st.columns([2, 2, 1])
    chosen = c1.selectbox("File", [NEW, *files], key="lf_file")
    name = c2.text_input("Save as (W/lfs/<name>.py)",
                         value="my_lfs" if chosen == NEW else chosen, key=f"lf_name_{chosen}")
    n = c3.select_slider("Sample", [100, 250, 500, 1000, 2000], value=500, key="lf_sample")
    initial = lf_template(scheme, classes) if chosen == NEW else _data.lf_source(chosen)
    source = st.text_area("Source", value=initial, height=380, key=f"lf_src_{scheme}_{chosen}")
    editing = None if chosen == NEW else chosen

    b1, b2, _ = st.columns([1, 1.4, 3])
    if b1.button("Run on sample", key="lf_try"):
        st.session_state["lf_tried"] = source
    save = b2.button("Save and re-label", key="lf_save", type="primary")

    result = None
    if st.session_state.get("lf_tried") == source or save:
        with _data.show_errors(), st.spinner("Running the LFs in the sandbox..."):
            result = _data.try_lf(source, scheme, n, editing)

    if result is not None and not result.ok:
        where = f"Line {result.error_line}: " if result.error_line else ""
        st.error(f"{where}{result.error}", icon=":material/bug_report:")
        if result.error_line:
            lines = source.splitlines()
            lo = max(result.error_line - 3, 0)
            st.code("\n".join(f"{i + 1:>4} {'>' if i + 1 == result.error_line else ' '} {t}"
                              for i, t in enumerate(lines[lo:result.error_line + 2], start=lo)),
                    language=None)
    elif result is not None:
        st.markdown(f"**On {result.n_records:,} records** ({result.elapsed_s:.1f} s, beside "
                    f"{len(result.context)} existing LFs)")
        summary = result.summary(classes)
        pct = dict(format="percent")
        st.dataframe(summary, hide_index=True, width="stretch", column_config={
            "coverage": st.column_config.NumberColumn("coverage", **pct),
            "overlaps": st.column_config.NumberColumn("overlaps", **pct),
            "conflicts": st.column_config.NumberColumn("conflicts", **pct)})
        votes = [{"lf": row["lf"], "class": c, "votes": row[c]} for row in summary for c in classes]
        st.altair_chart(alt.Chart(alt.Data(values=votes)).mark_bar().encode(
            x=alt.X("votes:Q"), y=alt.Y("class:N", title=None), color="lf:N",
            tooltip=["lf:N", "class:N", "votes:Q"]), height=60 + 32 * len(classes))
        for lf in result.lfs:
            for f in lf.fault_examples:
                st.warning(f"{lf.name}, line {f['line']}: {f['error']} (record {f['id']}; "
                           f"{lf.faults} faults in all)")
        with st.expander("Records the LFs voted on"):
            rows = {r["id"]: r["text"] for r in _data.records_page(limit=n)}
            hits = [{"lf": lf.name, "vote": classes[v], "text": rows.get(rid, "")[:300]}
                    for lf in result.lfs for rid, v in zip(result.record_ids, lf.votes)
                    if v >= 0][:50]
            st.dataframe(hits, hide_index=True, width="stretch")

    if save and result is not None and result.ok:
        with _data.show_errors():
            path = _data.save_lf(name, source)
            st.success(f"Saved `{path}`.")
            with st.spinner("Re-labeling every record..."):
                res = _data.run_labeling(scheme)
            st.success(f"Re-labelled: {res['labelled']:,} of {res['n_records']:,} records with "
                       f"{res['n_lfs']} LFs ({res['model']}).")
            for err in res["load_errors"]:
                st.warning(err)
    elif save and result is not None:
        st.warning("Not saved: fix the error above first.")


# -- analysis ---------------------------------------------------------------------------------
with analysis_tab:
    if st.button("Run labeling", key="label_run", type="primary",
                 help="Apply every LF of the scheme to all records and aggregate their votes."):
        with _data.show_errors(), st.spinner("Applying LFs and fitting the label model..."):
            res = _data.run_labeling(scheme)
            st.success(f"Labelled {res['labelled']:,} of {res['n_records']:,} records with "
                       f"{res['n_lfs']} LFs ({res['model']}) in {res['seconds']:.1f} s.")
            for note in res["notes"]:
                st.warning(note)

    report = None
    with _data.show_errors():
        report = _data.label_report(scheme)
    if report is None:
        st.info("No labeling run for this scheme yet: press **Run labeling**.")
    else:
        m = st.columns(4)
        m[0].metric("Records", f"{report['n_records']:,}", help=f"{report['n_gold']:,} with gold")
        m[1].metric("Coverage", f"{report['coverage']:.1%}", help="records with at least one vote")
        m[2].metric("Conflict", f"{report['conflict']:.1%}",
                    help="records where LFs disagree")
        m[3].metric("Labels from", report["chosen"] or "-")
        for note in report["notes"]:
            st.caption(note)

        st.markdown("**Label model vs majority vote** (accuracy on gold-labelled records)")
        st.dataframe([{"model": k, "accuracy": v.get("accuracy"), "gold records": v.get("n_gold"),
                       "correct": v.get("correct"), "used": k == report["chosen"]}
                      for k, v in report["models"].items()], hide_index=True, width="content")

        st.markdown("**Labeling functions**")
        table = [{"lf": s["name"], "origin": (s["origin"] or "").rsplit("/", 1)[-1],
                  "polarity": ", ".join(s["polarity"]), "coverage": s["coverage"],
                  "overlaps": s["overlaps"], "conflicts": s["conflicts"],
                  "emp. accuracy": s["emp_accuracy"], "gold votes": s["n_gold_votes"],
                  "faults": s["faults"]} for s in report["lfs"]]
        pct = dict(min_value=0.0, max_value=1.0, format="percent")
        st.dataframe(table, hide_index=True, width="stretch", column_config={
            "coverage": st.column_config.ProgressColumn("coverage", **pct),
            "overlaps": st.column_config.NumberColumn("overlaps", format="percent"),
            "conflicts": st.column_config.NumberColumn("conflicts", format="percent"),
            "emp. accuracy": st.column_config.NumberColumn("emp. accuracy", format="percent"),
        })

        c1, c2 = st.columns(2)
        with c1:
            st.markdown("**Coverage per LF**")
            st.altair_chart(alt.Chart(alt.Data(values=table)).mark_bar().encode(
                x=alt.X("coverage:Q", axis=alt.Axis(format="%")),
                y=alt.Y("lf:N", sort="-x", title=None), tooltip=["lf:N", "coverage:Q"],
            ), height=max(200, 26 * len(table)))
        with c2:
            st.markdown("**Pairwise conflicts** (share of records where two LFs disagree)")
            names = [s["name"] for s in report["lfs"]]
            cells = [{"a": a, "b": b, "conflict": report["conflict_matrix"][i][j]}
                     for i, a in enumerate(names) for j, b in enumerate(names)]
            st.altair_chart(alt.Chart(alt.Data(values=cells)).mark_rect().encode(
                x=alt.X("a:N", sort=names, title=None, axis=alt.Axis(labelAngle=-60)),
                y=alt.Y("b:N", sort=names, title=None),
                color=alt.Color("conflict:Q", scale=alt.Scale(scheme="orangered")),
                tooltip=["a:N", "b:N", alt.Tooltip("conflict:Q", format=".2%")],
            ), height=max(200, 26 * len(names)))

        st.markdown("**Where an LF goes wrong** (its votes that disagree with gold labels)")
        with_wrong = [s for s in report["lfs"] if s["wrong_examples"]]
        if not with_wrong:
            st.caption("No wrong votes on gold-labelled records.")
        else:
            lf_name = st.selectbox("LF", [s["name"] for s in with_wrong], key="label_wrong_lf",
                                   format_func=lambda n: f"{n} ({next(s['incorrect'] for s in with_wrong if s['name'] == n)} wrong)")
            wrong = next(s for s in with_wrong if s["name"] == lf_name)["wrong_examples"]
            ids = [w.get("record_id") or w.get("id") for w in wrong]
            texts = {r["id"]: r["text"] for r in _data.records_by_ids(ids)}
            st.dataframe([{"voted": w.get("voted"), "gold": w.get("gold"),
                           "text": texts.get(rid, ""), "id": rid} for w, rid in zip(wrong, ids)],
                         hide_index=True, width="stretch")

        faulty = [s for s in report["lfs"] if s["faults"]]
        if faulty:
            st.markdown("**Faults** (an LF raised an exception on a record; counted, not fatal)")
            st.dataframe([{"lf": s["name"], "faults": s["faults"], "message": s["fault_message"],
                           "records": ", ".join(s["fault_examples"])} for s in faulty],
                         hide_index=True, width="stretch")
