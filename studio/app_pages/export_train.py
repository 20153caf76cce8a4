"""Export & Train (placeholder until the pipeline step lands)."""

import streamlit as st

from studio import _data

st.title("Export & Train")
if _data.step_module("export") is None:
    _data.step_unavailable("The Export & Train step")
