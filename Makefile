# Two commands set everything up: `make run` (the pipeline) and `make test` (the suite).
# Both create .venv with the exact versions of requirements.lock first.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# cpu: tensorflow-cpu (small, fast to install). gpu: tensorflow[and-cuda], for NVIDIA GPUs.
EXTRAS ?= cpu
# requirements.lock pins every package with the sha256 of each of its files (requirements-gpu.lock
# for EXTRAS=gpu): pip and uv both install in hash-checking mode, refusing any wheel that does not
# match, and nothing beyond the lock (--no-deps). The project itself is installed editable, built
# with the lock's setuptools (--no-build-isolation: no unpinned build environment).
LOCK := requirements$(if $(filter gpu,$(EXTRAS)),-gpu,).lock
# uv installs the same wheels as pip in about half the time, bytecode compiled too; pip installs uv
# first, hash-checked, from the lock's uv entry. uv's cache (2.5 GB) lives in the venv for the
# install only: on the venv's filesystem the installed files are hard links into it, not copies, and
# an interrupted install leaves nothing in /tmp. It reads no pip configuration, so a machine that
# reaches packages only through a pip-configured mirror falls back to pip by itself; INSTALLER=pip
# skips uv altogether.
INSTALLER ?= uv
PIP_INSTALL = $(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK) && \
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
UV_ENTRY = awk '/^uv==/{p=1} p{print} p && !/\\$$/{exit}' $(LOCK) > $(VENV)/uv-entry.lock
UV_INSTALL = $(UV_ENTRY) && $(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(VENV)/uv-entry.lock && \
	$(BIN)/uv pip install --quiet --cache-dir $(VENV)/.uv-cache --python $(BIN)/python --compile-bytecode \
	--require-hashes --no-deps -r $(LOCK) && \
	$(BIN)/uv pip install --quiet --cache-dir $(VENV)/.uv-cache --python $(BIN)/python --no-deps --no-build-isolation -e .
# uv compiles only the files it installs: after an interrupted install, the packages already in
# place would stay uncompiled, and with PYTHONDONTWRITEBYTECODE=1 every import would compile them
# again (import tensorflow 7.7 s instead of 3.9). compileall fills the gaps (3.6 s when none).
COMPILE_ALL = $(BIN)/python -m compileall -q -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" || true
STAMP := $(VENV)/.installed-$(EXTRAS)
OTHER_STAMP := $(VENV)/.installed-$(if $(filter gpu,$(EXTRAS)),cpu,gpu)
export PATH := $(abspath $(BIN)):$(PATH)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test test-fast install ui exps bench bench-quality lock clean

# The columns of `dvc exp show` worth comparing at a glance (it has a hundred more).
EXP_COLUMNS := Experiment|^lr$$|data\.source|model\.arch|model\.width|model\.decoder|train\.epochs|^accuracy$$|^auc$$|^psnr$$|^mse$$|^colorfulness_ratio$$

run: install
	$(BIN)/dvc repro
	@echo ""
	@$(BIN)/python -m colorizer.evaluation.summary

# The suite runs in TEST_WORKERS processes (pytest-xdist), each taking whole test modules, the
# longest first (tests/conftest.py orders them); TEST_WORKERS=1 runs it in this process.
TEST_WORKERS ?= 2
PYTEST = $(BIN)/python -m pytest $(if $(filter 1,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder)

test: install
	$(PYTEST)

# The quick loop while editing: the unit tests, without the end-to-end ones (real DVC runs,
# servers, installs) and those that train a model.
test-fast: install
	$(PYTEST) -m "not e2e and not slow"

install: $(STAMP)

# Switching between EXTRAS=cpu and gpu uninstalls the other TensorFlow build first (they share files).
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	if [ -e $(OTHER_STAMP) ]; then $(BIN)/python -m pip uninstall --quiet -y tensorflow tensorflow-cpu; fi
	$(if $(filter uv,$(INSTALLER)),$(UV_INSTALL) || { echo "installing with uv failed (see above): installing with pip"; $(PIP_INSTALL); },$(PIP_INSTALL))
	rm -rf $(VENV)/.uv-cache
	$(if $(filter uv,$(INSTALLER)),$(COMPILE_ALL))
	rm -f $(VENV)/.installed-*
	touch $@

exps: install
	$(BIN)/dvc exp show --no-pager --precision 4 --drop '.*' --keep '$(EXP_COLUMNS)'

# Benchmarks (see bench/README.md): ratios measured side by side in one run.
BENCH_DATA ?= ../shared/data/landscapes
bench: install
	cd bench && ../$(BIN)/python run_all.py --data $(abspath $(BENCH_DATA))

# Test-split quality at 128 px: default vs hybrid from scratch vs autoencoder vs gray over 3 training
# seeds: 9 trainings, about 2 hours on 2 CPUs at ~200 GFLOP/s (a run cut short continues).
bench-quality: install
	cd bench && ../$(BIN)/python quality.py --data $(abspath $(BENCH_DATA))

# Prints the address that opens the experiment's runs table (MLflow 3 opens a GenAI overview otherwise).
ui: install
	@$(BIN)/python -m colorizer.evaluation.summary --ui-link
	$(BIN)/mlflow ui --backend-store-uri "$$($(BIN)/python -m colorizer.evaluation.summary --store-uri)" --host 127.0.0.1 --port 5000

# The venv's exact versions, each with the sha256 of every file the index has for it (any platform),
# from uv's resolver; the GPU lock resolves the same pins with tensorflow[and-cuda] for Linux.
LOCK_HEADER = \# Every dependency, pinned with its files' sha256 (pip and uv install in hash-checking mode).
lock: install
	$(BIN)/python -m pip freeze --all --exclude-editable | grep -v -i '^pip==' > $(VENV)/pins.txt
	( echo "$(LOCK_HEADER)"; echo "# Regenerate with: make lock"; \
	  $(BIN)/uv pip compile $(VENV)/pins.txt --quiet --no-deps --generate-hashes --no-header --no-annotate \
	  --python-version 3.11 ) > requirements.lock.new
	( grep -v -i '^tensorflow[-_]cpu==' $(VENV)/pins.txt; grep -i '^tensorflow[-_]cpu==' $(VENV)/pins.txt \
	  | sed 's/^tensorflow[-_]cpu==/tensorflow[and-cuda]==/I' ) > $(VENV)/pins-gpu.txt
	( echo "$(LOCK_HEADER)"; echo "# For EXTRAS=gpu (Linux, NVIDIA). Regenerate with: make lock"; \
	  $(BIN)/uv pip compile $(VENV)/pins-gpu.txt --quiet --generate-hashes --no-header --no-annotate \
	  --python-version 3.11 --python-platform x86_64-manylinux_2_28 ) > requirements-gpu.lock.new
	mv requirements.lock.new requirements.lock
	mv requirements-gpu.lock.new requirements-gpu.lock

clean:
	rm -rf $(VENV) dvc_plots .pytest_cache
