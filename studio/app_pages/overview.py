"""Overview: the pipeline as a row of stages with counts, what to do next, and file upload."""

import json

import streamlit as st

from studio import _data

st.title("Curation Studio")
st.caption("From raw text to a reviewed fine-tuning dataset and a trained adapter.")

# The stage row is laid out first but filled last, so an upload below shows in the counts at once.
stages_box = st.container()
next_box = st.container()

st.subheader("Ingest files")
# The files stay chosen after a refusal: tick "skip invalid rows" and press Ingest again.
with st.form("ingest", clear_on_submit=False):
    uploads = st.file_uploader("CSV, TSV, JSON(L), Parquet, Arrow or text files (.gz/.zst too)",
                               type=["csv", "tsv", "jsonl", "json", "parquet", "arrow", "txt",
                                     "gz", "zst"],
                               accept_multiple_files=True)
    c1, c2 = st.columns([3, 1])
    skip_invalid = c1.checkbox("Skip invalid rows (write a reject report) instead of rejecting "
                               "the whole upload", value=False)
    encoding = c2.selectbox("Text encoding", ["utf-8", "cp1252", "latin-1", "utf-16"],
                            help="Of CSV, TSV, JSONL and text files: cp1252 for a CSV saved by "
                                 "Excel on Windows. A UTF-16 byte-order mark is followed anyway.")
    submitted = st.form_submit_button("Ingest", type="primary")
if submitted:
    if not uploads:
        st.warning("Choose at least one file first.")
    else:
        with _data.show_errors(), st.spinner("Ingesting..."):
            result = _data.ingest_uploads(uploads, skip_invalid=skip_invalid,
                                          encoding=encoding)
            st.success(f"{result['rows']:,} rows: {result['added']:,} added, "
                       f"{result['duplicates']:,} exact duplicates folded, "
                       f"{result['unchanged']:,} unchanged, {result['rejected']:,} rejected"
                       + (f"; {result['pairs']:,} new preference pairs (two records each)."
                          if result["pairs"] else "."))
            if result["reject_report"]:
                st.warning(f"Rejected rows are listed in `{result['reject_report']}`.")

# -- the stages, after any write above -----------------------------------------------------------
counts = _data.counts()
labelled = sum(counts["labelled"].values())
reviewed = sum(counts["reviewed"].values())

STAGES = [
    ("Ingested", counts["records"], f"{counts['folded_duplicates']} exact duplicates folded"),
    ("Excluded", counts["excluded"], f"{counts['clusters']} dedup clusters; "
                                     f"{counts.get('filtered', 0)} by quality rules"),
    ("Labelled", labelled, ", ".join(f"{k}: {v}" for k, v in counts["labelled"].items()) or "none yet"),
    ("Reviewed", reviewed, ", ".join(f"{k}: {v}" for k, v in counts["reviewed"].items()) or "none yet"),
    ("Exported", counts["exports"], "export versions"),
    ("Trained", counts["trained"], "finished training runs"),
]
for col, (name, value, help_text) in zip(stages_box.columns(len(STAGES)), STAGES):
    with col.container(border=True):
        st.metric(name, f"{value:,}", help=help_text)
        st.caption(help_text)


def next_step() -> str:
    if counts["records"] == 0:
        return "Upload a CSV, JSONL or Parquet file below (or run `curate init --sample`)."
    if not _data.runs("dedup"):
        return "Open **Dedup** to find exact and near-duplicate records."
    if labelled == 0:
        return "Open **Label** to write labeling functions and label the records."
    if reviewed == 0:
        return "Open **Review** to send the least confident labels to Label Studio."
    if counts["exports"] == 0:
        return "Open **Export & Train** to export the approved data and train an adapter."
    if counts["trained"] == 0:
        return "Open **Export & Train** and start a training run on the latest export."
    return "The loop is complete: ingest more data, refine LFs, or train on a new export."


next_box.info(f"**Next:** {next_step()}", icon=":material/arrow_forward:")

st.subheader("Recent runs")
runs = _data.runs()
if not runs:
    st.caption("No pipeline step has run in this workspace yet.")
else:
    st.dataframe(
        [{"run": r["id"], "step": r["step"], "scheme": r["scheme"] or "", "status": r["status"],
          "started": r["started_at"], "finished": r["finished_at"] or "",
          "metrics": json.dumps(r["metrics"], default=str)[:200]} for r in reversed(runs[-15:])],
        hide_index=True, width="stretch")
