"""Export & Train: choose rules, preview counts, export, train (LoRA on SmolLM2 or a classifier) and follow it live."""

import json

import altair as alt
import streamlit as st

from studio import _data
from trainer.config import TrainConfig
from trainer.pretrained import base_model_note, demo_sft_base

st.title("Export & Train")

cfg = _data.config_with_schemes("add one to export labelled data.")

# -- what to export ---------------------------------------------------------------------------
st.subheader("1. Choose what to export")
section = cfg.section("export")
with st.container(border=True):
    c1, c2, c3, c4 = st.columns(4)
    scheme = c1.selectbox("Scheme", list(cfg.schemes), key="exp_scheme")
    fmt = c2.selectbox("Format", ["auto", "chat", "alpaca", "classification", "preference"],
                       key="exp_format",
                       help="auto: chat for an ACCEPT/REJECT scheme on instruction data, "
                            "classification otherwise; preference: chosen/rejected pairs from "
                            "counterfactuals and reviewer corrections (DPO)")
    min_conf = c3.slider("Min. label-model confidence", 0.0, 1.0,
                         float(section.get("min_confidence", 0.8)), 0.05, key="exp_min_conf",
                         help="Human and gold labels always pass.")
    eval_fraction = c4.slider("Eval share", 0.0, 0.5, float(section.get("eval_fraction", 0.1)),
                              0.05, key="exp_eval")
    classes = cfg.schemes[scheme].classes
    accept = st.multiselect("Export records whose final label is", classes, key="exp_accept",
                            placeholder="default: ACCEPT if the scheme has it, else every class")
    p1, p2 = st.columns([3, 1])
    pii_modes = ["placeholder", "surrogate", "none"]
    pii_mode = p1.segmented_control(
        "PII in the exported rows", pii_modes, key="exp_pii",
        default=section.get("pii", "placeholder") if section.get("pii") in pii_modes
        else "placeholder",
        help="placeholder: <PERSON>, <EMAIL>...; surrogate: consistent fake values (the same "
             "person gets the same fake name everywhere); none: left as it is, refused unless "
             "allowed") or "placeholder"
    allow_pii = p2.checkbox("Allow PII", value=bool(section.get("allow_pii", False)),
                            key="exp_allow_pii",
                            help="Write the export even with detected PII left in it.")

    s1, s2 = st.columns(2)
    synthetic = s1.selectbox("Synthetic records (curate synth)", ["include", "exclude", "cap"],
                             key="exp_synthetic",
                             help="cap: at most `synthetic_cap` of each label's rows; synthetic "
                                  "rows go to train only (the Synthetic page shows them)")
    synthetic_cap = s2.slider("Synthetic cap", 0.0, 0.95,
                              float(section.get("synthetic_cap", 0.3)), 0.05,
                              key="exp_synthetic_cap", disabled=synthetic != "cap")

options = {"scheme": scheme, "format": None if fmt == "auto" else fmt,
           "min_confidence": min_conf, "eval_fraction": eval_fraction,
           "accept_labels": accept or None, "pii": pii_mode, "allow_pii": allow_pii,
           "synthetic": synthetic, "synthetic_cap": synthetic_cap}
preview = None
with _data.show_errors():
    preview = _data.export_preview(**options)
if preview:
    m1, m2, m3 = st.columns(3)
    m1.metric("Train examples", f"{preview['train']:,}")
    m2.metric("Eval examples", f"{preview['eval']:,}")
    m3.metric("Left out", f"{sum(preview['skipped'].values()):,}",
              help=", ".join(f"{k}: {v}" for k, v in preview["skipped"].items()) or None)
    labels = sorted(set(preview["labels"]["train"]) | set(preview["labels"]["eval"]))
    st.dataframe([{"label": lab, "train": preview["labels"]["train"].get(lab, 0),
                   "eval": preview["labels"]["eval"].get(lab, 0)} for lab in labels],
                 hide_index=True, width="content")
    st.caption(f"Format: **{preview['format']}**. Left out: " + (", ".join(
        f"{k} {v:,}" for k, v in preview["skipped"].items()) or "nothing"))

