#!/usr/bin/env bash
# The main job on one CPU machine — the README's first command:
#
#   bash scripts/run_cpu.sh
#
# Sets up the light core environment (.venv/dev) and scores the built-in example responses under every reward
# variant and mode. (The full end-to-end toy run — data → SFT → GRPO → eval — replaces this when it lands.)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh dev
.venv/dev/bin/python scripts/score_responses.py --demo
