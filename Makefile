# The two commands of the README: `make demo` and `make test`. Both install into .venv first.
PYTHON ?= python3.11
VENV ?= .venv
# Bring your own torch: `make demo TORCH=` keeps whatever torch the venv already has (see README).
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.wxpipe-installed

.PHONY: demo test drill lint schemas rulegraph clean install profiles

install: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	if [ -n "$(TORCH)" ]; then $(BIN)/python -m pip install -q "$(TORCH)"; fi
	$(BIN)/python -m pip install -q -c requirements/constraints.txt -e ".[dev]"
	$(BIN)/wxpipe profiles install profiles
	touch $(STAMP)

# `snakemake --profile lumi` (leonardo, marenostrum5, jupiter): links in Snakemake's config directory
profiles: $(STAMP)
	$(BIN)/wxpipe profiles install profiles

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --cores all

# two workers, one test file each at a time: the SLURM profile tests (18 of the suite's 22 minutes) mostly
# wait for the cluster's status checks, so every other file runs on the second worker meanwhile
test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -n 2 --dist loadfile --ignore=tests/drills

# opt-in fault drills (minutes each): kill -9 the Snakemake controller mid-run, --unlock, rerun, same bytes
drill: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest tests/drills -q

lint: $(STAMP)
	$(BIN)/ruff check workflow tests bench
	$(BIN)/ruff format --check workflow tests bench
	$(BIN)/mypy
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --lint

schemas: $(STAMP)
	$(BIN)/wxpipe schema workflow/schemas

rulegraph: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --rulegraph | dot -Tsvg > docs/rulegraph.svg

clean:
	rm -rf results .snakemake

.PHONY: bench compat
bench: $(STAMP)
	$(BIN)/python -m bench all

compat: $(STAMP)
	$(BIN)/python -m bench compat
