# Shortcuts; every target is a plain command you can also run yourself.
.PHONY: setup test test-core style quality bench run

setup:      ## all environments (dev, rl, sft, eval)
	bash scripts/setup.sh all

test:       ## lint + every test suite (the README's test command; CI runs it)
	bash scripts/test.sh

test-core:  ## core tests only, in the light dev environment
	TEST_ENVS=dev bash scripts/test.sh

style:      ## format and auto-fix
	.venv/dev/bin/ruff format . && .venv/dev/bin/ruff check --fix .

quality:    ## lint without changing files
	.venv/dev/bin/ruff check . && .venv/dev/bin/ruff format --check .

bench:      ## benchmark tables (bench/)
	.venv/dev/bin/python bench/bench_reward.py

run:        ## the main job on CPU (the README's first command)
	bash scripts/run_cpu.sh
