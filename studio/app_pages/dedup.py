"""Dedup (placeholder until the pipeline step lands)."""

import streamlit as st

from studio import _data

st.title("Dedup")
if _data.step_module("dedup") is None:
    _data.step_unavailable("The Dedup step")
