#!/usr/bin/env bash
# The main job on one CPU machine — the README's first command:
#
#   bash scripts/run_cpu.sh                    # default profile: SmolLM2-135M-Instruct, about 20 min on 2 cores
#   bash scripts/run_cpu.sh --profile tiny     # random tiny model, about 2 min (what CI runs)
#   bash scripts/run_cpu.sh --model /path/to/hf_model --run-dir outputs/my_run
#
# Sets up the three environments (RL + data, SFT, eval; minutes the first time, seconds afterwards), then runs the
# whole pipeline — demo data → LLaMA-Factory SFT → TRL GRPO → held-out + BFCL evaluation → report — with
# scripts/run_e2e.py (arguments are passed on; --help lists them). A killed run resumes where it stopped.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh rl sft eval
.venv/rl/bin/python scripts/run_e2e.py "$@"
