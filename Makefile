# The two commands of a fresh machine: `make run` (the quick benchmark) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

DOCS   := $(VENV)/.docs-installed

.PHONY: run test lint docs clean

# Creates the virtual environment and installs digitbench (editable) with its test tools.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The quick preset on the embedded mnist-5k data; writes runs/quick/{results.csv,report.md}.
run: $(STAMP)
	$(BIN)/digitbench run --preset quick --resume

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

# The documentation site: the CLI reference regenerated from the parser, then built strictly (a broken
# link or a page missing from the navigation fails) into site/.
$(DOCS): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,docs]'
	touch $(DOCS)

docs: $(DOCS)
	$(BIN)/python -m digitbench.benchmark.commands.reference > docs/reference/cli.md
	$(BIN)/mkdocs build --strict --site-dir site

lint: $(STAMP)
	$(BIN)/ruff check digitbench common benchmark models reports tests benchmarks

clean:
	rm -rf $(VENV) runs site .pytest_cache .ruff_cache *.egg-info
