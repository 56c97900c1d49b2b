# One entry point. `make suite` runs the main job, `make test` the tests; each
# creates the virtual environment in .venv when it is missing.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test suite browser-deps clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml .ci/requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run 'make PYTHON=/path/to/python3.11'"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c .ci/requirements.lock -e '.[test]'
	# A kernel inside the venv, so papermill runs notebooks with this environment.
	$(PY) -m ipykernel install --sys-prefix --name workbench --display-name "BERT Workbench (.venv)"
	touch $(STAMP)

# Debian's chromium for the real-browser test of the attention explorer.
browser-deps:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: venv browser-deps
	$(PY) -m pytest -q

suite: venv
	$(PY) -m workbench run-suite --suite embedded --jobs 2

clean-venv:
	rm -rf $(VENV)
