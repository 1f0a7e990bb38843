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
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -n 2 --dist loadfile --ignore=tests/drills --ignore=tests/anemoi

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

# The GPU check (bench/gpu_check.py): `make gpu-wheels` here, where PyPI is reachable, then `make gpu-check` on a
# GPU machine without internet (carry .gpu-wheels/ there). GPU_SKIP is what is not carried: numpy (the machine's
# torch brings it), matplotlib's family (without it training logs no loss-curve picture) and what mlflow-skinny
# lists but never imports to log a run. `make test` runs the check's CPU dry run in the project's venv.
GPU_WHEELS ?= .gpu-wheels
GPU_PYTHON ?= 3.12
GPU_SKIP := numpy matplotlib pillow fonttools kiwisolver contourpy cycler pyparsing cryptography cffi pycparser google_auth pyasn1 pyasn1_modules rsa
GPU_PLATFORMS := $(foreach p,manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64,--platform $(p))

.PHONY: gpu-wheels gpu-check
gpu-wheels: $(STAMP)
	rm -rf $(GPU_WHEELS)
	$(BIN)/python -m pip download -q --only-binary=:all: --implementation cp --python-version $(GPU_PYTHON) \
		$(GPU_PLATFORMS) -c requirements/constraints.txt -d $(GPU_WHEELS) -r requirements/gpu-check.txt
	cd $(GPU_WHEELS) && for p in $(GPU_SKIP); do rm -f $$p-*.whl; done
	du -sh $(GPU_WHEELS)

gpu-check:
	bash bench/gpu_check.sh

# anemoi-training as a training engine (training.<run>.engine: anemoi): its own venv, since it needs torch<2.11 and
# zarr 2 (~12 min and ~8.4 GB; torch is PyPI's CUDA build). wxpipe goes in without its dependencies. anemoi-files
# writes envs/train-anemoi.yaml and containers/train-anemoi.def from the same pins.
ANEMOI_VENV ?= .venv-anemoi
ANEMOI_STAMP := $(ANEMOI_VENV)/.wxpipe-installed

.PHONY: anemoi-env anemoi-files test-anemoi
anemoi-env: $(ANEMOI_STAMP)

$(ANEMOI_STAMP): requirements/anemoi.txt requirements/anemoi-constraints.txt pyproject.toml
	test -x $(ANEMOI_VENV)/bin/python || $(PYTHON) -m venv $(ANEMOI_VENV)
	$(ANEMOI_VENV)/bin/python -m pip install -q --upgrade pip
	$(ANEMOI_VENV)/bin/python -m pip install -q -c requirements/anemoi-constraints.txt -r requirements/anemoi.txt
	$(ANEMOI_VENV)/bin/python -m pip install -q --no-deps -e .
	touch $(ANEMOI_STAMP)

# opt-in (~15 min): the demo with an anemoi GNN through Snakemake: killed and resumed, scored, compared, and its
# forecast checked against anemoi-inference's
test-anemoi: $(STAMP) $(ANEMOI_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest tests/anemoi -v

anemoi-files: $(STAMP)
	$(BIN)/python -m wxpipe.anemoi.pins

.PHONY: bench compat
bench: $(STAMP)
	$(BIN)/python -m bench all

compat: $(STAMP)
	$(BIN)/python -m bench compat
