"""Label (placeholder until the pipeline step lands)."""

import streamlit as st

from studio import _data

st.title("Label")
if _data.step_module("weak_supervision") is None:
    _data.step_unavailable("The Label step")
