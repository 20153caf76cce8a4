"""Curation Studio core library."""

import logging as _logging

# bitsandbytes' CPU backend tries to fetch an optional kernel from a model hub at import time and
# logs a warning when the `kernels` package is absent. We never fetch from a hub at run time, so
# the fallback it uses is the intended path: keep that notice out of every command's output.
_logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(_logging.ERROR)
