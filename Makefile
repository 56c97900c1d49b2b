# One entry point. `make suite` runs the main job, `make test` the tests; each
# creates the virtual environment it needs in .venv when it is missing.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The TPU install (tensorflow-tpu 2.20 + libtpu, Python 3.12) in a second environment; it runs on CPU too.
TPU_VENV ?= .venv-tpu
# The Beam runner's environment: apache-beam needs protobuf<7, pillow<13, python-dateutil<3, which the main
# lock's versions exceed, so its tests run in a third environment from its own lock (.ci/requirements-beam.lock).
BEAM_VENV ?= .venv-beam
PYTHON_TPU ?= $(shell python3.12 -c "" 2>/dev/null && echo python3.12 || ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | tail -1)

.PHONY: venv test test-fast test-jax lint tpu-venv test-tpu beam-venv test-beam beam-lock suite browser-deps clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml .ci/requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run 'make PYTHON=/path/to/python3.11'"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c .ci/requirements.lock -e '.[test]'
	# A kernel inside the venv, so papermill runs notebooks with this environment.
	$(PY) -m ipykernel install --sys-prefix --name workbench --display-name "BERT Workbench (.venv)"
	touch $(STAMP)

# Debian's chromium for the real-browser tests, installed only when it is missing.
browser-deps:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The full run, what CI calls.
test: venv browser-deps
	$(PY) -m pytest -q --durations=25

# The inner loop: no notebooks, no browser, nothing marked slow (tests/conftest.py lists the tiers).
test-fast: venv
	$(PY) -m pytest -q -m "not slow and not notebook and not browser"

# The backend-agnostic tests (model parity, heads, optimizer, checkpoints, export, a fine-tune and a pretraining
# run with exact resume, speed without TensorFlow) under Keras' JAX backend on CPU (tests/conftest.py, docs/jax.md).
# JAX's compilation cache lets the repeated runs of one test reuse their XLA programs.
test-jax: venv
	KERAS_BACKEND=jax JAX_COMPILATION_CACHE_DIR=$${TMPDIR:-/tmp}/workbench-jax-cache \
	  $(PY) -m pytest -q -m backend_agnostic -p no:cacheprovider

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

$(TPU_VENV)/.installed: pyproject.toml .ci/requirements-tpu.lock workbench/install.py
	@test -n "$(PYTHON_TPU)" || { echo "Python 3.12 not found: run 'make PYTHON_TPU=/path/to/python3.12 test-tpu'"; exit 1; }
	test -x $(TPU_VENV)/bin/python || $(PYTHON_TPU) -m venv $(TPU_VENV)
	$(TPU_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TPU_VENV)/bin/python -m workbench.install --tpu --extras test --constraints .ci/requirements-tpu.lock
	touch $@

tpu-venv: $(TPU_VENV)/.installed

# The core tests (parity, heads, optimizer, a short fine-tune, a pretraining step) under the TPU install.
test-tpu: tpu-venv
	$(TPU_VENV)/bin/python -m pytest -q -m core -p no:cacheprovider

$(BEAM_VENV)/.installed: pyproject.toml .ci/requirements-beam.lock
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: run 'make PYTHON=/path/to/python3.11 test-beam'"; exit 1; }
	test -x $(BEAM_VENV)/bin/python || $(PYTHON) -m venv $(BEAM_VENV)
	$(BEAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BEAM_VENV)/bin/python -m pip install --quiet -c .ci/requirements-beam.lock -e '.[test,beam]'
	touch $@

beam-venv: $(BEAM_VENV)/.installed

# The Beam runner's tests (DirectRunner, several processes) under apache-beam. Without apache-beam they skip;
# here a missing apache-beam is an error, so the import comes first.
test-beam: beam-venv
	$(BEAM_VENV)/bin/python -c "import apache_beam"
	$(BEAM_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/test_beam.py \
	  tests/test_pretraining_data.py::test_beam_runner_writes_the_local_runners_shards

# Re-resolve the Beam lock from the package index after a dependency or main-lock change; only the versions
# apache-beam cannot take are released from the main lock.
beam-lock:
	$(PYTHON) -m workbench.install --resolve-lock .ci/requirements-beam.lock --extras test,beam \
	  --constraints .ci/requirements.lock --release protobuf,pillow,python-dateutil

suite: venv
	$(PY) -m workbench run-suite --suite embedded --jobs 2

clean-venv:
	rm -rf $(VENV) $(TPU_VENV) $(BEAM_VENV)

# The wheels the lent GPU machine lacks for `python -m workbench.bench.device_report`, into .whl/ (docs/jax.md,
# "Measuring on a lent GPU").
device-wheels:
	.ci/device-wheels
