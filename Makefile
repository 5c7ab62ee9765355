# Two commands do everything on a fresh machine:
#   make search   # set up .venv (if needed) and run the default search
#   make test     # set up .venv (if needed) and run the test suite
# .venv is (re)built only when pyproject.toml changed since the last install.

PY      ?= python3
VENV    := .venv
STAMP   := $(VENV)/.installed
ARGS    ?= --budget 8000 --trials 100

.PHONY: search test test-all bench gpu-bundle clean-venv

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

# A lent GPU box has torch, numpy, scipy and tqdm but not these, and no network: this puts their
# wheels (for its Python 3.12) and the MNIST files, gzipped, under .gpu/ (git-ignored), which the
# device call carries (README, "On a GPU").
GPU_WHEELS := optuna==5.1.0 sqlalchemy==2.1.9 alembic==1.20.1 mako==1.4.3 colorlog==6.12.0 torchsummary==1.5.1

gpu-bundle: $(STAMP)
	rm -rf .gpu && mkdir -p .gpu/whl .gpu/data/MNIST/raw
	$(VENV)/bin/python -m search data
	for f in data/MNIST/raw/*-ubyte; do gzip -9c $$f > .gpu/data/MNIST/raw/$$(basename $$f).gz; done
	$(VENV)/bin/python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
	  --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpu/whl $(GPU_WHEELS)

clean-venv:
	rm -rf $(VENV)
