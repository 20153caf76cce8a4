"""Review: Label Studio's status, push the least confident labels, pull annotations, progress;
pairwise review of two responses to one prompt."""

import streamlit as st

from studio import _data

st.title("Review")

cfg = _data.config_with_schemes()


# -- the server -------------------------------------------------------------------------------
@st.fragment(run_every=5 if st.session_state.get("ls_starting") else None)
def server_box() -> None:
    with st.container(border=True):
        status = _data.labelstudio_status()
        if status["running"]:
            st.session_state.pop("ls_starting", None)
            st.success(f"Label Studio is running at {status['url']}.", icon=":material/check:")
        elif status["env_url"]:
            st.info(f"Using the Label Studio at {status['env_url']} ($CURATE_LABELSTUDIO_URL).")
        elif st.session_state.get("ls_starting"):
            st.info("Label Studio is starting (a fresh server migrates its database, ~80 s)...",
                    icon=":material/hourglass_top:")
        else:
            st.warning("Label Studio is not running for this workspace.")
            if st.button("Start Label Studio", key="ls_start"):
                _data.start_labelstudio()
                st.session_state["ls_starting"] = True
                st.rerun(scope="app")


server_box()

scheme = st.selectbox("Scheme", list(cfg.schemes), key="review_scheme")

# -- push and pull ----------------------------------------------------------------------------
c1, c2 = st.columns(2)
with c1.container(border=True):
    st.markdown("**Push** the least confident weak labels as pre-annotated tasks")
    budget = st.number_input("Budget (new tasks)", 1, 100_000, 50, 10, key="review_budget")
    ceiling = st.slider("Confidence ceiling", 0.0, 1.0, 0.9, 0.05, key="review_ceiling",
                        help="Only records whose weak-label confidence is at most this.")
    if st.button("Push", key="review_push", type="primary"):
        with _data.show_errors(), st.spinner("Creating tasks in Label Studio..."):
            res = _data.review_push(scheme, int(budget), float(ceiling))
            st.success(f"{res['created']:,} tasks created ({res['skipped']:,} already there) in "
                       f"project {res['project_id']}.")
with c2.container(border=True):
    st.markdown("**Pull** annotations made since the last pull")
    st.caption("A record's final label is the human one when it exists, else the label model's.")
    if st.button("Pull", key="review_pull"):
        with _data.show_errors(), st.spinner("Reading annotations..."):
            res = _data.review_pull(scheme)
            st.success(f"{res['new']:,} new, {res['updated']:,} updated, {res['removed']:,} "
                       f"removed annotations.")
            for problem in res["problems"]:
                st.warning(problem)

# -- progress ---------------------------------------------------------------------------------
st.subheader("Progress")
with _data.show_errors():
    rs = _data.review_status(scheme)
    m = st.columns(4)
    m[0].metric("Pushed", f"{rs['pushed']:,}")
    m[1].metric("Reviewed", f"{rs['annotated']:,}")
    m[2].metric("Pending", f"{rs['pending']:,}")
    m[3].metric("Skipped", f"{rs['skipped']:,}")
    if rs["pushed"]:
        st.progress(min(rs["annotated"] / rs["pushed"], 1.0),
                    text=f"{rs['annotated']:,} of {rs['pushed']:,} tasks reviewed")
    agr = rs["agreement"]
    if agr.get("items"):
        st.markdown(f"**Agreement** over {agr['items']:,} records with two or more annotators: "
                    f"{agr['percent_agreement']:.0%} pairwise; Fleiss' kappa "
                    f"{agr['fleiss_kappa']:.2f}"
                    + (f"; Cohen's kappa {agr['cohen_kappa']:.2f}" if agr["cohen_kappa"]
                       is not None else ""))
    else:
        st.caption("Agreement appears once two annotators have labelled the same records.")
    if rs["url"]:
        st.link_button("Open the project in Label Studio", rs["url"], icon=":material/open_in_new:")
    if rs["last_pull_at"]:
        st.caption(f"Last pull: {rs['last_pull_at']}")

# -- pairwise review --------------------------------------------------------------------------
st.subheader("Pairwise review")
st.caption("Two responses to one prompt side by side (a record and its counterfactual or "
           "generated second response, or two stored answers); the one reviewers pick is "
           "`chosen` in the preference export (majority of annotators; ties make no pair).")
p1, p2 = st.columns(2)
with p1.container(border=True):
    pair_budget = st.number_input("Budget (new pair tasks)", 1, 100_000, 50, 10,
                                  key="pairs_budget")
    if st.button("Push pairs", key="pairs_push"):
        with _data.show_errors(), st.spinner("Creating pair tasks in Label Studio..."):
            res = _data.pairs_push(int(pair_budget))
            st.success(f"{res['created']:,} pair tasks created ({res['skipped']:,} already "
                       f"there) in project {res['project_id']}.")
with p2.container(border=True):
    if st.button("Pull judgments", key="pairs_pull"):
        with _data.show_errors(), st.spinner("Reading judgments..."):
            res = _data.pairs_pull()
            st.success(f"{res['new']:,} new, {res['updated']:,} updated, {res['removed']:,} "
                       f"removed judgments; {res['no_choice']:,} without a choice.")
with _data.show_errors():
    ps = _data.pair_status()
    st.markdown(f"{ps['pushed']:,} pairs pushed, {ps['judged']:,} judged ({ps['judgments']:,} "
                f"judgments), {ps['decided']:,} decided, {ps['tied']:,} tied.")
    pa = ps["agreement"]
    if pa.get("items"):
        st.markdown(f"**Agreement** over {pa['items']:,} pairs judged by two or more people: "
                    f"{pa['majority_share']:.0%} of judgments side with the majority; Fleiss' "
                    f"kappa {pa['fleiss_kappa']:.2f}"
                    + (f"; Cohen's kappa {pa['cohen_kappa']:.2f}" if pa["cohen_kappa"]
                       is not None else ""))
    if ps["url"]:
        st.link_button("Open the pairwise project", ps["url"], icon=":material/open_in_new:")
