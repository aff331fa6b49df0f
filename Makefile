# Benchmarks run on demand; the test suite never times anything.
PYTHON ?= .venv/bin/python

.PHONY: bench bench-synth bench-synth-1m bench-ingest bench-profile bench-model bench-real bench-service bench-notebooks bench-cli bench-objections bench-credit-logic bench-front-door bench-startup bench-mutation test

test:
	$(PYTHON) -m pytest

bench: bench-synth bench-ingest bench-profile bench-model bench-real bench-service bench-notebooks bench-cli bench-objections bench-credit-logic bench-front-door bench-startup

bench-synth:
	$(PYTHON) bench/synth_bench.py --enterprises 100000 --months 24 --runs 3

bench-synth-1m:
	$(PYTHON) bench/synth_bench.py --enterprises 1000000 --months 24 --runs 1

bench-ingest:
	$(PYTHON) bench/ingest_bench.py --city cities/bench-100k --runs 3

bench-profile:
	$(PYTHON) bench/profile_bench.py --sizes 10000 100000 --runs 3

bench-model:
	$(PYTHON) bench/model_bench.py --seeds 9 10 11 --runs 3

# needs the real data sets: .venv/bin/pip install -e '.[bench]'
bench-real:
	$(PYTHON) bench/real_data_bench.py --city-home cities/bench-model-100k-s9-home

bench-service:
	$(PYTHON) bench/service_bench.py --seconds 20 --runs 3

bench-notebooks:
	$(PYTHON) bench/notebook_bench.py --enterprises 30000 --runs 3

bench-cli:
	$(PYTHON) bench/cli_bench.py --runs 10

bench-objections:
	$(PYTHON) bench/objections_bench.py --runs 3

bench-credit-logic:
	$(PYTHON) bench/credit_logic_bench.py --seeds 9 10 11

bench-front-door:
	$(PYTHON) bench/front_door_bench.py --connections 40000 --addresses 4 --seconds 60 --runs 3

bench-startup:
	$(PYTHON) bench/startup_bench.py --starts 10

# mutation testing of the modules that keep the platform's promises, on a throw-away copy of HEAD
# (needs cosmic-ray: .venv/bin/pip install -e '.[bench]'). Not part of `bench`: every mutant of every
# module takes hours, so by default each module runs a random 40 of its mutants, at most 20 minutes.
# A part, or a figure in limited time:
#   make bench-mutation MUTATION_ARGS="--group policy"
#   make bench-mutation MUTATION_ARGS="--module models/gate.py --max-mutants 60"
#   make bench-mutation MUTATION_ARGS="--group audit --slow-tests --max-mutants 10 --budget-minutes 30"
MUTATION_ARGS ?= --max-mutants 40 --budget-minutes 20
bench-mutation:
	$(PYTHON) bench/mutation_bench.py $(MUTATION_ARGS)
