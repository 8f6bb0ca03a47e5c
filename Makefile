# Two entry points: `make demo` and `make test`. Both create .venv and install on a
# fresh Debian/Ubuntu machine; system packages (TTS engines) come from scripts/system-deps.sh.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install system-deps lint format clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	bash scripts/system-deps.sh

demo: install system-deps
	$(BIN)/vae-audio demo --out exp/demo

test: install system-deps
	$(BIN)/python -m pytest -q tests

lint: install
	$(BIN)/ruff check vae_audio tests
	$(BIN)/ruff format --check vae_audio tests

format: install
	$(BIN)/ruff format vae_audio tests
	$(BIN)/ruff check --fix vae_audio tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
