#!/usr/bin/env bash
# Tool-N1 GRPO training on verl 0.9.1 (the paper's recipe: config/tool_n1_grpo.yaml).
#
#   cd verl && bash train_qwen.sh                                   # Tool-N1-7B, one node x 8 GPUs
#   bash verl/train_qwen.sh +ablation=qwen2.5_14b                   # any ablation in config/ablation/
#   bash verl/train_qwen.sh --dry-run [overrides...]                # print the resolved config; no GPU needed
#   bash verl/train_qwen.sh --help
#
# Everything after the options is passed to Hydra (`key=value`, `+ablation=<name>`), after the script's own
# overrides, so it wins. See train_qwen.sh --help for the environment variables and multi-node use.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CONFIG_DIR="$HERE/config"

usage() {
    cat <<EOF
Usage: bash verl/train_qwen.sh [--dry-run | --cfg job|hydra|all [--resolve]] [--help] [HYDRA_OVERRIDES...]

Runs \`python -m verl.trainer.main_ppo --config-path $CONFIG_DIR --config-name tool_n1_grpo ...\` of the
INSTALLED verl (0.9.1), from OUTPUT_DIR so that this repository's verl/ folder can never shadow it.

Options:
  --dry-run        print the fully resolved config (Hydra --cfg job --resolve) and exit; runs nothing, no GPU
  --cfg ... ,--resolve, --info ...   passed through to Hydra unchanged
  -h, --help       this text
  +ablation=NAME   select an ablation delta from $CONFIG_DIR/ablation/ (any Hydra override works the same way):
$(cd "$CONFIG_DIR/ablation" && for f in *.yaml; do printf '                     %s\n' "${f%.yaml}"; done)

Environment variables (default in brackets):
  PYTHON           python of the RL environment [$REPO/.venv/rl/bin/python if present, else python3]
  MODEL_PATH       HF model folder or hub id [unset: the config's Qwen/Qwen2.5-7B-Instruct, or the ablation's]
  DATA_DIR         folder with train.parquet / test.parquet (data_process/to_verl_parquet.py) [$REPO/data/verl]
  TRAIN_FILE       training parquet(s) [unset: \$DATA_DIR/train.parquet, or the ablation's subset]
  VAL_FILE         validation parquet [unset: \$DATA_DIR/test.parquet]
  PROJECT          trainer.project_name [tool_n1]
  EXPERIMENT       trainer.experiment_name [unset: the config's qwen2.5_7b_grpo, or the ablation's]
  OUTPUT_DIR       working directory of the run: Hydra logs, Ray driver output [$REPO/outputs/verl/<PROJECT>]
  CKPT_DIR         trainer.default_local_dir [unset: \$REPO/checkpoints/<project>/<experiment>]
  NNODES           trainer.nnodes [1]
  N_GPUS_PER_NODE  trainer.n_gpus_per_node [8]
  ROLLOUT_TP       vLLM tensor-parallel size, actor_rollout_ref.rollout.tensor_model_parallel_size [2]
  LOGGER           trainer.logger, a Hydra list [["console"]]; e.g. '["console","wandb"]' (needs WANDB_API_KEY
                   or WANDB_MODE=offline)
  SKIP_PREFLIGHT   1: do not check for CUDA and vllm before starting [0]
  RAY_ADDRESS      an existing Ray cluster to join (multi-node); unset: Ray starts a local one, or joins the cluster
                   that \`ray start\` already runs on this machine

Multi-node (Ray; all nodes see the same paths, e.g. a shared filesystem):
  head:     ray start --head --port=6379 --dashboard-host=0.0.0.0
  workers:  ray start --address=<head-ip>:6379
  head:     NNODES=4 N_GPUS_PER_NODE=8 bash verl/train_qwen.sh          # the paper used 4 x 8 H100 80GB
  or submit it as a Ray job from any machine:
            ray job submit --address=http://<head-ip>:8265 --no-wait \\
                --runtime-env-json='{"env_vars": {"NNODES": "4", "MODEL_PATH": "/shared/Qwen2.5-7B-Instruct"}}' \\
                -- bash $REPO/verl/train_qwen.sh

Needs GPUs and vLLM: verl 0.9.1 has no HF rollout (vllm, sglang, trtllm only). --dry-run and
verl/validate_config.py run on any machine.
EOF
}

hydra_mode=()
overrides=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --dry-run) hydra_mode=(--cfg job --resolve); shift ;;
        --cfg | --info | -c | -i) hydra_mode+=("$1" "$2"); shift 2 ;;
        --resolve) hydra_mode+=("$1"); shift ;;
        *) overrides+=("$1"); shift ;;
    esac
done

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$REPO/.venv/rl/bin/python" ]]; then PYTHON="$REPO/.venv/rl/bin/python"; else PYTHON=python3; fi
fi
abspath() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }

DATA_DIR=$(abspath "${DATA_DIR:-$REPO/data/verl}")
PROJECT=${PROJECT:-tool_n1}
OUTPUT_DIR=$(abspath "${OUTPUT_DIR:-$REPO/outputs/verl/$PROJECT}")
NNODES=${NNODES:-1}
N_GPUS_PER_NODE=${N_GPUS_PER_NODE:-8}
ROLLOUT_TP=${ROLLOUT_TP:-2}
LOGGER=${LOGGER:-'["console"]'}

args=(
    "tool_n1.data_dir=$DATA_DIR"
    "trainer.project_name=$PROJECT"
    "trainer.nnodes=$NNODES"
    "trainer.n_gpus_per_node=$N_GPUS_PER_NODE"
    "actor_rollout_ref.rollout.tensor_model_parallel_size=$ROLLOUT_TP"
    "trainer.logger=$LOGGER"
)
[[ -n "${MODEL_PATH:-}" ]] && args+=("actor_rollout_ref.model.path=$MODEL_PATH")
[[ -n "${TRAIN_FILE:-}" ]] && args+=("data.train_files=$(abspath "$TRAIN_FILE")")
[[ -n "${VAL_FILE:-}" ]] && args+=("data.val_files=$(abspath "$VAL_FILE")")
[[ -n "${EXPERIMENT:-}" ]] && args+=("trainer.experiment_name=$EXPERIMENT")
if [[ -n "${CKPT_DIR:-}" ]]; then
    args+=("trainer.default_local_dir=$(abspath "$CKPT_DIR")")
else
    # absolute, because the run's working directory is OUTPUT_DIR
    args+=("trainer.default_local_dir=$REPO/checkpoints/\${trainer.project_name}/\${trainer.experiment_name}")
fi

# Run outside the repository root: `python -m` puts the working directory first on sys.path, and although our
# verl/ has no __init__.py (so the installed regular package wins), a neutral directory makes that independent of
# how verl was installed (see verl/README.md, "Why verl/ has no __init__.py").
# Preflight (skipped for --dry-run, with RAY_ADDRESS set -- the GPUs may be on other nodes -- or SKIP_PREFLIGHT=1):
# on a machine without CUDA or vLLM main_ppo cannot run, and with few CPUs Ray may hang instead of failing.
if [[ ${#hydra_mode[@]} -eq 0 && -z "${RAY_ADDRESS:-}" && "${SKIP_PREFLIGHT:-0}" != 1 ]]; then
    if ! "$PYTHON" -c 'import importlib.util as u, sys, torch
missing = [n for n, ok in (("a CUDA GPU", torch.cuda.is_available()), ("vllm", u.find_spec("vllm"))) if not ok]
sys.exit("train_qwen.sh: cannot train here, missing " + " and ".join(missing) + " (verl 0.9.1 rolls out with vLLM"
         " on GPUs only). Use --dry-run or verl/validate_config.py to check the config; SKIP_PREFLIGHT=1 to force."
         if missing else 0)'; then
        exit 1
    fi
fi

if [[ ${#hydra_mode[@]} -gt 0 ]]; then
    cd "${TMPDIR:-/tmp}"  # printing a config writes nothing; keep it free of side effects
else
    mkdir -p "$OUTPUT_DIR"
    cd "$OUTPUT_DIR"
fi

if [[ ${#hydra_mode[@]} -gt 0 ]]; then
    # which verl will run (found, not imported: cheap); must be the installed one, never this repository's folder
    "$PYTHON" -c 'import importlib.metadata as m, importlib.util as u; print("# verl", m.version("verl"), "from", u.find_spec("verl").origin)'
fi
set -x
exec "$PYTHON" -m verl.trainer.main_ppo --config-path "$CONFIG_DIR" --config-name tool_n1_grpo \
    "${hydra_mode[@]}" "${args[@]}" "${overrides[@]}"
