"""verl/preflight.py and validate_config.py --deps stop before Ray starts when the environment cannot run the profile.

    .venv/rl/bin/python -m pytest tests/test_verl_preflight.py        # about 1 min

In ``.venv/rl`` (CPU torch, no vllm): the GPU recipe fails on CUDA and vllm, the CPU profile on vLLM's CPU build;
``train_qwen.sh`` exits 1 after the preflight without starting Ray; the presets compose and validate.
"""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.rl_env
VERL = REPO / "verl"


def _run(args, **env_extra):
    env = {**os.environ, **env_extra}
    return subprocess.run(args, capture_output=True, text=True, timeout=600, env=env, cwd=REPO)


def test_preflight_gpu_recipe_names_what_is_missing(tmp_path):
    run = _run([sys.executable, str(VERL / "preflight.py"), f"tool_n1.data_dir={tmp_path}"])
    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout
    assert "ok: profile: gpu" in out and "PREFLIGHT: FAILED" in out
    assert "ERROR: no CUDA device visible" in out and "train_qwen.sh --cpu" in out
    assert "ERROR: vllm is not installed" in out
    assert "ERROR: flash_attn is not installed" in out and "attn_implementation=sdpa" in out


def test_preflight_sdpa_override_needs_no_flash_attn(tmp_path):
    override = "+actor_rollout_ref.model.override_config.attn_implementation=sdpa"
    run = _run([sys.executable, str(VERL / "preflight.py"), f"tool_n1.data_dir={tmp_path}", override])
    assert "flash_attn" not in run.stdout.split("ok: attention sdpa")[0].split("ERROR")[-1]
    assert "ok: attention sdpa (flash_attn not needed)" in run.stdout, run.stdout


def test_validate_config_deps_cpu_profile_without_vllm(tmp_path):
    args = [sys.executable, str(VERL / "validate_config.py"), "--deps", f"tool_n1.data_dir={tmp_path}", "+device=cpu"]
    run = _run(args)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "[2] verl validate_config OK" in run.stdout  # the profile itself composes and validates
    assert "[7] MISSING: vllm is not installed" in run.stdout and "setup.sh rl-vllm" in run.stdout
    assert "RESULT: INVALID" in run.stdout


def test_train_qwen_cpu_stops_at_preflight_before_ray(tmp_path):
    env = {"PYTHON": sys.executable, "MODEL_PATH": str(tmp_path), "OUTPUT_DIR": str(tmp_path / "run")}
    run = _run(["bash", str(VERL / "train_qwen.sh"), "--cpu"], **env)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "PREFLIGHT: FAILED" in run.stdout and "preflight failed" in run.stderr
    assert "verl.trainer.main_ppo" not in run.stderr  # exec never reached: no Ray


def test_train_qwen_cpu_needs_a_model_path(tmp_path):
    run = _run(["bash", str(VERL / "train_qwen.sh"), "--cpu"], PYTHON=sys.executable, MODEL_PATH="")
    assert run.returncode == 2 and "set MODEL_PATH" in run.stderr


@pytest.mark.parametrize("preset", ["+device=cpu", "+ablation=qwen3_8b", "+ablation=qwen3_8b_no_think"])
def test_presets_validate(tmp_path, preset):
    run = _run([sys.executable, str(VERL / "validate_config.py"), f"tool_n1.data_dir={tmp_path}", preset])
    assert run.returncode == 0 and "RESULT: VALID" in run.stdout, run.stdout + run.stderr
