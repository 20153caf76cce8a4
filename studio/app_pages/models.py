"""Models: the registry with each adapter's evaluation, the router and its confusion between
tasks, and a playground (a prompt -> the routed adapter, its confidence, the answer or class)."""

import pandas as pd
import streamlit as st

from studio import _data

st.title("Models")
st.caption("Every finished run's adapter, the router between them, and a place to try them. "
           "The same models answer `curate serve` (OpenAI protocol on 127.0.0.1).")

with _data.show_errors():
    entries = _data.registered_models()
    # the table lists full fine-tunes too; the router and the playground take adapters only
    listed = [e for e in entries if e.kind in ("adapter", "model")]
    adapters = [e for e in listed if e.kind == "adapter"]
    routers = [e for e in entries if e.kind == "router"]

    st.subheader("Registry")
    if not listed:
        st.info("No models yet: train a run on the Export & Train page (or `curate train`); "
                "it is registered here when it finishes.")
    else:
        st.dataframe(pd.DataFrame([{
            "name": e.name, "task": e.task, "kind": e.kind, "base model": e.base_model,
            "export": e.export,
            "size (KiB)": round(e.size_bytes / 1024), "tuned": e.score(), "run": e.run_id}
            for e in listed]), hide_index=True, width="stretch")

    st.subheader("Router")
    if routers:
        r = routers[-1]
        ev = r.evaluation or {}
        cols = st.columns(3)
        cols[0].metric("Routing accuracy (held out)", ev.get("accuracy"))
        cols[1].metric("Falls back below", ev.get("threshold"))
        cols[2].metric("Fallback rate", ev.get("fallback_rate"))
        if ev.get("confusion"):
            st.caption("Confusion between tasks: rows are the true task, columns the routed one.")
            st.dataframe(pd.DataFrame(ev["confusion"], index=ev["classes"], columns=ev["classes"]),
                         width="stretch")
            st.dataframe(pd.DataFrame([{"task": t, **v} for t, v in ev["per_task"].items()]),
                         hide_index=True)
    else:
        st.caption("No router yet: it learns from the prompts of each adapter's export.")
    if len(adapters) >= 2:
        with st.form("router"):
            threshold = st.slider("Confidence threshold", 0.0, 0.95, 0.5, 0.05)
            fallback = st.radio("Below it", ["base", "ask"], horizontal=True,
                                format_func=lambda f: {"base": "answer with the base model",
                                                       "ask": "ask which task"}[f])
            if st.form_submit_button("Train the router" if not routers else "Retrain the router"):
                with st.spinner("Embedding prompts and fitting..."):
                    entry = _data.train_router(threshold, fallback)
                st.success(f"Router trained: routing accuracy {entry.evaluation['accuracy']}.")

    st.subheader("Playground")
    if not adapters:
        st.caption("Train a model first.")
    else:
        choices = (["auto"] if routers else []) + ["base"] + [e.name for e in adapters]
        with st.form("playground"):
            model = st.selectbox("Model", choices, help="auto: the router picks the adapter")
            prompt = st.text_area("Prompt", placeholder="Summarise this claim: ...")
            max_tokens = st.slider("Max new tokens", 1, 256, 48)
            asked = st.form_submit_button("Run", type="primary")
        if asked and prompt.strip():
            out = _data.playground(prompt, model, max_tokens)
            cols = st.columns(2)
            cols[0].metric("Answered by", out["model"])
            if out.get("confidence") is not None:
                cols[1].metric("Router confidence", f"{out['confidence']:.2f}")
            if out.get("scores"):
                st.bar_chart(pd.Series(out["scores"], name="routing"))
            if out.get("classification"):
                st.write(f"Class: **{out['classification']['label']}**")
                st.bar_chart(pd.Series(out["classification"]["scores"], name="probability"))
            else:
                st.code(out["answer"] or "(empty answer)", language=None)
