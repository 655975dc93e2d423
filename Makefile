# Every target creates .venv and installs what it needs, so a fresh machine with
# Python 3.11 and make is enough.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast bench lint fmt check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	@$(BIN)/priemnaya shell -c config.example.yaml $(if $(INSTITUTION),-i $(INSTITUTION))

# everything, as CI runs it: lint, types, the layer contract (pyproject: importlinter), all tests
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

# while developing: unit, contract and in-process app tests (no processes, kills or workers)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check: $(STAMP)
	$(BIN)/priemnaya check -c config.example.yaml

# the benchmarks (bench/ also holds analysis scripts run by hand: faq_fit, faq_semantic,
# faq_loko, faq_map);
# bench/scale.py runs small here (20 institutions), a region by flags: --n 1000 --mode webhook
BENCHES := bench/faq_match.py bench/pipeline.py bench/broadcast.py bench/workers.py \
	bench/report_unanswered.py bench/check_many.py bench/scale.py

bench: $(STAMP)
	@for b in $(BENCHES); do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
