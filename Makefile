# The two commands of the README. Both set up what is missing first.
VENV ?= .venv
STAMP := $(VENV)/.luot-installed

.PHONY: centre test bench

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh $(VENV)
	touch $(STAMP)

## make centre: set up and run a whole demo centre (server, broker, simulated visitors and officers)
centre: $(STAMP)
	$(VENV)/bin/luot demo $(ARGS)

## make test: set up and run the whole test suite (two workers, a test file each at a time: most
## tests wait on brokers, servers and browsers, so two workers on two cores take about 60 % of the time)
test: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile $(ARGS)

## make bench: run the benchmarks (figures are printed, never asserted)
bench: $(STAMP)
	for b in bench/bench_*.py; do $(VENV)/bin/python $$b || exit 1; done
