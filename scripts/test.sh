#!/usr/bin/env bash
# Set up the test environments, then lint and run every test suite — the README's test command, and what CI runs:
#
#   bash scripts/test.sh            # environments: rl (core, data, RL, end to end), rl-vllm (verl's main_ppo and
#                                   # vLLM serving on the CPU), sft, eval (BFCL)
#   TEST_ENVS="dev" bash scripts/test.sh   # core only, in the light dev environment (seconds to set up)
#   TEST_SLOW=1 bash scripts/test.sh       # also the slow-marked tests (SmolLM2 SFT: about 8 min on 2 cores)
#
# Each environment runs its own tests: .venv/rl the unmarked ones (the stdlib core) and those marked rl_env;
# .venv/rl-vllm those marked vllm_env; .venv/sft those marked sft_env; .venv/eval those marked eval_env
# (.venv/dev: unmarked only). Extra arguments go to pytest.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
read -r -a envs <<<"${TEST_ENVS:-rl rl-vllm sft eval}"

bash scripts/setup.sh "${envs[@]}"

lint_env=".venv/${envs[0]}"
echo "==> ruff (lint + format check)"
"$lint_env/bin/ruff" check .
"$lint_env/bin/ruff" format --check .

status=0
for env in "${envs[@]}"; do
    case "$env" in
        dev) marks="not rl_env and not sft_env and not eval_env and not vllm_env" ;;
        rl) marks="not sft_env and not eval_env and not vllm_env" ;;
        rl-vllm) marks="vllm_env" ;;
        sft) marks="sft_env" ;;
        eval) marks="eval_env" ;;
        *) echo "test.sh: unknown environment '$env'" >&2; exit 2 ;;
    esac
    [[ "${TEST_SLOW:-0}" == 1 ]] || marks="($marks) and not slow"
    echo "==> pytest in .venv/$env (-m \"$marks\")"
    set +e
    ".venv/$env/bin/python" -m pytest -m "$marks" "$@"
    rc=$?
    set -e
    # 5 = nothing collected: a stage whose suite has no tests yet is not a failure of the others
    if [[ $rc -ne 0 && $rc -ne 5 ]]; then status=$rc; fi
done
exit $status
