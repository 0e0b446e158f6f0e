"""The paper's trainer on a CPU: ``bash verl/train_qwen.sh --cpu`` runs verl 0.9.1's real ``main_ppo``, 2 GRPO steps.

    bash scripts/setup.sh rl-vllm
    CI=true .venv/rl-vllm/bin/python -m pytest -m vllm_env tests/test_verl_cpu_main_ppo.py

data pipeline (data_process.py, to_verl_parquet.py) on the shared fixture rows -> a tiny Qwen2 fit to answer with or
without think tags -> ``train_qwen.sh --cpu`` (Ray, FSDP2 over gloo, vLLM's CPU build, ``pkg://tool_n1.reward``) with
the fine-grained reward, 2 steps -> asserts from verl's own console metrics: non-zero reward spread and
``actor/grad_norm > 0``, our reward keys in the validation metrics -> checkpoint -> ``verl/model_convert.py`` -> the
converted model loads and generates. Hard timeout: a hang fails the test.
"""

import json
import sys
import time

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

pytestmark = pytest.mark.vllm_env

TRAIN_TIMEOUT_S = 1500
SMOKE_OVERRIDES = [
    # the paper's Table 4 fine-grained reward: 0.2 for think tags, so the tiny policy's coin flip gives a spread
    "+ablation=partial_think",
    "actor_rollout_ref.rollout.n=4",
    "actor_rollout_ref.rollout.temperature=1.0",
    "data.max_response_length=48",
    "trainer.experiment_name=cpu_smoke",
]


def test_train_qwen_cpu_two_grpo_steps_then_convert(tmp_path):
    fixtures = require_shared_fixtures("toolace")
    started = time.monotonic()
    data_dir = pipeline_parquet(fixtures.parent, tmp_path / "data")
    fit = fit_tiny_policy(tmp_path / "model", data_dir)
    run, log = run_train_qwen(
        tmp_path,
        tmp_path / "model",
        data_dir,
        cpu=True,
        overrides=SMOKE_OVERRIDES,
        timeout_s=TRAIN_TIMEOUT_S,
        python=sys.executable,
    )
    tail = log[-6000:]
    assert run.returncode == 0, f"train_qwen.sh --cpu exited {run.returncode} (124: timed out)\n{tail}"
    assert "PREFLIGHT: OK" in log, tail

    steps = parse_step_metrics(log)
    assert sorted(steps) == [1, 2], (sorted(steps), tail)
    # a group whose rewards differ gives non-zero advantages and a gradient (the policy thinks about 1 time in 4
    # after the fit, 4 rollouts x 4 prompts per step: a step without any spread has a probability below 1e-2)
    assert any(steps[step]["critic/score/max"] > steps[step]["critic/score/min"] for step in (1, 2)), steps
    assert max(steps[step]["actor/grad_norm"] for step in (1, 2)) > 0, steps
    validation = reward_keys(steps[2])
    for key in ("score", "format_ok", "calls_match"):
        assert any(name.startswith(f"val-aux/toolcall/{key}/") for name in validation), validation

    actor = tmp_path / "ckpt" / "global_step_2" / "actor"
    assert (actor / "fsdp_config.json").is_file(), sorted(p.name for p in actor.parent.glob("*"))
    generated = json.loads(convert_and_generate(tmp_path / "ckpt", tmp_path / "hf", sys.executable))
    assert generated["new_tokens"] > 0, generated
    shown = ("actor/grad_norm", "critic/score", "timing_s/step")
    summary = {step: {k: v for k, v in metrics.items() if k.startswith(shown)} for step, metrics in steps.items()}
    print(f"cpu main_ppo smoke: fit {fit}, steps {summary}, total {time.monotonic() - started:.0f} s")
