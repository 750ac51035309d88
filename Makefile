# Two commands on a fresh machine:  make demo  |  make test
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test setup oslibs lint bench clean

demo: setup
	$(PY) run.py demo

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

setup: oslibs $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed" if sys.version_info < (3, 11) else 0)'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The embedded Firebird engine needs libtommath and libtomcrypt from the OS.
oslibs:
	@if [ "$$(uname -s)" != "Linux" ]; then \
		exit 0; \
	elif ldconfig -p 2>/dev/null | grep -q 'libtommath.so.1' && ldconfig -p 2>/dev/null | grep -q 'libtomcrypt.so.1'; then \
		exit 0; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "Installing libtommath1 libtomcrypt1 (needed by the embedded Firebird engine)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libtommath1 libtomcrypt1 >/dev/null; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null && command -v apt-get >/dev/null; then \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libtommath1 libtomcrypt1 >/dev/null; \
	else \
		echo "The embedded Firebird engine needs two OS libraries. Run:"; \
		echo "    sudo apt-get install -y libtommath1 libtomcrypt1"; \
		echo "then run make again."; exit 1; \
	fi

lint: setup
	$(VENV)/bin/ruff check pipeline tests benchmarks run.py
	$(VENV)/bin/ruff format --check pipeline tests benchmarks run.py
	$(VENV)/bin/mypy --ignore-missing-imports pipeline

bench: setup
	$(PY) benchmarks/extract.py

clean:
	rm -rf var feeds/*.yml photos_cache/* inbox .pytest_cache
