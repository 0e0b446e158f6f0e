#!/usr/bin/env bash
# The paper's pipeline on a GPU cluster node, end to end: data -> GRPO (verl) -> convert -> serve ->
# BFCL / API-Bank / ACEBench -> report. The GPU counterpart of scripts/run_cpu.sh.
#
#   TOOLACE=/data/ToolACE/data.json XLAM=/data/xlam_function_calling_60k.json \
#   APIBANK=/data/api-bank/level-1-api.json ACEBENCH=/data/ACEBench/data_all/data_en bash scripts/run_gpu.sh
#   bash scripts/run_gpu.sh --dry-run              # print every command, run nothing (no GPU, no data needed)
#   bash scripts/run_gpu.sh --from convert         # start at a later stage (earlier outputs must exist)
#   bash scripts/run_gpu.sh -- +ablation=qwen2.5_14b   # Hydra overrides after `--` go to verl/train_qwen.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STAGES=(data train convert serve bfcl apibank acebench report)

usage() {
    cat <<EOF
Usage: bash scripts/run_gpu.sh [--dry-run] [--from STAGE] [--only STAGE] [--help] [-- HYDRA_OVERRIDES...]

Stages, in order: ${STAGES[*]}
  data      raw ToolACE + xLAM -> unified JSONL -> verl parquet (data_process/data_process.py, to_verl_parquet.py)
  train     GRPO with verl's main_ppo: verl/train_qwen.sh (the paper's recipe; overrides after \`--\`)
  convert   latest FSDP checkpoint -> Hugging Face folder (verl/model_convert.py)
  serve     vllm serve the converted model with the Tool-N1 chat template and tool/reasoning parsers (serving/)
  bfcl      BFCL v3 single-turn categories with bfcl-eval (eval/run_bfcl.py generate + evaluate)
  apibank   API-Bank level-1 (eval/apibank.py)
  acebench  ACEBench normal categories (eval/acebench.py)
  report    the BFCL table and the API-Bank / ACEBench reports; the server is stopped

Options:
  --dry-run      print every command with its environment, run nothing
  --from STAGE   skip the stages before STAGE
  --only STAGE   run STAGE alone (serve is started for the evaluation stages when needed)
  -h, --help     this text

Environment (default in brackets):
  TOOLACE, XLAM      raw data files (data stage)                     [required for data]
  APIBANK, ACEBENCH  benchmark data (apibank, acebench stages)       [required for those stages]
  MODEL_PATH         base model for GRPO                             [Qwen/Qwen2.5-7B-Instruct, the config's]
  RUN_DIR            everything this run writes                      [$ROOT/outputs/gpu-run]
  RL_PYTHON          python of the RL environment (verl, vLLM)        [$ROOT/.venv/rl/bin/python]
  EVAL_PYTHON        python of the evaluation environment (bfcl-eval) [$ROOT/.venv/eval/bin/python]
  NNODES, N_GPUS_PER_NODE, ROLLOUT_TP   passed to verl/train_qwen.sh [1, 8, 2]
  SERVE_TP           tensor-parallel size of vllm serve               [1]
  PORT               port of vllm serve                               [8000]
  MODEL_NAME         BFCL model key of the run                        [tool-n1/Tool-N1-7B]
Set-up: bash scripts/setup.sh rl --gpu eval
EOF
}

dry_run=0
from=data
only=""
overrides=()
while (($#)); do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --dry-run) dry_run=1 ;;
        --from) from=${2:?--from needs a stage}; shift ;;
        --only) only=${2:?--only needs a stage}; shift ;;
        --) shift; overrides=("$@"); break ;;
        *) echo "run_gpu.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for stage in "$from" ${only:+"$only"}; do
    [[ " ${STAGES[*]} " == *" $stage "* ]] || { echo "run_gpu.sh: unknown stage '$stage'" >&2; exit 2; }
done

RUN_DIR=${RUN_DIR:-$ROOT/outputs/gpu-run}
RL_PYTHON=${RL_PYTHON:-$ROOT/.venv/rl/bin/python}
EVAL_PYTHON=${EVAL_PYTHON:-$ROOT/.venv/eval/bin/python}
PORT=${PORT:-8000}
SERVE_TP=${SERVE_TP:-1}
MODEL_NAME=${MODEL_NAME:-tool-n1/Tool-N1-7B}
DATA=$RUN_DIR/data
CKPT=$RUN_DIR/checkpoints
HF=$RUN_DIR/hf
BASE_URL=http://127.0.0.1:$PORT/v1
server_pid=""

run() {  # print the command; run it unless --dry-run
    printf '+ %s\n' "$*"
    ((dry_run)) || "$@"
}

need() {  # need VAR: the variable must be set (a placeholder in a dry run)
    if [[ -z "${!1:-}" ]]; then
        if ((dry_run)); then printf -v "$1" '%s' "<$1>"; else echo "run_gpu.sh: set $1 (see --help)" >&2; exit 2; fi
    fi
}

wants() {  # wants STAGE: true when STAGE is selected by --from / --only
    local stage=$1 i from_i=-1 stage_i=-1
    [[ -n "$only" ]] && { [[ "$stage" == "$only" ]]; return; }
    for i in "${!STAGES[@]}"; do
        [[ "${STAGES[$i]}" == "$from" ]] && from_i=$i
        [[ "${STAGES[$i]}" == "$stage" ]] && stage_i=$i
    done
    ((stage_i >= from_i))
}

stop_server() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap stop_server EXIT

start_server() {
    [[ -n "$server_pid" ]] && return
    local vllm
    vllm="$(dirname "$RL_PYTHON")/vllm"
    local cmd=("$vllm" serve "$HF" --served-model-name "$HF" --port "$PORT" --tensor-parallel-size "$SERVE_TP"
        --chat-template "$ROOT/serving/tool_n1_chat_template.jinja" --enable-auto-tool-choice
        --tool-parser-plugin "$ROOT/serving/tool_n1_vllm.py" --tool-call-parser tool_n1
        --reasoning-parser-plugin "$ROOT/serving/tool_n1_vllm.py" --reasoning-parser tool_n1)
    printf '+ %s > %s 2>&1 &\n' "${cmd[*]}" "$RUN_DIR/logs/serve.log"
    ((dry_run)) && { server_pid=dry; return; }
    mkdir -p "$RUN_DIR/logs"
    "${cmd[@]}" >"$RUN_DIR/logs/serve.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 180); do  # up to 30 min: loading a 7B/14B model and compiling
        curl -sf "$BASE_URL/models" >/dev/null && return
        kill -0 "$server_pid" 2>/dev/null || { echo "run_gpu.sh: vllm serve died; see $RUN_DIR/logs/serve.log" >&2; exit 1; }
        sleep 10
    done
    echo "run_gpu.sh: vllm serve did not answer within 30 min; see $RUN_DIR/logs/serve.log" >&2
    exit 1
}

if wants data; then
    need TOOLACE
    need XLAM
    run "$RL_PYTHON" "$ROOT/data_process/data_process.py" --toolace "$TOOLACE" --xlam "$XLAM" \
        --output-dir "$DATA/unified"
    run "$RL_PYTHON" "$ROOT/data_process/to_verl_parquet.py" --input "$DATA/unified/unified.jsonl" \
        --output-dir "$DATA/verl"
fi

if wants train; then
    run env DATA_DIR="$DATA/verl" CKPT_DIR="$CKPT" PYTHON="$RL_PYTHON" OUTPUT_DIR="$RUN_DIR/verl" \
        bash "$ROOT/verl/train_qwen.sh" "${overrides[@]}"
fi

if wants convert; then
    run "$RL_PYTHON" "$ROOT/verl/model_convert.py" --checkpoint "$CKPT" --output-dir "$HF" --skip-check
fi

if wants serve || wants bfcl || wants apibank || wants acebench; then
    start_server
fi

if wants bfcl; then
    run "$EVAL_PYTHON" "$ROOT/eval/run_bfcl.py" generate --project-root "$RUN_DIR/bfcl" --model "$MODEL_NAME" \
        --local-model-path "$HF" --base-url "$BASE_URL"
    run "$EVAL_PYTHON" "$ROOT/eval/run_bfcl.py" evaluate --project-root "$RUN_DIR/bfcl" --model "$MODEL_NAME"
fi

if wants apibank; then
    need APIBANK
    run "$EVAL_PYTHON" "$ROOT/eval/apibank.py" --data "$APIBANK" --base-url "$BASE_URL" --model "$HF" \
        --endpoint completions --output "$RUN_DIR/apibank"
fi

if wants acebench; then
    need ACEBENCH
    run "$EVAL_PYTHON" "$ROOT/eval/acebench.py" --data "$ACEBENCH" --base-url "$BASE_URL" --model "$HF" \
        --endpoint completions --output "$RUN_DIR/acebench"
fi

stop_server

if wants report; then
    run "$EVAL_PYTHON" "$ROOT/eval/run_bfcl.py" report --project-root "$RUN_DIR/bfcl" --model "$MODEL_NAME"
    run cat "$RUN_DIR/apibank/report.json" "$RUN_DIR/acebench/report.json"
fi