# -- training options -------------------------------------------------------------------------
train_values: dict = {}
st.subheader("2. Training options")
with _data.show_errors():
    defaults = _data.train_defaults()
    if preview and "head" not in cfg.section("train"):
        # The export's format decides the head: classification data -> the probe first (seconds
        # on the cached embeddings; the LoRA classifier is the next step), preference -> dpo.
        defaults = defaults.replace(head={"classification": "probe",
                                          "preference": "dpo"}.get(preview["format"], "sft"))
        if preview["format"] == "classification":
            st.caption("First result: **probe** (logistic regression on the cached sentence "
                       "embeddings and the texts' words, seconds). Next step: pick head "
                       "**classifier** for the LoRA fine-tune (minutes); both report the same "
                       "metrics.")
    if defaults.head == "sft" and defaults.base_model is None:
        defaults = defaults.replace(base_model=demo_sft_base())   # `make studio`: SmolLM2
    if defaults.head == "sft":
        st.caption(base_model_note(defaults.base_model))
    with st.expander("Options (generated from the trainer's config)", expanded=False):
        cols = st.columns(3)
        for i, spec in enumerate(TrainConfig.field_specs()):
            name, kind, value = spec["name"], spec["type"], getattr(defaults, spec["name"])
            col, key, help_ = cols[i % 3], f"train_{spec['name']}", spec["help"]
            if name in ("head", "base_model"):
                key += f"_{defaults.head}"  # follows the export format until changed
            if spec["choices"]:
                train_values[name] = col.selectbox(name, spec["choices"], key=key, help=help_,
                                                   index=list(spec["choices"]).index(value))
            elif kind == "bool" and spec["default"] is None:
                choice = col.selectbox(name, ["default", "on", "off"], key=key, help=help_,
                                       index={None: 0, True: 1, False: 2}[value])
                train_values[name] = {"default": None, "on": True, "off": False}[choice]
            elif kind == "bool":
                train_values[name] = col.checkbox(name, value=bool(value), key=key, help=help_)
            elif kind == "int":  # an empty box is None: "the trainer's default"
                got = col.number_input(name, value=None if value is None else int(value),
                                       step=1, key=key, help=help_, placeholder="default")
                train_values[name] = None if got is None else int(got)
            elif kind == "float":
                got = col.number_input(name, value=None if value is None else float(value),
                                       format="%g", key=key, help=help_, placeholder="default")
                train_values[name] = None if got is None else float(got)
            else:
                text = col.text_input(name, value=value or "", key=key, help=help_)
                train_values[name] = text.strip() or None

# -- actions ----------------------------------------------------------------------------------
st.subheader("3. Export" + (" and train" if train_values else ""))
b1, b2, _ = st.columns([1, 1.3, 3])
do_export = b1.button("Export", key="btn_export", disabled=not preview)
do_both = b2.button("Export and train", key="btn_export_train", type="primary",
                    disabled=not (preview and train_values))
if do_export or do_both:
    with _data.show_errors():
        with st.spinner("Exporting..."):
            result = _data.run_export(**options)
        if result.get("unchanged"):
            st.info(f"Unchanged: **{result['version']}** already holds exactly this data "
                    f"({result['train']:,} train, {result['eval']:,} eval); no new version written.")
        else:
            st.success(f"Exported **{result['version']}**: {result['train']:,} train, "
                       f"{result['eval']:,} eval ({result['format']}).")
        pii = result.get("pii") or {}
        if pii:
            st.caption(f"PII ({pii['mode']}): redacted " + (", ".join(
                f"{k} {v:,}" for k, v in pii["redacted"].items()) or "nothing")
                + (f"; left in: {pii['remaining']}" if pii["remaining"] else ""))
        if do_both:
            started = _data.start_training(result["version"], train_values)
            st.session_state["train_run"] = started["run_id"]
            st.success(f"Training run **{started['run_id']}** started in its own process.")

def sft_summary_table() -> None:
    """The SFT summary-accuracy benchmark (bench/sft_roi.py) beside the runs' table."""
    with _data.show_errors():
        sft = _data.sft_roi()
        if sft is None:
            return
        st.markdown("**Summary accuracy of generated summaries** (`bench/sft_roi.py`: base, raw "
                    "and curated arms on held-out gold notes; docs/roi.md)")
        st.dataframe(sft["rows"], hide_index=True, width="stretch", column_config={
            c: st.column_config.NumberColumn(c, format="%.3f")
            for c in ("summary_accuracy", "rouge_l")})
        st.caption(f"{sft['note']} From `{sft['path']}`.")


# -- runs -------------------------------------------------------------------------------------
LIVE = ("running", "starting", "pending")
st.subheader("Training runs")
runs = _data.train_runs()
if not runs:
    st.caption("No training run yet.")
    st.subheader("Did curation pay?")
    sft_summary_table()
