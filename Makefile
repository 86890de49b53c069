# The two commands of the README:  `make demo`  and  `make test`.
# Both set up everything first (idempotent, seconds when nothing changed).
SHELL := /bin/bash

.PHONY: setup build demo test test-fast lint format bench clean

setup build:
	bash scripts/setup_env.sh

demo: setup
	bash scripts/run_demo.sh

test: setup
	bash scripts/run_tests.sh

# Unit and model tests only (no ROS processes, no slow tests).
test-fast: setup
	bash scripts/run_tests.sh -m "not ros and not slow"

lint: setup
	source scripts/env.sh && ruff check . && ruff format --check .

format: setup
	source scripts/env.sh && ruff check --fix . && ruff format .

clean:
	rm -rf build install log .pytest_cache .ruff_cache
