"""The CPU smoke's twin on a GPU host: ``bash verl/train_qwen.sh`` (the GPU recipe, CUDA + vLLM + flash-attn).

    bash scripts/setup.sh rl --gpu
    .venv/rl/bin/python -m pytest -m "gpu and slow" tests/test_verl_gpu.py

The same data, tiny policy, reward and assertions as tests/test_verl_cpu_main_ppo.py, without ``--cpu``: the
recipe's own FSDP strategy and attention, vLLM's CUDA build, 2 GRPO steps with smoke sizes, then
``verl/model_convert.py`` on the step-2 checkpoint. Skipped without CUDA and vllm (the conftest skips ``gpu``
tests without CUDA). Not run on the project's CPU machines.
"""

import importlib.metadata
import importlib.util
import json
import sys

import pytest

from tests.conftest import require_shared_fixtures
from tests.verl_smoke import (
    convert_and_generate,
    fit_tiny_policy,
    pipeline_parquet,
    reward_keys,
    run_train_qwen,
)
from tool_n1.verl_console import parse_step_metrics

pytestmark = [pytest.mark.rl_env, pytest.mark.gpu, pytest.mark.slow]

GPU_SMOKE_OVERRIDES = [
    "+ablation=partial_think",
    "data.train_batch_size=4",
    "data.max_response_length=48",
    "actor_rollout_ref.rollout.n=4",
    "actor_rollout_ref.rollout.temperature=1.0",
    "actor_rollout_ref.actor.ppo_mini_batch_size=4",
    "actor_rollout_ref.actor.ppo_max_token_len_per_gpu=8192",
    "actor_rollout_ref.rollout.gpu_memory_utilization=0.3",
    "actor_rollout_ref.model.enable_gradient_checkpointing=false",
    "trainer.total_training_steps=2",
    "trainer.save_freq=2",
    "trainer.test_freq=2",
    "trainer.experiment_name=gpu_smoke",
    "ray_kwargs.ray_init.num_cpus=16",
]


def test_main_ppo_two_steps_then_convert(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed (verl 0.9.1 rolls out with vllm, sglang or trtllm only)")
    if "cpu" in importlib.metadata.version("vllm"):
        pytest.skip("vLLM's CPU build: tests/test_verl_cpu_main_ppo.py covers it")
    fixtures = require_shared_fixtures("toolace")
    data_dir = pipeline_parquet(fixtures.parent, tmp_path / "data")
    fit_tiny_policy(tmp_path / "model", data_dir)
    run, log = run_train_qwen(
        tmp_path,
        tmp_path / "model",
        data_dir,
        cpu=False,
        overrides=GPU_SMOKE_OVERRIDES,
        timeout_s=1200,
        python=sys.executable,
    )
    tail = log[-6000:]
    assert run.returncode == 0, tail
    assert "PREFLIGHT: OK" in log, tail
    steps = parse_step_metrics(log)
    assert sorted(steps) == [1, 2], (sorted(steps), tail)
    assert max(steps[step]["actor/grad_norm"] for step in (1, 2)) > 0, steps
    assert any(name.startswith("val-aux/toolcall/score/") for name in reward_keys(steps[2])), steps[2]
    assert (tmp_path / "ckpt" / "global_step_2" / "actor" / "fsdp_config.json").is_file(), tail
    generated = json.loads(convert_and_generate(tmp_path / "ckpt", tmp_path / "hf", sys.executable))
    assert generated["new_tokens"] > 0, generated
