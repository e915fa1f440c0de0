# The few commands everyone runs. `make quickstart` and `make test` set everything up on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup quickstart test test-all lint format bench clean

# torch==2.14.1 and torchvision==0.29.1 are pinned in pyproject.toml; pip takes them from local disk.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

quickstart: setup
	$(BIN)/compactnets list 'antnet*'
	$(BIN)/compactnets profile antnet_g2_cifar --convention paper
	$(BIN)/compactnets profile mobilenetv2_100 --per-layer --convention +bn,+act | tail -n 12

test: setup
	$(BIN)/python -m pytest -q

test-all: setup
	$(BIN)/python -m pytest -q -m ""

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	$(BIN)/python benchmarks/bench_vs_torchvision.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