else:
    ids = [r["run_id"] for r in reversed(runs)]
    current = st.session_state.get("train_run")
    run_id = st.selectbox("Run", ids, index=ids.index(current) if current in ids else 0,
                          key="train_run_select")

    first, _ = _data.run_progress(run_id)
    live = first["status"] in LIVE

    # While the run goes on, only this part re-reads events.jsonl every 2 s.
    @st.fragment(run_every=2 if live else None)
    def live_run(run_id: str) -> None:
        with _data.show_errors():
            summary, logs = _data.run_progress(run_id)
            status = summary["status"]
            if live and status not in LIVE:
                st.rerun(scope="app")  # finished: one full rerun stops the polling
            steps, total = summary["steps"] or 0, summary["max_steps"] or 0
            st.progress(min(steps / total, 1.0) if total else 0.0,
                        text=f"{status}: step {steps:,} of {total or '?'}"
                             + (f", loss {summary['loss']:.4f}" if summary["loss"] else ""))
            if logs:
                points = [{"step": e["step"], "loss": e["loss"]} for e in logs]
                st.altair_chart(alt.Chart(alt.Data(values=points)).mark_line(point=True).encode(
                    x=alt.X("step:Q", axis=alt.Axis(tickMinStep=1)),
                    y=alt.Y("loss:Q", scale=alt.Scale(zero=False)),
                    tooltip=["step:Q", "loss:Q"]), height=260)
                last = logs[-1]
                if status == "running" and last.get("eta_s") is not None:
                    st.caption(f"{summary['tokens_per_s'] or 0:,.0f} tokens/s, "
                               f"about {last['eta_s']:.0f} s left")
            if summary["error"]:
                st.error(f"The run failed: {summary['error']}")
            if summary["eval"]:
                st.markdown("**Evaluation: base vs tuned**")
                render_eval(summary["eval"])

    def render_eval(evaluation: dict) -> None:
        base, tuned = evaluation.get("base") or {}, evaluation.get("tuned") or {}
        keys = [k for k in dict.fromkeys([*base, *tuned])
                if isinstance(base.get(k, tuned.get(k)), (int, float))
                and not isinstance(base.get(k, tuned.get(k)), bool)]
        rows = []
        for k in keys:
            b, t = base.get(k), tuned.get(k)
            change = t - b if isinstance(b, (int, float)) and isinstance(t, (int, float)) else None
            rows.append({"metric": k, "base": b, "tuned": t, "change": change})
        if rows:
            st.dataframe(rows, hide_index=True, width="content", column_config={
                c: st.column_config.NumberColumn(c, format="%.4g")
                for c in ("base", "tuned", "change")})
        else:
            st.json(evaluation, expanded=False)
        if tuned.get("per_class"):
            st.dataframe([{"class": c, **m} for c, m in tuned["per_class"].items()],
                         hide_index=True, width="content")
            classes = evaluation.get("classes") or list(tuned["per_class"])
            st.caption("Confusion matrix (rows: true class, columns: predicted)")
            st.dataframe([{"true": c, **dict(zip(classes, row))}
                          for c, row in zip(classes, tuned.get("confusion") or [])],
                         hide_index=True, width="content")
        if evaluation.get("generations"):
            st.markdown("**Generations on eval prompts: base vs tuned**")
            for g in evaluation["generations"]:
                with st.container(border=True):
                    st.caption(g["prompt"])
                    left, right = st.columns(2)
                    left.markdown(f"*Base*  \n{g['base']}")
                    right.markdown(f"*Tuned*  \n{g['tuned']}")
                    if g.get("reference"):
                        st.caption(f"Reference: {g['reference']}")
        elif evaluation.get("examples"):
            with st.expander("Examples, base vs tuned"):
                st.dataframe(evaluation["examples"], hide_index=True, width="stretch")

    live_run(run_id)

    st.subheader("Did curation pay?")
    st.caption("The same head trained on different exports, each scored on its export's eval "
               "split (and its gold-labelled records); the first run is the baseline.")
    pay_head = st.radio("Head", ["classifier", "probe", "sft"], horizontal=True, key="pay_head")
    with _data.show_errors():
        pay = _data.curation_pay(pay_head)
    if len(pay) < 2:
        st.caption(f"Train the {pay_head} head on at least two exports (for example raw "
                   "labels, then curated ones) to compare them here.")
    if pay:
        cols = (["run_id", "export", "n_train", "accuracy", "delta_accuracy", "macro_f1",
                 "delta_macro_f1", "gold_accuracy", "delta_gold_accuracy"]
                if pay_head != "sft" else
                ["run_id", "export", "n_train", "eval_loss", "delta_eval_loss"])
        st.dataframe([{c: r.get(c) for c in cols} for r in pay], hide_index=True,
                     width="stretch", column_config={
                         c: st.column_config.NumberColumn(c, format="%.3f")
                         for c in cols if c not in ("run_id", "export", "n_train")})
    sft_summary_table()
    with st.expander("All runs"):
        st.dataframe([{k: r[k] for k in ("run_id", "status", "head", "export", "steps",
                                          "max_steps", "loss")} for r in reversed(runs)],
                     hide_index=True, width="stretch")

# -- exports ----------------------------------------------------------------------------------
st.subheader("Exports")
versions = _data.exports()
if not versions:
    st.caption("No export yet.")
else:
    st.dataframe([{k: v[k] for k in ("version", "created_at", "scheme", "format", "train", "eval")}
                  for v in reversed(versions)], hide_index=True, width="stretch")
    version = st.selectbox("Export", [v["version"] for v in reversed(versions)], key="exp_version")
    d1, d2, _ = st.columns([1, 1, 3])
    d1.download_button("train.jsonl", _data.export_file_reader(version, "train"),
                       file_name=f"{version}-train.jsonl", mime="application/jsonl")
    d2.download_button("eval.jsonl", _data.export_file_reader(version, "eval"),
                       file_name=f"{version}-eval.jsonl", mime="application/jsonl")
    with st.expander(f"Manifest of {version}"):
        st.json(json.loads(json.dumps(_data.manifest(version), default=str)), expanded=1)
