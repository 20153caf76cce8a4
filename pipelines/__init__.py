"""Curation Studio core library."""
