#!/usr/bin/env bash
# Tool-N1 GRPO training on verl 0.9.1 (the paper's recipe: config/tool_n1_grpo.yaml).
#
#   cd verl && bash train_qwen.sh                                   # Tool-N1-7B, one node x 8 GPUs
#   MODEL_PATH=/models/tiny bash verl/train_qwen.sh --cpu           # the same trainer on a CPU (2 GRPO steps)
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
Usage: bash verl/train_qwen.sh [--cpu] [--dry-run | --cfg job|hydra|all [--resolve]] [--help] [HYDRA_OVERRIDES...]

Runs \`python -m verl.trainer.main_ppo --config-path $CONFIG_DIR --config-name tool_n1_grpo ...\` of the
INSTALLED verl (0.9.1), from OUTPUT_DIR so that this repository's verl/ folder can never shadow it.

Options:
  --cpu            the CPU profile: the same recipe plus config/device/cpu.yaml (+device=cpu) on a machine without
                   accelerators, with vLLM's CPU build (environment: bash scripts/setup.sh rl-vllm) and the verl
                   platform of the tool_n1_verl_cpu package. Smoke-test sizes: 2 GRPO steps, batch 4, 2 rollouts,
                   128 response tokens, validation and a checkpoint at step 2. Needs MODEL_PATH (a tiny or small
                   model; vLLM's CPU attention needs head_dim >= 32). Exports VERL_PLATFORM=cpu,
                   VERL_USE_EXTERNAL_MODULES=tool_n1_verl_cpu, VLLM_CPU_KVCACHE_SPACE [1] (GiB), OMP_NUM_THREADS [1].
  --dry-run        print the fully resolved config (Hydra --cfg job --resolve) and exit; runs nothing, no GPU
  --cfg ... ,--resolve, --info ...   passed through to Hydra unchanged
  -h, --help       this text
  +ablation=NAME   select an ablation delta from $CONFIG_DIR/ablation/ (any Hydra override works the same way):
$(cd "$CONFIG_DIR/ablation" && for f in *.yaml; do printf '                     %s\n' "${f%.yaml}"; done)

Environment variables (default in brackets):
  PYTHON           python of the RL environment [$REPO/.venv/rl/bin/python if present, else python3;
                   with --cpu $REPO/.venv/rl-vllm/bin/python]
  MODEL_PATH       HF model folder or hub id [unset: the config's Qwen/Qwen2.5-7B-Instruct, or the ablation's]
  DATA_DIR         folder with train.parquet / test.parquet (data_process/to_verl_parquet.py) [$REPO/data/verl]
  TRAIN_FILE       training parquet(s) [unset: \$DATA_DIR/train.parquet, or the ablation's subset]
  VAL_FILE         validation parquet [unset: \$DATA_DIR/test.parquet]
  PROJECT          trainer.project_name [tool_n1]
  EXPERIMENT       trainer.experiment_name [unset: the config's qwen2.5_7b_grpo, or the ablation's]
  OUTPUT_DIR       working directory of the run: Hydra logs, Ray driver output [$REPO/outputs/verl/<PROJECT>]
  CKPT_DIR         trainer.default_local_dir [unset: \$REPO/checkpoints/<project>/<experiment>]
  NNODES           trainer.nnodes [1]
  N_GPUS_PER_NODE  trainer.n_gpus_per_node [8; --cpu: 1]
  ROLLOUT_TP       vLLM tensor-parallel size, actor_rollout_ref.rollout.tensor_model_parallel_size [2; --cpu: 1]
  LOGGER           trainer.logger, a Hydra list [["console"]]; e.g. '["console","wandb"]' (needs WANDB_API_KEY
                   or WANDB_MODE=offline)
  SKIP_PREFLIGHT   1: skip verl/preflight.py (run before Ray starts: CUDA, vllm, flash_attn for the GPU recipe;
                   vLLM's CPU build and the cpu platform for --cpu; with RAY_ADDRESS or NNODES>1, that every
                   Ray node runs \$PYTHON) [0]
  RAY_ADDRESS      an existing Ray cluster to join (multi-node); unset: Ray starts a local one, or joins the cluster
                   that \`ray start\` already runs on this machine

Multi-node (Ray; all nodes see the same paths, e.g. a shared filesystem). Start Ray with the environment's OWN ray
(verl's workers run on the Python of the \`ray start\` that launched their node; the preflight checks it):
  head:     .venv/rl/bin/ray start --head --port=6379 --dashboard-host=0.0.0.0
  workers:  .venv/rl/bin/ray start --address=<head-ip>:6379
  head:     NNODES=4 N_GPUS_PER_NODE=8 bash verl/train_qwen.sh          # the paper used 4 x 8 H100 80GB
  or submit it as a Ray job from any machine:
            ray job submit --address=http://<head-ip>:8265 --no-wait \\
                --runtime-env-json='{"env_vars": {"NNODES": "4", "MODEL_PATH": "/shared/Qwen2.5-7B-Instruct"}}' \\
                -- bash $REPO/verl/train_qwen.sh

The GPU recipe needs CUDA, vLLM and flash-attn (bash scripts/setup.sh rl --gpu); --cpu needs the rl-vllm
environment. --dry-run and verl/validate_config.py run on any machine.
EOF
}

hydra_mode=()
overrides=()
profile=gpu
while [[ $# -gt 0 ]]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --cpu) profile=cpu; shift ;;
        --dry-run) hydra_mode=(--cfg job --resolve); shift ;;
        --cfg | --info | -c | -i) hydra_mode+=("$1" "$2"); shift 2 ;;
        --resolve) hydra_mode+=("$1"); shift ;;
        *) overrides+=("$1"); shift ;;
    esac
done

if [[ -z "${PYTHON:-}" ]]; then
    venv_python="$REPO/.venv/rl/bin/python"
    [[ $profile == cpu ]] && venv_python="$REPO/.venv/rl-vllm/bin/python"
    if [[ -x "$venv_python" ]]; then PYTHON="$venv_python"; else PYTHON=python3; fi
fi
abspath() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }

DATA_DIR=$(abspath "${DATA_DIR:-$REPO/data/verl}")
PROJECT=${PROJECT:-tool_n1}
OUTPUT_DIR=$(abspath "${OUTPUT_DIR:-$REPO/outputs/verl/$PROJECT}")
NNODES=${NNODES:-1}
if [[ $profile == cpu ]]; then
    N_GPUS_PER_NODE=${N_GPUS_PER_NODE:-1}
    ROLLOUT_TP=${ROLLOUT_TP:-1}
    if [[ -z "${MODEL_PATH:-}" && ${#hydra_mode[@]} -eq 0 ]]; then
        echo "train_qwen.sh --cpu: set MODEL_PATH to a tiny or small model folder (the recipe's 7B does not train" \
            "on a CPU; vLLM's CPU attention needs head_dim >= 32)" >&2
        exit 2
    fi
    # verl's platform hook: verl/__init__.py imports these modules in every process that imports verl
    case ",${VERL_USE_EXTERNAL_MODULES:-}," in
        *,tool_n1_verl_cpu,*) ;;
        *) VERL_USE_EXTERNAL_MODULES="${VERL_USE_EXTERNAL_MODULES:+$VERL_USE_EXTERNAL_MODULES,}tool_n1_verl_cpu" ;;
    esac
    export VERL_USE_EXTERNAL_MODULES VERL_PLATFORM=cpu
    export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
fi
N_GPUS_PER_NODE=${N_GPUS_PER_NODE:-8}
ROLLOUT_TP=${ROLLOUT_TP:-2}
LOGGER=${LOGGER:-'["console"]'}

args=()
[[ $profile == cpu ]] && args+=("+device=cpu")
args+=(
    "tool_n1.data_dir=$DATA_DIR"
    "trainer.project_name=$PROJECT"
    "trainer.nnodes=$NNODES"
    "trainer.n_gpus_per_node=$N_GPUS_PER_NODE"
    "actor_rollout_ref.rollout.tensor_model_parallel_size=$ROLLOUT_TP"
    "trainer.logger=$LOGGER"
)
# a local folder given relative to the caller becomes absolute (the run starts in OUTPUT_DIR); a hub id stays as is
[[ -n "${MODEL_PATH:-}" && -e "$MODEL_PATH" ]] && MODEL_PATH=$(abspath "$MODEL_PATH")
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
# Preflight (skipped for --dry-run or SKIP_PREFLIGHT=1): verl/preflight.py composes the same config and fails, before
# Ray starts, on what would otherwise fail inside a worker or hang: no CUDA / vllm / flash_attn for the GPU recipe,
# no vLLM CPU build or cpu platform for --cpu, and (RAY_ADDRESS set or NNODES > 1) a Ray node whose Python is not
# $PYTHON.
if [[ ${#hydra_mode[@]} -eq 0 && "${SKIP_PREFLIGHT:-0}" != 1 ]]; then
    preflight=("$PYTHON" "$HERE/preflight.py")
    if [[ -z "${RAY_ADDRESS:-}" && "$NNODES" != 1 ]]; then preflight+=(--ray-address auto); fi
    if ! (cd "${TMPDIR:-/tmp}" && "${preflight[@]}" "${args[@]}" "${overrides[@]}"); then
        echo "train_qwen.sh: preflight failed (above); --dry-run / verl/validate_config.py check the config only," \
            "SKIP_PREFLIGHT=1 skips this check" >&2
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
