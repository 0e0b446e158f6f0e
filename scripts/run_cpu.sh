#!/usr/bin/env bash
# The main job on one CPU machine — the README's first command:
#
#   bash scripts/run_cpu.sh                    # default profile: SmolLM2-135M-Instruct
#   bash scripts/run_cpu.sh --profile tiny     # random tiny model, minutes (what CI runs, with the lr=0 control)
#   bash scripts/run_cpu.sh --model /path/to/hf_model --run-dir outputs/my_run
#
# Sets up the environments (RL + data, vLLM's CPU build for serving, SFT, eval; minutes the first time, seconds
# afterwards), then runs the whole pipeline — demo data → LLaMA-Factory SFT → TRL GRPO from SFT and from the base
# model → held-out (vllm serve) + BFCL evaluation → report with intervals and paired tests — with
# scripts/run_e2e.py (arguments are passed on; --help lists them). A killed run resumes where it stopped; the run
# fails if any held-out request stays unanswered.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh rl rl-vllm sft eval
.venv/rl/bin/python scripts/run_e2e.py "$@"
