# Two commands do everything on a fresh machine:
#   make search   # set up .venv (if needed) and run the default search
#   make test     # set up .venv (if needed) and run the test suite
# .venv is (re)built only when pyproject.toml changed since the last install.

PY      ?= python3
VENV    := .venv
STAMP   := $(VENV)/.installed
ARGS    ?= --budget 8000 --trials 100

.PHONY: search test test-all bench clean-venv

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1 || true
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	rm -rf budgetnas.egg-info  # build metadata; the install keeps its own in .venv
	touch $(STAMP)

search: $(STAMP)
	$(VENV)/bin/python -m search $(ARGS)

# Two test processes, one thread each: most tests wait on CLI subprocesses (torch's import) more
# than they compute, so both cores stay busy without two 2-thread torch processes fighting.
PYTEST := OMP_NUM_THREADS=1 $(VENV)/bin/python -m pytest -q -n 2 --dist loadfile

test: $(STAMP)
	$(PYTEST)

test-all: $(STAMP)
	$(PYTEST) -m ''

bench: $(STAMP)
	$(VENV)/bin/python -m search bench train

clean-venv:
	rm -rf $(VENV)
