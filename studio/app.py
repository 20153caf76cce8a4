"""Curation Studio: `streamlit run studio/app.py` (or `curate studio --workspace W`).

This file only builds the navigation; each page in `app_pages/` describes its screen and calls
`pipelines/` through `studio._data`. The workspace comes from $CURATE_WORKSPACE.
"""

from pathlib import Path

import streamlit as st

from studio._data import workspace_path

PAGES = Path(__file__).parent / "app_pages"

st.set_page_config(page_title="Curation Studio", page_icon=":material/dataset:", layout="wide")

nav = st.navigation({
    "Curate": [
        st.Page(PAGES / "overview.py", title="Overview", icon=":material/home:", default=True),
        st.Page(PAGES / "data.py", title="Data", icon=":material/table_rows:"),
        st.Page(PAGES / "dedup.py", title="Dedup", icon=":material/join_inner:"),
        st.Page(PAGES / "filters.py", title="Filters", icon=":material/filter_alt:"),
        st.Page(PAGES / "label.py", title="Label", icon=":material/label:"),
        st.Page(PAGES / "review.py", title="Review", icon=":material/rate_review:"),
        st.Page(PAGES / "synthetic.py", title="Synthetic", icon=":material/science:"),
    ],
    "Ship": [
        st.Page(PAGES / "export_train.py", title="Export & Train", icon=":material/model_training:"),
        st.Page(PAGES / "models.py", title="Models", icon=":material/hub:"),
    ],
})
st.sidebar.caption(f"Workspace: `{workspace_path()}`")
nav.run()
