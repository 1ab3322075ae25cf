# The two set-up commands (README): `make demo` runs the main job on the embedded default,
# `make test` runs the tests. Both create .venv on first use (torch first: the pinned CPU build).
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo demo-tiny test test-unit test-slow lint clean

install: $(VENV)/.installed

# constraints/cpu.txt: every package exactly as in the environment the tests pass in (pyproject.toml's ranges
# also admit the CPU build of vLLM's environment, constraints/cpu-vllm.txt; docs/gpu.md)
$(VENV)/.installed: pyproject.toml constraints/cpu.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints/cpu.txt -e '.[dev,tensorboard,trackers]'
	touch $@

# The main job: the miniature world (issue 3). SFT, SSR, SDFT and S3FT from the shipped base model,
# once per training seed, then runs/world/summary.md (mean ± spread) and each seed's report and plots.
SEEDS ?= 0,1,2
demo: install
	$(VENV)/bin/s3ft demo --seeds $(SEEDS)
	@echo "summary: runs/world/summary.md; per seed: runs/world/seed-N/09_report/report.md"

# The smallest whole-pipeline run: a ~0.6M-parameter model s3ft builds and teaches (configs/tiny.yaml).
models/tiny/config.json: | install
	$(VENV)/bin/s3ft make-tiny models/tiny --hidden-size 128 --teach

demo-tiny: install models/tiny/config.json
	$(VENV)/bin/s3ft run configs/tiny.yaml
	@echo "report: runs/tiny/09_report/report.md"

test: install
	$(VENV)/bin/ruff check src tests scripts benchmarks research
	$(PY) -m pytest -q --durations=10

# the unit tests alone (under 2 minutes on 2 cores); `make test` runs them and the integration tests
test-unit: install
	$(PY) -m pytest -q -m "unit and not slow and not gpu and not vllm"

test-slow: install
	$(PY) -m pytest -q -m slow

lint: install
	$(VENV)/bin/ruff check src tests scripts benchmarks research

clean:
	rm -rf runs models
