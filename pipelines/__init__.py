"""Curation Studio core library."""

import logging as _logging

from pipelines.records import Candidate, Record, RecordState, Source, Turn, render_turns

__all__ = ["Record", "Turn", "Source", "RecordState", "Candidate", "render_turns"]

# bitsandbytes' CPU backend tries to fetch an optional kernel from a model hub at import time and
# logs a warning when the `kernels` package is absent. We never fetch from a hub at run time, so
# the fallback it uses is the intended path: keep that notice out of every command's output.
_logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(_logging.ERROR)
