"""Review (placeholder until the pipeline step lands)."""

import streamlit as st

from studio import _data

st.title("Review")
if _data.step_module("review") is None:
    _data.step_unavailable("The Review step")
