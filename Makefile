# Two entry points, each doing all set-up on a fresh machine (see README "Quick start"):
#   make demo   build the sample index and check the sample pictures against it
#   make test   lint, type-check and run the test suite
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt pyproject.toml | sha1sum | cut -c1-12)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	$(VENV)/bin/pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

.PHONY: install demo test bench
install: $(STAMP)

DEMO_DB := data/demo/tickets.sqlite3

demo: $(STAMP)
	rm -rf data/sample-index data/demo
	$(VENV)/bin/python -m bot index build samples/dataset --out data/sample-index
	$(VENV)/bin/python -m bot index info data/sample-index
	$(VENV)/bin/python -m bot check --index data/sample-index samples/queries/*.jpg
	@echo "--- a removal request, reviewed and decided, then the removal list (database: data/demo) ---"
	id=$$($(VENV)/bin/python -m bot tickets open --db $(DEMO_DB) --index data/sample-index \
	      --requester demo-requester samples/queries/coffee__mirrored.jpg) && \
	$(VENV)/bin/python -m bot tickets claim $$id --db $(DEMO_DB) --by demo-maintainer && \
	$(VENV)/bin/python -m bot tickets approve $$id --db $(DEMO_DB) --by demo-maintainer \
	      --reason "a private photo; the requester's copy matches the entry" && \
	$(VENV)/bin/python -m bot tickets log --db $(DEMO_DB)
	$(VENV)/bin/python -m bot removals export --db $(DEMO_DB) --out data/demo/removals.csv
	cat data/demo/removals.csv

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(VENV)/bin/python -m bench.accuracy
	$(VENV)/bin/python -m bench.precision
	$(VENV)/bin/python -m bench.build
	$(VENV)/bin/python -m bench.search --entries 1e8
	$(VENV)/bin/python -m bench.tickets
	$(VENV)/bin/python -m bench.apply
