"""A 2-step ``main_ppo`` run of the recipe with the tiny model: needs CUDA and vLLM (verl 0.9.1 has no HF rollout).

Skipped without them (the conftest skips ``gpu`` tests without CUDA; this also needs ``vllm``). Never verified on the
project's CPU machines. Then the step-2 checkpoint goes through verl/model_convert.py.
"""

import importlib.util
import os
import subprocess
import sys

import pytest
from tiny_model import build_tiny_qwen2, write_toy_parquet

from tests.conftest import REPO

pytestmark = [pytest.mark.rl_env, pytest.mark.gpu, pytest.mark.slow]


def test_main_ppo_two_steps_then_convert(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed (verl 0.9.1 rolls out with vllm, sglang or trtllm only)")
    build_tiny_qwen2(tmp_path / "model")
    write_toy_parquet(tmp_path / "data" / "train.parquet", n=8)
    write_toy_parquet(tmp_path / "data" / "test.parquet", n=4, split="test")
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "MODEL_PATH": str(tmp_path / "model"),
        "DATA_DIR": str(tmp_path / "data"),
        "OUTPUT_DIR": str(tmp_path / "run"),
        "CKPT_DIR": str(tmp_path / "ckpt"),
        "N_GPUS_PER_NODE": "1",
        "ROLLOUT_TP": "1",
    }
    overrides = [
        "data.train_batch_size=4",
        "data.max_prompt_length=2048",
        "data.max_response_length=64",
        "actor_rollout_ref.rollout.n=2",
        "actor_rollout_ref.actor.ppo_mini_batch_size=4",
        "actor_rollout_ref.actor.ppo_max_token_len_per_gpu=8192",
        "actor_rollout_ref.rollout.gpu_memory_utilization=0.3",
        "actor_rollout_ref.model.enable_gradient_checkpointing=false",
        "trainer.total_training_steps=2",
        "trainer.save_freq=2",
        "trainer.test_freq=2",
        "ray_kwargs.ray_init.num_cpus=16",
    ]
    run = subprocess.run(
        ["timeout", "1200", "bash", str(REPO / "verl" / "train_qwen.sh"), *overrides],
        capture_output=True,
        text=True,
        timeout=1300,
        env=env,
    )
    log = run.stdout[-5000:] + run.stderr[-5000:]
    assert run.returncode == 0, log
    assert "critic/score/mean" in run.stdout or "critic/score/mean" in run.stderr, log
    assert (tmp_path / "ckpt" / "global_step_2" / "actor" / "fsdp_config.json").is_file(), log
    convert = subprocess.run(
        [
            sys.executable,
            str(REPO / "verl" / "model_convert.py"),
            "--local_dir",
            str(tmp_path / "ckpt"),
            "--target_dir",
            str(tmp_path / "hf"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert convert.returncode == 0 and "RESULT: OK" in convert.stdout, convert.stdout + convert.stderr
