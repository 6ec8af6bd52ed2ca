# mxforge: two commands do everything on a fresh machine (python3, make and a C++ compiler).
#   make demo   install into .venv, generate the 6-bit/block-16 dot product, simulate it
#               under Verilator against the golden model, print the density report
#               (synthesis and place-and-route are cached in build/cache: a rerun is fast)
#   make test   install into .venv, run the whole test suite

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
JOBS   ?= 2

.PHONY: demo test install lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m hw.generate --bits 6 --block 16 --out build/demo
	$(PY) -m sim.run --top dot --bits 6 --block 16 --seed 1 --vectors 2000
	$(PY) -m flows.density --bits 6 --block 16 --out reports --quiet --print

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -n $(JOBS) -q

bench: $(STAMP)
	$(PY) -m benchmarks.run

clean:
	rm -rf build reports .pytest_cache .hypothesis
