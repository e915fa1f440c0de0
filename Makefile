# The few commands everyone runs. `make quickstart` and `make test` set everything up on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup quickstart test test-all lint format bench counts clean

# torch==2.14.1 and torchvision==0.29.1 are pinned in pyproject.toml; pip takes them from local disk.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# Trains a seed model (PydMobileNet-Add-29-0.5) on the offline digits data for 10 epochs (about a minute on
# 2 cores; ends near 98% validation top-1), evaluates it, profiles it, and lists the shipped CIFAR-10 weights.
quickstart: setup
	rm -rf runs/quickstart
	$(BIN)/compactnets train pydmobilenet_add_29_050_cifar --data digits --epochs 10 --out runs/quickstart
	$(BIN)/compactnets profile pydmobilenet_add_29_050_cifar
	$(BIN)/compactnets weights list
	$(BIN)/compactnets eval runs/quickstart --data digits

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
	$(BIN)/python benchmarks/bench_pyramid_depthwise.py

# After changing a model or its card: the counts `compactnets list` shows without counting (tests check them).
counts: setup
	$(BIN)/python scripts/update_counts.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
