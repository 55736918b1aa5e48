# Each target sets itself up: a fresh clone needs nothing but python3 (>= 3.10).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml requirements-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-cpu.txt
	$(BIN)/pip install -q -e '.[test,serve]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/vidnets demo

test: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -n "$$VIDNETS_CHROMIUM" ] \
		|| echo "NOTE: no Chromium found, so the browser test (tests/deploy/test_browser.py) will be SKIPPED;" \
		        "install it with: apt-get install chromium"
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/pip install -q -e '.[bench]'
	PYTHON=$(PYTHON) bash benchmarks/setup_tv_env.sh
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) build *.egg-info
