# Two entry points: `make demo` and `make test`. Both create .venv and install on a
# fresh Debian/Ubuntu machine; system packages (TTS engines) come from scripts/system-deps.sh.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install system-deps lint format clean mutation

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
# pesq (PESQ column of `evaluate`, `metrics` extra) is source-only: a C compiler and the
# Python headers build it; without them its test is skipped instead of failing the install.
	$(BIN)/python -m pip install --quiet -c constraints.txt 'pesq>=0.0.4' || echo "note: pesq \
	was not built (needs a C compiler and Python headers: apt-get install gcc python3-dev); \
	the PESQ test is skipped" >&2
	touch $(STAMP)

install: $(STAMP)

system-deps:
	bash scripts/system-deps.sh

demo: install system-deps
	$(BIN)/vae-audio demo --out exp/demo

test: install system-deps
	$(BIN)/python -m pytest -q tests

# Mutation testing of the core math (cosmic-ray; hours on 2 cores, not part of `make test`).
# MODULES="likelihoods objective" limits it to some modules (names in scripts/mutation.sh).
mutation: install
	bash scripts/mutation.sh $(MODULES)

lint: install
	$(BIN)/ruff check vae_audio tests
	$(BIN)/ruff format --check vae_audio tests

format: install
	$(BIN)/ruff format vae_audio tests
	$(BIN)/ruff check --fix vae_audio tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
